//! The `run` command: every stage of the data flow wired together, with teardown on every path.
//!
//! ssh master with the reverse forward to our node (meanwhile: scan -> closure -> wire form) ->
//! boot -> the remote node connects back and handshakes -> what the remote has -> push -> call
//! -> teardown. After the handshake a run makes three requests whatever the closure's size.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use erl_dist::node::NodeName;
use erl_dist::term::Term;
use tokio::net::UnixListener;

use crate::args::{self, LiteralError};
use crate::boot::{self, BootError};
use crate::cli::RunArgs;
use crate::graph::Graph;
use crate::invoke::{self, Entry, EntryError, Outcome};
use crate::node::{self, CallError, DistError, Node};
use crate::project::{self, ProjectError};
use crate::push::{self, PushError};
use crate::report::Reporter;
use crate::ssh::{Master, SshError, Target};
use crate::wire::{self, Prepared};

/// The function raised, threw or exited.
pub const EXIT_RAISED: u8 = 1;
/// Bad input: flags, entry, arguments, project.
pub const EXIT_USAGE: u8 = 2;
/// Could not connect, boot or load.
pub const EXIT_CANNOT_RUN: u8 = 3;
/// A phase took longer than allowed.
pub const EXIT_TIMEOUT: u8 = 4;
/// Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How long teardown waits for the remote node and the master to go away by themselves.
const TEARDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The project's build could not be read.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The entry function is not callable.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// An argument is not a valid Elixir literal.
    #[error("argument {index} `{text}`: {error}")]
    Argument {
        /// 1-based position after `--`.
        index: usize,
        /// The argument as given.
        text: String,
        /// What is wrong.
        error: LiteralError,
    },
    /// The boot command could not be built.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// SSH failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The distribution connection failed.
    #[error(transparent)]
    Dist(#[from] DistError),
    /// A remote call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Loading the closure failed.
    #[error(transparent)]
    Push(#[from] PushError),
    /// A local socket could not be created.
    #[error("cannot create local socket {path}: {error}")]
    Socket {
        /// The socket path.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// A phase took too long.
    #[error("timed out {phase} on {host} after {secs} s{hint}")]
    Timeout {
        /// What was going on.
        phase: &'static str,
        /// The host.
        host: String,
        /// The limit.
        secs: u64,
        /// The flag that raises it.
        hint: &'static str,
    },
}

impl RunError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Project(_)
            | RunError::Entry(_)
            | RunError::Argument { .. }
            | RunError::Boot(_) => EXIT_USAGE,
            RunError::Timeout { .. } | RunError::Call(CallError::Timeout { .. }) => EXIT_TIMEOUT,
            _ => EXIT_CANNOT_RUN,
        }
    }
}

/// Runs the command and returns the process exit code; errors are reported on stderr.
pub async fn main(args: RunArgs, report: Arc<Reporter>) -> u8 {
    let outcome = tokio::select! {
        outcome = run(&args, &report) => outcome,
        () = interrupted() => {
            // Dropping the run kills the ssh master; the remote node sees its stdin close and halts.
            report.error("interrupted: remote node stopped, connection closed");
            return EXIT_INTERRUPTED;
        }
    };
    match outcome {
        Ok(Outcome::Returned(value)) => {
            report.output(format!("{value}\n").as_bytes());
            0
        }
        Ok(Outcome::Raised(text)) => {
            report.error(&format!("{} raised on {}:", args.entry, args.host));
            eprintln!("{text}");
            EXIT_RAISED
        }
        Err(e) => {
            report.error(&e.to_string());
            e.exit_code()
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => drop(s.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

async fn run(args: &RunArgs, report: &Arc<Reporter>) -> Result<Outcome, RunError> {
    // Everything that can be checked quickly is checked before any connection is made: the entry
    // against its own module's file; the rest of the build is read while SSH connects.
    let entry = Entry::parse(&args.entry)?;
    let call_args = parse_arguments(&args.args)?;
    let remote_command = boot::remote_command(&args.elixir)?;
    let entry_beam = project::find(&args.project, &args.env, &entry.module)?;
    entry.check(entry_beam.as_ref(), call_args.len())?;

    let started = Instant::now();
    let scan = tokio::task::spawn_blocking({
        let (project, env, module) = (args.project.clone(), args.env.clone(), entry.module.clone());
        move || scan(&project, &env, &module)
    });
    let ids = Identities::fresh();
    // 0700 directory: the control socket and our node's socket are reachable by us alone.
    let dir = tempfile::Builder::new()
        .prefix("mix-remote-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|error| RunError::Socket {
            path: std::env::temp_dir().display().to_string(),
            error,
        })?;
    let node_end = LocalEnd::bind(dir.path().join("node.sock"))?;

    let target = Target {
        host: args.host.clone(),
        config: args.ssh_config.clone(),
        options: args.ssh_options.clone(),
    };
    let lines = Arc::clone(report);
    let host = args.host.clone();
    let mut master = Master::start(
        &target,
        &dir.path().join("ctl"),
        &node_end.path,
        &remote_command,
        move |line| lines.remote_line(&host, line),
        |note| report.verbose(&note),
    )?;
    let mut stats = Stats::default();
    let session = Session {
        args,
        report,
        ids: &ids,
        started,
    };
    let result = session
        .connect_and_call(&mut master, node_end, scan, &entry, call_args, &mut stats)
        .await;
    let phase = report.phase("stopping remote node");
    let stopping = Instant::now();
    master.shutdown(TEARDOWN_GRACE).await;
    stats.teardown = Some(stopping.elapsed());
    drop(phase);
    report.verbose(&stats.line());
    result
}

/// Reads the build, computes the closure of `entry` and prepares it for the wire: the work that
/// runs while SSH connects.
fn scan(
    project: &std::path::Path,
    env: &str,
    entry: &str,
) -> Result<(Prepared, Duration), RunError> {
    let started = Instant::now();
    let graph = Graph::new(project::scan(project, env)?);
    let prepared = wire::prepare_all(&graph.closure(entry)).map_err(ProjectError::Beam)?;
    Ok((prepared, started.elapsed()))
}

/// How long each phase of a run took, for `-v` and the benchmark (`cargo xtask bench`).
#[derive(Debug, Default)]
struct Stats {
    /// Until the SSH session runs (login done, elixir found).
    connect: Option<Duration>,
    /// Until the forward's port is known, after the session runs (usually known before).
    tunnels: Option<Duration>,
    /// Until the remote node has connected back and completed the handshake.
    boot: Option<Duration>,
    /// Learning what the remote has and loading what it lacks.
    push: Option<Duration>,
    /// The entry function's call.
    call: Option<Duration>,
    /// Stopping the remote node and the connection.
    teardown: Option<Duration>,
    /// Reading the build and preparing the closure, alongside the connection.
    scan: Option<Duration>,
    /// How long the run waited for the scan after the handshake (0 when it was done before).
    scan_wait: Option<Duration>,
    /// Requests to the remote node after the handshake.
    requests: Option<u32>,
    /// What the push sent.
    pushed: Option<push::Pushed>,
}

impl Stats {
    /// `stats: connect_ms=... requests=3 pushed_bytes=...`: one line, `key=value` pairs.
    fn line(&self) -> String {
        let mut line = String::from("stats:");
        let phases = [
            ("connect", self.connect),
            ("tunnels", self.tunnels),
            ("boot", self.boot),
            ("push", self.push),
            ("call", self.call),
            ("teardown", self.teardown),
            ("scan", self.scan),
            ("scan_wait", self.scan_wait),
        ];
        for (name, took) in phases {
            if let Some(took) = took {
                line += &format!(" {name}_ms={}", took.as_millis());
            }
        }
        if let Some(requests) = self.requests {
            line += &format!(" requests={requests}");
        }
        if let Some(p) = &self.pushed {
            line += &format!(
                " pushed_modules={} pushed_bytes={} skipped_modules={}",
                p.modules, p.bytes, p.skipped
            );
        }
        line
    }
}

/// The names and secret of one run, all fresh.
struct Identities {
    local: NodeName,
    remote: NodeName,
    cookie: String,
    creation: u32,
}

impl Identities {
    fn fresh() -> Identities {
        // 192 random bits, hex: a valid atom, never reused, never shown.
        let cookie: String = (0..3)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect();
        // Independent names: knowing one tells nothing about the other.
        let name = |prefix: &str| {
            NodeName::new(
                &format!("{prefix}_{:016x}", rand::random::<u64>()),
                "localhost",
            )
            .expect("valid node name")
        };
        Identities {
            local: name("mix_remote_cli"),
            remote: name("mix_remote"),
            cookie,
            creation: rand::random::<u32>() | 1,
        }
    }
}

/// The part of a run that happens on a live SSH connection.
struct Session<'a> {
    args: &'a RunArgs,
    report: &'a Arc<Reporter>,
    ids: &'a Identities,
    /// When the connection was started.
    started: Instant,
}

impl Session<'_> {
    async fn connect_and_call(
        &self,
        master: &mut Master,
        node_end: LocalEnd,
        scan: tokio::task::JoinHandle<Result<(Prepared, Duration), RunError>>,
        entry: &Entry,
        call_args: Vec<Term>,
        stats: &mut Stats,
    ) -> Result<Outcome, RunError> {
        // Waiting on the scan only fails the run early; its result is taken when needed.
        let scan = async {
            scan.await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        };
        tokio::pin!(scan);
        let mut scanned = None;
        let node = {
            let boot = self.connect_and_boot(master, node_end, stats);
            tokio::pin!(boot);
            loop {
                tokio::select! {
                    node = &mut boot => break node?,
                    result = &mut scan, if scanned.is_none() => {
                        scanned = Some(self.scanned(result?, entry));
                    }
                }
            }
        };
        let pushing = Instant::now();
        let phase = self.report.phase("pushing");
        let limit = Duration::from_secs(self.args.boot_timeout);
        // The scan is normally done by now; if not, the run waits for it here, and says so.
        let (remote, scan) = tokio::join!(push::remote(&node, limit), async {
            if let Some(done) = scanned {
                return Ok((done, Duration::ZERO));
            }
            let waiting = Instant::now();
            let done = self.scanned(scan.await?, entry);
            Ok::<_, RunError>((done, waiting.elapsed()))
        });
        let (remote, ((closure, scan_took), scan_wait)) = (remote?, scan?);
        stats.scan = Some(scan_took);
        stats.scan_wait = Some(scan_wait);
        self.report.verbose(&format!(
            "remote: OTP {}, ERTS {}, Elixir {}, {} modules loaded",
            remote.otp_release,
            remote.erts,
            remote.elixir,
            remote.loaded.len()
        ));
        let pushed = push::push(&node, &closure, &remote, limit).await?;
        stats.push = Some(pushing.elapsed());
        phase.done(format!(
            "pushed {} modules ({} KiB){}",
            pushed.modules,
            pushed.bytes.div_ceil(1024),
            match pushed.skipped {
                0 => String::new(),
                n => format!(", {n} already there"),
            }
        ));
        stats.pushed = Some(pushed);

        let calling = Instant::now();
        let phase = self.report.phase(format!("calling {}", entry.shown()));
        let outcome = invoke::invoke(&node, entry, call_args).await;
        stats.call = Some(calling.elapsed());
        stats.requests = Some(node.requests());
        node.disconnect();
        let outcome = outcome?;
        phase.done(format!("{} finished", entry.shown()));
        Ok(outcome)
    }

    /// Reports a finished scan; passes its result on.
    fn scanned(
        &self,
        (closure, took): (Prepared, Duration),
        entry: &Entry,
    ) -> (Prepared, Duration) {
        let bytes: usize = closure.modules.iter().map(|(b, _)| b.bytes.len()).sum();
        self.report.done(
            format!(
                "closure of {}: {} modules, {} KiB",
                entry.shown(),
                closure.modules.len(),
                bytes.div_ceil(1024)
            ),
            took,
        );
        for (beam, _) in &closure.modules {
            self.report
                .verbose(&format!("closure: {}", push::display_module(&beam.name)));
        }
        (closure, took)
    }

    /// Connects, boots the remote node and waits for it to connect back: the handshake with the
    /// run's cookie is the readiness signal, no sleeps, no polling.
    async fn connect_and_boot(
        &self,
        master: &mut Master,
        node_end: LocalEnd,
        stats: &mut Stats,
    ) -> Result<Arc<Node>, RunError> {
        let host = &self.args.host;
        let phase = self.report.phase(format!("connecting to {host}"));
        let connecting = async {
            // The forward is granted as the session opens; the boot input can go at once, and
            // ssh hands it to the session when it runs.
            let port = master.forwarded_port().await?;
            let port_at = Instant::now();
            let input = boot::stdin_input(
                port,
                &self.ids.remote.to_string(),
                &self.ids.cookie,
                &self.ids.local.to_string(),
            );
            let sent = master.send(&input).await;
            // A session that ended (no elixir, login refused) explains itself better than the
            // failed write.
            master.wait_for("connected", "the SSH session").await?;
            sent?;
            Ok::<_, RunError>((port, port_at, Instant::now()))
        };
        let (port, port_at, connected_at) = timeout(
            Duration::from_secs(self.args.connect_timeout),
            connecting,
            "connecting",
            host,
            " (raise it with --connect-timeout)",
        )
        .await?;
        stats.connect = Some(connected_at - self.started);
        stats.tunnels = Some(port_at.saturating_duration_since(connected_at));
        phase.done(format!("connected to {host}"));
        self.report.verbose(&format!(
            "tunnel: remote 127.0.0.1:{port} -> our node {}",
            self.ids.local
        ));

        let booting = Instant::now();
        let phase = self.report.phase("booting remote node");
        let log = Arc::clone(self.report);
        let remote = self.ids.remote.to_string();
        let accept = Node::accept(
            node_end.listener,
            &self.ids.local,
            self.ids.creation,
            &self.ids.cookie,
            &remote,
            move |note: String| log.verbose(&note),
        );
        // The session ending first means the boot failed, and says why.
        let connected = async {
            tokio::select! {
                node = accept => node.map_err(RunError::from),
                failure = master.failure("the remote node") => Err(failure.into()),
            }
        };
        let (node, io_requests) = timeout(
            Duration::from_secs(self.args.boot_timeout),
            connected,
            "booting the remote node",
            host,
            " (raise it with --boot-timeout)",
        )
        .await?;
        stats.boot = Some(booting.elapsed());
        let out = Arc::clone(self.report);
        tokio::spawn(node::io::serve(
            Arc::clone(&node),
            io_requests,
            Arc::new(move |b: &[u8]| out.output(b)),
        ));
        phase.done(format!("remote node {} up", self.ids.remote));
        Ok(node)
    }
}

/// Our node's end of the reverse forward: a Unix socket in the run's private directory, and the
/// listener on it.
struct LocalEnd {
    path: PathBuf,
    listener: UnixListener,
}

impl LocalEnd {
    fn bind(path: PathBuf) -> Result<LocalEnd, RunError> {
        match UnixListener::bind(&path) {
            Ok(listener) => Ok(LocalEnd { path, listener }),
            Err(error) => Err(RunError::Socket {
                path: path.display().to_string(),
                error,
            }),
        }
    }
}

fn parse_arguments(texts: &[String]) -> Result<Vec<Term>, RunError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            args::parse(text).map_err(|error| RunError::Argument {
                index: i + 1,
                text: text.clone(),
                error,
            })
        })
        .collect()
}

async fn timeout<T, E: Into<RunError>>(
    limit: Duration,
    work: impl Future<Output = Result<T, E>>,
    phase: &'static str,
    host: &str,
    hint: &'static str,
) -> Result<T, RunError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(RunError::Timeout {
            phase,
            host: host.to_owned(),
            secs: limit.as_secs(),
            hint,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_fresh_and_independent() {
        let (a, b) = (Identities::fresh(), Identities::fresh());
        let suffix = |n: &NodeName| n.name().rsplit('_').next().unwrap_or_default().to_owned();
        assert_ne!(suffix(&a.local), suffix(&a.remote), "names share a tag");
        assert_ne!(a.cookie, b.cookie);
        assert_eq!(a.cookie.len(), 48);
        assert!(a.cookie.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.local.host(), "localhost");
    }
}
