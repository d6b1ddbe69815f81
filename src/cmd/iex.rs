//! `mix-remote iex`: an IEx session on one host's throw-away node, with the project shipped,
//! configured and started as `run` does it (`session::on_host`). On a terminal, lines are edited
//! locally (`iex/editor.rs`); otherwise they are read from stdin as IEx asks for them. Ctrl-C
//! during an evaluation interrupts it. One before IEx runs (the compile, the connection, the push,
//! the configuration, the applications' start) or a second within two seconds, before the prompt
//! came back, ends the session, as SIGTERM and SIGHUP do, with the same teardown as an
//! interrupted `run`.

mod editor;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::IexArgs;
use crate::cmd::{fanout, fresh};
use crate::config::{self, Build, Config, HostSettings};
use crate::events::{Stage, Status};
use crate::exit::{self, CliError};
use crate::remote::console::{self, Input, Terminal};
use crate::remote::iex::{self, End, Expansion};
use crate::remote::invoke::{Outcome, Ready, Setup};
use crate::remote::job::Job;
use crate::remote::node::{Node, relay};
use crate::remote::session::{self, SessionError};
use crate::report::Reporter;

/// A second Ctrl-C this soon after the first, before the evaluation gave the prompt back, ends
/// the session.
const AGAIN_WITHIN: Duration = Duration::from_secs(2);

/// Runs the session; returns the exit code (errors before the host is contacted are the `Err`).
pub async fn exec(
    args: IexArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    let flags = args.layer();
    let (selected, hosts) = fanout::choose(config, &args.hosts(), &flags)?;
    fanout::check_ssh_configs(&hosts)?;
    let [host] = hosts.as_slice() else {
        return Err(CliError::new(
            format!(
                "iex works on one host, and {} are chosen: name one with --host (or a group of one)",
                hosts.len()
            ),
            exit::USAGE,
        ));
    };
    let build = config::build(config, args.setup.build.project(), &flags, &selected)?;
    // The signal handlers first, as `run`: a signal while Mix compiles stops Mix (and all it
    // started) and ends the session before it began.
    let mut signals = Signals::install();
    let interrupted = async { signals.next().await == Received::CtrlC };
    fresh::ensure(&build, &report, interrupted).await?;
    let job = Job::prepare_session(&build, args.setup.config_use(), &report)?;
    let name = format!("{}@{}", project_name(&job, &build), host_label(&host.name));
    let live = Arc::new(Live::new());
    let stdout_terminal = std::io::stdout().is_terminal();
    let on_terminal = std::io::stdin().is_terminal() && stdout_terminal;
    let _modes = on_terminal.then(TerminalModes::save);
    let editor = on_terminal
        .then(|| editor::Editor::start(Arc::clone(&live), &name, Arc::clone(&report)))
        .and_then(|started| match started {
            Ok(editor) => Some(Arc::new(editor)),
            Err(e) => {
                report.verbose(&format!("no line editor ({e}): lines are read as typed"));
                None
            }
        });
    let input = match &editor {
        Some(editor) => {
            let lines = Arc::clone(editor);
            report.divert_remote_lines(move |line| lines.remote_line(line));
            Input::Terminal(Arc::clone(editor) as Arc<dyn Terminal>)
        }
        None => Input::for_hosts(1),
    };
    let view = Arc::new(report.for_host(&host.name, false, 0));
    let work = |node: Arc<Node>, ready: Ready| {
        let (live, name, job) = (Arc::clone(&live), &name, &job);
        async move {
            live.attach(Arc::clone(&node));
            let ansi = on_terminal;
            let end = iex::session(&node, name, ansi, Setup::of(job, host), &ready).await;
            // IEx has ended: nothing to interrupt while the node stops.
            live.detach();
            end.map_err(|e| SessionError::from(e).lost_in(Stage::Call, "running IEx", &host.name))
        }
    };
    let session = session::on_host(&job, host, &view, &input, None, work);
    tokio::pin!(session);
    // Whether each interruption asked of the node found an evaluation to interrupt.
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel::<bool>();
    // When the last interruption was asked, and how many lines had been asked for then.
    let mut interrupted: Option<(Instant, Option<u64>)> = None;
    let prompts = || editor.as_ref().map(|e| e.prompts());
    let end = loop {
        tokio::select! {
            end = &mut session => break end,
            // No IEx to interrupt yet: the Ctrl-C was meant for the run.
            Some(false) = answered.recv() => return Ok(stopped(&view, &report, true)),
            received = signals.next() => {
                let ctrl_c = received == Received::CtrlC;
                // Without an editor, the prompt's return is not seen: the time alone decides.
                let again = interrupted.is_some_and(|(at, then)| {
                    at.elapsed() < AGAIN_WITHIN && then == prompts()
                });
                match live.node() {
                    Some(node) if ctrl_c && !again => {
                        interrupted = Some((Instant::now(), prompts()));
                        // On a terminal, `^C` was echoed after the evaluation's output: the node
                        // starts a row for IEx's words, in order with them.
                        let answers = answers.clone();
                        tokio::spawn(async move {
                            if let Ok(found) = iex::interrupt(&node, stdout_terminal).await {
                                let _ = answers.send(found);
                            }
                        });
                    }
                    _ => {
                        let mid_row = ctrl_c || editor.as_ref().is_some_and(|e| e.mid_row());
                        return Ok(stopped(&view, &report, mid_row));
                    }
                }
            }
        }
    };
    if let Some(editor) = &editor {
        editor.finish();
    }
    view.end_host();
    Ok(conclude(end, host, &view))
}

/// Ends an interrupted session as an interrupted `run` ends: the display first, then the error,
/// on a row of its own (`mid_row`: the terminal's cursor may be after an echoed `^C` or a line
/// being edited); returns the exit code.
fn stopped(view: &Reporter, report: &Reporter, mid_row: bool) -> u8 {
    view.end_host();
    report.interrupted(mid_row);
    report.error("interrupted: remote node stopped, connection closed");
    exit::INTERRUPTED
}

/// The exit code of a session that ended, said as `run` says it.
fn conclude(end: Result<End, SessionError>, host: &HostSettings, view: &Reporter) -> u8 {
    match end {
        Ok(End::Stopped) => exit::OK,
        // `System.halt()` typed in the session (another status is an error, as in `run`).
        Err(e) if e.is_clean_halt() => {
            view.verbose("the remote node halted: the session is over");
            exit::OK
        }
        // A config file's Mix exception with `exit_status: 0` ends `iex -S mix` with 0 before
        // IEx starts: Mix's words alone, as in `run`; so does its `exit(:normal)`, without a
        // word.
        Ok(End::NotCalled(Outcome::ConfigFailed {
            text, status: 0, ..
        })) => {
            match text.is_empty() {
                true => view.result("IEx", Status::Stopped, "0", true),
                false => view.result("IEx", Status::Raised, &text, true),
            }
            exit::OK
        }
        Ok(End::NotCalled(outcome)) => {
            let on_host = format!(" on {}", host.name);
            if let Some(why) = outcome.not_called(&on_host) {
                view.error_lines(&why, outcome.not_called_more());
            }
            exit::RAISED
        }
        Ok(End::Failed { how, text }) => {
            view.result("IEx", how, &text, false);
            exit::RAISED
        }
        Err(e @ SessionError::ConfigHalted { .. }) => {
            if !e.printed_ahead().is_empty() {
                view.output(e.printed_ahead());
            }
            conclude(e.config_halt().map(End::NotCalled), host, view)
        }
        Err(e) => {
            view.error(&e.to_string());
            CliError::from(e).code
        }
    }
}

/// How the prompt names the project: its application, or the project directory's name for an
/// umbrella (as a release of it would be named).
fn project_name(job: &Job, build: &Build) -> String {
    match job.apps.project.as_slice() {
        [app] => app.clone(),
        _ => {
            let dir = build
                .project
                .canonicalize()
                .unwrap_or_else(|_| build.project.clone());
            dir.file_name()
                .and_then(|n| n.to_str())
                .map_or_else(|| "mix_remote".to_owned(), str::to_owned)
        }
    }
}

/// How the prompt names the host: its name without a user (`deploy@db-1` is `db-1`).
fn host_label(name: &str) -> &str {
    name.rsplit_once('@').map_or(name, |(_, host)| host)
}

/// What the parts of a session share while the node is up: the line editor completes through it,
/// Ctrl-C interrupts through it, and the relay learns the terminal's size from it.
pub struct Live {
    node: Mutex<Option<Arc<Node>>>,
    runtime: Handle,
    /// The size last sent to the relay.
    geometry: Mutex<Option<(u16, u16)>>,
}

impl Live {
    fn new() -> Live {
        Live {
            node: Mutex::new(None),
            runtime: Handle::current(),
            geometry: Mutex::new(None),
        }
    }

    /// The node is up (`session::on_host` has told the relay the terminal's size and follows
    /// it): the session starts on it.
    fn attach(&self, node: Arc<Node>) {
        *self.node.lock().expect("node lock poisoned") = Some(node);
    }

    /// The session has ended; the node stops.
    fn detach(&self) {
        *self.node.lock().expect("node lock poisoned") = None;
    }

    fn node(&self) -> Option<Arc<Node>> {
        self.node.lock().expect("node lock poisoned").clone()
    }

    /// IEx's completion of `line` (the text before the cursor); for threads outside the runtime.
    fn expand(&self, line: &str) -> Option<Expansion> {
        let node = self.node()?;
        self.runtime.block_on(iex::expand(&node, line))
    }

    /// Tells the relay the local terminal's size if it changed since it was last told here (IEx
    /// fits what it prints to it): the line editor holds SIGWINCH while a line is edited, so
    /// `console::follow_geometry` misses a resize made then.
    fn send_geometry(&self) {
        let (Some(node), Some(size)) = (self.node(), console::terminal_size()) else {
            return;
        };
        let mut sent = self.geometry.lock().expect("geometry lock poisoned");
        if *sent != Some(size)
            && node
                .send_named(relay::RELAY, relay::geometry(size.0, size.1))
                .is_ok()
        {
            *sent = Some(size);
        }
    }
}

/// The terminal's settings as the session found them, put back when it ends, however it ends: a
/// SIGTERM while a line is being edited would leave the terminal raw otherwise, and in the line
/// editor's bracketed paste mode (a paste into the shell after it would come wrapped in
/// `^[[200~`).
struct TerminalModes(Option<libc::termios>);

impl TerminalModes {
    fn save() -> TerminalModes {
        // SAFETY: tcgetattr only writes into the zeroed termios given.
        TerminalModes(unsafe {
            let mut modes: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(libc::STDIN_FILENO, &mut modes) == 0).then_some(modes)
        })
    }
}

impl Drop for TerminalModes {
    fn drop(&mut self) {
        if let Some(modes) = &self.0 {
            // SAFETY: tcsetattr on fd 0 with settings tcgetattr returned for it.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, modes) };
            editor::write_out(b"\x1b[?2004l");
        }
    }
}

/// The signals a session handles, installed before anything starts.
struct Signals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hangup: Option<Signal>,
}

impl Signals {
    fn install() -> Signals {
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
            hangup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// Resolves on the next signal.
    async fn next(&mut self) -> Received {
        tokio::select! {
            () = received(self.interrupt.as_mut()) => Received::CtrlC,
            () = received(self.terminate.as_mut()) => Received::End,
            () = received(self.hangup.as_mut()) => Received::End,
        }
    }
}

/// A signal the session received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    /// SIGINT: interrupts the evaluation, if there is one and no other did just before.
    CtrlC,
    /// SIGTERM or SIGHUP: ends the session.
    End,
}

/// Resolves when `signal` arrives; never, if its handler could not be installed.
async fn received(signal: Option<&mut Signal>) {
    match signal {
        Some(s) => drop(s.recv().await),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_the_host_without_its_user() {
        assert_eq!(host_label("deploy@db-1"), "db-1");
        assert_eq!(host_label("db-1"), "db-1");
        assert_eq!(host_label("a@b@127.0.0.1"), "127.0.0.1");
    }
}
