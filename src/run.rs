//! The `run` command for one host: every stage of the data flow wired together, with teardown on
//! every path. [`prepare`] does the local part once (scan -> plan -> application environment);
//! [`run_host`] does the rest on one host (ssh master -> reverse forwards (our EPMD, our node) ->
//! boot -> the remote node connects back and handshakes -> push -> call -> teardown). `fleet.rs`
//! runs hosts concurrently.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use erl_dist::node::NodeName;
use erl_dist::term::{Binary, Map, Term};
use tokio::net::UnixListener;

use crate::app_config::{AppConfig, AppConfigError};
use crate::args::{self, LiteralError};
use crate::beam::Beam;
use crate::boot::{self, BootError};
use crate::config::HostSettings;
use crate::events::{Event, Stage};
use crate::invoke::{self, Entry, EntryError, Outcome};
use crate::node::{self, CallError, DistError, Node, epmd};
use crate::plan::{Plan, PlanError};
use crate::private_dir::{self, PrivateDir};
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
    /// No entry function was named, neither on the command line nor in the config.
    #[error(
        "no entry function: name one (mix-remote run MyApp.Module.function) or set `entry` in mix-remote.yaml"
    )]
    NoEntry,
    /// An argument is not a valid Elixir literal.
    #[error(
        "argument {index} `{text}`: {error} (arguments after -- are Elixir literals, one per shell word, e.g. 42 '\"text\"' :atom '[1, 2]')"
    )]
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
    #[error("cannot create local socket {path}: {error} (is $TMPDIR writable?)")]
    Socket {
        /// The socket path.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// A phase took too long.
    #[error("timed out {phase} on {host} after {secs} s (raise it with {flag})")]
    Timeout {
        /// What was going on, e.g. `booting the remote node`.
        phase: String,
        /// The host.
        host: String,
        /// The limit.
        secs: u64,
        /// The flag that raises it.
        flag: &'static str,
    },
    /// The remote node or the connection to it went away in the middle of a phase.
    #[error(
        "the remote node on {host} went away while {phase} (it crashed or was killed, or the SSH connection dropped; the server's messages, if any, are above)"
    )]
    Lost {
        /// What was going on.
        phase: String,
        /// The host.
        host: String,
    },
}

impl RunError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Plan(_)
            | RunError::Entry(_)
            | RunError::NoEntry
            | RunError::Argument { .. }
            | RunError::AppConfig(_)
            | RunError::Boot(_) => EXIT_USAGE,
            RunError::Timeout { .. } | RunError::Call(CallError::Timeout { .. }) => EXIT_TIMEOUT,
            _ => EXIT_CANNOT_RUN,
        }
    }

    /// Names the phase, host and flag in a call that timed out.
    fn in_phase(self, phase: &str, host: &str, limit: Duration, flag: &'static str) -> RunError {
        match self {
            RunError::Call(CallError::Timeout { .. })
            | RunError::Push(PushError::Call(CallError::Timeout { .. })) => RunError::Timeout {
                phase: phase.to_owned(),
                host: host.to_owned(),
                secs: limit.as_secs(),
                flag,
            },
            other => other,
        }
    }

    /// Names the phase and host in a connection that was lost.
    fn lost_in(self, phase: &str, host: &str) -> RunError {
        match self {
            RunError::Dist(DistError::Lost)
            | RunError::Call(CallError::Dist(DistError::Lost))
            | RunError::Push(PushError::Call(CallError::Dist(DistError::Lost))) => RunError::Lost {
                phase: phase.to_owned(),
                host: host.to_owned(),
            },
            other => other,
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when it is
/// first polled: call it before anything is created, so that no signal can end a run without its
/// teardown.
pub fn interrupted() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    async move {
        tokio::select! {
            () = received(int) => {}
            () = received(term) => {}
        }
    }
}

/// Resolves when `signal` arrives; never, if its handler could not be installed.
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => drop(s.recv().await),
        None => std::future::pending().await,
    }
}

/// What every host of a run shares, computed once before any connection.
pub struct Job {
    /// The entry function.
    pub entry: Entry,
    /// The project's graph with the entry and the included modules resolved: what to push.
    pub plan: Plan,
    /// The call's arguments.
    pub args: Vec<Term>,
    /// The application environment applied on the remote before the call.
    pub setup: AppConfig,
}

impl Job {
    /// The modules to push: the entry's closure and the included modules', leaves first.
    pub fn closure(&self) -> Vec<&Beam> {
        self.plan.closure().iter().map(|m| m.beam).collect()
    }
}

/// The build to read and what to send with the call, as resolved from flags and config.
pub struct Build<'a> {
    /// The Mix project directory.
    pub project: &'a Path,
    /// Which `_build/<ENV>` to read; also `config_env()` of the config files.
    pub env: &'a str,
    /// Modules pushed with the entry's closure.
    pub include: &'a [String],
    /// Send no `config/` files (`--no-app-config`).
    pub skip_app_config: bool,
}

/// Checks everything that can be checked locally and computes the plan: the entry's syntax,
/// the arguments, the build under `project/_build/env`, the entry's arity, the included modules;
/// then collects the application environment of the pushed applications.
pub fn prepare(
    entry: Option<&str>,
    arg_texts: &[String],
    build: &Build,
    report: &Reporter,
) -> Result<Job, RunError> {
    let entry = Entry::parse(entry.ok_or(RunError::NoEntry)?)?;
    let call_args = parse_arguments(arg_texts)?;

    let phase = report.phase(Stage::Scan, "scanning _build");
    let plan = Plan::build(
        build.project,
        build.env,
        &entry,
        Some(call_args.len()),
        build.include,
    )?;
    let closure: Vec<&Beam> = plan.closure().iter().map(|m| m.beam).collect();
    let setup = AppConfig::collect(build.project, build.env, &closure, build.skip_app_config)?;
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
    Ok(Job {
        entry,
        plan,
        args: call_args,
        setup,
    })
}

/// Runs `job` on one host: connects, boots, pushes, calls and tears down, whatever happens.
pub async fn run_host(
    job: &Job,
    host: &HostSettings,
    report: &Arc<Reporter>,
) -> Result<Outcome, RunError> {
    let remote_command = boot::remote_command(&host.elixir)?;
    let ids = Identities::fresh();
    let mut dir = private_dir()?;
    let tunnels = Tunnels {
        epmd: LocalEnd::bind(dir.path().join("epmd.sock"))?,
        node: LocalEnd::bind(dir.path().join("node.sock"))?,
    };

    let phase = report.phase(Stage::Connect, format!("connecting to {}", host.address));
    let lines = Arc::clone(report);
    let notes = Arc::clone(report);
    let name = host.name.clone();
    let mut master = Master::start(
        &target(host),
        &dir.path().join("ctl"),
        &remote_command,
        move |line| lines.remote_line(&name, line),
        move |note| notes.verbose(&note),
    )?;
    let connected = timeout(
        Duration::from_secs(host.connect_timeout),
        master.wait_for("connected", "the SSH session"),
        "connecting",
        &host.address,
        "--connect-timeout",
    )
    .await;
    if let Err(e) = connected {
        // Not logged in: there is no remote node to wait for.
        master.shutdown(Duration::ZERO).await;
        return Err(e);
    }
    phase.done(format!("connected to {}", host.address));
    let session = Session {
        host,
        report,
        ids: &ids,
    };
    let result = session
        .boot_and_call(&mut master, &mut dir, tunnels, job)
        .await;
    let phase = report.phase(Stage::Stop, "stopping remote node");
    master.shutdown(TEARDOWN_GRACE).await;
    drop(phase);
    result
}

/// A fresh private directory (0700, guarded against SIGKILL) for a control socket and the Unix
/// sockets of the reverse forwards.
pub fn private_dir() -> Result<PrivateDir, RunError> {
    PrivateDir::create().map_err(|error| RunError::Socket {
        path: std::env::temp_dir().display().to_string(),
        error,
    })
}

/// Where and how ssh connects to `host`.
pub fn target(host: &HostSettings) -> Target {
    Target {
        host: host.address.clone(),
        config: host.ssh_config.clone(),
        options: host.ssh_options.clone(),
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
    host: &'a HostSettings,
    report: &'a Arc<Reporter>,
    ids: &'a Identities,
}

impl Session<'_> {
    async fn boot_and_call(
        &self,
        master: &mut Master,
        dir: &mut PrivateDir,
        tunnels: Tunnels,
        job: &Job,
    ) -> Result<Outcome, RunError> {
        let host = &self.host.address;
        let boot_limit = Duration::from_secs(self.host.boot_timeout);
        let phase = self.report.phase(Stage::Boot, "booting remote node");
        let ports = master
            .forward_remote(&[&tunnels.epmd.path, &tunnels.node.path])
            .await?;
        let (epmd_port, our_port) = (ports[0], ports[1]);
        self.report.verbose(&format!(
            "tunnels: remote 127.0.0.1:{epmd_port} -> our EPMD, remote 127.0.0.1:{our_port} -> our node {}; expecting {}",
            self.ids.local, self.ids.remote
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
            "--boot-timeout",
        )
        .await?;
        // Nothing else may connect, and a killed tool must leave no file: the sockets' paths go.
        dir.remove();
        let out = Arc::clone(self.report);
        tokio::spawn(node::io::serve(
            Arc::clone(&node),
            io_requests,
            Arc::new(move |b: &[u8]| out.output(b)),
        ));
        self.set_remote_env(&node, boot_limit).await?;
        phase.done(format!("remote node {} up", self.ids.remote));

        let closure = job.closure();
        let pushing = format!("pushing {} modules", closure.len());
        let phase = self.report.phase(Stage::Push, &pushing);
        let push_limit = Duration::from_secs(self.host.push_timeout);
        let pushed = timeout(
            push_limit,
            push::push(&node, &closure, push_limit),
            &pushing,
            host,
            "--push-timeout",
        )
        .await
        .map_err(|e| e.in_phase(&pushing, host, push_limit, "--push-timeout"))
        .map_err(|e| e.lost_in(&pushing, host))?;
        phase.done(format!(
            "pushed {} modules ({} KiB)",
            pushed.modules,
            pushed.bytes.div_ceil(1024)
        ));
        for beam in &closure {
            self.report.event(Event::ModulePushed {
                host: self.host.name.clone(),
                module: push::display_module(&beam.name),
                bytes: beam.bytes.len(),
            });
        }

        let entry = &job.entry;
        let calling = format!("calling {}", entry.shown());
        let phase = self.report.phase(Stage::Call, &calling);
        let call = invoke::invoke(&node, entry, job.args.clone(), job.setup.to_term());
        let outcome = match self.host.call_timeout.map(Duration::from_secs) {
            None => call.await.map_err(RunError::from),
            Some(limit) => timeout(limit, call, &calling, host, "--call-timeout").await,
        }
        .map_err(|e| e.lost_in(&calling, host))?;
        phase.done(format!("{} finished", entry.shown()));
        self.report
            .verbose(&format!("{} remote calls after connect", node.calls()));
        Ok(outcome)
    }
}

impl Session<'_> {
    /// Sets the host's `remote_env` in the node with one `System.put_env/1` call. Only the names
    /// are ever shown: values may be secrets.
    async fn set_remote_env(&self, node: &Node, limit: Duration) -> Result<(), RunError> {
        let vars = &self.host.remote_env;
        if vars.is_empty() {
            return Ok(());
        }
        let binary = |s: &String| Term::from(Binary::from(s.as_bytes()));
        let map: Map = vars
            .iter()
            .map(|(k, v)| (binary(k), binary(v)))
            .collect::<std::collections::HashMap<_, _>>()
            .into();
        node.call("Elixir.System", "put_env", vec![map.into()], Some(limit))
            .await?;
        let names: Vec<&str> = vars.keys().map(String::as_str).collect();
        self.report
            .verbose(&format!("remote environment: {}", names.join(", ")));
        Ok(())
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
        let bound = UnixListener::bind(&path)
            .and_then(|listener| private_dir::owner_only(&path).map(|()| listener));
        match bound {
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
    phase: &str,
    host: &str,
    flag: &'static str,
) -> Result<T, RunError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(RunError::Timeout {
            phase: phase.to_owned(),
            host: host.to_owned(),
            secs: limit.as_secs(),
            flag,
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
