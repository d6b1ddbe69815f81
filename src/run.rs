//! The `run` command: every stage of the data flow wired together, with teardown on every path.
//!
//! scan -> closure -> ssh master -> reverse forwards (our EPMD, our node) -> boot -> the remote
//! node connects back and handshakes -> push -> call -> teardown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use erl_dist::node::NodeName;
use erl_dist::term::Term;
use tokio::net::UnixListener;

use crate::app_config::{AppConfig, AppConfigError};
use crate::args::{self, LiteralError};
use crate::beam::Beam;
use crate::boot::{self, BootError};
use crate::cli::RunArgs;
use crate::invoke::{self, Entry, EntryError, Outcome};
use crate::node::{self, CallError, DistError, Node, epmd};
use crate::plan::{Plan, PlanError};
use crate::push::{self, PushError};
use crate::report::Reporter;
use crate::ssh::{Master, SshError, Target};

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
    /// The project's build could not be read, or the entry or an included module is not in it.
    #[error(transparent)]
    Plan(#[from] PlanError),
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
    /// The project's config files could not be read.
    #[error(transparent)]
    AppConfig(#[from] AppConfigError),
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
            RunError::Plan(_)
            | RunError::Entry(_)
            | RunError::Argument { .. }
            | RunError::AppConfig(_)
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
        Ok(Outcome::Raised {
            text,
            missing_module,
        }) => {
            report.error(&format!("{} raised on {}:", args.entry, args.host));
            eprintln!("{text}");
            if let Some(module) = missing_module {
                let module = push::display_module(&module);
                report.error(&format!(
                    "hint: {module} is a module of this project that was not pushed (nothing the entry \
                     uses names it in its code); add --include {module}"
                ));
            }
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
    // Everything that can be checked locally is checked before any connection is made.
    let entry = Entry::parse(&args.entry)?;
    let call_args = parse_arguments(&args.args)?;
    let remote_command = boot::remote_command(&args.elixir)?;

    let phase = report.phase("scanning _build");
    let plan = Plan::build(
        &args.build.project,
        &args.build.env,
        &entry,
        Some(call_args.len()),
        &args.build.include,
    )?;
    let closure: Vec<&Beam> = plan.closure().iter().map(|m| m.beam).collect();
    let setup = AppConfig::collect(
        &args.build.project,
        &args.build.env,
        &closure,
        args.no_config,
    )?;
    let bytes: usize = closure.iter().map(|b| b.bytes.len()).sum();
    phase.done(format!(
        "closure of {}: {} modules, {} KiB",
        entry.shown(),
        closure.len(),
        bytes.div_ceil(1024)
    ));
    for beam in &closure {
        report.verbose(&format!("closure: {}", push::display_module(&beam.name)));
    }

    let ids = Identities::fresh();
    // 0700 directory: the control socket and our Unix sockets are reachable by us alone.
    let dir = tempfile::Builder::new()
        .prefix("mix-remote-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|error| RunError::Socket {
            path: std::env::temp_dir().display().to_string(),
            error,
        })?;
    let tunnels = Tunnels {
        epmd: LocalEnd::bind(dir.path().join("epmd.sock"))?,
        node: LocalEnd::bind(dir.path().join("node.sock"))?,
    };

    let target = Target {
        host: args.host.clone(),
        config: args.ssh_config.clone(),
        options: args.ssh_options.clone(),
    };
    let phase = report.phase(format!("connecting to {}", args.host));
    let lines = Arc::clone(report);
    let host = args.host.clone();
    let mut master = Master::start(
        &target,
        &dir.path().join("ctl"),
        &remote_command,
        move |line| lines.remote_line(&host, line),
        |note| report.verbose(&note),
    )?;
    let result = async {
        timeout(
            Duration::from_secs(args.connect_timeout),
            master.wait_for("connected", "the SSH session"),
            "connecting",
            &args.host,
            " (raise it with --connect-timeout)",
        )
        .await?;
        phase.done(format!("connected to {}", args.host));
        let session = Session {
            args,
            report,
            ids: &ids,
        };
        session
            .boot_and_call(
                &mut master,
                tunnels,
                &entry,
                &closure,
                call_args,
                setup.to_term(),
            )
            .await
    }
    .await;
    let phase = report.phase("stopping remote node");
    master.shutdown(TEARDOWN_GRACE).await;
    drop(phase);
    // An undef only deserves the --include hint when the missing module is one of the project's.
    result.map(|outcome| match outcome {
        Outcome::Raised {
            text,
            missing_module: Some(m),
        } if plan.graph().module(&m).is_none() => Outcome::Raised {
            text,
            missing_module: None,
        },
        other => other,
    })
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
}

impl Session<'_> {
    async fn boot_and_call(
        &self,
        master: &mut Master,
        tunnels: Tunnels,
        entry: &Entry,
        closure: &[&Beam],
        call_args: Vec<Term>,
        setup: Term,
    ) -> Result<Outcome, RunError> {
        let host = &self.args.host;
        let boot_limit = Duration::from_secs(self.args.boot_timeout);
        let phase = self.report.phase("booting remote node");
        let ports = master
            .forward_remote(&[&tunnels.epmd.path, &tunnels.node.path])
            .await?;
        let (epmd_port, our_port) = (ports[0], ports[1]);
        self.report.verbose(&format!(
            "tunnels: remote 127.0.0.1:{epmd_port} -> our EPMD, remote 127.0.0.1:{our_port} -> our node {}",
            self.ids.local
        ));
        let own = Arc::new(epmd::OwnNode {
            name: self.ids.local.name().to_owned(),
            port: our_port,
        });
        let _epmd = AbortOnDrop(tokio::spawn(epmd::serve(tunnels.epmd.listener, own)));
        let input = boot::stdin_input(
            epmd_port,
            &self.ids.remote.to_string(),
            &self.ids.cookie,
            &self.ids.local.to_string(),
        );
        master.send(&input).await?;
        let log = Arc::clone(self.report);
        let remote = self.ids.remote.to_string();
        let accept = Node::accept(
            tunnels.node.listener,
            &self.ids.local,
            self.ids.creation,
            &self.ids.cookie,
            &remote,
            move |note: String| log.verbose(&note),
        );
        // The node connecting back with our cookie is the readiness signal; the session ending
        // first means the boot failed, and says why.
        let connected = async {
            tokio::select! {
                node = accept => node.map_err(RunError::from),
                failure = master.failure("the remote node") => Err(failure.into()),
            }
        };
        let (node, io_requests) = timeout(
            boot_limit,
            connected,
            "booting the remote node",
            host,
            " (raise it with --boot-timeout)",
        )
        .await?;
        let out = Arc::clone(self.report);
        tokio::spawn(node::io::serve(
            Arc::clone(&node),
            io_requests,
            Arc::new(move |b: &[u8]| out.output(b)),
        ));
        phase.done(format!("remote node {} up", self.ids.remote));

        let phase = self
            .report
            .phase(format!("pushing {} modules", closure.len()));
        let pushed = push::push(&node, closure, boot_limit).await?;
        phase.done(format!(
            "pushed {} modules ({} KiB)",
            pushed.modules,
            pushed.bytes.div_ceil(1024)
        ));

        let phase = self.report.phase(format!("calling {}", entry.shown()));
        let outcome = invoke::invoke(&node, entry, call_args, setup).await?;
        phase.done(format!("{} finished", entry.shown()));
        self.report
            .verbose(&format!("{} remote calls after connect", node.calls()));
        Ok(outcome)
    }
}

/// The local ends of the run's two reverse forwards.
struct Tunnels {
    /// Our EPMD responder.
    epmd: LocalEnd,
    /// Our node's listener.
    node: LocalEnd,
}

/// A Unix socket in the run's private directory, and the listener on it.
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

/// Aborts a background task when the run that started it ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
