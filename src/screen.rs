//! The terminal the progress display shares with the function's output, and the rule that output
//! and prompts always win: the bars (drawn on stderr by indicatif) are taken off the screen before
//! the function leaves a line open on stdout or stderr (dots, a prompt) or reads, and come back only once
//! its output is quiet on a fresh line. One painter thread draws: it animates every bar and runs the
//! changes and lines the run's tasks ask for, in order, under the same lock as the output's
//! writes, so nothing is ever drawn in the middle of a line of output. A terminal that does not
//! keep up (a slow link, a stopped display) holds up the work on the hosts only once thousands of
//! those changes and lines wait for it (`BACKLOG`): then whoever adds one more waits for the
//! painter to take some, so that memory stays bounded when a host floods its log onto a stalled
//! terminal. Nothing is dropped to avoid that wait: those lines are log lines, warnings, errors
//! and results. The function's output is written by its caller, at the terminal's pace (with
//! several hosts, a last line without a newline and the result take their turn with the others).

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

mod stderr;

/// How often the bars are animated, up to [`BARS_PER_TICK`] of them.
const TICK: Duration = Duration::from_millis(80);
/// Each bar's tick renders its line and asks the terminal's width: with more bars than this (many
/// hosts), they are animated less often, so that the painter's work stays that of this many.
const BARS_PER_TICK: usize = 8;
/// How long output must be quiet (on a fresh line) before the bars come back.
const QUIET: Duration = Duration::from_millis(250);
/// How many drawing tasks may wait for a terminal that does not keep up before those who add
/// more wait too: memory stays bounded when a host floods its log onto a stalled terminal.
const BACKLOG: usize = 4096;

/// Where the function's output goes: its standard output or its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The tool's stdout.
    Stdout,
    /// The tool's stderr (where the bars are drawn, when they are).
    Stderr,
}

/// Set once a write on stdout has failed because its reader has gone (`| head` has exited).
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// The first write on stdout that failed for another reason (a full disk): what the OS said.
static STDOUT_FAILED: OnceLock<String> = OnceLock::new();

/// Whether stdout's reader has gone: a write there failed with `EPIPE`.
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// Why output was lost on stdout, if a write there failed other than for its reader's going
/// (which is no failure: `| head -1` has what it wants): the OS's error, such as `No space left
/// on device (os error 28)`.
pub fn stdout_failed() -> Option<&'static str> {
    STDOUT_FAILED.get().map(String::as_str)
}

/// Writes `bytes` on stdout and flushes it; a write that fails is noted for [`stdout_gone`] or
/// [`stdout_failed`].
fn to_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_GONE.store(true, Ordering::Relaxed);
        }
        Err(e) => {
            let _ = STDOUT_FAILED.set(e.to_string());
        }
    }
}

impl Stream {
    /// Writes `bytes` on this stream and flushes it; a write that fails is dropped (one on
    /// stdout noted, see [`write_stdout`]).
    pub fn write(self, bytes: &[u8]) {
        match self {
            Stream::Stdout => to_stdout(bytes),
            Stream::Stderr => write_stderr_bytes(bytes),
        }
    }

    fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

/// See the module's documentation.
pub struct Screen {
    bars: MultiProgress,
    /// The bars are drawn at all (stderr is a terminal with a `TERM` that is not `dumb`, no
    /// `-q`, no `--json`).
    drawn: bool,
    /// stdout and stderr are terminals, in that order: the function's output on them shares the
    /// screen with the bars.
    terminals: [bool; 2],
    /// What callers that do not wait for the terminal (up to [`BACKLOG`]) left to the painter, in
    /// order.
    tasks: Arc<Tasks>,
    /// The id of the next bar.
    next_id: AtomicU64,
    /// There are bars (see [`stderr`]).
    has_bars: Arc<AtomicBool>,
    state: Mutex<State>,
}

/// A change to the bars, or lines to write above them, run later under the screen's lock.
type Task = Box<dyn FnOnce(&Screen, &mut State) + Send>;

/// The queue of [`Task`]s: filled without touching the terminal, emptied only under the screen's
/// lock (so that output written at once comes after every task queued before it).
#[derive(Default)]
struct Tasks {
    queue: Mutex<VecDeque<Task>>,
    /// Signalled when a task is queued (the painter wakes) or taken (room for more).
    changed: Condvar,
}

impl Tasks {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Task>> {
        self.queue.lock().expect("task queue lock poisoned")
    }
}
#[derive(Default)]
struct State {
    /// The function's output on this stream, a terminal, ends without a newline.
    open_line: Option<Stream>,
    /// A read is waiting for input, after its prompt.
    reading: bool,
    /// When output was last written.
    last_output: Option<Instant>,
    /// The bars are off the screen.
    hidden: bool,
    /// The display was closed for good (Ctrl-C, SIGTERM).
    closed: bool,
    /// The bars the painter animates, by id.
    bars: Vec<(u64, ProgressBar)>,
}

impl Screen {
    /// The screen, its bars drawn on stderr when `drawn` and stderr is a terminal that can redraw
    /// a line; starts the painter then.
    pub fn new(drawn: bool) -> Arc<Screen> {
        // indicatif's own checks: stderr is a terminal, `TERM` is set and not `dumb`.
        let drawn = drawn && !ProgressDrawTarget::stderr().is_hidden();
        let has_bars = Arc::new(AtomicBool::new(false));
        let target = if drawn {
            stderr::target(&has_bars)
        } else {
            ProgressDrawTarget::hidden()
        };
        let screen = Arc::new(Screen {
            bars: MultiProgress::with_draw_target(target),
            drawn,
            terminals: [Stream::Stdout.is_terminal(), Stream::Stderr.is_terminal()],
            tasks: Arc::default(),
            next_id: AtomicU64::new(0),
            has_bars,
            state: Mutex::new(State::default()),
        });
        if drawn {
            let (weak, tasks) = (Arc::downgrade(&screen), Arc::clone(&screen.tasks));
            std::thread::Builder::new()
                .name("painter".into())
                .spawn(move || paint(weak, &tasks))
                .expect("spawning a thread");
        }
        screen
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("screen lock poisoned")
    }

    /// Runs `task`: left to the painter when the bars are drawn (the caller never waits for the
    /// terminal, unless [`BACKLOG`] tasks already wait), at once otherwise.
    fn later(&self, task: impl FnOnce(&Screen, &mut State) + Send + 'static) {
        if !self.drawn {
            let mut state = self.state();
            return task(self, &mut state);
        }
        let mut queue = self.tasks.queue();
        while queue.len() >= BACKLOG {
            queue = self
                .tasks
                .changed
                .wait(queue)
                .expect("task queue lock poisoned");
        }
        queue.push_back(Box::new(task));
        self.tasks.changed.notify_all();
    }

    /// Runs every task queued so far, in order, those queued meanwhile too; the caller holds the
    /// screen's lock.
    fn settle(&self, state: &mut State) {
        loop {
            let tasks = std::mem::take(&mut *self.tasks.queue());
            if tasks.is_empty() {
                return;
            }
            self.tasks.changed.notify_all();
            tasks.into_iter().for_each(|task| task(self, state));
        }
    }

    /// Waits until everything asked of the screen so far is on it: before the process exits, and
    /// before something else writes on the terminal (ssh asking).
    pub fn flush(&self) {
        let mut state = self.state();
        self.settle(&mut state);
    }

    /// Adds `bar` to the display, animated by the painter; returns its id for
    /// [`Screen::remove`]. Change it only through [`Screen::drawing`].
    pub fn add(&self, bar: ProgressBar) -> (u64, ProgressBar) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let added = bar.clone();
        self.later(move |screen, state| {
            screen.has_bars.store(true, Ordering::Relaxed);
            let bar = screen.bars.add(added);
            state.bars.push((id, bar));
        });
        (id, bar)
    }

    /// Removes the bar `id` from the display.
    pub fn remove(&self, id: u64) {
        self.later(move |screen, state| {
            if let Some(at) = state.bars.iter().position(|(i, _)| *i == id) {
                let (_, bar) = state.bars.remove(at);
                screen
                    .has_bars
                    .store(!state.bars.is_empty(), Ordering::Relaxed);
                bar.finish_and_clear();
                screen.bars.remove(&bar);
            }
        });
    }

    /// Runs `f`, which changes a bar or draws a line above them, while nothing else draws, in
    /// turn with the other changes (see `Screen::later`).
    pub fn drawing(&self, f: impl FnOnce(&MultiProgress) + Send + 'static) {
        self.later(move |screen, _| f(&screen.bars));
    }

    /// Writes `bytes` of the function's output to `stream` (as it is, flushed), after everything
    /// asked of the screen before: with the bars taken off first when it leaves a line open or a
    /// read waits, above the bars otherwise. The caller waits for the terminal: output keeps the
    /// pace the terminal takes.
    pub fn output(&self, stream: Stream, bytes: &[u8]) {
        let mut state = self.state();
        self.settle(&mut state);
        self.write_output(&mut state, stream, bytes);
    }

    fn terminal(&self, stream: Stream) -> bool {
        self.terminals[stream as usize]
    }

    fn write_output(&self, state: &mut State, stream: Stream, bytes: &[u8]) {
        if !bytes.is_empty() && self.terminal(stream) {
            state.open_line = (!bytes.ends_with(b"\n")).then_some(stream);
        }
        state.last_output = Some(Instant::now());
        if state.open_line.is_some() || state.reading {
            self.hide(state);
        }
        self.suspended(state, || stream.write(bytes));
    }

    /// Writes a prompt (as output) before a read: the bars stay off until the read is done,
    /// wherever the prompt goes (through `| tee` it still reaches the terminal the bars are
    /// drawn on, and so does the echo of what is typed).
    pub fn prompt(&self, bytes: &[u8]) {
        let mut state = self.state();
        self.settle(&mut state);
        state.reading = true;
        self.write_output(&mut state, Stream::Stdout, bytes);
    }

    /// A read waits after a prompt the reader draws itself (the line editor's): what was asked of
    /// the screen before is on it first, and the bars stay off until the read is done, so that
    /// none is drawn over the line being edited (a phase started meanwhile, the teardown's).
    pub fn reading(&self) {
        let mut state = self.state();
        self.settle(&mut state);
        state.reading = true;
        self.hide(&mut state);
    }

    /// The read is done; a terminal that echoed the line left the cursor on a fresh line.
    pub fn read_done(&self, echoed: bool) {
        let mut state = self.state();
        self.settle(&mut state);
        state.reading = false;
        if echoed {
            state.open_line = None;
        }
        state.last_output = Some(Instant::now());
    }

    /// Ends an open line of output on the terminal (never in a file or pipe, whose bytes stay the
    /// function's own) and brings the bars back: before a result or a phase's last line.
    pub fn close_line(&self) {
        self.later(|screen, state| {
            if let Some(stream) = state.open_line.take() {
                stream.write(b"\n");
            }
            state.reading = false;
            screen.show(state);
        });
    }

    /// Runs `f`, which writes lines to stderr, with the bars out of its way, in turn with the
    /// other changes (see `Screen::later`).
    pub fn above(&self, f: impl FnOnce() + Send + 'static) {
        self.later(|screen, state| screen.suspended(state, f));
    }

    /// As [`Screen::above`], but now, the caller waiting for the terminal: for the function's
    /// output, which keeps the pace the terminal takes.
    pub fn above_now(&self, f: impl FnOnce()) {
        let mut state = self.state();
        self.settle(&mut state);
        self.suspended(&state, f);
    }

    fn suspended<R>(&self, state: &State, f: impl FnOnce() -> R) -> R {
        if state.hidden {
            f()
        } else {
            self.bars.suspend(f)
        }
    }

    /// Takes the bars off the screen for good (Ctrl-C, SIGTERM), ending an open line of output.
    /// `mid_row`: the terminal's cursor may be within a row the display did not write (after the
    /// terminal's echo of `^C`, or a line being edited), which the next line must not continue.
    pub fn close(&self, mid_row: bool) {
        self.later(move |screen, state| {
            // An echo of ^C made since the bars were last drawn is on their rows (see
            // `stderr.rs`): clearing them takes it too.
            let cleared = screen.drawn && !state.hidden && !state.bars.is_empty();
            screen.hide(state);
            state.closed = true;
            if let Some(stream) = state.open_line.take() {
                stream.write(b"\n");
            } else if mid_row && !cleared {
                end_row();
            }
        });
    }

    fn hide(&self, state: &mut State) {
        if !state.hidden && self.drawn {
            let _ = self.bars.clear();
            self.bars.set_draw_target(ProgressDrawTarget::hidden());
        }
        state.hidden = true;
    }

    fn show(&self, state: &mut State) {
        if state.hidden && !state.closed {
            if self.drawn {
                self.bars.set_draw_target(stderr::target(&self.has_bars));
            }
            state.hidden = false;
        }
    }
}

/// Writes `text` on stderr as it is. A write that fails (a closed pipe, a terminal gone) is
/// dropped: what the tool says never makes it panic nor changes its exit code.
pub fn write_stderr(text: &str) {
    write_stderr_bytes(text.as_bytes());
}

fn write_stderr_bytes(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// Writes `text` on stdout and flushes it. A write that fails is noted, not said: a reader that
/// has gone for [`stdout_gone`], any other failure for [`stdout_failed`], which the exit reports.
pub fn write_stdout(text: &str) {
    to_stdout(text.as_bytes());
}

/// Moves the terminal's cursor to the start of the next row: a newline on stderr, or on stdout
/// when only that is the terminal; nothing written to a file or pipe.
fn end_row() {
    if std::io::stderr().is_terminal() {
        write_stderr("\n");
    } else if std::io::stdout().is_terminal() {
        write_stdout("\n");
    }
}

/// Paints while the screen exists: runs the tasks left to it as they come, animates the bars, and
/// brings them back once output is quiet on a fresh line and no read waits. The only thread that
/// waits for a slow terminal on the others' behalf.
fn paint(screen: Weak<Screen>, tasks: &Tasks) {
    let (mut ticked, mut interval) = (Instant::now(), TICK);
    loop {
        {
            let queue = tasks.queue();
            let wait = interval.saturating_sub(ticked.elapsed());
            let _ = tasks
                .changed
                .wait_timeout_while(queue, wait, |queue| queue.is_empty())
                .expect("task queue lock poisoned");
        }
        let Some(screen) = screen.upgrade() else {
            return;
        };
        let mut state = screen.state();
        screen.settle(&mut state);
        if ticked.elapsed() >= interval {
            ticked = Instant::now();
            interval = TICK * state.bars.len().div_ceil(BARS_PER_TICK).max(1) as u32;
            let quiet = state.last_output.is_none_or(|t| t.elapsed() >= QUIET);
            if state.hidden && state.open_line.is_none() && !state.reading && quiet {
                screen.show(&mut state);
            }
            if !state.hidden {
                state.bars.iter().for_each(|(_, bar)| bar.tick());
            }
        }
    }
}

impl Drop for Screen {
    /// What was asked of the screen is on it before it goes.
    fn drop(&mut self) {
        self.flush();
    }
}
