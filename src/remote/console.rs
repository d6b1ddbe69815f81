//! One host's side of the relay, on a thread of its own ("console"): the relay's output and the
//! function's standard error written in order and each acknowledged once it is on stdout or
//! stderr, prompts shown after all earlier output, reads handed to the run's [`Input`] (or to a
//! [`Terminal`] of the command's own, which shows both).
//! Writing never holds up the distribution connection (ticks keep flowing while a terminal is
//! slow); the relay's window bounds what waits here. A reply to a request waits until what came
//! before it is handled here (see [`Inbox`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use erl_dist::term::Term;
use tokio::sync::watch;

use crate::remote::boot::SERVER;
use crate::remote::node::relay::{self, FromRelay, RELAY};
use crate::remote::node::{Inbox, Node};
use crate::remote::stdin::{Line, Stdin};
use crate::report::Reporter;
use crate::screen::Stream;

/// Where the function's reads are answered from, decided once per run.
#[derive(Clone)]
pub enum Input {
    /// The tool's stdin (one host), read when the function asks: a line at a time, then by the
    /// block (see [`crate::remote::stdin`]).
    Stdin(Arc<Stdin>),
    /// Nothing to read: every read gets end of file at once. With a flag (several hosts), the
    /// first read on any host warns that stdin is not shared.
    Closed(Option<Arc<AtomicBool>>),
    /// A terminal of the command's own (`iex`'s line editor), which shows the prompts and the
    /// output itself.
    Terminal(Arc<dyn Terminal>),
}

/// A terminal that shows prompts and reads lines its own way (a line editor), and keeps the
/// output readable meanwhile.
pub trait Terminal: Send + Sync {
    /// Writes the remote's output, in order (above the line being edited, if one is).
    fn output(&self, bytes: &[u8]);
    /// Shows `prompt` after all earlier output, reads a line (without echo when `echo` is
    /// false) and hands `answer` what was typed.
    fn read(&self, prompt: &[u8], echo: bool, answer: Box<dyn FnOnce(Typed) + Send>);
}

/// What a [`Terminal`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Typed {
    /// A line, with its newline.
    Line(Vec<u8>),
    /// The end of input (Ctrl-D on an empty line).
    End,
    /// Ctrl-C: the read gets `{error, interrupted}` (IEx drops the expression in progress).
    Interrupted,
}

impl Input {
    /// The input of a run on `hosts` hosts: stdin for one, nothing (and a warning) for several.
    pub fn for_hosts(hosts: usize) -> Input {
        if hosts == 1 {
            Input::Stdin(Arc::new(Stdin::start()))
        } else {
            Input::closed(true)
        }
    }

    /// Reads get end of file; with `warn`, the first one says that stdin is not shared.
    pub fn closed(warn: bool) -> Input {
        Input::Closed(warn.then(|| Arc::new(AtomicBool::new(false))))
    }

    /// Shows `prompt` and answers one read: `answer` gets what the relay is to receive, when
    /// there is something.
    fn read(
        &self,
        prompt: &[u8],
        echo: bool,
        report: &Arc<Reporter>,
        answer: impl FnOnce(Term) + Send + 'static,
    ) {
        let term = |line: &Line| line.bytes.as_deref().map_or_else(relay::eof, relay::line);
        match self {
            Input::Terminal(terminal) => {
                terminal.read(prompt, echo, Box::new(move |typed| answer(typed.term())));
            }
            Input::Stdin(stdin) => {
                report.prompt(prompt);
                let shown = Arc::clone(report);
                stdin.ask(echo, move |line| {
                    shown.read_done(line.from_terminal);
                    answer(term(&line));
                });
            }
            Input::Closed(warned) => {
                report.prompt(prompt);
                if warned
                    .as_ref()
                    .is_some_and(|w| !w.swap(true, Ordering::Relaxed))
                {
                    report.warning("stdin is not read with several hosts: reads get end of file");
                }
                report.read_done(false);
                answer(relay::eof());
            }
        }
    }

    /// Writes output of the remote on `stream`: through the terminal when there is one (both
    /// streams: it keeps the screen), else as the report writes output.
    fn output(&self, report: &Reporter, stream: Stream, bytes: &[u8]) {
        match (self, stream) {
            (Input::Terminal(terminal), _) => terminal.output(bytes),
            (_, Stream::Stdout) => report.output(bytes),
            (_, Stream::Stderr) => report.error_output(bytes),
        }
    }
}

impl Typed {
    /// What the relay receives for it.
    fn term(self) -> Term {
        match self {
            Typed::Line(bytes) => relay::line(&bytes),
            Typed::End => relay::eof(),
            Typed::Interrupted => relay::interrupted(),
        }
    }
}

/// What the console has done, for `-v` and the benchmark.
#[derive(Debug, Default)]
pub struct Counts {
    /// Bytes of output written (standard output and error).
    pub bytes: AtomicU64,
    /// Pieces they came in.
    pub pieces: AtomicU64,
    /// Reads the function made that reached the tool.
    pub reads: AtomicU64,
}

/// Starts the console of one host: it handles `inbox` until the connection's last message, each
/// message while `open` is `true` (or its sender is gone): the session closes it while the push
/// goes on, so that the function's output and prompts come after the push's line.
pub fn start(
    node: Arc<Node>,
    mut inbox: Inbox,
    report: Arc<Reporter>,
    input: Input,
    mut open: watch::Receiver<bool>,
) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let seen = Arc::clone(&counts);
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            let told_gone = std::cell::Cell::new(false);
            let written = |stream, bytes: &[u8]| {
                input.output(&report, stream, bytes);
                seen.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                seen.pieces.fetch_add(1, Ordering::Relaxed);
                let _ = node.send_named(RELAY, relay::ack(bytes.len()));
                // As `mix run`'s own stdout: once its reader has gone, the function's writes
                // there fail rather than run on unread.
                if stream == Stream::Stdout
                    && crate::screen::stdout_gone()
                    && !told_gone.replace(true)
                {
                    let _ = node.send_named(RELAY, relay::closed());
                }
            };
            while let Some(message) = inbox.blocking_next() {
                if !*open.borrow() {
                    let _ = runtime.block_on(open.wait_for(|&open| open));
                }
                match message {
                    FromRelay::Out(bytes) => written(Stream::Stdout, &bytes),
                    FromRelay::Err(bytes) => written(Stream::Stderr, &bytes),
                    FromRelay::Read { prompt, echo } => {
                        seen.reads.fetch_add(1, Ordering::Relaxed);
                        let node = Arc::clone(&node);
                        input.read(&prompt, echo, &report, move |answer| {
                            let _ = node.send_named(RELAY, answer);
                        });
                    }
                    FromRelay::Value(text) => report.value_ahead(&text),
                    FromRelay::Stray { from, reply_as } => {
                        report.verbose("refused an IO request sent past the relay");
                        let _ = node.send(from, relay::refusal(reply_as));
                    }
                }
                inbox.handled();
            }
        })
        .expect("spawning a thread");
    counts
}

/// When stdout is a terminal, tells the relay its size now and whenever it changes (SIGWINCH),
/// for `:io.columns/0` and `:io.rows/0`; until the connection is gone. The sizes go through the
/// boot program's server, which hands them to the relay, started with the first request.
pub fn follow_geometry(node: &Arc<Node>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some((cols, rows)) = terminal_size() else {
        return;
    };
    if node
        .send_named(SERVER, relay::geometry(cols, rows))
        .is_err()
    {
        return;
    }
    let Ok(mut resized) = signal(SignalKind::window_change()) else {
        return;
    };
    let node = Arc::downgrade(node);
    tokio::spawn(async move {
        while resized.recv().await.is_some() {
            let (Some(node), Some((cols, rows))) = (node.upgrade(), terminal_size()) else {
                return;
            };
            if node
                .send_named(SERVER, relay::geometry(cols, rows))
                .is_err()
            {
                return;
            }
        }
    });
}

/// The size of the terminal on stdout, if it is one: columns and rows.
pub fn terminal_size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ only fills the zeroed structure given.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some((size.ws_col, size.ws_row))
}
