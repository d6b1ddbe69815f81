//! A run on one host: every remote stage of the data flow wired together, with teardown on every
//! path. [`on_host`] opens the ssh master with the reverse forward to our node (or takes over the
//! [`Login`] a command started ahead) and boots the node.
//! As it boots, the node says on the session's stdout what it is and has; the versions, the native
//! code and the applications the server must have are checked against that, and the batch goes
//! on the node's stdin, loaded while the node connects back and handshakes. The node is then
//! handed to the command's work ([`run_host`]: the call of `run`; `iex`: its session), and the
//! run tears down. After the handshake a cold run makes one request, the call, whatever the
//! closure's size. `cmd/fanout.rs` runs hosts concurrently.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use erl_dist::term::{Binary, Map, Term};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::{oneshot, watch};

use crate::build::entry::display_module;
use crate::build::native;
use crate::config::HostSettings;
use crate::events::{Event, Stage};
use crate::remote::agent::preload::{self, Digests};
use crate::remote::boot::{self, INFO, LOADED, MARKER};
use crate::remote::console::{self, Input};
use crate::remote::invoke::{self, Outcome, Ready, Setup};
use crate::remote::job::{Job, counted};
use crate::remote::node::{Identities, Node};
use crate::remote::private_dir::{self, PrivateDir};
use crate::remote::push::{self, PushError};
use crate::remote::ssh::{Master, SshError, Target};
use crate::remote::wire::{Items, Prepared};
use crate::report::{Phase, Reporter};

mod error;
mod login;
mod stats;
mod warm;
mod writing;

pub use error::SessionError;
pub use login::Login;

use error::timeout;
use stats::Stats;
use writing::{Batch, Sent, Writing, stdin_back};

/// How long teardown waits for the remote node and the master to go away by themselves.
pub const TEARDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a run that got its answer waits for the node to say its own output is all out (it
/// says so before answering: the line is normally there already).
const SETTLE_LIMIT: Duration = Duration::from_secs(1);
/// How long a node that has connected back is given for its `info` line, which it wrote before
/// connecting but which may arrive after the handshake (another channel of the connection).
const INFO_AFTER_HANDSHAKE: Duration = Duration::from_secs(1);
/// How long a work whose node ended is given to say so itself (its connection closes with the
/// node: at once, but after the session's end may have been read).
const LOST_GRACE: Duration = Duration::from_secs(1);

/// Runs `job` on one host: connects (or takes over `login`, started ahead), boots, pushes, calls
/// and tears down, whatever happens. The function's reads are answered from `input`.
pub async fn run_host(
    job: &Job,
    host: &HostSettings,
    report: &Arc<Reporter>,
    input: &Input,
    login: Option<Login>,
) -> Result<Outcome, SessionError> {
    let unfinished = std::sync::Mutex::new(None);
    let ended = on_host(job, host, report, input, login, |node, ready| {
        call(node, job, host, report, ready, &unfinished)
    })
    .await;
    match ended {
        // `System.halt(0)`, `System.stop(0)`: a success, as under `mix run` (another status
        // stays an error, which names the fatal errors of the VM too).
        Err(e) if e.is_clean_halt() => {
            let phase = unfinished
                .lock()
                .expect("phase lock poisoned")
                .take()
                .unwrap_or_else(|| report.phase(Stage::Call, job.call.doing()));
            phase.done(format!("{} stopped with status 0", job.call.shown()));
            Ok(Outcome::Stopped(0))
        }
        // `System.halt(n)` in a config file: the run ends as that file's exit with n ends it,
        // what the file printed before shown (held on the node, if it was evaluated ahead).
        Err(e) => {
            if !e.printed_ahead().is_empty() {
                report.output(e.printed_ahead());
            }
            e.config_halt()
        }
        ok => ok,
    }
}

/// Sets up `job` on one host (connects, or takes over `login`, started ahead; boots, pushes),
/// hands the node to `work` (the call of `run`, the session of `iex`), with when the code is
/// ready on it, and tears down, whatever happens. The remote's reads are answered from `input`.
pub async fn on_host<T, F>(
    job: &Job,
    host: &HostSettings,
    report: &Arc<Reporter>,
    input: &Input,
    login: Option<Login>,
    work: impl FnOnce(Arc<Node>, Ready) -> F,
) -> Result<T, SessionError>
where
    F: Future<Output = Result<T, SessionError>>,
{
    boot::check_elixir(&host.elixir)?;
    let login = match login.filter(|login| login.is_for(host)) {
        Some(login) => login,
        None => {
            // A warm session of the host's (`mix-remote up`) serves the run if there is one.
            if let Some((claim, node)) = warm::claim(host, report).await {
                if !warm::holds_dropped(&claim, job, host, report).await {
                    return warm::on_spare(claim, node, job, host, report, input, work).await;
                }
                // Let go, the spare ends; the session's next ones load this run's batch.
                drop((claim, node));
                let login = Login::start(host, report, input, false)?;
                let result = cold(job, host, report, input, login, work).await;
                if result.is_ok() || result.as_ref().is_err_and(SessionError::is_clean_halt) {
                    warm::hand_batch(host, job, report).await;
                }
                return result;
            }
            Login::start(host, report, input, false)?
        }
    };
    cold(job, host, report, input, login, work).await
}

/// [`on_host`] through `login`: connects (logging in again if the server refuses the forward's
/// port), boots a node, serves the work, and tears down.
async fn cold<T, F>(
    job: &Job,
    host: &HostSettings,
    report: &Arc<Reporter>,
    input: &Input,
    mut login: Login,
    work: impl FnOnce(Arc<Node>, Ready) -> F,
) -> Result<T, SessionError>
where
    F: Future<Output = Result<T, SessionError>>,
{
    let started = login.started;
    let mut stats = Stats::default();
    let connecting = format!("connecting to {}", host.address);
    let phase = if login.interactive {
        report.silent_phase(Stage::Connect, connecting)
    } else {
        report.phase(Stage::Connect, connecting)
    };
    let mut refusal = None;
    let batch = loop {
        let session = Session {
            host,
            report,
            ids: &login.ids,
            started,
            input,
            had: None,
            known: None,
            holds: true,
            output_open: watch::Sender::new(true),
        };
        let connected = session
            .connect(&mut login.master, login.interactive, job, &mut stats)
            .await;
        match connected {
            Ok(batch) => break batch,
            Err(e) => {
                // Not logged in: there is no remote node to wait for.
                login.master.shutdown(Duration::ZERO).await;
                let port = login.forward_port;
                let refused = matches!(e, SessionError::Ssh(SshError::Forward { .. }));
                if port == 0 || !refused {
                    // The host's own forward_port, refused before, is what the error names.
                    return Err(refusal.filter(|_| refused).unwrap_or(e));
                }
                // The port is taken on the server (or not one it permits): a login more, with a
                // port the server allocates.
                report.verbose(&format!(
                    "{} refused port {port} for the forward back ({e}): logging in again with a \
                     port it allocates",
                    host.address
                ));
                refusal = host.forward_port.is_some().then_some(e);
                login = Login::start(host, report, input, true)?;
            }
        }
    };
    phase.done(format!("connected to {}", host.address));
    let Login {
        ids,
        mut dir,
        node_end,
        mut master,
        refused,
        ..
    } = login;
    let session = Session {
        host,
        report,
        ids: &ids,
        started,
        input,
        had: None,
        known: None,
        holds: true,
        output_open: watch::Sender::new(true),
    };
    let result = async {
        let (node, known, sent) = session
            .boot(&mut master, &mut dir, node_end, job, batch, &mut stats)
            .await?;
        let session = Session { known, ..session };
        let sent = sent.map(|sent| (&mut master, sent));
        session.serve(node, job, &mut stats, sent, work).await
    }
    .await;
    if result
        .as_ref()
        .is_err_and(SessionError::is_preflight_refusal)
    {
        refused.store(true, Ordering::Relaxed);
    }
    let phase = report.phase(Stage::Stop, "stopping remote node");
    let stopping = Instant::now();
    // A node that has answered and said its own output is all out leaves nothing to wait for: it
    // halts and removes its files when the connection closes. Otherwise the session ends by
    // itself (ssh's last words then explain a failure), or is ended after a grace period.
    // A node lost on the way may have halted by itself: the session's exit status says so.
    let result = if result.is_ok() && master.settled(SETTLE_LIMIT).await {
        master.abandon();
        result
    } else {
        let (status, evaluating) = master.end(TEARDOWN_GRACE).await;
        result.map_err(|e| e.halted_with(status).halted_in(evaluating))
    };
    stats.teardown = Some(stopping.elapsed());
    drop(phase);
    report.verbose(&stats.line());
    result
}

/// Whether ssh may ask the user (an unknown host key, a passphrase) on the terminal: one host,
/// stdin and stderr terminals, human output, and no `-o BatchMode=yes` of the user's. Then nothing is
/// drawn while ssh connects and ssh's own ConnectTimeout is the limit (the user's answer may take
/// longer); otherwise ssh runs in BatchMode and fails at once where it would have asked.
fn asks_on_terminal(host: &HostSettings, report: &Reporter, input: &Input) -> bool {
    use std::io::IsTerminal;
    // ssh keeps the first value given.
    let batch = host.ssh_options.iter().find_map(|o| {
        let o = o.to_ascii_lowercase();
        let value = o.trim_start().strip_prefix("batchmode")?;
        value.starts_with([' ', '\t', '=']).then(|| {
            value
                .trim_start_matches([' ', '\t', '='])
                .starts_with("yes")
        })
    });
    matches!(input, Input::Stdin(_))
        && !report.json()
        && batch != Some(true)
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// A fresh private directory (0700, guarded against SIGKILL) for a control socket and the Unix
/// socket of the reverse forward.
pub fn private_dir() -> Result<PrivateDir, SessionError> {
    PrivateDir::create().map_err(|error| SessionError::Socket {
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
        origin: host.origin.clone(),
    }
}

/// The part of a run that happens on a live SSH connection.
struct Session<'a> {
    host: &'a HostSettings,
    report: &'a Arc<Reporter>,
    ids: &'a Identities,
    /// When the connection was started.
    started: Instant,
    /// Where the function's reads are answered from.
    input: &'a Input,
    /// What a warm session's spare node was given to load ahead: the push sends only the rest.
    had: Option<&'a Digests>,
    /// What the node said of itself once ready (a cold node as it boots, a warm session's spare
    /// ahead): the push need not ask.
    known: Option<push::Remote>,
    /// Whether the node holds a request that comes before its load is done until it is (its boot
    /// program is this tool's): the work then starts with the push, a round trip sooner.
    holds: bool,
    /// Closed (`false`) while the push goes on: the console writes the function's output and
    /// prompts only once it is over (or the sender is gone), below the push's line, as the node
    /// may start the work before the tool has heard its load is done.
    output_open: watch::Sender<bool>,
}

impl Session<'_> {
    /// What every run does once its node is up, cold or warm: pushes the job, hands the node to
    /// `work`, and disconnects, whatever happened (the node halts when the connection goes). With
    /// the batch `sent` on the node's stdin, or a node that [`Session::holds`] requests, the work
    /// starts while the node loads it: its request goes at once and the node holds it until the
    /// load is done.
    async fn serve<T, F>(
        &self,
        node: Arc<Node>,
        job: &Job,
        stats: &mut Stats,
        sent: Option<(&mut Master, Sent)>,
        work: impl FnOnce(Arc<Node>, Ready) -> F,
    ) -> Result<T, SessionError>
    where
        F: Future<Output = Result<T, SessionError>>,
    {
        let served = self.push_and_work(&node, job, stats, sent, work).await;
        stats.requests = Some(node.requests());
        stats.round_trips = Some(node.round_trips());
        // Closing the connection first halts the node (it goes when the tool's node does) and
        // leaves the master no forwarded channel to wait for: a shorter teardown.
        node.disconnect();
        served
    }

    /// [`Session::serve`] until the work is done, or the push failed.
    async fn push_and_work<T, F>(
        &self,
        node: &Arc<Node>,
        job: &Job,
        stats: &mut Stats,
        sent: Option<(&mut Master, Sent)>,
        work: impl FnOnce(Arc<Node>, Ready) -> F,
    ) -> Result<T, SessionError>
    where
        F: Future<Output = Result<T, SessionError>>,
    {
        console::follow_geometry(node);
        self.output_open.send_replace(false);
        let (result, started) = if sent.is_some() || self.holds {
            let (pushed, ready) = Ready::after_load();
            let mut work = std::pin::pin!(work(Arc::clone(node), ready));
            let mut early = None;
            {
                let mut push = std::pin::pin!(self.push(node, job, stats, sent));
                let pushed = loop {
                    tokio::select! {
                        done = &mut push => break done,
                        result = &mut work, if early.is_none() => early = Some(result),
                    }
                };
                if let Err(e) = pushed {
                    self.output_open.send_replace(true);
                    // A node that ended without the tool hearing its load may have ended in the
                    // call that went with it (an abrupt halt loses what it had not yet written
                    // on stdout): the call's own loss names what was going on.
                    if !e.is_session_end() {
                        return Err(e);
                    }
                    let called = match early {
                        Some(called) => Some(called),
                        None => tokio::time::timeout(LOST_GRACE, &mut work).await.ok(),
                    };
                    return Err(match called {
                        Some(Err(lost @ SessionError::Lost { .. })) => lost,
                        _ => e,
                    });
                }
            }
            pushed.send_replace(true);
            let started = Instant::now();
            (self.after_push(work, early).await, started)
        } else {
            let pushed = self.push(node, job, stats, None).await;
            if pushed.is_err() {
                self.output_open.send_replace(true);
            }
            pushed?;
            let started = Instant::now();
            let work = std::pin::pin!(work(Arc::clone(node), Ready::now()));
            (self.after_push(work, None).await, started)
        };
        stats.call = Some(started.elapsed());
        result
    }

    /// Runs `work` to its end now that the push is done (`early`: its result, if it came
    /// before): polled once first, so that it starts its own phase (the call's), and only then
    /// the output let through, so that the function's output follows that phase's start, as
    /// `--json` readers expect.
    async fn after_push<T>(
        &self,
        mut work: Pin<&mut impl Future<Output = T>>,
        early: Option<T>,
    ) -> T {
        let early = match early {
            Some(result) => Some(result),
            None => {
                // Unconstrained: a budget the push used up must not make this poll a no-op.
                let mut once = tokio::task::unconstrained(work.as_mut());
                match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut once).poll(cx))).await {
                    Poll::Ready(result) => Some(result),
                    Poll::Pending => None,
                }
            }
        };
        self.output_open.send_replace(true);
        match early {
            Some(result) => result,
            None => work.await,
        }
    }

    /// Waits for the connection with its reverse forward, and writes the boot session its input;
    /// then starts writing `job`'s batch (see [`Session::start_writing`]) at once, as the session
    /// starts, rather than once it says it runs: a round trip sooner, which a large batch on a
    /// link of limited bandwidth gains (see the README's benchmarks). Returns that write, for
    /// [`Session::boot`].
    async fn connect(
        &self,
        master: &mut Master,
        interactive: bool,
        job: &Job,
        stats: &mut Stats,
    ) -> Result<Batch, SessionError> {
        let host = &self.host.name;
        let connecting = async {
            // The forward is granted as the session opens; the boot input can go at once, and
            // ssh hands it to the session when it runs.
            let port = master.forwarded_port().await?;
            let port_at = Instant::now();
            let input =
                boot::stdin_input(port, true, &self.ids.cookie, &self.ids.local.to_string());
            let sent = master.send(&input).await;
            let (load_frame, to_load) = oneshot::channel();
            let writing = match sent {
                Ok(()) => self.start_writing(master, job, to_load),
                Err(_) => None,
            };
            // A session that ended (no elixir, login refused) explains itself better than the
            // failed write.
            master.wait_for(boot::CONNECTED, "the SSH session").await?;
            sent?;
            let batch = Batch {
                writing,
                load_frame,
            };
            Ok::<_, SessionError>((port, port_at, Instant::now(), batch))
        };
        let (port, port_at, connected_at, batch) = if interactive {
            connecting.await?
        } else {
            timeout(
                Duration::from_secs(self.host.connect_timeout),
                connecting,
                "connecting",
                host,
                "--connect-timeout",
            )
            .await?
        };
        stats.connect = Some(connected_at - self.started);
        stats.tunnels = Some(port_at.saturating_duration_since(connected_at));
        self.report.verbose(&format!(
            "tunnel: remote 127.0.0.1:{port} -> our node {}; expecting {}",
            self.ids.local, self.ids.remote
        ));
        Ok(batch)
    }

    /// Waits for the booting node to connect back: the handshake with the run's cookie is the
    /// readiness signal, no sleeps, no polling. The `batch` [`Session::connect`] started goes on
    /// the node's stdin meanwhile, and the node stages it as it boots. The node says what it is
    /// and has before it connects back: the preflight runs on that, and the line saying what to
    /// load follows the batch at once, so the node loads it while it connects back. Returns the
    /// node, what it said (if the push cannot take it from there, it asks), and the batch sent,
    /// if it was.
    async fn boot(
        &self,
        master: &mut Master,
        dir: &mut PrivateDir,
        node_end: LocalEnd,
        job: &Job,
        batch: Batch,
        stats: &mut Stats,
    ) -> Result<(Arc<Node>, Option<push::Remote>, Option<Sent>), SessionError> {
        let host = &self.host.name;
        let booting = Instant::now();
        let boot_limit = Duration::from_secs(self.host.boot_timeout);
        let phase = self.report.phase(Stage::Boot, "booting remote node");
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
        let mut accept = std::pin::pin!(accept);
        let mut told = None;
        // A write still going on when the node has connected back is the push's to wait for.
        let Batch {
            mut writing,
            load_frame,
        } = batch;
        let mut load_frame = Some(load_frame);
        // The session ending first means the boot failed, and says why.
        // The node says what it is before it connects back, but that line and the connection
        // come on different channels of the SSH connection: a node up before its line is read
        // is given INFO_AFTER_HANDSHAKE for it, rather than the push asking (a request more).
        let mut up = None;
        let connected = async {
            loop {
                let said = async {
                    if told.is_some() {
                        Err(master.failure("the remote node").await)
                    } else {
                        master.marked(INFO, "the remote node").await
                    }
                };
                let written = async {
                    match writing.as_mut() {
                        Some(write) => write.await,
                        None => std::future::pending().await,
                    }
                };
                let due = up.as_ref().map(|(_, at)| *at);
                let late = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    node = &mut accept, if up.is_none() => {
                        let node = node.map_err(SessionError::from)?;
                        if told.is_some() {
                            return Ok::<_, SessionError>(node);
                        }
                        up = Some((node, tokio::time::Instant::now() + INFO_AFTER_HANDSHAKE));
                    }
                    said = said => {
                        let sent = self.told(job, &said?, stats).await?;
                        let line = load_frame.take();
                        if let (Some((_, sent)), Some(line)) = (&sent, line) {
                            let _ = line.send(sent.load.frame());
                        }
                        told = Some(sent);
                        if let Some((node, _)) = up.take() {
                            return Ok(node);
                        }
                    }
                    () = late => {
                        let (node, _) = up.take().expect("the wait for the line starts once the node is up");
                        return Ok(node);
                    }
                    stdin = written => {
                        let stdin = stdin_back(master, stdin).await?;
                        master.give_stdin(stdin);
                        writing = None;
                    }
                }
            }
        };
        let (node, inbox) = timeout(
            boot_limit,
            connected,
            "booting the remote node",
            host,
            "--boot-timeout",
        )
        .await?;
        stats.boot = Some(booting.elapsed());
        // Nothing else may connect, and a killed tool must leave no file: the sockets' paths go.
        dir.remove();
        stats.console = Some(console::start(
            Arc::clone(&node),
            inbox,
            Arc::clone(self.report),
            self.input.clone(),
            self.output_open.subscribe(),
        ));
        let (known, sent) = match told {
            Some(Some((known, sent))) => (Some(known), Some(Sent { writing, ..sent })),
            _ => {
                // Nothing to load from stdin: the push asks. The batch may still be going.
                drop(load_frame);
                if let Some(writing) = writing {
                    let stdin = stdin_back(master, writing.await).await?;
                    master.give_stdin(stdin);
                }
                self.set_remote_env(&node, boot_limit).await?;
                let known = master
                    .info()
                    .and_then(|hex| preload::known(&hex))
                    .map(|(_, remote)| remote);
                (known, None)
            }
        };
        phase.done(format!("remote node {} up", self.ids.remote));
        Ok((node, known, sent))
    }

    /// What the booting node said of itself (`hex`, see [`Master::marked`]): the preflight
    /// against it, and what to load of the batch on the node's stdin
    /// ([`Session::start_writing`]). `None` if `hex` is not what the boot program prints (the
    /// push then asks the node).
    async fn told(
        &self,
        job: &Job,
        hex: &str,
        stats: &mut Stats,
    ) -> Result<Option<(push::Remote, Sent)>, SessionError> {
        let Some((_, remote)) = preload::known(hex) else {
            return Ok(None);
        };
        stats.scan = Some(job.planned_in);
        let waiting = Instant::now();
        let (prepared, took) = job.wire.get().await?;
        stats.wire_wait = Some(waiting.elapsed());
        stats.wire = Some(took);
        self.preflight(job, &remote)?;
        let needed = needed_apps(job);
        // The node said what it has a moment ago: it checks only the applications.
        let load = push::Load::plan(&prepared, &remote, &needed, false);
        if !self.host.remote_env.is_empty() {
            self.report_env();
        }
        let sent = Sent {
            load,
            prepared,
            at: Instant::now(),
            writing: None,
        };
        Ok(Some((remote, sent)))
    }

    /// Starts writing `job`'s batch on the booting node's stdin (taken from `master` meanwhile),
    /// in a task of its own, as soon as it is ready, with the host's remote environment and the
    /// job's setup, then the frame `to_load` gives (if it gives one); `None` if the session's
    /// stdin is closed.
    fn start_writing(
        &self,
        master: &mut Master,
        job: &Job,
        to_load: oneshot::Receiver<Vec<u8>>,
    ) -> Option<Writing> {
        let mut stdin = master.take_stdin()?;
        let wire = job.wire.clone();
        let env = env_term(&self.host.remote_env);
        let setup = invoke::setup_term(Setup {
            protocols: None,
            ..Setup::of(job, self.host)
        });
        let host = self.host.address.clone();
        Some(Writing::spawn(async move {
            let written = async {
                // A preparation that failed is for `told` to report.
                if let Ok((prepared, _)) = wire.get().await {
                    stdin
                        .write_all(&push::batch_head(&prepared, env, setup))
                        .await?;
                    for part in &prepared.parts {
                        stdin.write_all(&boot::frame_header(part.len())).await?;
                        stdin.write_all(&prepared.batch[part.clone()]).await?;
                    }
                    stdin.flush().await?;
                    if let Ok(frame) = to_load.await {
                        stdin.write_all(&frame).await?;
                        stdin.flush().await?;
                    }
                }
                Ok::<(), std::io::Error>(())
            };
            match written.await {
                Ok(()) => Ok(stdin),
                Err(_) => Err(SshError::Closed(host)),
            }
        }))
    }

    /// Learns what the remote has, ships the applications and loads what it lacks.
    async fn push(
        &self,
        node: &Node,
        job: &Job,
        stats: &mut Stats,
        sent: Option<(&mut Master, Sent)>,
    ) -> Result<(), SessionError> {
        let host = &self.host.name;
        let apps = job.apps.shipped.len();
        let pushing = format!("pushing {}", counted(apps, "application"));
        let phase = self.report.phase(Stage::Push, &pushing);
        let limit = Duration::from_secs(self.host.push_timeout);
        let started = Instant::now();
        let loading = async {
            match sent {
                Some((master, sent)) => self.loaded(master, job, sent).await,
                None => self.load(node, job, limit, stats).await,
            }
        };
        let (prepared, pushed) = timeout(limit, loading, &pushing, host, "--push-timeout")
            .await
            .map_err(|e| e.in_phase(&pushing, host, limit, "--push-timeout"))
            .map_err(|e| e.lost_in(Stage::Push, &pushing, host).on_host(host))?;
        stats.push = Some(started.elapsed());
        phase.done(format!(
            "pushed {} ({} modules, {} KiB), loaded {}{}",
            counted(pushed.apps, "application"),
            pushed.shipped_modules,
            pushed.bytes.div_ceil(1024),
            counted(pushed.modules.len(), "module"),
            match pushed.skipped {
                0 => String::new(),
                n => format!(", {n} already there"),
            }
        ));
        match pushed.stale_removed {
            0 => {}
            1 => self.report.verbose(
                "removed the directory of an earlier run that had not ended cleanly from the server",
            ),
            n => self.report.verbose(&format!(
                "removed the directories of {n} earlier runs that had not ended cleanly from the server"
            )),
        }
        for (beam, wire) in &prepared.modules {
            if pushed.modules.contains(&beam.name) {
                self.report.event(Event::ModulePushed {
                    host: self.host.name.clone(),
                    module: display_module(&beam.name),
                    bytes: wire.size,
                });
            }
        }
        stats.pushed = Some(pushed);
        Ok(())
    }

    /// The push itself: what the remote has (while the wire form is finished), the preflight
    /// (versions, native code, the applications the server must have), then shipping. A warm
    /// session's spare has said what it has ahead: the node checks that instead, and the run asks
    /// only if the node finds it stale.
    async fn load(
        &self,
        node: &Node,
        job: &Job,
        limit: Duration,
        stats: &mut Stats,
    ) -> Result<(Arc<Prepared>, push::Pushed), SessionError> {
        stats.scan = Some(job.planned_in);
        let needed = needed_apps(job);
        if let Some(known) = &self.known {
            let waiting = Instant::now();
            let (items, took) = job.wire.items().await?;
            stats.wire_wait = Some(waiting.elapsed());
            stats.wire = Some(took);
            match self
                .ship(node, job, &items, known, Some(&needed), limit)
                .await
            {
                Err(SessionError::Push(push::PushError::Stale(modules))) => {
                    self.report.verbose(&format!(
                        "the warm spare node does not have {modules} loaded as it said: asking what it has"
                    ));
                }
                pushed => return pushed,
            }
        }
        // The wire form is normally ready by now; if not, the run waits for it here, and says so.
        let (remote, wire) = tokio::join!(push::remote(node, &needed, limit), async {
            let waiting = Instant::now();
            let wire = job.wire.items().await;
            (wire, waiting.elapsed())
        });
        let (remote, ((items, took), waited)) = (remote?, (wire.0?, wire.1));
        stats.wire = Some(took);
        stats.wire_wait = Some(waited);
        self.ship(node, job, &items, &remote, None, limit).await
    }

    /// The batch sent on the node's stdin ([`Session::told`]), once the node says it loaded it.
    async fn loaded(
        &self,
        master: &mut Master,
        job: &Job,
        sent: Sent,
    ) -> Result<(Arc<Prepared>, push::Pushed), SessionError> {
        if let Some(writing) = sent.writing {
            let stdin = stdin_back(master, writing.await).await?;
            master.give_stdin(stdin);
        }
        let hex = master.marked(LOADED, "the remote node").await?;
        let reply = boot::term_of_hex(&hex)
            .ok_or_else(|| PushError::Unexpected(format!("{MARKER}{LOADED}{hex}")))?;
        self.report.verbose(&format!(
            "the node loaded the batch sent on its stdin {} ms after it was told what to load",
            sent.at.elapsed().as_millis()
        ));
        let apps = job.apps.shipped.len();
        match sent.load.pushed(&reply, &sent.prepared, apps) {
            Err(PushError::Missing(app)) => Err(self.missing_app(job, &app)),
            pushed => Ok((sent.prepared, pushed?)),
        }
    }

    /// The preflight against `remote`, then shipping (with `assumed`, the applications the node
    /// is to check it has, if `remote` was told rather than asked).
    async fn ship(
        &self,
        node: &Node,
        job: &Job,
        items: &Items,
        remote: &push::Remote,
        assumed: Option<&[&str]>,
        limit: Duration,
    ) -> Result<(Arc<Prepared>, push::Pushed), SessionError> {
        self.preflight(job, remote)?;
        // A spare given a batch ahead is sent what it lacks, written now; any other node the
        // whole batch, compressed meanwhile.
        let sent = match self.had {
            Some(had) => Arc::new(preload::trimmed(items, had, remote).map_err(Arc::new)?),
            None => job.wire.get().await?.0,
        };
        let apps = job.apps.shipped.len();
        match push::push(node, &sent, apps, remote, assumed, limit).await {
            Err(push::PushError::Missing(app)) => Err(self.missing_app(job, &app)),
            pushed => Ok((sent, pushed?)),
        }
    }

    /// Whether `remote` can run the job, before anything is loaded: its versions, the native
    /// code, the applications it must have. Nothing is loaded when the remote could not load the
    /// closure: one line says why (a cold node halts with the batch it staged unloaded). Other
    /// modules of the shipped applications load only if called: a warning.
    fn preflight(&self, job: &Job, remote: &push::Remote) -> Result<(), SessionError> {
        let versions = &remote.versions;
        self.report.verbose(&format!(
            "remote: OTP {}, ERTS {}, Elixir {}, {} ({}-bit), {} modules loaded",
            versions.otp_release,
            versions.erts,
            versions.elixir,
            remote.server.triple,
            u32::from(remote.server.wordsize) * 8,
            remote.loaded.len()
        ));
        let preflight = job.preflight(versions);
        for warning in preflight.closure.clone()? {
            self.report.warning(&warning);
        }
        if let Some(refusal) = &preflight.others {
            self.report.warning(&format!(
                "a module outside the closure would fail to load when called: {refusal}"
            ));
        }
        native::check(&job.natives, &remote.server, &self.host.name)?;
        match remote.missing_apps.first() {
            Some(app) => Err(self.missing_app(job, app)),
            None => Ok(()),
        }
    }

    /// The server lacks `app`, which a shipped application needs.
    fn missing_app(&self, job: &Job, app: &str) -> SessionError {
        SessionError::missing_app(app, &job.apps.from_server, &self.host.name)
    }

    async fn set_remote_env(&self, node: &Node, limit: Duration) -> Result<(), SessionError> {
        let vars = &self.host.remote_env;
        if vars.is_empty() {
            return Ok(());
        }
        node.call(
            "Elixir.System",
            "put_env",
            vec![env_term(vars)],
            Some(limit),
        )
        .await?;
        self.report_env();
        Ok(())
    }

    /// Says which variables the remote environment set (`-v`).
    fn report_env(&self) {
        let names: Vec<&str> = self.host.remote_env.keys().map(String::as_str).collect();
        self.report
            .verbose(&format!("remote environment: {}", names.join(", ")));
    }
}

/// The applications the shipped ones need from the server.
fn needed_apps(job: &Job) -> Vec<&str> {
    job.apps
        .from_server
        .iter()
        .map(|(app, _)| app.as_str())
        .collect()
}

/// `vars` as the map `System.put_env/1` takes.
fn env_term(vars: &BTreeMap<String, String>) -> Term {
    let binary = |s: &String| Term::from(Binary::from(s.as_bytes()));
    let map: Map = vars
        .iter()
        .map(|(k, v)| (binary(k), binary(v)))
        .collect::<std::collections::HashMap<_, _>>()
        .into();
    map.into()
}

/// Our node's end of the reverse forward: a Unix socket in the run's private directory, and the
/// listener on it.
struct LocalEnd {
    path: PathBuf,
    listener: UnixListener,
}

impl LocalEnd {
    fn bind(path: PathBuf) -> Result<LocalEnd, SessionError> {
        let bound = UnixListener::bind(&path)
            .and_then(|listener| private_dir::owner_only(&path).map(|()| listener));
        match bound {
            Ok(listener) => Ok(LocalEnd { path, listener }),
            Err(error) => Err(SessionError::Socket {
                path: path.display().to_string(),
                error,
            }),
        }
    }
}

/// `run`'s and `eval`'s work on a host: makes the call once the code is `ready` (within
/// `--call-timeout`, if any, from the push's end) and says how it ended. Its phase is left in
/// `unfinished` when the node is lost during it: whether the function halted it is known only
/// once the session has ended (see [`run_host`]).
async fn call(
    node: Arc<Node>,
    job: &Job,
    host: &HostSettings,
    report: &Reporter,
    ready: Ready,
    unfinished: &std::sync::Mutex<Option<Phase>>,
) -> Result<Outcome, SessionError> {
    let calling = job.call.doing();
    let mut call = std::pin::pin!(invoke::invoke(
        &node,
        &job.call,
        Setup::of(job, host),
        &ready
    ));
    // Its first poll sends the request, which may go before the push is done; the call's phase
    // starts after the push's.
    let early = tokio::select! {
        biased;
        () = ready.pushed() => None,
        reply = &mut call => Some(reply),
    };
    match early {
        // Failed before the push was done (the node gone, the load refused): the push's end,
        // which may say more, decides what the run reports (`Session::serve`).
        Some(Err(e)) => {
            return Err(SessionError::from(e).lost_in(Stage::Call, &calling, &host.name));
        }
        Some(Ok(_)) => ready.pushed().await,
        None => {}
    }
    let phase = report.phase(Stage::Call, &calling);
    let outcome = match (early, host.call_timeout.map(Duration::from_secs)) {
        (Some(reply), _) => reply.map_err(SessionError::from),
        (None, None) => call.await.map_err(SessionError::from),
        (None, Some(limit)) => timeout(limit, call, &calling, &host.name, "--call-timeout").await,
    };
    let outcome = match outcome.map_err(|e| e.lost_in(Stage::Call, &calling, &host.name)) {
        Ok(outcome) => outcome,
        Err(lost @ SessionError::Lost { .. }) => {
            *unfinished.lock().expect("phase lock poisoned") = Some(phase);
            return Err(lost);
        }
        Err(e) => return Err(e),
    };
    match &outcome {
        Outcome::Returned(_) => phase.done(format!("{} finished", job.call.shown())),
        Outcome::Failed { how, .. } => phase.failed(format!("{} {}", job.call.shown(), how.word())),
        Outcome::Stopped(0) => phase.done(format!("{} stopped with status 0", job.call.shown())),
        Outcome::Stopped(status) => {
            phase.failed(format!("{} stopped with status {status}", job.call.shown()))
        }
        Outcome::NotStarted { app, .. } => phase.failed(format!("application {app} did not start")),
        Outcome::ConfigFailed {
            file, status: 0, ..
        } => phase.done(format!("{file} ended the run with status 0")),
        Outcome::ConfigFailed { file, .. } => phase.failed(format!("{file} failed")),
        Outcome::CompileEnvDiffers { app } => {
            phase.failed(format!("application {app}'s compile-time config differs"))
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::node::NodeName;

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
