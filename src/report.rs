//! What the user sees: one spinner per phase on stderr (only when stderr is a terminal and not
//! `-q`), remote output and the result on stdout, notes for `-v`, errors as one line. With several
//! hosts, one progress bar per host and every line prefixed with its host; with `--json`, events
//! on stdout instead (see `events.rs`) and no bars. Output and prompts always win over the bars
//! (`screen.rs`); a phase ends with `✓` when it succeeded, `✗` when what it ran failed. On a
//! terminal, as cargo does: a green `✓`, a red `✗` and errors, yellow warnings, dimmed times; no
//! colour with `NO_COLOR`, `TERM=dumb` or off a terminal. Each warning is shown once per run,
//! however many hosts or phases come to it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::{self, Event, OutputStream, Stage, Status};
use crate::screen::{Screen, Stream, write_stderr};

/// Shared by every stage of a run; cheap to call from any task. [`Reporter::for_host`] gives the
/// view of one host.
pub struct Reporter {
    shared: Arc<Shared>,
    host: Option<HostScope>,
}

struct Shared {
    screen: Arc<Screen>,
    quiet: bool,
    verbose: bool,
    json: bool,
    /// Whether stderr gets colours.
    colour: bool,
    /// False once warnings are silenced (`--no-warnings`, `warnings: false`).
    warnings: AtomicBool,
    /// The warnings shown so far: each is shown once.
    warned: Mutex<HashSet<String>>,
    /// Where the lines remote nodes print outside the relay go instead of stderr, once set
    /// (`iex`'s line editor prints them above the line being edited).
    remote_lines: OnceLock<RemoteLines>,
}

/// The styles of what stderr shows, as cargo's.
#[derive(Clone, Copy)]
enum Paint {
    /// `✓`.
    Done,
    /// `error:`, `✗`.
    Error,
    /// `warning:`.
    Warning,
    /// `hint:`.
    Hint,
    /// Durations.
    Time,
}

impl Paint {
    /// The ANSI SGR parameters of the style: bold and a colour, or dim.
    fn sgr(self) -> &'static str {
        match self {
            Paint::Done => "1;32",
            Paint::Error => "1;31",
            Paint::Warning => "1;33",
            Paint::Hint => "1;36",
            Paint::Time => "2",
        }
    }
}

/// `text` in `paint`'s style when `colour`, else as it is.
fn painted(colour: bool, paint: Paint, text: &str) -> String {
    match colour {
        true => format!("\x1b[{}m{text}\x1b[0m", paint.sgr()),
        false => text.to_owned(),
    }
}

/// Whether stderr gets colours: the conventions cargo follows, read from `var` (the environment)
/// for stderr on a `terminal` or not. `NO_COLOR` (not empty) turns them off, `CLICOLOR_FORCE` on;
/// otherwise only a terminal whose `TERM` is set and not `dumb`, unless `CLICOLOR=0`.
pub fn colours(terminal: bool, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    if set("CLICOLOR_FORCE") {
        return true;
    }
    terminal && var("TERM").is_some_and(|t| t != "dumb") && var("CLICOLOR").is_none_or(|c| c != "0")
}

/// Whether this process's stderr gets colours (see [`colours`]).
pub fn stderr_colours() -> bool {
    use std::io::IsTerminal;
    colours(std::io::stderr().is_terminal(), |name| {
        std::env::var_os(name)
    })
}

/// A writer of the lines remote nodes print outside the relay.
type RemoteLines = Box<dyn Fn(&str) + Send + Sync>;

/// The host a reporter speaks for.
struct HostScope {
    name: String,
    /// Several hosts: prefix lines with the name, one bar per host.
    prefixed: bool,
    /// The host's bar and its id on the screen (several hosts, human output only).
    bar: Option<(u64, ProgressBar)>,
    /// Output received after the last newline, held back until the line is complete: the
    /// function's stdout's, then its stderr's.
    partial: [Mutex<Vec<u8>>; 2],
    /// Whether the call's value is on stdout already (see [`Reporter::value_ahead`]).
    value_shown: AtomicBool,
}

/// A phase in progress: finish it with [`Phase::done`], or drop it to clear its spinner.
pub struct Phase {
    shared: Arc<Shared>,
    host: Option<String>,
    stage: Stage,
    bar: PhaseBar,
    started: Instant,
}

enum PhaseBar {
    /// A spinner of its own (with its id on the screen), removed when the phase ends.
    Own(u64),
    /// The host's bar, advanced when the phase is done.
    Host(ProgressBar),
    /// Nothing drawn while it runs (a question of ssh's may need the terminal); its line when
    /// it is done.
    Silent,
}

impl Reporter {
    /// `quiet` hides progress and notes; `verbose` shows what the tool does; `json` writes
    /// events on stdout instead of human output, and no bars.
    pub fn new(quiet: bool, verbose: bool, json: bool) -> Reporter {
        let colour = stderr_colours();
        if colour {
            // The bars' styles follow console's choice for stdout: their draw target is not
            // indicatif's own stderr (see screen/stderr.rs). `template` drops them when stderr
            // gets no colours, and nothing else styles text with console.
            console::set_colors_enabled(true);
        }
        Reporter {
            shared: Arc::new(Shared {
                screen: Screen::new(!(quiet || json)),
                quiet,
                verbose,
                json,
                colour,
                warnings: AtomicBool::new(true),
                warned: Mutex::new(HashSet::new()),
                remote_lines: OnceLock::new(),
            }),
            host: None,
        }
    }

    /// Shows no more warnings (`--no-warnings`, or `warnings: false` in mix-remote.yaml).
    pub fn silence_warnings(&self) {
        self.shared.warnings.store(false, Ordering::Relaxed);
    }

    fn paint(&self, paint: Paint, text: &str) -> String {
        painted(self.shared.colour, paint, text)
    }

    /// An indicatif template with its `{key:.style}`s only when stderr gets colours.
    fn template(&self, styled: &str) -> ProgressStyle {
        let template = if self.shared.colour {
            styled.to_owned()
        } else {
            unstyled(styled)
        };
        ProgressStyle::with_template(&template).expect("static template")
    }

    /// The view of host `name`. With `prefixed` (several hosts), its lines carry its name and it
    /// gets a bar of its own, advanced by each of its `steps` phases.
    pub fn for_host(&self, name: &str, prefixed: bool, steps: u64) -> Reporter {
        let bar = (prefixed && !self.shared.json).then(|| {
            let (id, bar) = self.shared.screen.add(ProgressBar::new(steps));
            let style = self
                .template("{spinner:.cyan} {prefix:.bold} [{bar:10.cyan/dim}] {msg} {elapsed:.dim}")
                .progress_chars("=> ");
            let (drawn, name) = (bar.clone(), name.to_owned());
            self.shared.screen.drawing(move |_| {
                drawn.set_style(style);
                drawn.set_prefix(name);
                drawn.set_message("waiting");
            });
            (id, bar)
        });
        Reporter {
            shared: Arc::clone(&self.shared),
            host: Some(HostScope {
                name: name.to_owned(),
                prefixed,
                bar,
                partial: Default::default(),
                value_shown: AtomicBool::new(false),
            }),
        }
    }

    /// Whether events go to stdout instead of human output.
    pub fn json(&self) -> bool {
        self.shared.json
    }

    /// Writes `event` on stdout with `--json`; nothing otherwise.
    pub fn event(&self, event: Event) {
        if self.shared.json {
            events::emit(&event);
        }
    }

    fn host_name(&self) -> Option<String> {
        self.host.as_ref().map(|h| h.name.clone())
    }

    fn prefix(&self) -> String {
        match &self.host {
            Some(h) if h.prefixed => format!("[{}] ", h.name),
            _ => String::new(),
        }
    }

    /// ` on HOST` for a message about this host, unless its lines carry the `[HOST]` prefix
    /// already (several hosts).
    pub fn on_host(&self) -> String {
        match &self.host {
            Some(h) if !h.prefixed => format!(" on {}", h.name),
            _ => String::new(),
        }
    }

    /// Starts a phase showing `message`: a spinner of its own, or the host's bar.
    pub fn phase(&self, stage: Stage, message: impl Into<String>) -> Phase {
        self.start_phase(stage, message.into(), true)
    }

    /// Starts a phase that draws nothing while it runs (ssh may ask the user something on the
    /// terminal meanwhile); its line shows when it is done.
    pub fn silent_phase(&self, stage: Stage, message: impl Into<String>) -> Phase {
        self.start_phase(stage, message.into(), false)
    }

    fn start_phase(&self, stage: Stage, message: String, drawn: bool) -> Phase {
        self.event(Event::PhaseStarted {
            host: self.host_name(),
            phase: stage,
            message: message.clone(),
        });
        let screen = &self.shared.screen;
        let bar = match self.host.as_ref().and_then(|h| h.bar.as_ref()) {
            Some((_, bar)) => {
                let drawn = bar.clone();
                screen.drawing(move |_| drawn.set_message(message));
                PhaseBar::Host(bar.clone())
            }
            None if !drawn => PhaseBar::Silent,
            None => {
                let (id, bar) = screen.add(ProgressBar::new_spinner());
                let style = self.template("{spinner:.cyan} {msg} {elapsed:.dim}");
                screen.drawing(move |_| {
                    bar.set_style(style);
                    bar.set_message(message);
                });
                PhaseBar::Own(id)
            }
        };
        Phase {
            shared: Arc::clone(&self.shared),
            host: self.host_name(),
            stage,
            bar,
            started: Instant::now(),
        }
    }

    /// Writes output of the remote function as it arrives: as is for one host, line by line with
    /// the host's name for several, as `output` events with `--json`.
    pub fn output(&self, bytes: &[u8]) {
        self.output_on(Stream::Stdout, bytes);
    }

    /// Writes what the remote function wrote to its standard error, on stderr, as [`output`]
    /// writes its output (`output` events with `"stream": "stderr"`).
    ///
    /// [`output`]: Reporter::output
    pub fn error_output(&self, bytes: &[u8]) {
        self.output_on(Stream::Stderr, bytes);
    }

    fn output_on(&self, stream: Stream, bytes: &[u8]) {
        let Some(host) = self
            .host
            .as_ref()
            .filter(|h| h.prefixed || self.shared.json)
        else {
            self.shared.screen.output(stream, bytes);
            return;
        };
        let mut partial = host.partial[stream as usize]
            .lock()
            .expect("output lock poisoned");
        partial.extend_from_slice(bytes);
        let Some(last) = partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = partial.drain(..=last).collect();
        drop(partial);
        let lines: Vec<String> = complete[..last]
            .split(|&b| b == b'\n')
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        self.output_lines(stream, &lines, true);
    }

    /// Complete lines of output on `stream`, without their newlines: events with `--json`, else
    /// prefixed with the host and written together, `now` (the caller waits for the terminal)
    /// or in turn with the display's other lines.
    fn output_lines(&self, stream: Stream, lines: &[String], now: bool) {
        if self.shared.json {
            for text in lines {
                self.event(Event::Output {
                    host: self.host_name().unwrap_or_default(),
                    text: text.clone(),
                    stream: (stream == Stream::Stderr).then_some(OutputStream::Stderr),
                });
            }
            return;
        }
        let prefix = self.prefix();
        let text: String = lines.iter().map(|l| format!("{prefix}{l}\n")).collect();
        let write = move || stream.write(text.as_bytes());
        if now {
            self.shared.screen.above_now(write);
        } else {
            self.shared.screen.above(write);
        }
    }

    /// A prompt the function shows before it reads, after all its earlier output: written as
    /// output (with the bars off the screen until the read is done); with `--json`, sent at once
    /// as an `output` event, so that a consumer sees it before the read.
    pub fn prompt(&self, bytes: &[u8]) {
        if self.shared.json {
            self.output(bytes);
            self.flush_partial();
        } else if self.host.as_ref().is_some_and(|h| h.prefixed) {
            // Several hosts read nothing: the prompt begins the line the next output ends.
            self.output(bytes);
        } else {
            self.shared.screen.prompt(bytes);
        }
    }

    /// A line editor reads at a prompt it draws itself: everything said so far is on the terminal
    /// first, and no bar is drawn over the line being edited until [`Reporter::read_done`].
    pub fn reading(&self) {
        self.shared.screen.reading();
    }

    /// The read after a prompt is done; `echoed` when a terminal echoed the line typed.
    pub fn read_done(&self, echoed: bool) {
        self.shared.screen.read_done(echoed);
    }

    /// Takes the display off the screen for good (Ctrl-C, SIGTERM): bars cleared, an open line of
    /// output ended. `mid_row` when the terminal's cursor may be within a row the display did not
    /// write (after an echoed `^C`, a line being edited), which the next line must not continue.
    pub fn interrupted(&self, mid_row: bool) {
        self.shared.screen.close(mid_row);
    }

    /// Writes output received after the last newline as a line of its own, on each stream.
    fn flush_partial(&self) {
        let Some(host) = &self.host else { return };
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest: Vec<u8> = std::mem::take(
                &mut *host.partial[stream as usize]
                    .lock()
                    .expect("output lock poisoned"),
            );
            if !rest.is_empty() {
                let line = String::from_utf8_lossy(&rest).into_owned();
                self.output_lines(stream, &[line], false);
            }
        }
    }

    /// Ends the host's view: writes a last line of output that had no newline, removes its bar.
    pub fn end_host(&self) {
        let Some(host) = &self.host else { return };
        self.flush_partial();
        if let Some((id, _)) = &host.bar {
            self.shared.screen.remove(*id);
        }
    }

    /// A line the remote node printed outside the relay (logger, stderr, boot messages).
    /// Blank lines are left out: Elixir's Logger starts each message with one.
    pub fn remote_line(&self, host: &str, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if self.shared.json {
            self.event(Event::Log {
                host: host.to_owned(),
                text: line.to_owned(),
            });
        } else if !self.shared.quiet {
            match self.shared.remote_lines.get() {
                Some(write) => write(&format!("[{host}] {line}")),
                None => self.say(format!("[{host}] {line}\n")),
            }
        }
    }

    /// From now on, the lines remote nodes print outside the relay (with their `[host]`) go to
    /// `write` instead of stderr; only the first call counts.
    pub fn divert_remote_lines(&self, write: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.shared.remote_lines.set(Box::new(write));
    }

    /// A note shown with `-v`.
    pub fn verbose(&self, note: &str) {
        if self.shared.verbose {
            let prefix = self.prefix();
            self.say(format!("mix-remote: {prefix}{note}\n"));
        }
    }

    /// A note for people, on stderr as one line (`mix-remote: text`) whether it is a terminal or
    /// not, unless `-q`; none with `--json`, whose events tell.
    pub fn note(&self, text: &str) {
        if !self.shared.quiet && !self.shared.json {
            let prefix = self.prefix();
            self.say(format!("mix-remote: {prefix}{text}\n"));
        }
    }

    /// An error, always shown on stderr as one line; with `--json` also an `error` event.
    pub fn error(&self, message: &str) {
        self.event(Event::Error {
            host: self.host_name(),
            message: message.to_owned(),
        });
        let (prefix, error) = (self.prefix(), self.paint(Paint::Error, "error:"));
        self.say(format!("mix-remote: {error} {prefix}{message}\n"));
    }

    /// An error whose first line is `message` and whose further lines (`more`, which may be
    /// empty) follow it on stderr, as a failure Elixir formats goes on (its hints, its stack
    /// trace); with `--json`, one line on stderr and the whole in the `error` event.
    pub fn error_lines(&self, message: &str, more: &str) {
        if more.is_empty() {
            return self.error(message);
        }
        self.event(Event::Error {
            host: self.host_name(),
            message: format!("{message}\n{more}"),
        });
        let (prefix, error) = (self.prefix(), self.paint(Paint::Error, "error:"));
        let mut text = format!("mix-remote: {error} {prefix}{message}\n");
        if !self.shared.json {
            text.extend(more.lines().map(|l| format!("{prefix}{l}\n")));
        }
        self.say(text);
    }

    /// A warning: shown on stderr unless `-q`, once per run whichever hosts come to it; with
    /// `--json` a `warning` event of each host instead. Nothing once warnings are silenced.
    pub fn warning(&self, message: &str) {
        if !self.shared.warnings.load(Ordering::Relaxed) {
            return;
        }
        if self.shared.json {
            self.event(Event::Warning {
                host: self.host_name(),
                message: message.to_owned(),
            });
        } else if !self.shared.quiet {
            let mut warned = self.shared.warned.lock().expect("warnings lock poisoned");
            if !warned.insert(message.to_owned()) {
                return;
            }
            let (prefix, warning) = (self.prefix(), self.paint(Paint::Warning, "warning:"));
            self.say(format!("mix-remote: {warning} {prefix}{message}\n"));
        }
    }

    /// Advice after a failure, always shown on stderr as one line (with `--json` too, but not as
    /// an event: it is for people).
    pub fn hint(&self, text: &str) {
        let (prefix, hint) = (self.prefix(), self.paint(Paint::Hint, "hint:"));
        self.say(format!("mix-remote: {prefix}{hint} {text}\n"));
    }

    /// The end of the call on this host: the value it returned on stdout, or what it raised,
    /// threw or exited with on stderr. `ok` says whether the run ends well with it (`--expect`
    /// accepted the value; a Mix exception with `exit_status: 0`).
    pub fn result(&self, entry: &str, status: Status, value: &str, ok: bool) {
        // Output that had no newline yet comes first, as a line of its own (several hosts,
        // `--json`).
        self.flush_partial();
        if self.shared.json {
            self.event(Event::Result {
                host: self.host_name().unwrap_or_default(),
                status,
                value: value.to_owned(),
                ok,
            });
            // As every error, one line on stderr too (the event has the whole text); not for a
            // failure that ends the run well (a Mix exception's `exit_status: 0`).
            if !ok && matches!(status, Status::Raised | Status::Threw | Status::Exited) {
                let (prefix, error) = (self.prefix(), self.paint(Paint::Error, "error:"));
                let first = value
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default();
                self.say(format!(
                    "mix-remote: {error} {prefix}{entry} {}{}: {}\n",
                    status.word(),
                    self.on_host(),
                    first.trim()
                ));
            }
            return;
        }
        self.shared.screen.close_line();
        let prefix = self.prefix();
        // A text's last empty line too (`mix run` ends `** (EXIT from PID) ...` with one).
        let prefixed = |text: &str| -> String {
            let last = text.ends_with('\n').then_some("");
            text.lines()
                .chain(last)
                .map(|l| format!("{prefix}{l}\n"))
                .collect()
        };
        match status {
            Status::Returned => {
                let shown = self
                    .host
                    .as_ref()
                    .is_some_and(|h| h.value_shown.load(Ordering::Relaxed));
                if !shown {
                    self.show_value(value);
                }
            }
            // A failure that ends the run well (a Mix exception's `exit_status: 0`) is only
            // its text, as Mix's command line prints it: no error of the tool's.
            Status::Raised | Status::Threw | Status::Exited if ok => self.say(prefixed(value)),
            Status::Raised | Status::Threw | Status::Exited => {
                let on = self.on_host();
                let error = self.paint(Paint::Error, "error:");
                let how = status.word();
                self.say(format!(
                    "mix-remote: {error} {prefix}{entry} {how}{on}:\n{}",
                    prefixed(value)
                ));
            }
            // No value, as `mix run` prints none; a status other than 0 is the caller's error.
            Status::Stopped => {}
        }
    }

    /// The value a call returned, shown on stdout in order with its output before the
    /// `System.at_exit/1` hooks run (as `mix run -e 'IO.inspect(...)'` prints it), ahead of the
    /// [`Reporter::result`] that ends the run, which then does not show it again; with `--json`,
    /// as `output` events, the `result` event still saying how the run ended (a hook that exits
    /// or fails ends it otherwise, and the value would be nowhere else).
    pub fn value_ahead(&self, value: &str) {
        self.flush_partial();
        self.shared.screen.close_line();
        self.show_value(value);
        if let Some(host) = &self.host {
            host.value_shown.store(true, Ordering::Relaxed);
        }
    }

    /// Writes a call's value on stdout, its lines as output's.
    fn show_value(&self, value: &str) {
        let lines: Vec<String> = value.lines().map(str::to_owned).collect();
        self.output_lines(Stream::Stdout, &lines, false);
    }

    /// A table on stderr (not with `-q` or `--json`), e.g. the summary of several hosts.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        if !self.shared.quiet && !self.shared.json {
            let text = table(headers, rows);
            self.say(text);
        }
    }

    /// Writes `line` and a newline on stderr, above the bars, in turn with the display's other
    /// lines (for a writer the remote lines are diverted to, when it has no better place).
    pub fn line(&self, line: &str) {
        self.say(format!("{line}\n"));
    }

    /// Writes `text` (whole lines) on stderr, above the bars, in turn with the display's other
    /// lines: the caller does not wait for the terminal, unless thousands of lines already do
    /// (see `screen`).
    fn say(&self, text: String) {
        self.shared.screen.above(move || write_stderr(&text));
    }

    /// Waits until everything said so far is on the terminal: before the process exits, and
    /// before something else writes there (ssh asking).
    pub fn flush(&self) {
        self.shared.screen.flush();
    }
}

impl Phase {
    /// Marks the phase done: leaves `✓ summary` and its duration on screen above the live bars
    /// (one host), or advances the host's bar (several hosts).
    pub fn done(self, summary: impl Into<String>) {
        self.finish(("✓", Paint::Done), summary.into());
    }

    /// Ends the phase as failed, what it ran having raised, thrown or exited (or its application
    /// not started): `✗ summary` (one host), or the host's bar advanced (several hosts, whose
    /// summary table tells).
    pub fn failed(self, summary: impl Into<String>) {
        self.finish(("✗", Paint::Error), summary.into());
    }

    fn finish(&self, (mark, paint): (&str, Paint), summary: String) {
        let ms = self.started.elapsed().as_millis();
        if self.shared.json {
            events::emit(&Event::PhaseFinished {
                host: self.host.clone(),
                phase: self.stage,
                message: summary,
                ms: ms as u64,
            });
            return;
        }
        let screen = &self.shared.screen;
        match &self.bar {
            // A permanent line rather than a finished bar: output printed later cannot erase it.
            PhaseBar::Own(_) | PhaseBar::Silent => {
                screen.close_line();
                let colour = self.shared.colour;
                let line = format!(
                    "{} {summary} {}",
                    painted(colour, paint, mark),
                    painted(colour, Paint::Time, &format!("({ms} ms)"))
                );
                let shown = !self.shared.quiet;
                screen.drawing(move |bars| {
                    if !bars.is_hidden() {
                        let _ = bars.println(line);
                    } else if shown && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                        // Hidden bars print nothing: the line goes to stderr as it is (when it is
                        // a terminal, as the bars would).
                        write_stderr(&format!("{line}\n"));
                    }
                });
            }
            PhaseBar::Host(bar) => {
                let bar = bar.clone();
                screen.drawing(move |_| bar.inc(1));
            }
        }
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let PhaseBar::Own(id) = &self.bar {
            self.shared.screen.remove(*id);
        }
    }
}

/// `template` without its styles: `{spinner:.cyan}` -> `{spinner}`, `{bar:10.cyan/dim}` ->
/// `{bar:10}`.
fn unstyled(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let key = &rest[open..close];
        let kept = match key.find(':') {
            Some(colon) => {
                let spec = &key[colon + 1..];
                let width = spec.split('.').next().unwrap_or_default();
                match width {
                    "" => &key[..colon],
                    _ => &key[..colon + 1 + width.len()],
                }
            }
            None => key,
        };
        out += &rest[..open];
        out += kept;
        rest = &rest[close..];
    }
    out + rest
}

/// `rows` under `headers`, columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `text` cut to `max` characters, with an ellipsis when cut, on one line.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line = text.lines().next().unwrap_or_default();
    let cut = one_line != text;
    if one_line.chars().count() <= max && !cut {
        return one_line.to_owned();
    }
    let kept: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_to_their_widest_cell() {
        let rows = vec![
            vec!["web-1".into(), "returned :ok".into(), "1.2 s".into()],
            vec!["db".into(), "error: ssh failed".into(), "30.0 s".into()],
        ];
        assert_eq!(
            table(&["HOST", "RESULT", "TIME"], &rows),
            "HOST   RESULT             TIME\n\
             web-1  returned :ok       1.2 s\n\
             db     error: ssh failed  30.0 s\n"
        );
    }

    #[test]
    fn colours_only_when_asked_and_templates_lose_their_styles() {
        assert_eq!(painted(false, Paint::Error, "error:"), "error:");
        assert_eq!(
            painted(true, Paint::Error, "error:"),
            "\x1b[1;31merror:\x1b[0m"
        );
        assert_eq!(painted(true, Paint::Done, "✓"), "\x1b[1;32m✓\x1b[0m");
        assert_eq!(painted(true, Paint::Time, "(3 ms)"), "\x1b[2m(3 ms)\x1b[0m");
        let env = |vars: &'static [(&str, &str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(colours(true, env(&[("TERM", "xterm")])));
        assert!(!colours(false, env(&[("TERM", "xterm")])), "not a terminal");
        assert!(!colours(true, env(&[("TERM", "dumb"), ("CI", "true")])));
        assert!(!colours(true, env(&[])), "no TERM");
        assert!(!colours(true, env(&[("TERM", "xterm"), ("NO_COLOR", "1")])));
        assert!(colours(true, env(&[("TERM", "xterm"), ("NO_COLOR", "")])));
        assert!(!colours(true, env(&[("TERM", "xterm"), ("CLICOLOR", "0")])));
        assert!(colours(false, env(&[("CLICOLOR_FORCE", "1")])));
        assert_eq!(
            unstyled("{spinner:.cyan} {prefix:.bold} [{bar:10.cyan/dim}] {msg} {elapsed:.dim}"),
            "{spinner} {prefix} [{bar:10}] {msg} {elapsed}"
        );
    }

    #[test]
    fn a_warning_is_shown_once_and_not_at_all_when_silenced() {
        let report = Reporter::new(false, false, false);
        let seen = |r: &Reporter| r.shared.warned.lock().unwrap().len();
        report.warning("built with OTP 25");
        report.for_host("b", true, 1).warning("built with OTP 25");
        assert_eq!(seen(&report), 1);
        report.silence_warnings();
        report.warning("another");
        assert_eq!(seen(&report), 1);
    }

    #[test]
    fn shortened_text_is_one_line() {
        assert_eq!(shorten(":ok", 10), ":ok");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
        assert_eq!(
            shorten("** (RuntimeError) x\n  stack", 40),
            "** (RuntimeError) x…"
        );
    }
}
