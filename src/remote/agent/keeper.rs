//! The spare's keeper: keeps one spare node booted (and, while no run is going on, connected
//! ahead), hands it to the claim that asks, and boots the next.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::ahead::Ahead;
use super::preload::Preload;
use super::server::{State, lock};
use super::spare::Spare;
use crate::remote::ssh::{Master, Target};

/// How long the master may take to close once its session ends.
const MASTER_GRACE: Duration = Duration::from_secs(5);
/// How long to wait before booting again after a spare failed to boot.
const RETRY: Duration = Duration::from_secs(2);
/// How often a spare that waits for its run unconnected (while a run goes on) hears from the
/// agent: an empty frame on its stdin ([`Spare::keepalive`]). One that hears nothing at all for
/// 45 s (templates/boot.exs, `@quiet_limit_ms`) takes the agent for gone and halts: its session
/// may be lost without its stdin ending.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// The keeper's answer to a claim.
pub(super) enum Answer {
    /// The spare, with its connection if the agent made it ahead.
    Spare(Box<Spare>, Option<Ahead>),
    /// No spare to hand: the last one failed (why), and the next is not booted yet.
    Failed(String),
}

/// Where the keeper says how the first spare did: `Ok` once it is ready, or why it failed.
pub(super) type First = oneshot::Sender<Result<(), String>>;

/// Keeps one spare node booted (and, while no run is going on, connected ahead), hands it to the
/// claim that asks, and boots the next.
pub(super) struct Keeper {
    /// The session directory, where each spare's sockets go.
    pub(super) dir: PathBuf,
    /// The master connection's control socket, which the spares' sessions go through.
    pub(super) control: PathBuf,
    /// The host as ssh reaches it.
    pub(super) target: Target,
    /// The command that boots a spare node on the server.
    pub(super) remote_command: String,
    /// What `status` and the connections read.
    pub(super) state: State,
    /// Told when a run has ended.
    pub(super) runs_over: Arc<Notify>,
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
    Keepalive,
}

impl Keeper {
    pub(super) async fn keep(
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
            let mut keepalive = tokio::time::interval(KEEPALIVE);
            keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                    _ = keepalive.tick(), if up && ahead.is_none() => Woken::Keepalive,
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
                    Woken::Keepalive => spare.keepalive().await,
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
