//! One host's side of the relay, on a thread of its own ("console"): the relay's output written
//! in order and acknowledged once it is on stdout, prompts shown after all earlier output, reads
//! handed to the run's [`Input`]. Writing never holds up the distribution connection (ticks keep
//! flowing while a terminal is slow); the relay's window bounds what waits here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::remote::node::Node;
use crate::remote::node::relay::{self, FromRelay, RELAY};
use crate::remote::stdin::Stdin;
use crate::report::Reporter;

/// Where the function's reads are answered from, decided once per run.
#[derive(Clone)]
pub enum Input {
    /// The tool's stdin (one host), read a line at a time when the function asks.
    Stdin(Arc<Stdin>),
    /// Nothing to read: every read gets end of file at once. With a flag (several hosts), the
    /// first read on any host warns that stdin is not shared.
    Closed(Option<Arc<AtomicBool>>),
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

    /// Answers one read: `answer` gets the line (or end of file) when there is one.
    fn read(
        &self,
        echo: bool,
        report: &Reporter,
        answer: impl FnOnce(Option<Vec<u8>>) + Send + 'static,
    ) {
        match self {
            Input::Stdin(stdin) => stdin.ask(echo, move |line| answer(line.bytes)),
            Input::Closed(warned) => {
                if warned
                    .as_ref()
                    .is_some_and(|w| !w.swap(true, Ordering::Relaxed))
                {
                    report.warning("stdin is not read with several hosts: reads get end of file");
                }
                answer(None);
            }
        }
    }
}

/// What the console has done, for `-v` and the benchmark.
#[derive(Debug, Default)]
pub struct Counts {
    /// Bytes of output written.
    pub bytes: AtomicU64,
    /// Pieces they came in.
    pub pieces: AtomicU64,
    /// Reads the function made that reached the tool.
    pub reads: AtomicU64,
}

/// Starts the console of one host: it runs until the connection's last message.
pub fn start(
    node: Arc<Node>,
    mut messages: UnboundedReceiver<FromRelay>,
    report: Arc<Reporter>,
    input: Input,
) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let seen = Arc::clone(&counts);
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            while let Some(message) = messages.blocking_recv() {
                match message {
                    FromRelay::Out(bytes) => {
                        report.output(&bytes);
                        seen.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        seen.pieces.fetch_add(1, Ordering::Relaxed);
                        let _ = node.send_named(RELAY, relay::ack(bytes.len()));
                    }
                    FromRelay::Read { prompt, echo } => {
                        seen.reads.fetch_add(1, Ordering::Relaxed);
                        report.prompt(&prompt);
                        let node = Arc::clone(&node);
                        input.read(echo, &report, move |line| {
                            let answer = match line {
                                Some(bytes) => relay::line(&bytes),
                                None => relay::eof(),
                            };
                            let _ = node.send_named(RELAY, answer);
                        });
                    }
                    FromRelay::Stray { from, reply_as } => {
                        report.verbose("refused an IO request sent past the relay");
                        let _ = node.send(from, relay::refusal(reply_as));
                    }
                }
            }
        })
        .expect("spawning a thread");
    counts
}
