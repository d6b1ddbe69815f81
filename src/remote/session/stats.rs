//! How long each phase of a run took and what it sent: the `stats:` line of `-v`, which the
//! benchmark reads.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::remote::{console, push};

/// How long each phase of a run took, for `-v` and the benchmark (`cargo xtask bench`).
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// Until the SSH session runs (login done, elixir found).
    pub(super) connect: Option<Duration>,
    /// Until the forward's port is known, after the session runs (usually known before).
    pub(super) tunnels: Option<Duration>,
    /// Until the remote node has connected back and completed the handshake.
    pub(super) boot: Option<Duration>,
    /// Learning what the remote has and loading what it lacks.
    pub(super) push: Option<Duration>,
    /// The command's work on the node (the entry function's call, the session) after the push,
    /// though its request may have gone before the push was done.
    pub(super) call: Option<Duration>,
    /// Stopping the remote node and the connection.
    pub(super) teardown: Option<Duration>,
    /// Reading `_build` and planning (once for all hosts), while a single host's login goes on.
    pub(super) scan: Option<Duration>,
    /// Preparing the closure's wire form, alongside the connection (once for all hosts): the
    /// batch's items where a push waits only for those (`wire::items`), else the whole batch.
    pub(super) wire: Option<Duration>,
    /// How long the run waited for the wire form after the handshake (0: it was ready before).
    pub(super) wire_wait: Option<Duration>,
    /// Requests to the remote node after the handshake.
    pub(super) requests: Option<u32>,
    /// The round trips they took (a request that goes before any reply has come since the one
    /// before it shares that one's).
    pub(super) round_trips: Option<u32>,
    /// What the push sent.
    pub(super) pushed: Option<push::Pushed>,
    /// What the relay sent: output and reads.
    pub(super) console: Option<Arc<console::Counts>>,
}

impl Stats {
    /// `stats: connect_ms=... requests=3 pushed_bytes=...`: one line, `key=value` pairs.
    pub(super) fn line(&self) -> String {
        let mut line = String::from("stats:");
        let phases = [
            ("connect", self.connect),
            ("tunnels", self.tunnels),
            ("boot", self.boot),
            ("push", self.push),
            ("call", self.call),
            ("teardown", self.teardown),
            ("scan", self.scan),
            ("wire", self.wire),
            ("wire_wait", self.wire_wait),
        ];
        for (name, took) in phases {
            if let Some(took) = took {
                line += &format!(" {name}_ms={}", took.as_millis());
            }
        }
        if let Some(requests) = self.requests {
            line += &format!(" requests={requests}");
        }
        if let Some(round_trips) = self.round_trips {
            line += &format!(" round_trips={round_trips}");
        }
        if let Some(p) = &self.pushed {
            line += &format!(
                " pushed_modules={} pushed_bytes={} skipped_modules={} shipped_apps={} shipped_modules={}",
                p.modules.len(),
                p.bytes,
                p.skipped,
                p.apps,
                p.shipped_modules
            );
        }
        if let Some(c) = &self.console {
            let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
            line += &format!(
                " output_bytes={} output_pieces={} reads={}",
                load(&c.bytes),
                load(&c.pieces),
                load(&c.reads)
            );
        }
        line
    }
}
