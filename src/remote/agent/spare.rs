//! One spare node, booted ahead through the agent's master connection: its own multiplexed SSH
//! session runs the launcher, with a reverse forward of its own to a Unix socket in the session
//! directory that no one listens on yet. The node boots as far as it can without the run (the
//! boot program and the relay loaded) and waits on stdin for the names and cookie of a run; only
//! then does it connect back: to the run that claimed it, or to the agent, which makes that
//! connection ahead for the run to come (`ahead`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};

use super::preload::Preload;
use crate::remote::boot::{self, CONFIG, CONNECTED, DONE, INFO, MARKER, NODE_HOST};
use crate::remote::ssh::{self, Control, SshError, Target};

/// `mix-remote:spare`: the spare's node has started and runs the boot program.
const BOOTED: &str = "spare";

/// How long a spare's session may take to end by itself once its stdin is closed.
const END_GRACE: Duration = Duration::from_secs(5);

/// How long a keepalive may wait for room in the spare's stdin before it is left out.
const KEEPALIVE_WRITE: Duration = Duration::from_secs(1);

/// How many of the node's own lines wait for the run that claims it to follow them; more are
/// dropped meanwhile, and counted where they would have been (the node is never held up by a
/// run that does not read). Once the run follows, the node's output waits for it instead, as a
/// cold run's does for its session.
const LINES_HELD: usize = 1024;

/// What the node prints of its own on its session's stdout and stderr, for the run that claims it.
#[derive(Debug, PartialEq)]
pub enum Said {
    /// A line (Logger's, `:user`'s), without its newline.
    Line(String),
    /// How many lines were dropped here, before the run followed, for want of room.
    Dropped(u64),
    /// The node's word that its own output of the run's work is all out ([`DONE`]).
    Done,
    /// The project's config file the node evaluates (`config/runtime.exs`), or `None` once it
    /// is done with it ([`CONFIG`]).
    Config(Option<String>),
}

/// The node's own lines as the agent takes them for the run that claimed the node.
pub struct Lines {
    /// What the node said, in order.
    pub said: mpsc::Receiver<Said>,
    followed: Arc<AtomicBool>,
}

impl Lines {
    /// The run follows the lines: from now on none is dropped, and the node waits for room.
    pub fn follow(&self) {
        self.followed.store(true, Ordering::Relaxed);
    }
}

/// Why a spare could not be booted.
#[derive(Debug, thiserror::Error)]
pub enum SpareError {
    /// ssh could not be run.
    #[error("cannot run ssh: {0}")]
    Spawn(std::io::Error),
    /// The master refused the forward.
    #[error(
        "the server refused the spare node's reverse forward: {0} (its sshd must allow it: AllowTcpForwarding yes or remote, and PermitListen allowing 127.0.0.1 on any port)"
    )]
    Forward(String),
    /// The session would not take the launcher's input.
    #[error("the spare node's session closed at once")]
    Closed,
}

/// A booting or waiting spare node.
pub struct Spare {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The Unix socket the node connects to once it has a run's identities.
    pub socket: PathBuf,
    /// The full name the run gives the node as it connects, fresh for this node.
    pub remote: String,
    control: PathBuf,
    target: Target,
    /// How many of its markers ([`BOOTED`], [`INFO`]: ready, booted or done with a batch given
    /// to it ahead) the node has printed, and its last [`INFO`] text...
    seen: watch::Receiver<(u32, Option<Arc<str>>)>,
    /// ... and how many it will have printed once it waits for a run, all it was given loaded.
    expected: u32,
    /// The batch the node was given to load ahead, if any.
    pub preloaded: Option<Arc<Preload>>,
    /// What the node prints of its own, until the run that claims it takes it.
    lines: Option<Lines>,
}

impl Spare {
    /// Boots spare number `n` through the master whose control socket is `control`, in the
    /// session directory `dir`, giving it `preload` to load ahead.
    pub async fn boot(
        dir: &Path,
        control: &Path,
        n: u64,
        target: &Target,
        remote_command: &str,
        preload: Option<Arc<Preload>>,
    ) -> Result<Spare, SpareError> {
        let socket = dir.join(format!("node-{n}.sock"));
        let master = Control::new(control, target);
        let forward = [(socket.as_path(), 0)];
        let port = match master.forward_remote(&forward).await {
            Ok(ports) => ports[0],
            Err(SshError::Forward { said, .. }) => return Err(SpareError::Forward(said)),
            Err(e) => return Err(SpareError::Forward(e.to_string())),
        };
        let started = Spare::start(&socket, port, control, target, remote_command, preload).await;
        if started.is_err() {
            // The server listens for a spare that will not come: it stops, as for one that ends.
            let _ = master.cancel_remote(&forward).await;
        }
        started
    }

    /// [`Spare::boot`] once the server has granted the forward from `port` to `socket`: starts the
    /// spare's session and gives it its input.
    async fn start(
        socket: &Path,
        port: u16,
        control: &Path,
        target: &Target,
        remote_command: &str,
        preload: Option<Arc<Preload>>,
    ) -> Result<Spare, SpareError> {
        let mut cmd = Command::new("ssh");
        cmd.arg("-S")
            .arg(control)
            .args(["-o", "ControlMaster=no", "-T"]);
        ssh::add_target_options(&mut cmd, target);
        cmd.arg("--").arg(&target.host).arg(remote_command);
        // Dies with the agent, as the master does (and so does its node, its stdin closed).
        let args: Vec<OsString> = cmd.as_std().get_args().map(ToOwned::to_owned).collect();
        let mut cmd = ssh::spawn::command("ssh", &args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(SpareError::Spawn)?;
        let (seen_tx, seen) = watch::channel((0, None));
        let (said_tx, said) = mpsc::channel(LINES_HELD);
        let followed = Arc::new(AtomicBool::new(false));
        let keeper = Keeper {
            tx: said_tx,
            followed: Arc::clone(&followed),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        // Until the launcher says the session runs, stderr is the login's (as for a cold run,
        // whose tool shows it with -v only).
        let started = Arc::new(AtomicBool::new(false));
        if let Some(stdout) = child.stdout.take() {
            let keeper = keeper.clone();
            let started = Arc::clone(&started);
            // Read to the end, lossily: a stray byte must not stop the reading before the
            // markers that come after it.
            tokio::spawn(async move {
                let mut lines = ssh::PipeLines::new(stdout);
                while let Some((line, continued)) = lines.next().await {
                    match line.strip_prefix(MARKER).filter(|_| !continued) {
                        Some(CONNECTED) => started.store(true, Ordering::Relaxed),
                        Some(BOOTED) => seen_tx.send_modify(|seen| seen.0 += 1),
                        Some(m) if m.starts_with(INFO) => seen_tx.send_modify(|seen| {
                            *seen = (seen.0 + 1, Some(m[INFO.len()..].into()));
                        }),
                        Some(DONE) => keeper.keep(Said::Done).await,
                        Some(m) if m.starts_with(CONFIG) => {
                            let file = &m[CONFIG.len()..];
                            let file = (!file.is_empty()).then(|| file.to_owned());
                            keeper.keep(Said::Config(file)).await;
                        }
                        Some(_) => {}
                        // As a run shows none (Elixir's Logger starts each message with one).
                        None if line.trim().is_empty() => {}
                        None => keeper.keep(Said::Line(line)).await,
                    }
                }
                keeper.ended().await;
            });
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = ssh::PipeLines::new(stderr);
                while let Some((line, _)) = lines.next().await {
                    if started.load(Ordering::Relaxed)
                        && !line.trim().is_empty()
                        && !ssh::is_ssh_own(&line)
                    {
                        keeper.keep(Said::Line(line)).await;
                    }
                }
                keeper.ended().await;
            });
        }
        let mut stdin = child.stdin.take().ok_or(SpareError::Closed)?;
        // 64 random bits, hex, as a cold run names its node.
        let remote = format!("mix_remote_{:016x}@{NODE_HOST}", rand::random::<u64>());
        let mut input = prelude(port);
        if let Some(preload) = &preload {
            input.extend_from_slice(&preload.frame);
        }
        stdin
            .write_all(&input)
            .await
            .map_err(|_| SpareError::Closed)?;
        Ok(Spare {
            child,
            stdin: Some(stdin),
            socket: socket.to_owned(),
            remote,
            control: control.to_owned(),
            target: target.clone(),
            seen,
            expected: 2 + u32::from(preload.is_some()),
            preloaded: preload,
            lines: Some(Lines { said, followed }),
        })
    }

    /// What the node prints of its own, for the run that claims it: what it printed so far, then
    /// the rest as it comes (once only).
    pub fn take_lines(&mut self) -> Option<Lines> {
        self.lines.take()
    }

    /// Resolves once the node runs the boot program and has loaded all it was given ahead (it
    /// then waits for its run).
    pub fn booted(&self) -> impl Future<Output = ()> + 'static {
        let (mut seen, expected) = (self.seen.clone(), self.expected);
        async move {
            let _ = seen.wait_for(|seen| seen.0 >= expected).await;
        }
    }

    /// What the node last said of itself ([`INFO`], see [`super::preload::Known`]), once it has
    /// loaded all it was given ahead; `None` before.
    pub fn info(&self) -> Option<Arc<str>> {
        let seen = self.seen.borrow();
        (seen.0 >= self.expected).then(|| seen.1.clone()).flatten()
    }

    /// Gives the node `preload` to load ahead (the batch of a later run than what it has).
    pub async fn preload(&mut self, preload: Arc<Preload>) {
        if let Some(stdin) = self.stdin.as_mut()
            && stdin.write_all(&preload.frame).await.is_ok()
        {
            self.preloaded = Some(preload);
            self.expected += 1;
        }
    }

    /// Tells the node, which waits for its run unconnected, that the agent is there: an empty
    /// frame, which it skips (templates/boot.exs, `awaited_frame`). Given up past a second (a
    /// stdin pipe full behind a stalled link): four bytes go into a pipe whole or not at all.
    pub async fn keepalive(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            let frame = boot::frame(&[]);
            let _ = tokio::time::timeout(KEEPALIVE_WRITE, stdin.write_all(&frame)).await;
        }
    }

    /// Hands the node a run's cookie and node name: it connects to [`Spare::socket`].
    pub async fn go(&mut self, cookie: &str, local: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        stdin
            .write_all(&boot::identity_frames(cookie, local))
            .await?;
        stdin.flush().await
    }

    /// Resolves when the node's session has ended (the node halted or was lost), with its exit
    /// status if it exited with one.
    pub async fn ended(&mut self) -> Option<i32> {
        self.child.wait().await.ok().and_then(|s| s.code())
    }

    /// Stops the node (its stdin closes: it halts, removing its directory on the server), waits
    /// for its session to end (killing it after a grace), and withdraws its forward.
    pub async fn end(mut self) {
        self.stdin.take();
        if tokio::time::timeout(END_GRACE, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let master = Control::new(&self.control, &self.target);
        let _ = master.cancel_remote(&[(self.socket.as_path(), 0)]).await;
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Where the readers of the node's stdout and stderr keep what it says: while no run follows, as
/// long as there is room (what is dropped is counted, and the count said in its place once
/// there is room again); once one does, all of it, waiting for room.
#[derive(Clone)]
struct Keeper {
    tx: mpsc::Sender<Said>,
    followed: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl Keeper {
    async fn keep(&self, said: Said) {
        if self.followed.load(Ordering::Relaxed) {
            let gap = self.dropped.swap(0, Ordering::Relaxed);
            if gap > 0 {
                let _ = self.tx.send(Said::Dropped(gap)).await;
            }
            let _ = self.tx.send(said).await;
            return;
        }
        let gap = self.dropped.swap(0, Ordering::Relaxed);
        if gap > 0 && self.tx.try_send(Said::Dropped(gap)).is_err() {
            self.dropped.fetch_add(gap + 1, Ordering::Relaxed);
        } else if self.tx.try_send(said).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The pipe has ended: a count of lines dropped last is said, for a run that follows.
    async fn ended(&self) {
        let gap = self.dropped.swap(0, Ordering::Relaxed);
        if gap > 0 && self.followed.load(Ordering::Relaxed) {
            let _ = self.tx.send(Said::Dropped(gap)).await;
        }
    }
}

/// Everything the boot session reads before the run's identities: the start frame (printing
/// [`BOOTED`] first, in Erlang as the rest of that frame), the forward's port and the beams.
fn prelude(port: u16) -> Vec<u8> {
    boot::start_frames(port, false, &format!("io:format(\"{MARKER}{BOOTED}~n\"), "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prelude_and_the_identities_make_the_boot_input() {
        let mut input = prelude(4242);
        input.extend(boot::identity_frames("k", "b@localhost"));
        let cold = boot::stdin_input(4242, false, "k", "b@localhost");
        let say = b"io:format(\"mix-remote:spare~n\"), ";
        // The start frame is longer by what it says first; the rest is the cold input's.
        let start = |input: &[u8]| u32::from_be_bytes(input[..4].try_into().unwrap()) as usize;
        assert_eq!(start(&input), start(&cold) + say.len());
        assert!(input[4..].starts_with(b"io:format(\"mix-remote:spare~n\"), Otp = "));
        assert!(input[4 + say.len()..] == cold[4..]);
    }

    #[tokio::test]
    async fn what_is_dropped_before_the_run_follows_is_counted_in_its_place_and_nothing_after() {
        let (tx, mut rx) = mpsc::channel(2);
        let followed = Arc::new(AtomicBool::new(false));
        let keeper = Keeper {
            tx,
            followed: Arc::clone(&followed),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let line = |text: &str| Said::Line(text.to_owned());
        for text in ["1", "2", "3", "4"] {
            keeper.keep(line(text)).await;
        }
        assert_eq!(rx.try_recv().ok(), Some(line("1")));
        // Room for the count, not yet for the line after it: that one is counted too.
        keeper.keep(line("5")).await;
        assert_eq!(rx.try_recv().ok(), Some(line("2")));
        assert_eq!(rx.try_recv().ok(), Some(Said::Dropped(2)));
        // Once the run follows, the keeper waits for room: the count, then every line.
        followed.store(true, Ordering::Relaxed);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(said) = rx.recv().await {
                got.push(said);
            }
            got
        });
        for said in [line("6"), line("7"), line("8"), Said::Done] {
            keeper.keep(said).await;
        }
        keeper.ended().await;
        drop(keeper);
        assert_eq!(
            reader.await.unwrap(),
            [
                Said::Dropped(1),
                line("6"),
                line("7"),
                line("8"),
                Said::Done
            ]
        );
    }
}
