//! The tool's side of the agent's socket: `status`, `down` and a run's claim of the spare node.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::watch;

use super::preload::{self, Digests};
use super::{
    BYE, CLAIM, DOWN, ENDED, EVALUATING, FAILED, FD, GO, HELD, IDLE, LOG, OK, OTHER, PRELOAD,
    SETTLED, SPARE, STATUS, Status, dirs, fd,
};
use crate::config::HostSettings;
use crate::remote::boot;
use crate::remote::node::Identities;
use crate::remote::push::Remote;
use crate::remote::ssh::InConfig;

/// How long a session directory without a socket may be starting before it counts as stale.
const STARTING: Duration = Duration::from_secs(120);
/// How long an agent that accepted a connection may take to say its status.
const STATUS_WAIT: Duration = Duration::from_secs(3);
/// How long a claim's reader may take to stop handing on lines once the claim is closed.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);
/// How long `down` waits for the agent to leave nothing behind.
const DOWN_LIMIT: Duration = Duration::from_secs(30);

/// A connection to an agent.
pub struct Agent {
    stream: BufReader<UnixStream>,
}

impl Agent {
    /// Connects to the agent of the session directory `dir`.
    pub async fn connect(dir: &Path) -> io::Result<Agent> {
        let stream = UnixStream::connect(dir.join(dirs::SOCKET)).await?;
        Ok(Agent {
            stream: BufReader::new(stream),
        })
    }

    /// Sends one line and reads the answer line (without its newline).
    async fn ask(&mut self, line: &str) -> io::Result<String> {
        self.stream
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .await?;
        self.answer().await
    }

    /// Sends a batch for the next spare nodes ([`send_preload`]).
    async fn send_preload(&mut self, encoded: &[u8]) -> io::Result<()> {
        send_preload(self.stream.get_mut(), encoded).await
    }

    async fn answer(&mut self) -> io::Result<String> {
        let mut answer = String::new();
        if self.stream.read_line(&mut answer).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(answer.trim_end().to_owned())
    }
}

/// Sends a batch for the next spare nodes on `stream`: `preload LEN`, then the LEN bytes.
async fn send_preload(stream: &mut (impl AsyncWrite + Unpin), encoded: &[u8]) -> io::Result<()> {
    stream
        .write_all(format!("{PRELOAD}{}\n", encoded.len()).as_bytes())
        .await?;
    stream.write_all(encoded).await
}

/// What a session directory holds.
pub enum Found {
    /// A live agent, and what it says of itself.
    Live(Box<Status>),
    /// A session still starting (its agent does not serve yet).
    Starting,
    /// An agent that took the connection but did not say its status in time: still connecting
    /// (it serves once connected), or stopped.
    Silent,
    /// A session ending (its agent serves no more, and removes its directory itself).
    Ending,
    /// What a dead agent left (removed by [`probe`]).
    Stale,
}

/// Asks the agent of `dir` for its status, waiting a few seconds at most; a directory whose agent
/// is gone is removed.
pub async fn probe(dir: &Path) -> Found {
    match Agent::connect(dir).await {
        Ok(mut agent) => match tokio::time::timeout(STATUS_WAIT, agent.ask(STATUS)).await {
            Ok(Ok(line)) => match serde_json::from_str(&line) {
                Ok(status) => Found::Live(Box::new(status)),
                Err(_) => Found::Starting,
            },
            Ok(Err(_)) => Found::Starting,
            Err(_) => Found::Silent,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound && !old(dir) => Found::Starting,
        Err(_) if dirs::lock_held(dir) => Found::Ending,
        Err(_) => {
            let _ = std::fs::remove_dir_all(dir);
            Found::Stale
        }
    }
}

/// Sets the idle limit of the agent of `dir` to `idle`, counted from now, waiting a few seconds
/// at most for its answer.
pub async fn set_idle(dir: &Path, idle: Duration) -> io::Result<()> {
    let asking = async {
        let mut agent = Agent::connect(dir).await?;
        match agent
            .ask(&format!("{IDLE}{}", idle.as_secs().max(1)))
            .await?
            .as_str()
        {
            OK => Ok(()),
            _ => Err(malformed("answer to `idle`")),
        }
    };
    tokio::time::timeout(STATUS_WAIT, asking)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// Waits until the ending session of `dir` has removed its directory; false if it has not within
/// two minutes.
pub async fn ended(dir: &Path) -> bool {
    let deadline = tokio::time::Instant::now() + STARTING;
    while dir.exists() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The control socket of `host`'s live warm session (same settings, agent serving), if any: a
/// session of ssh run through it logs in to nothing.
pub async fn live_control(host: &HostSettings) -> Option<PathBuf> {
    let dir = dirs::session(&dirs::root().ok()?, &super::key(host));
    let control = dir.join(dirs::CONTROL);
    match probe(&dir).await {
        Found::Live(_) if control.exists() => Some(control),
        _ => None,
    }
}

fn old(dir: &Path) -> bool {
    std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age > STARTING)
}

/// Ends the agent of `dir` and waits until it has left nothing: its remote nodes stopped, its
/// connection closed, its directory removed.
pub async fn down(dir: &Path) -> io::Result<()> {
    let mut agent = Agent::connect(dir).await?;
    let ended = async {
        let said = agent.ask(DOWN).await?;
        if said != BYE {
            return Err(io::Error::other(format!("the agent said `{said}`")));
        }
        // The agent closes the connection as it exits.
        let _ = agent.answer().await;
        while dir.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    };
    tokio::time::timeout(DOWN_LIMIT, ended)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// A spare node claimed for one run (how it reaches the run comes beside it, as [`Claimed`]).
/// Dropping the claim tells the agent the run is over.
pub struct Claim {
    agent: Link,
    /// What the node was given to load ahead, if anything (and if it loaded).
    pub had: Option<Digests>,
    /// What the node said of itself once ready, as `info` would answer (no application asked
    /// about), if it did: the run need not ask.
    pub known: Option<Remote>,
}

/// The claim's connection to the agent: asked and answered line by line until the run has its
/// node, then followed ([`Claim::follow`]).
enum Link {
    Asking(Agent),
    Following(Following),
}

/// A followed claim's connection: the run writes batches on it while a task of its own reads what
/// the agent passes on.
struct Following {
    write: OwnedWriteHalf,
    /// Whether the node has said its own output of the run's work is all out ([`SETTLED`]).
    settled: watch::Receiver<bool>,
    /// How the spare's session ended ([`ENDED`]): its exit status, if it had one, and the
    /// project's config file the node was evaluating then, if it was ([`EVALUATING`]).
    ended: watch::Receiver<Option<Ended>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Following {
    fn drop(&mut self) {
        // What the node would say after the run has let it go is no longer the run's.
        self.reader.abort();
    }
}

/// How a claimed spare node reaches the run.
pub enum Claimed {
    /// The node waits for the run's identities ([`Claim::go`]), then connects to `socket` (in
    /// the session's private directory), where the run listens; `remote` is its full name
    /// (fresh for this node, which has started distribution under it).
    Waiting { socket: PathBuf, remote: String },
    /// The agent made the node's connection ahead: the run takes it as it is.
    Held(Held),
}

/// How a spare's session ended: its exit status, if it had one, and the project's config file
/// the node was evaluating then (`config/runtime.exs`), if it was: a `System.halt/1` in that file
/// ended it. (A warm run evaluates its config files in the run, their output shown as it comes:
/// none was held.)
type Ended = (Option<i32>, Option<InConfig>);

/// A spare's connection the agent made ahead ([`super::ahead`]), handed to the run.
pub struct Held {
    /// The names, creation and cookie its handshake was made with.
    pub ids: Identities,
    /// The connection.
    pub stream: UnixStream,
    /// What the agent read of it past its last whole frame.
    pub read: Vec<u8>,
}

/// Claims the spare node of the session in `dir`, waiting at most `limit` for it.
pub async fn claim(dir: &Path, limit: Duration) -> io::Result<(Claim, Claimed)> {
    let claiming = async {
        let mut agent = Agent::connect(dir).await?;
        let said = match agent.ask(&format!("{CLAIM}{}", super::build())).await {
            // An agent older than builds were told apart does not know the request, and hangs up.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(other_build()),
            said => said?,
        };
        if said.starts_with(OTHER) {
            return Err(other_build());
        }
        let (kind, rest) = said
            .split_once(' ')
            .ok_or_else(|| malformed("answer to `claim`"))?;
        // Used for the kinds below only: words of the protocol, never the agent's.
        let bad = || malformed(&format!("`{kind}` answer"));
        // A node that waits is told of now; a held connection's socket comes once the answers
        // below are read.
        let held = match kind {
            SPARE => {
                // The path may hold spaces; the name never does.
                let (path, remote) = rest.rsplit_once(' ').ok_or_else(bad)?;
                Err(Claimed::Waiting {
                    socket: PathBuf::from(path),
                    remote: remote.to_owned(),
                })
            }
            HELD => {
                let [remote, local, creation, cookie, read] =
                    rest.split(' ').collect::<Vec<_>>()[..]
                else {
                    return Err(bad());
                };
                let ids = Identities {
                    local: local.parse().map_err(|_| bad())?,
                    remote: remote.parse().map_err(|_| bad())?,
                    cookie: cookie.to_owned(),
                    creation: creation.parse().map_err(|_| bad())?,
                };
                let read = match read {
                    "-" => Vec::new(),
                    hex => boot::bytes_of_hex(hex).ok_or_else(bad)?,
                };
                Ok((ids, read))
            }
            // The agent's own words: why its last spare failed.
            FAILED => return Err(io::Error::other(format!("its spare node failed: {rest}"))),
            _ => return Err(malformed("answer to `claim`")),
        };
        let had = serde_json::from_str(&agent.answer().await?).map_err(io::Error::other)?;
        // A batch given ahead that did not load leaves nothing to rely on.
        let (had, known) = match preload::known(&agent.answer().await?) {
            Some((true, known)) => (had, Some(known)),
            Some((false, _)) => (None, None),
            None => (had, None),
        };
        let node = match held {
            Ok((ids, read)) => {
                let stream = agent.stream.get_mut();
                stream.write_all(format!("{FD}\n").as_bytes()).await?;
                let fd = fd::receive(stream).await?;
                let stream = std::os::unix::net::UnixStream::from(fd);
                stream.set_nonblocking(true)?;
                Claimed::Held(Held {
                    ids,
                    stream: UnixStream::from_std(stream)?,
                    read,
                })
            }
            Err(waiting) => waiting,
        };
        let agent = Link::Asking(agent);
        Ok((Claim { had, known, agent }, node))
    };
    tokio::time::timeout(limit, claiming)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// Hands the agent of the session directory `dir` a batch (as [`super::preload::encode`] makes
/// it) for its next spare nodes, from a run that did not claim one; returns once the agent has
/// it, ahead of any later claim.
pub async fn hand_preload(dir: &Path, encoded: &[u8]) -> io::Result<()> {
    let mut agent = Agent::connect(dir).await?;
    agent.send_preload(encoded).await?;
    match agent.answer().await?.as_str() {
        OK => Ok(()),
        _ => Err(malformed("answer to `preload`")),
    }
}

/// Why a session's agent does not serve a run: it is of another [`super::build`].
#[derive(Debug, thiserror::Error)]
#[error("it was started by another build of mix-remote")]
pub struct OtherBuild;

fn other_build() -> io::Error {
    io::Error::other(OtherBuild)
}

/// The error for a line of the agent's that is not as the protocol has it: `what` says which,
/// never the line itself (a `held` line holds the cookie of the node it offers).
fn malformed(what: &str) -> io::Error {
    io::Error::other(format!("the agent's {what} is malformed"))
}

impl Claim {
    /// Hands the run's cookie and node name to a [`Claimed::Waiting`] spare node, which then
    /// connects to its socket.
    pub async fn go(&mut self, cookie: &str, local: &str) -> io::Result<()> {
        let Link::Asking(agent) = &mut self.agent else {
            return Err(io::Error::other("the node was taken already"));
        };
        let said = agent.ask(&format!("{GO} {cookie} {local}")).await?;
        if said == OK {
            Ok(())
        } else {
            Err(malformed("answer to `go`"))
        }
    }

    /// Once the run has its node: hands each line the node prints of its own, as the agent
    /// passes it on ([`LOG`]), to `line`, and takes note of what the agent says of the node
    /// ([`SETTLED`], [`EVALUATING`], [`ENDED`]) for [`Claim::settled`] and [`Claim::ended`].
    pub fn follow(self, line: impl Fn(&str) + Send + 'static) -> Claim {
        let Link::Asking(agent) = self.agent else {
            return self;
        };
        // What the agent wrote past the answers read so far comes first.
        let read_ahead = std::io::Cursor::new(agent.stream.buffer().to_vec());
        let (read, write) = agent.stream.into_inner().into_split();
        let (settled_tx, settled) = watch::channel(false);
        let (ended_tx, ended) = watch::channel(None);
        let reader = tokio::spawn(async move {
            let mut read = BufReader::new(read_ahead.chain(read));
            let mut said = String::new();
            let mut evaluating = None;
            loop {
                said.clear();
                if read.read_line(&mut said).await.unwrap_or(0) == 0 {
                    return;
                }
                let said = said.trim_end_matches('\n');
                if let Some(text) = said.strip_prefix(LOG) {
                    line(text);
                } else if said == SETTLED {
                    settled_tx.send_replace(true);
                } else if let Some(file) = said.strip_prefix(EVALUATING) {
                    let file = file.strip_prefix(' ').filter(|f| !f.is_empty());
                    evaluating = file.map(str::to_owned);
                } else if let Some(status) = said.strip_prefix(ENDED) {
                    let status = status.trim().parse().ok();
                    let file = evaluating.take();
                    let file = file.map(|file| InConfig {
                        file,
                        printed: Vec::new(),
                    });
                    ended_tx.send_replace(Some((status, file)));
                }
            }
        });
        Claim {
            agent: Link::Following(Following {
                write,
                settled,
                ended,
                reader,
            }),
            ..self
        }
    }

    /// Waits at most `limit` for the node to say its own output of the run's work is all out,
    /// as the agent passes it on; false if it has not.
    pub async fn settled(&mut self, limit: Duration) -> bool {
        let Link::Following(following) = &mut self.agent else {
            return false;
        };
        let settled = following.settled.wait_for(|settled| *settled);
        matches!(tokio::time::timeout(limit, settled).await, Ok(Ok(_)))
    }

    /// The exit status of the spare's session, once the agent says it ended ([`super::ENDED`],
    /// after the last of the node's lines), within `limit`: `None` past it, or when it ended by
    /// a signal.
    pub async fn ended(&mut self, limit: Duration) -> Option<i32> {
        self.end(limit).await.0
    }

    /// [`Claim::ended`], with the project's config file the node was evaluating as its session
    /// ended, if it was (a `System.halt/1` in it ended the node), as the agent said it
    /// ([`super::EVALUATING`]).
    pub async fn end(&mut self, limit: Duration) -> Ended {
        match &mut self.agent {
            Link::Asking(agent) => {
                let said = tokio::time::timeout(limit, agent.answer()).await;
                let status = said.ok().and_then(Result::ok).and_then(|said| {
                    said.strip_prefix(ENDED)
                        .and_then(|status| status.trim().parse().ok())
                });
                (status, None)
            }
            Link::Following(following) => {
                let ended = following.ended.wait_for(Option::is_some);
                match tokio::time::timeout(limit, ended).await {
                    Ok(Ok(ended)) => ended.clone().unwrap_or_default(),
                    _ => (None, None),
                }
            }
        }
    }

    /// Lets the node go: the agent stops what is left of it. No line of the node's is handed on
    /// once this returns.
    pub async fn close(self) {
        if let Link::Following(mut following) = self.agent {
            following.reader.abort();
            let _ = tokio::time::timeout(CLOSE_LIMIT, &mut following.reader).await;
        }
    }

    /// Hands the agent this run's batch (as [`super::preload::encode`] makes it), for the next
    /// spare nodes to load ahead.
    pub async fn preload(&mut self, encoded: &[u8]) -> io::Result<()> {
        match &mut self.agent {
            Link::Asking(agent) => agent.send_preload(encoded).await,
            Link::Following(following) => send_preload(&mut following.write, encoded).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`claim`] makes of an agent of `dir` that answers `said` to the claim.
    async fn claim_answered(dir: &Path, said: &str) -> String {
        let listener = tokio::net::UnixListener::bind(dir.join(dirs::SOCKET)).unwrap();
        let answer = format!("{said}\nnull\nnull\n");
        let agent = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(answer.as_bytes()).await.unwrap();
            // Held until the claim has read all it wants.
            let mut rest = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest).await;
        });
        let error = match claim(dir, Duration::from_secs(60)).await {
            Ok(_) => panic!("{said:?} was taken"),
            Err(e) => e.to_string(),
        };
        agent.abort();
        let _ = std::fs::remove_file(dir.join(dirs::SOCKET));
        error
    }

    #[tokio::test]
    async fn a_malformed_answer_is_named_by_its_kind_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let cookie = "c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee";
        for (said, error) in [
            (
                format!("{HELD} a@localhost b@localhost 7 {cookie} nothex"),
                "the agent's `held` answer is malformed",
            ),
            (
                format!("{HELD} a@localhost b@localhost seven {cookie} -"),
                "the agent's `held` answer is malformed",
            ),
            (
                format!("{SPARE} {cookie}"),
                "the agent's `spare` answer is malformed",
            ),
            (
                format!("{cookie} {cookie}"),
                "the agent's answer to `claim` is malformed",
            ),
            (
                cookie.to_owned(),
                "the agent's answer to `claim` is malformed",
            ),
        ] {
            assert_eq!(claim_answered(dir.path(), &said).await, error, "{said}");
        }
    }

    /// An agent in `dir` that reads one request, answers `answer` (nothing: it hangs up), and
    /// gives the request.
    fn answering_once(dir: &Path, answer: &'static str) -> tokio::task::JoinHandle<String> {
        let listener = tokio::net::UnixListener::bind(dir.join(dirs::SOCKET)).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            let mut asked = String::new();
            stream.read_line(&mut asked).await.unwrap();
            stream.get_mut().write_all(answer.as_bytes()).await.unwrap();
            asked
        })
    }

    #[tokio::test]
    async fn an_agent_of_another_build_is_not_claimed() {
        let dir = tempfile::tempdir().unwrap();
        // One that says its build, and one older than builds were told apart, which hangs up on
        // a request it does not know.
        for answer in ["other 0.1.0-1.2.3.4.5\n", ""] {
            let agent = answering_once(dir.path(), answer);
            let Err(e) = claim(dir.path(), Duration::from_secs(60)).await else {
                panic!("claimed from an agent that answered {answer:?}");
            };
            assert!(
                e.get_ref().is_some_and(|e| e.is::<OtherBuild>()),
                "{answer:?}: {e}"
            );
            assert_eq!(
                agent.await.unwrap(),
                format!("claim {}\n", crate::remote::agent::build())
            );
            std::fs::remove_file(dir.path().join(dirs::SOCKET)).unwrap();
        }
    }

    #[tokio::test]
    async fn a_spare_that_failed_is_told_with_the_agents_reason() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            claim_answered(dir.path(), "failed the spare node ended by itself").await,
            "its spare node failed: the spare node ended by itself"
        );
    }

    #[tokio::test]
    async fn an_agent_that_does_not_take_an_idle_limit_is_told_from_one_that_does() {
        let dir = tempfile::tempdir().unwrap();
        for (answer, took) in [("ok\n", true), ("", false)] {
            // One that does not know the request hangs up.
            let agent = answering_once(dir.path(), answer);
            let set = set_idle(dir.path(), Duration::from_secs(90)).await;
            assert_eq!(set.is_ok(), took, "{set:?}");
            assert_eq!(agent.await.unwrap(), "idle 90\n");
            std::fs::remove_file(dir.path().join(dirs::SOCKET)).unwrap();
        }
    }

    #[tokio::test]
    async fn an_agent_that_holds_its_lock_is_ending_and_one_that_does_not_is_dead() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("session");
        std::fs::create_dir(&dir).unwrap();
        // A socket nobody listens on any more: connecting to it is refused.
        drop(std::os::unix::net::UnixListener::bind(dir.join(dirs::SOCKET)).unwrap());
        let lock = dirs::hold_lock(&dir).unwrap();
        assert!(matches!(probe(&dir).await, Found::Ending));
        assert!(
            dir.exists(),
            "an ending agent's directory is its own to remove"
        );
        drop(lock);
        assert!(matches!(probe(&dir).await, Found::Stale));
        assert!(!dir.exists());
    }
}
