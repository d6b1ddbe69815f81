//! One connection to the agent's socket, one request: `status`, `down`, `idle`, `preload`, or a
//! run's `claim` of the spare node, served to its end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::ahead::Ahead;
use super::keeper::Answer;
use super::preload::Preload;
use super::server::{State, lock};
use super::spare::{Said, Spare};
use super::{
    CLAIM, DOWN, ENDED, EVALUATING, FAILED, FD, GO, HELD, IDLE, LOG, OK, OTHER, PRELOAD, SETTLED,
    SPARE, STATUS, Spec, Status, build, fd,
};
use crate::remote::boot;

/// How long a claiming run may take to send its identities.
const GO_LIMIT: Duration = Duration::from_secs(60);
/// How long a claim waits for the spare to say what it is and has (it is loading a batch given
/// ahead): short beside a run's connect timeout; past it, the run asks the node itself.
const INFO_WAIT: Duration = Duration::from_secs(1);

/// Whether the peer of `stream` runs as our own user: nobody else may use the session.
pub(super) fn same_user(stream: &UnixStream) -> bool {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    stream.peer_cred().is_ok_and(|cred| cred.uid() == me)
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
pub(super) struct Connection {
    pub(super) state: State,
    pub(super) runs_over: Arc<Notify>,
    pub(super) claims: mpsc::UnboundedSender<oneshot::Sender<Answer>>,
    pub(super) preloads: mpsc::UnboundedSender<Arc<Preload>>,
    pub(super) downs: mpsc::UnboundedSender<UnixStream>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) spec: Spec,
}

impl Connection {
    pub(super) async fn serve(mut self, stream: UnixStream) {
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
            elixir: Some(self.spec.elixir.clone()),
            ssh_config: self.spec.ssh_config.clone(),
            ssh_options: self.spec.ssh_options.clone(),
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
            Said::Config(Some(file)) => format!("{EVALUATING} {file}\n"),
            Said::Config(None) => format!("{EVALUATING}\n"),
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
