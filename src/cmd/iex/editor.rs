//! The line editor of `mix-remote iex`: rustyline on a thread of its own ("editor"), given IEx's
//! prompts as the relay asks them. Editing and history are local (a history file under the
//! user's state directory, 0600: a session may type secrets), Tab asks the node for IEx's own
//! completion, output arriving while a line is edited is printed above it, and Ctrl-C does what
//! IEx users expect: it cancels the line being typed, drops an unfinished expression, fails a read
//! of the evaluation (`{:error, :interrupted}`), and at an empty prompt says how to leave;
//! pressed again there it ends the session, as Ctrl-D does.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rustyline::completion::{Completer, Pair};
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{FileHistory, History};
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Context, Event, EventContext, EventHandler, ExternalPrinter,
    KeyEvent, RepeatCount,
};

use super::Live;
use crate::remote::console::{self, Terminal, Typed};
use crate::remote::stdin::Stdin;
use crate::report::Reporter;

/// Lines kept in the history.
const HISTORY_SIZE: usize = 1000;
/// What Ctrl-C at an empty prompt says.
const HOW_TO_LEAVE: &str =
    "(to end the session, press Ctrl-C again or Ctrl-D, or call System.halt())";
/// What a line that is not UTF-8 gets (a Latin-1 terminal, a Meta key sending 8-bit bytes).
const NOT_UTF8: &str = "(that line was not UTF-8: it was dropped; type it again)";

/// The editor as the console sees it: reads go to its thread, output is written around the line
/// being edited.
pub struct Editor {
    asks: mpsc::Sender<Ask>,
    screen: Arc<Mutex<Screen>>,
    /// Text to print above the line being edited, in order, by a thread of its own: rustyline
    /// takes it only while it waits for a key, and the console must never wait for that.
    above: mpsc::Sender<String>,
    /// Reads without echo (passwords) bypass the editor.
    passwords: Stdin,
    /// Where the node's lines and the session's output go while no line is edited: after the
    /// phases' lines already queued, with the bars out of the way.
    report: Arc<Reporter>,
}

/// A read for the editor's thread.
struct Ask {
    prompt: String,
    answer: Box<dyn FnOnce(Typed) + Send>,
}

/// What the terminal shows besides the line being edited.
#[derive(Default)]
struct Screen {
    /// A line is being edited: output goes above it.
    editing: bool,
    /// Output written after its last newline: the next prompt repeats it (`IO.write("Name: ")`
    /// then a read without a prompt).
    open_line: Vec<u8>,
    /// Output received while editing, after its last newline: printed once complete.
    held: Vec<u8>,
    /// How many lines have been asked for so far (IEx's prompts and the code's reads).
    prompts: u64,
}

impl Editor {
    /// Starts the editor for a session whose prompts name `name` (`iex(NAME)N>`), loading the
    /// history; completion and the terminal's size go through `live`. Fails when stdin or
    /// stdout is no terminal rustyline can drive.
    pub fn start(
        live: Arc<Live>,
        name: &str,
        report: Arc<Reporter>,
    ) -> Result<Editor, ReadlineError> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)?
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            .completion_show_all_if_ambiguous(true)
            .build();
        let mut editor = rustyline::Editor::with_config(config)?;
        let printer = editor.create_external_printer()?;
        let empty_line = Arc::new(AtomicBool::new(false));
        editor.bind_sequence(
            KeyEvent::ctrl('C'),
            EventHandler::Conditional(Box::new(CtrlC(Arc::clone(&empty_line)))),
        );
        editor.set_helper(Some(Completion(Arc::clone(&live))));
        let history = history_file();
        if let Some(path) = &history {
            match editor.load_history(path) {
                Ok(()) => {}
                Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => report.verbose(&format!("history {} not read: {e}", path.display())),
            }
        }
        let screen = Arc::new(Mutex::new(Screen::default()));
        let (asks, queue) = mpsc::channel::<Ask>();
        let thread = Thread {
            editor,
            screen: Arc::clone(&screen),
            live,
            kind: Kinds::of(name),
            empty_line,
            history,
            report: Arc::clone(&report),
        };
        std::thread::Builder::new()
            .name("editor".into())
            .spawn(move || thread.run(queue))
            .expect("spawning a thread");
        Ok(Editor {
            asks,
            screen,
            above: print_above(printer),
            passwords: Stdin::start(),
            report,
        })
    }
}

impl Editor {
    /// Writes a line the node printed outside the relay (Logger's, on its stderr): above the
    /// line being edited, if one is, else on stderr above the bars.
    pub fn remote_line(&self, line: &str) {
        let editing = self.screen.lock().expect("screen lock poisoned").editing;
        if !editing || self.above.send(format!("{line}\n")).is_err() {
            self.report.line(line);
        }
    }

    /// How many lines have been asked for so far: a new one means the prompt came back.
    pub fn prompts(&self) -> u64 {
        self.screen.lock().expect("screen lock poisoned").prompts
    }

    /// The session is over: output still held back for want of a newline (its last words, the
    /// node halting while a line was edited) is written, on a row of its own. It goes through the
    /// reporter, in one write: after what was asked of the screen before (the teardown's), never
    /// amid it (the painter clearing a row after the text and before its newline erased it).
    pub fn finish(&self) {
        let mut screen = self.screen.lock().expect("screen lock poisoned");
        let held = std::mem::take(&mut screen.held);
        if !held.is_empty() {
            self.report
                .output(&[b"\r\n", held.as_slice(), b"\r\n"].concat());
        }
    }

    /// Whether the terminal's cursor may be within a row: a line is being edited, or the
    /// session's output left one open.
    pub fn mid_row(&self) -> bool {
        let screen = self.screen.lock().expect("screen lock poisoned");
        screen.editing || !screen.open_line.is_empty()
    }
}

impl Terminal for Editor {
    fn output(&self, bytes: &[u8]) {
        let mut screen = self.screen.lock().expect("screen lock poisoned");
        if !screen.editing {
            // Before IEx runs, the last phase's line may still wait for the painter: the
            // application's start prints after it, never on the spinner's row.
            self.report.output(bytes);
            screen.wrote(bytes);
            return;
        }
        screen.held.extend_from_slice(bytes);
        let Some(end) = screen.held.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let lines: Vec<u8> = screen.held.drain(..=end).collect();
        drop(screen);
        if self
            .above
            .send(String::from_utf8_lossy(&lines).into_owned())
            .is_err()
        {
            write_out(&lines);
        }
    }

    fn read(&self, prompt: &[u8], echo: bool, answer: Box<dyn FnOnce(Typed) + Send>) {
        if !echo {
            self.report.output(prompt);
            // The prompt's line stays open until the read is done (the reader then ends it).
            self.screen
                .lock()
                .expect("screen lock poisoned")
                .wrote(prompt);
            let screen = Arc::clone(&self.screen);
            self.passwords.ask(false, move |line| {
                screen
                    .lock()
                    .expect("screen lock poisoned")
                    .open_line
                    .clear();
                answer(line.bytes.map_or(Typed::End, Typed::Line));
            });
            return;
        }
        let prompt = String::from_utf8_lossy(prompt).into_owned();
        // The thread ends only with the editor: a send that fails finds nobody to answer.
        let _ = self.asks.send(Ask { prompt, answer });
    }
}

impl Screen {
    /// Keeps track of the line `bytes` leave open.
    fn wrote(&mut self, bytes: &[u8]) {
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(end) => self.open_line = bytes[end + 1..].to_vec(),
            None => self.open_line.extend_from_slice(bytes),
        }
    }

    /// Editing starts with `prompt`: returns the prompt to show, which repeats the open line
    /// (the cursor is taken back to its start) when that can be done cleanly.
    fn begin(&mut self, prompt: &str) -> String {
        self.editing = true;
        self.prompts += 1;
        let open = std::mem::take(&mut self.open_line);
        let width = console::terminal_size().map_or(0, |(cols, _)| usize::from(cols));
        match String::from_utf8(open) {
            Ok(open)
                if !open.is_empty()
                    && !open.contains(['\r', '\u{1b}'])
                    && open.chars().count() + prompt.chars().count() < width =>
            {
                write_out(b"\r");
                open + prompt
            }
            _ => prompt.to_owned(),
        }
    }

    /// Editing ended: output held back for want of a newline is written now.
    fn end(&mut self) {
        self.editing = false;
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            write_out(&held);
            self.wrote(&held);
        }
    }
}

/// The editor's thread and what it owns.
struct Thread {
    editor: rustyline::Editor<Completion, FileHistory>,
    screen: Arc<Mutex<Screen>>,
    live: Arc<Live>,
    kind: Kinds,
    /// Set by Ctrl-C: whether the line was empty when it was pressed.
    empty_line: Arc<AtomicBool>,
    history: Option<PathBuf>,
    report: Arc<Reporter>,
}

impl Thread {
    fn run(mut self, asks: mpsc::Receiver<Ask>) {
        for ask in asks {
            let typed = self.edit(&ask.prompt);
            // IEx fits its output to the terminal: a resize while editing counts from this line.
            self.live.send_geometry();
            (ask.answer)(typed);
        }
    }

    /// Edits one line at `prompt` until it is entered, or Ctrl-C or Ctrl-D decides otherwise.
    fn edit(&mut self, prompt: &str) -> Typed {
        // What the run said so far (its phases) is on the terminal before the prompt, and no bar
        // is drawn over the line while it is edited.
        self.report.reading();
        let kind = self.kind.of_prompt(prompt);
        let shown = self.screen().begin(prompt);
        let mut warned = false;
        let read = loop {
            match self.editor.readline(&shown) {
                Ok(line) => break Ok(line),
                // Text on the line: cancelled, the same prompt again.
                Err(ReadlineError::Interrupted) if !self.empty_line.load(Ordering::SeqCst) => {
                    warned = false;
                }
                Err(ReadlineError::Interrupted) => match kind {
                    Kind::Prompt if warned => break Err(Typed::End),
                    Kind::Prompt => {
                        write_out(format!("{HOW_TO_LEAVE}\n").as_bytes());
                        warned = true;
                    }
                    Kind::Continuation | Kind::Other => break Err(Typed::Interrupted),
                },
                Err(ReadlineError::Eof) => break Err(Typed::End),
                Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    write_out(format!("{NOT_UTF8}\n").as_bytes());
                }
                Err(e) => {
                    self.report
                        .warning(&format!("the line editor failed ({e}): the session ends"));
                    break Err(Typed::End);
                }
            }
        };
        // rustyline has ended the line (and its row): the screen's state first, then the
        // history file.
        self.screen().end();
        self.report.read_done(true);
        match read {
            Ok(line) => {
                // What the evaluation reads is its business, not the session's history.
                if kind != Kind::Other {
                    self.remember(&line);
                }
                Typed::Line(format!("{line}\n").into_bytes())
            }
            Err(typed) => typed,
        }
    }

    /// Adds `line` to the history and appends it to the history file.
    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || !matches!(self.editor.add_history_entry(line), Ok(true)) {
            return;
        }
        if let Some(path) = &self.history
            && let Err(e) = self.editor.history_mut().append(path)
        {
            self.report
                .verbose(&format!("history {} not saved: {e}", path.display()));
        }
    }

    fn screen(&self) -> std::sync::MutexGuard<'_, Screen> {
        self.screen.lock().expect("screen lock poisoned")
    }
}

/// What a prompt is, which decides what Ctrl-C on an empty line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// IEx's prompt for a new expression.
    Prompt,
    /// IEx's prompt for a further line of an unfinished expression.
    Continuation,
    /// A read of the evaluation (`IO.gets("name? ")`).
    Other,
}

/// How IEx's prompts start: `iex(NAME)` and `...(NAME)`.
struct Kinds {
    prompt: String,
    continuation: String,
}

impl Kinds {
    fn of(name: &str) -> Kinds {
        Kinds {
            prompt: format!("iex({name})"),
            continuation: format!("...({name})"),
        }
    }

    fn of_prompt(&self, prompt: &str) -> Kind {
        if prompt.starts_with(&self.prompt) {
            Kind::Prompt
        } else if prompt.starts_with(&self.continuation) {
            Kind::Continuation
        } else {
            Kind::Other
        }
    }
}

/// Ctrl-C: notes whether the line was empty, then interrupts the read as rustyline does.
struct CtrlC(Arc<AtomicBool>);

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        self.0.store(ctx.line().is_empty(), Ordering::SeqCst);
        Some(Cmd::Interrupt)
    }
}

/// Tab: IEx's own expansion of the text before the cursor, asked of the node. A certain
/// addition is inserted; several choices are listed as IEx names them.
struct Completion(Arc<Live>);

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let Some(found) = self.0.expand(&line[..pos]) else {
            return Ok((pos, Vec::new()));
        };
        let pair = |display: String| Pair {
            display,
            replacement: found.hint.clone(),
        };
        let candidates = if found.entries.is_empty() {
            vec![pair(found.hint.clone())]
        } else {
            found.entries.iter().cloned().map(pair).collect()
        };
        Ok((pos, candidates))
    }
}

impl Hinter for Completion {
    type Hint = String;
}

impl Highlighter for Completion {}

impl Validator for Completion {}

impl rustyline::Helper for Completion {}

/// `$XDG_STATE_HOME/mix-remote/iex_history`, else `~/.local/state/mix-remote/iex_history`, its
/// directory made (0700) if need be; none without a home.
fn history_file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    let dir = state.join("mix-remote");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .ok()?;
    Some(dir.join("iex_history"))
}

/// Starts the thread that prints through `printer`: above the line being edited while there is
/// one, else where the cursor is.
fn print_above(mut printer: impl ExternalPrinter + Send + 'static) -> mpsc::Sender<String> {
    let (above, texts) = mpsc::channel::<String>();
    std::thread::Builder::new()
        .name("printer".into())
        .spawn(move || {
            for text in texts {
                if printer.print(text.clone()).is_err() {
                    write_out(text.as_bytes());
                }
            }
        })
        .expect("spawning a thread");
    above
}

/// Writes `bytes` on stdout at once.
pub(super) fn write_out(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_told_apart_by_their_start() {
        let kinds = Kinds::of("demo@db-1");
        assert_eq!(kinds.of_prompt("iex(demo@db-1)3> "), Kind::Prompt);
        assert_eq!(kinds.of_prompt("...(demo@db-1)3> "), Kind::Continuation);
        assert_eq!(kinds.of_prompt("name? "), Kind::Other);
        assert_eq!(kinds.of_prompt(""), Kind::Other);
    }

    #[test]
    fn the_open_line_is_what_follows_the_last_newline() {
        let mut screen = Screen::default();
        screen.wrote(b"done\nName: ");
        assert_eq!(screen.open_line, b"Name: ");
        screen.wrote(b"more");
        assert_eq!(screen.open_line, b"Name: more");
        screen.wrote(b"\n");
        assert!(screen.open_line.is_empty());
    }
}
