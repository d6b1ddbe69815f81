//! The agent itself (`mix-remote __agent`, started detached by `up`): it reads its [`Spec`] on
//! stdin, makes the session directory, opens the master connection (saying [`CONNECTED`] on
//! stdout), boots its first spare node, says [`READY`] once that one is ready, lets go of its
//! stdio, and serves the session's socket until `down`, the idle limit, SIGTERM or the loss of
//! the connection; then it stops every node, closes the connection and removes the directory.
//! If the connection or the first spare fails, it says `error WHY` instead and ends, leaving no
//! session: one whose spare cannot boot would serve no run; so it does, silently, if `up` goes
//! away before (its stdin, which `up` holds open until then, closes). Killed outright, it still
//! leaves nothing: the master and the spare sessions die with it (PR_SET_PDEATHSIG), which
//! closes the nodes' stdin so they halt, and the directory's guardian removes the directory.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::ahead::Ahead;
use super::preload::Preload;
use super::spare::{Said, Spare};
use super::{
    BYE, CLAIM, CONNECTED, DOWN, ENDED, FAILED, FD, GO, HELD, IDLE, LOG, OK, OTHER, PRELOAD, READY,
    SETTLED, SPARE, STATUS, Spec, Status, TIMED_OUT, UNABLE, build, dirs, fd,
};
use crate::remote::boot;
use crate::remote::private_dir::{self, PrivateDir};
use crate::remote::ssh::{Master, Target};

/// The hidden first argument that makes the tool a session's agent.
pub const AGENT: &str = "__agent";
/// How long the master may take to close once its session ends.
const MASTER_GRACE: Duration = Duration::from_secs(5);
/// How long to wait before booting again after a spare failed to boot.
const RETRY: Duration = Duration::from_secs(2);
/// How long a claiming run may take to send its identities.
const GO_LIMIT: Duration = Duration::from_secs(60);
/// How long a claim waits for the spare to say what it is and has (it is loading a batch given
/// ahead): short beside a run's connect timeout; past it, the run asks the node itself.
const INFO_WAIT: Duration = Duration::from_secs(1);

/// Why the agent could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The spec on stdin was unreadable.
    #[error("bad session spec: {0}")]
    Spec(String),
    /// The session directory or socket could not be made.
    #[error("cannot create the session directory {path}: {error}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A session for the host is already there.
    #[error("a session for {0} is already up")]
    Exists(String),
    /// The elixir path is not acceptable.
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    /// The connection failed.
    #[error(transparent)]
    Ssh(#[from] crate::remote::ssh::SshError),
    /// The connection took too long.
    #[error("timed out connecting on {host} after {secs} s (raise it with --connect-timeout)")]
    Timeout {
        /// The host.
        host: String,
        /// The limit.
        secs: u64,
    },
    /// The first spare node did not boot in time.
    #[error(
        "timed out booting a spare node on {host} after {secs} s (raise it with --boot-timeout)"
    )]
    BootTimeout {
        /// The host.
        host: String,
        /// The limit.
        secs: u64,
    },
    /// The first spare node failed: no run could be served.
    #[error("the warm session on {host} could not boot its spare node: {why}")]
    Spare {
        /// The host.
        host: String,
        /// Why.
        why: String,
    },
    /// `up` went away before the session was up: nobody asked for it any more.
    #[error("`up` went away")]
    Abandoned,
}

/// The hidden `__agent` command: serves one session; returns the process's exit code.
pub fn main() -> u8 {
    let mut line = String::new();
    let spec = match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => serde_json::from_str::<Spec>(&line).map_err(|e| AgentError::Spec(e.to_string())),
        Err(e) => Err(AgentError::Spec(e.to_string())),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match (spec, runtime) {
        (Ok(spec), Ok(runtime)) => runtime.block_on(serve(spec)),
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(AgentError::Spec(e.to_string())),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            // Only `up` reads this, until it sees READY: later errors have no reader (nor has
            // this one, when `up` went away).
            let word = match e {
                AgentError::Timeout { .. } | AgentError::BootTimeout { .. } => TIMED_OUT,
                _ => UNABLE,
            };
            let _ = say(&format!("{word} {e}"));
            1
        }
    }
}

/// What the connections and the spare's keeper share.
struct Shared {
    since: u64,
    runs: u64,
    active: u64,
    last: Instant,
    /// The idle limit: the spec's, or what `up` set since.
    idle: Duration,
    spare: String,
}

type State = Arc<Mutex<Shared>>;

fn lock(state: &State) -> std::sync::MutexGuard<'_, Shared> {
    state.lock().expect("agent state lock poisoned")
}

async fn serve(spec: Spec) -> Result<(), AgentError> {
    let root = dirs::root().map_err(|error| AgentError::Dir {
        path: PathBuf::from("the session root"),
        error,
    })?;
    let path = dirs::session(&root, &spec.key());
    let mut dir = PrivateDir::create_at(path.clone()).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            AgentError::Exists(spec.name.clone())
        } else {
            AgentError::Dir {
                path: path.clone(),
                error,
            }
        }
    })?;
    // Held until this function returns, after the directory is gone.
    let _lock = dirs::hold_lock(dir.path()).map_err(|error| AgentError::Dir {
        path: dir.path().join(dirs::LOCK),
        error,
    })?;
    let socket = dir.path().join(dirs::SOCKET);
    let listener = UnixListener::bind(&socket)
        .and_then(|l| private_dir::owner_only(&socket).map(|()| l))
        .map_err(|error| AgentError::Dir {
            path: socket.clone(),
            error,
        })?;
    // Its spare nodes connect back through forwards added later, from ports the server allocates.
    let remote_command = boot::remote_command(&spec.elixir, 0)?;
    // The master's own session only looks for elixir and waits: the spares are the nodes.
    let session_command = boot::session_command(&spec.elixir)?;
    let mut target = Target {
        host: spec.address.clone(),
        config: spec.ssh_config.clone(),
        options: spec.ssh_options.clone(),
    };
    target.options.push("BatchMode=yes".to_owned());
    let control = dir.path().join(dirs::CONTROL);
    let mut gone = up_gone();
    let mut master = Master::start(&target, &control, None, &session_command, |_| {}, |_| {})?;
    let limit = Duration::from_secs(spec.connect_timeout);
    let connecting =
        tokio::time::timeout(limit, master.wait_for(boot::CONNECTED, "the SSH session"));
    let connected = tokio::select! {
        connected = connecting => connected,
        _ = &mut gone => {
            master.shutdown(Duration::ZERO).await;
            return Err(AgentError::Abandoned);
        }
    };
    match connected {
        Ok(connected) => connected?,
        Err(_) => {
            master.shutdown(Duration::ZERO).await;
            return Err(AgentError::Timeout {
                host: spec.address.clone(),
                secs: spec.connect_timeout,
            });
        }
    }
    let said = say(CONNECTED);

    let state: State = Arc::new(Mutex::new(Shared {
        since: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        runs: 0,
        active: 0,
        last: Instant::now(),
        idle: Duration::from_secs(spec.idle_secs),
        spare: "booting".into(),
    }));
    let (stop_tx, stop) = watch::channel(false);
    let (claims_tx, claims) = mpsc::unbounded_channel();
    let (preloads_tx, preloads) = mpsc::unbounded_channel();
    let runs_over = Arc::new(Notify::new());
    let keeper = Keeper {
        dir: dir.path().to_owned(),
        control,
        target,
        remote_command,
        state: Arc::clone(&state),
        runs_over: Arc::clone(&runs_over),
    };
    let (first_tx, first) = oneshot::channel();
    let mut keeping = tokio::spawn(keeper.keep(master, claims, preloads, stop.clone(), first_tx));
    // `up` waits for the first spare: a session is up once it can serve a run.
    let boot = Duration::from_secs(spec.boot_timeout);
    let first = match said {
        Ok(()) => tokio::select! {
            first = tokio::time::timeout(boot, first) => match first {
                Ok(first) => first
                    .unwrap_or_else(|_| Err("the session ended".to_owned()))
                    .map_err(|why| AgentError::Spare {
                        host: spec.address.clone(),
                        why,
                    }),
                Err(_) => Err(AgentError::BootTimeout {
                    host: spec.address.clone(),
                    secs: spec.boot_timeout,
                }),
            },
            _ = &mut gone => Err(AgentError::Abandoned),
        },
        Err(()) => Err(AgentError::Abandoned),
    };
    let first = first.and_then(|()| say(READY).map_err(|()| AgentError::Abandoned));
    if let Err(e) = first {
        let _ = stop_tx.send(true);
        let _ = keeping.await;
        dir.remove();
        return Err(e);
    }
    detach();
    // The idle limit counts from now, when `up` returns.
    lock(&state).last = Instant::now();
    let (down_tx, mut downs) = mpsc::unbounded_channel::<UnixStream>();
    let mut connections = JoinSet::new();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut asked_down = Vec::new();
    loop {
        let deadline = {
            let s = lock(&state);
            // No deadline past what `Instant` can hold: never idle out then.
            (s.active == 0)
                .then(|| s.last.checked_add(s.idle))
                .flatten()
        };
        let idle_over = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let terminated = async {
            match terminate.as_mut() {
                Some(signal) => drop(signal.recv().await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted
                    && same_user(&stream)
                {
                    let connection = Connection {
                        state: Arc::clone(&state),
                        runs_over: Arc::clone(&runs_over),
                        claims: claims_tx.clone(),
                        preloads: preloads_tx.clone(),
                        downs: down_tx.clone(),
                        stop: stop.clone(),
                        spec: spec.clone(),
                    };
                    connections.spawn(connection.serve(stream));
                }
            }
            Some(stream) = downs.recv() => {
                asked_down.push(stream);
                break;
            }
            // A run that came after the deadline was set holds the session up; its end sets
            // the next one (its connection's end wakes this loop, as does that of an `up`
            // that set a new limit).
            () = idle_over => {
                let s = lock(&state);
                if s.active == 0 && s.last.elapsed() >= s.idle {
                    break;
                }
            }
            () = terminated => break,
            _ = &mut keeping => break,
            Some(_) = connections.join_next() => {}
        }
    }
    let _ = stop_tx.send(true);
    drop(listener);
    while connections.join_next().await.is_some() {}
    if !keeping.is_finished() {
        let _ = keeping.await;
    }
    dir.remove();
    for mut stream in asked_down
        .into_iter()
        .chain(std::iter::from_fn(|| downs.try_recv().ok()))
    {
        let _ = stream.write_all(format!("{BYE}\n").as_bytes()).await;
    }
    Ok(())
}

/// Says `word` to `up` on stdout; `Err` if `up` is no longer there to read it.
fn say(word: &str) -> Result<(), ()> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{word}")
        .and_then(|()| stdout.flush())
        .map_err(drop)
}

/// Resolves once `up` has gone (it holds the agent's stdin open until the session is up, or
/// until it is killed).
fn up_gone() -> oneshot::Receiver<()> {
    let (gone, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut rest = [0; 64];
        while std::io::Read::read(&mut std::io::stdin(), &mut rest).is_ok_and(|n| n > 0) {}
        let _ = gone.send(());
    });
    rx
}

/// Points stdin, stdout and stderr at /dev/null: `up` has stopped reading, and the agent must
/// hold no terminal or pipe of anyone's.
fn detach() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors, from a descriptor we own.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Whether the peer of `stream` runs as our own user: nobody else may use the session.
fn same_user(stream: &UnixStream) -> bool {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    stream.peer_cred().is_ok_and(|cred| cred.uid() == me)
}

/// The keeper's answer to a claim.
enum Answer {
    /// The spare, with its connection if the agent made it ahead.
    Spare(Box<Spare>, Option<Ahead>),
    /// No spare to hand: the last one failed (why), and the next is not booted yet.
    Failed(String),
}

/// Where the keeper says how the first spare did: `Ok` once it is ready, or why it failed.
type First = oneshot::Sender<Result<(), String>>;

/// Keeps one spare node booted (and, while no run is going on, connected ahead), hands it to the
/// claim that asks, and boots the next.
struct Keeper {
    dir: PathBuf,
    control: PathBuf,
    target: Target,
    remote_command: String,
    state: State,
    /// Told when a run has ended.
    runs_over: Arc<Notify>,
}

/// What ended (or interrupted) the wait of a spare.
enum Woken {
    Claimed(Option<oneshot::Sender<Answer>>),
    Booted,
    RunOver,
    Preload(Option<Arc<Preload>>),
    Ended,
    Lost(String),
    Stopped,
}

impl Keeper {
    async fn keep(
        self,
        mut master: Master,
        mut claims: mpsc::UnboundedReceiver<oneshot::Sender<Answer>>,
        mut preloads: mpsc::UnboundedReceiver<Arc<Preload>>,
        mut stop: watch::Receiver<bool>,
        first: First,
    ) {
        let mut first = Some(first);
        let mut latest: Option<Arc<Preload>> = None;
        let mut n = 0;
        'spares: loop {
            n += 1;
            lock(&self.state).spare = "booting".into();
            let booting = Spare::boot(
                &self.dir,
                &self.control,
                n,
                &self.target,
                &self.remote_command,
                latest.clone(),
            );
            let booted = tokio::select! {
                booted = booting => booted,
                _ = stop.changed() => break,
                lost = master.failure("the SSH connection") => {
                    fail_first(&mut first, lost.to_string());
                    break;
                }
            };
            let mut spare = match booted {
                Ok(spare) => spare,
                Err(e) => {
                    match self
                        .failed(e.to_string(), &mut first, &mut claims, &mut stop)
                        .await
                    {
                        true => continue,
                        false => break,
                    }
                }
            };
            let mut up = false;
            let mut ahead: Option<Ahead> = None;
            loop {
                let booted = spare.booted();
                let woken = tokio::select! {
                    // A dead spare is never handed out, and a run's batch goes to the spare before
                    // the next run can claim it.
                    biased;
                    _ = spare.ended() => Woken::Ended,
                    preload = preloads.recv() => Woken::Preload(preload),
                    claim = claims.recv() => Woken::Claimed(claim),
                    () = booted, if !up => Woken::Booted,
                    () = self.runs_over.notified(), if up && ahead.is_none() => Woken::RunOver,
                    lost = master.failure("the SSH connection") => Woken::Lost(lost.to_string()),
                    _ = stop.changed() => Woken::Stopped,
                };
                match woken {
                    Woken::Booted | Woken::RunOver => {
                        up = true;
                        // While a run goes on, its batch may still come for this spare (on its
                        // stdin, before its cookie): it is connected once no run is left.
                        if lock(&self.state).active == 0 {
                            lock(&self.state).spare = "connecting".into();
                            match Ahead::connect(&mut spare).await {
                                Ok(made) => ahead = Some(made),
                                Err(e) => {
                                    // It has its cookie: no run can have it now.
                                    spare.end().await;
                                    match self.failed(e, &mut first, &mut claims, &mut stop).await {
                                        true => continue 'spares,
                                        false => break 'spares,
                                    }
                                }
                            }
                        }
                        lock(&self.state).spare = "ready".into();
                        if let Some(first) = first.take() {
                            let _ = first.send(Ok(()));
                        }
                    }
                    Woken::Preload(Some(preload))
                        if ahead.is_some()
                            || spare
                                .preloaded
                                .as_ref()
                                .is_some_and(|had| !preload.covers(had)) =>
                    {
                        // Connected, it has read its cookie; or it would keep what the batch no
                        // longer has (a module, a file): the next spare takes the batch.
                        latest = Some(preload);
                        drop(ahead.take());
                        spare.end().await;
                        continue 'spares;
                    }
                    Woken::Preload(Some(preload)) => {
                        latest = Some(Arc::clone(&preload));
                        spare.preload(preload).await;
                        up = false;
                        lock(&self.state).spare = "loading".into();
                    }
                    Woken::Claimed(Some(claim)) => {
                        // A connection lost meanwhile leaves a node that has its cookie and
                        // cannot serve: the run, refused, connects as usual.
                        let refused = match ahead.take() {
                            Some(made) if made.is_lost() => Some(spare),
                            ahead => match claim.send(Answer::Spare(Box::new(spare), ahead)) {
                                Err(Answer::Spare(spare, _)) => Some(*spare),
                                _ => None,
                            },
                        };
                        if let Some(spare) = refused {
                            spare.end().await;
                        }
                        continue 'spares;
                    }
                    Woken::Ended => {
                        // A node that halts by itself (an OTP too old, a crash) is not booted
                        // again and again at full speed.
                        spare.end().await;
                        let why = "the spare node ended by itself".to_owned();
                        match self.failed(why, &mut first, &mut claims, &mut stop).await {
                            true => continue 'spares,
                            false => break 'spares,
                        }
                    }
                    Woken::Lost(lost) => {
                        spare.end().await;
                        fail_first(&mut first, lost);
                        break 'spares;
                    }
                    Woken::Preload(None) | Woken::Claimed(None) | Woken::Stopped => {
                        spare.end().await;
                        break 'spares;
                    }
                }
            }
        }
        lock(&self.state).spare = "none".into();
        master.shutdown(MASTER_GRACE).await;
    }

    /// After a spare failed (`why`): the first one's failure ends the session, and `up` says
    /// why; a later one's shows in `status` while the next spare waits [`RETRY`] to boot, and
    /// every claim meanwhile is refused at once with `why` (the run connects as usual rather
    /// than wait for a spare that may never come). False if the session is to end.
    async fn failed(
        &self,
        why: String,
        first: &mut Option<First>,
        claims: &mut mpsc::UnboundedReceiver<oneshot::Sender<Answer>>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        if fail_first(first, why.clone()) {
            return false;
        }
        // One line: it goes to runs on the socket's line protocol.
        let why = why.replace(['\r', '\n'], " ");
        lock(&self.state).spare = format!("failed: {why}");
        let retry = tokio::time::sleep(RETRY);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                () = &mut retry => return true,
                claim = claims.recv() => match claim {
                    Some(claim) => drop(claim.send(Answer::Failed(why.clone()))),
                    None => return false,
                },
                _ = stop.changed() => return false,
            }
        }
    }
}

/// Tells `up`, if the first spare was still to come, that it failed (`why`); whether it was.
fn fail_first(first: &mut Option<First>, why: String) -> bool {
    first.take().is_some_and(|first| {
        let _ = first.send(Err(why));
        true
    })
}

/// A run counted as active, from its claim to its end: the idle limit does not end the session
/// meanwhile, and counts again from the run's end.
struct Running {
    state: State,
    /// Whether the run had a node: counted among the session's runs.
    served: bool,
}

impl Running {
    fn start(state: &State) -> Running {
        lock(state).active += 1;
        Running {
            state: Arc::clone(state),
            served: false,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut s = lock(&self.state);
        s.active -= 1;
        s.runs += u64::from(self.served);
        s.last = Instant::now();
    }
}

/// One connection to the agent's socket: one request.
struct Connection {
    state: State,
    runs_over: Arc<Notify>,
    claims: mpsc::UnboundedSender<oneshot::Sender<Answer>>,
    preloads: mpsc::UnboundedSender<Arc<Preload>>,
    downs: mpsc::UnboundedSender<UnixStream>,
    stop: watch::Receiver<bool>,
    spec: Spec,
}

impl Connection {
    async fn serve(mut self, stream: UnixStream) {
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        match line.trim_end() {
            STATUS => {
                let status = serde_json::to_string(&self.status()).unwrap_or_default();
                let _ = stream
                    .get_mut()
                    .write_all(format!("{status}\n").as_bytes())
                    .await;
            }
            DOWN => {
                let _ = self.downs.send(stream.into_inner());
            }
            given if given.starts_with(CLAIM) => {
                if given[CLAIM.len()..] == *build() {
                    self.claim(stream).await;
                } else {
                    // A run of another build connects as usual, and can say why.
                    let said = format!("{OTHER}{}\n", build());
                    let _ = stream.get_mut().write_all(said.as_bytes()).await;
                }
            }
            // From `up` on a session already up: the new limit counts from now.
            given if given.starts_with(IDLE) => {
                let Some(secs) = given
                    .strip_prefix(IDLE)
                    .and_then(|secs| secs.trim().parse::<u64>().ok())
                    .filter(|&secs| secs > 0)
                else {
                    return;
                };
                {
                    let mut s = lock(&self.state);
                    s.idle = Duration::from_secs(secs);
                    s.last = Instant::now();
                }
                let _ = stream
                    .get_mut()
                    .write_all(format!("{OK}\n").as_bytes())
                    .await;
            }
            // From a run that did not use the spare (it held what the run's build dropped): once
            // it is told, the batch comes before any later claim.
            given if given.starts_with(PRELOAD) && self.preload(&mut stream, &line).await => {
                let _ = stream
                    .get_mut()
                    .write_all(format!("{OK}\n").as_bytes())
                    .await;
            }
            _ => {}
        }
    }

    fn status(&self) -> Status {
        let s = lock(&self.state);
        let idle_left = if s.active > 0 {
            s.idle
        } else {
            s.idle.saturating_sub(s.last.elapsed())
        };
        Status {
            host: self.spec.name.clone(),
            address: self.spec.address.clone(),
            since: s.since,
            idle_left: idle_left.as_secs(),
            runs: s.runs,
            active: s.active,
            spare: s.spare.clone(),
            pid: std::process::id(),
            build: Some(build().to_owned()),
        }
    }

    /// Hands the spare to the run, passes on its identities and what the node prints of its own,
    /// and waits for the run to end.
    async fn claim(&mut self, mut stream: BufReader<UnixStream>) {
        let mut running = Running::start(&self.state);
        let (tx, rx) = oneshot::channel();
        if self.claims.send(tx).is_err() {
            return;
        }
        let (mut spare, ahead) = tokio::select! {
            answer = rx => match answer {
                Ok(Answer::Spare(spare, ahead)) => (*spare, ahead),
                Ok(Answer::Failed(why)) => {
                    let said = format!("{FAILED} {why}\n");
                    let _ = stream.get_mut().write_all(said.as_bytes()).await;
                    return;
                }
                Err(_) => return,
            },
            _ = self.stop.changed() => return,
        };
        let handed = match ahead {
            Some(ahead) => self.hand_held(&mut stream, &spare, ahead).await,
            None => self.hand_over(&mut stream, &mut spare).await,
        };
        if handed.is_some() {
            let mut stop = self.stop.clone();
            let lines = spare.take_lines();
            // What was read past the hand-over comes first (the run sends nothing before its
            // batch, but a split must lose nothing).
            let read_ahead = std::io::Cursor::new(stream.buffer().to_vec());
            let (read, write) = stream.into_inner().into_split();
            let mut read = BufReader::new(tokio::io::AsyncReadExt::chain(read_ahead, read));
            let mut write = tokio::io::BufWriter::new(write);
            // What the node prints, to the end of its session; then how that ended: the run may
            // be waiting to learn whether its function halted the node.
            let passing = async {
                if let Some(mut lines) = lines {
                    lines.follow();
                    pass_on(&mut lines.said, &mut write).await;
                }
                let status = spare.ended().await;
                let status = status.map_or_else(|| "-".to_owned(), |s| s.to_string());
                let _ = write
                    .write_all(format!("{ENDED} {status}\n").as_bytes())
                    .await;
                let _ = write.flush().await;
            };
            tokio::select! {
                // The run closes the connection when it is done with the node.
                () = self.preloads(&mut read) => {}
                () = passing => {}
                _ = stop.changed() => {}
            }
        }
        running.served = handed.is_some();
        drop(running);
        self.runs_over.notify_one();
        spare.end().await;
    }

    /// Takes the batches the run hands over for the next spares until it closes the connection
    /// (a line this build does not know, from a later one, is passed over).
    async fn preloads(&self, stream: &mut (impl AsyncBufRead + Unpin)) {
        let mut line = String::new();
        loop {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line.starts_with(PRELOAD) && !self.preload(stream, &line).await {
                return;
            }
        }
    }

    /// Takes one batch for the next spares: `line` says `preload LEN`, and LEN bytes of what
    /// [`super::preload::encode`] made follow. False if the line or the bytes are not that.
    async fn preload(&self, stream: &mut (impl AsyncBufRead + Unpin), line: &str) -> bool {
        let Some(len) = line
            .trim_end()
            .strip_prefix(PRELOAD)
            .and_then(|n| n.trim().parse::<usize>().ok())
        else {
            return false;
        };
        let mut encoded = vec![0; len];
        if tokio::io::AsyncReadExt::read_exact(stream, &mut encoded)
            .await
            .is_err()
        {
            return false;
        }
        if let Some(preload) = Preload::new(&encoded) {
            let _ = self.preloads.send(Arc::new(preload));
        }
        true
    }

    /// Offers a spare whose connection is made ([`super::HELD`]) and hands the run that connection.
    async fn hand_held(
        &mut self,
        stream: &mut BufReader<UnixStream>,
        spare: &Spare,
        ahead: Ahead,
    ) -> Option<()> {
        let ids = &ahead.ids;
        let first = format!(
            "{HELD} {} {} {} {}",
            ids.remote, ids.local, ids.creation, ids.cookie
        );
        let (connection, read) = ahead.take().await?;
        let read = if read.is_empty() {
            "-".to_owned()
        } else {
            boot::hex_of(&read)
        };
        let line = offer(stream, &format!("{first} {read}"), spare).await?;
        if line.trim_end() != FD {
            return None;
        }
        fd::send(stream.get_ref(), std::os::fd::AsFd::as_fd(&connection))
            .await
            .ok()
    }

    async fn hand_over(
        &mut self,
        stream: &mut BufReader<UnixStream>,
        spare: &mut Spare,
    ) -> Option<()> {
        // What the node says of itself once it has loaded all it was given: the run need not ask.
        let _ = tokio::time::timeout(INFO_WAIT, spare.booted()).await;
        let first = format!("{SPARE} {} {}", spare.socket.display(), spare.remote);
        let line = offer(stream, &first, spare).await?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let [GO, cookie, local] = words.as_slice() else {
            return None;
        };
        spare.go(cookie, local).await.ok()?;
        stream
            .get_mut()
            .write_all(format!("{OK}\n").as_bytes())
            .await
            .ok()
    }
}

/// Passes on to the run what its node prints of its own ([`LOG`], [`SETTLED`]; lines dropped
/// for want of room, before the run followed, as a line saying how many) until the node's
/// session has no more to say; what waits is written together, and flushed whenever nothing
/// more does. Once the run has gone, the rest is taken and dropped: the node must not wait for
/// room that will never come.
async fn pass_on(said: &mut mpsc::Receiver<Said>, write: &mut (impl AsyncWrite + Unpin)) {
    let mut gone = false;
    loop {
        let next = match said.try_recv() {
            Ok(next) => Some(next),
            Err(_) => {
                gone = gone || write.flush().await.is_err();
                said.recv().await
            }
        };
        let Some(next) = next else { return };
        if gone {
            continue;
        }
        let text = match next {
            Said::Line(line) => format!("{LOG}{line}\n"),
            Said::Dropped(n) => format!(
                "{LOG}({n} lines the node printed were dropped here: no run was reading them yet)\n"
            ),
            Said::Done => format!("{SETTLED}\n"),
        };
        gone = write.write_all(text.as_bytes()).await.is_err();
    }
}

/// Offers `spare` to a run: `first` (its kind and what the run needs to take it), then what the
/// spare was given to load ahead and what it said of itself; the run's answer line.
async fn offer(stream: &mut BufReader<UnixStream>, first: &str, spare: &Spare) -> Option<String> {
    let had = spare.preloaded.as_ref().map(|p| &p.digests);
    let offer = format!(
        "{first}\n{}\n{}\n",
        serde_json::to_string(&had).ok()?,
        spare.info().as_deref().unwrap_or("null")
    );
    stream.get_mut().write_all(offer.as_bytes()).await.ok()?;
    let mut line = String::new();
    tokio::time::timeout(GO_LIMIT, stream.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_nodes_lines_are_passed_on_in_order_with_the_count_of_those_dropped() {
        let (tx, mut said) = mpsc::channel(8);
        for next in [
            Said::Line("first".into()),
            Said::Dropped(3),
            Said::Line("after a gap".into()),
            Said::Done,
        ] {
            tx.send(next).await.unwrap();
        }
        drop(tx);
        let mut written = Vec::new();
        pass_on(&mut said, &mut written).await;
        assert_eq!(
            String::from_utf8(written).unwrap(),
            "log first\n\
             log (3 lines the node printed were dropped here: no run was reading them yet)\n\
             log after a gap\n\
             done\n"
        );
    }
}
