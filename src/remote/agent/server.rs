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

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::{BYE, CONNECTED, READY, Spec, TIMED_OUT, UNABLE, dirs};
use crate::remote::boot;
use crate::remote::private_dir::{self, PrivateDir};
use crate::remote::ssh::{Master, Target};

use super::connection::{Connection, same_user};
use super::keeper::Keeper;

/// The hidden first argument that makes the tool a session's agent.
pub const AGENT: &str = "__agent";

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
pub(super) struct Shared {
    /// When the session came up, in Unix seconds.
    pub(super) since: u64,
    /// Runs served (those that had a node).
    pub(super) runs: u64,
    /// Runs going on, which hold the idle limit off.
    pub(super) active: u64,
    /// When the last run ended, or the idle limit was set: the idle time counts from it.
    pub(super) last: Instant,
    /// The idle limit: the spec's, or what `up` set since.
    pub(super) idle: Duration,
    /// The spare node's state, as `status` shows it (`booting`, `ready`, `failed: WHY`...).
    pub(super) spare: String,
}

pub(super) type State = Arc<Mutex<Shared>>;

pub(super) fn lock(state: &State) -> std::sync::MutexGuard<'_, Shared> {
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
        origin: spec.origin.clone(),
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
                host: spec.name.clone(),
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
                        host: spec.name.clone(),
                        why,
                    }),
                Err(_) => Err(AgentError::BootTimeout {
                    host: spec.name.clone(),
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
