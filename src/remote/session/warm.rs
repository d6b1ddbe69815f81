//! A run through a warm session (`mix-remote up`): instead of connecting and booting, the run
//! claims the session's spare node, which is already booted on the server behind the session's
//! SSH connection (with distribution started under a name of its own). Either the agent has
//! made the node's connection ahead, and the run takes it over (socket, names and cookie) over
//! the agent's owner-only socket, or the run hands the node a fresh cookie and our fresh node
//! name that way and takes its connection on the Unix socket the spare's reverse forward ends
//! in. From then on, the run is the same as a cold one: push, work, and the node halts when the
//! run's node disconnects.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{LocalEnd, SETTLE_LIMIT, Session, SessionError, Stats, TEARDOWN_GRACE, timeout};
use crate::config::HostSettings;
use crate::events::Stage;
use crate::remote::agent::{self, client, dirs, preload};
use crate::remote::boot;
use crate::remote::console::{self, Input};
use crate::remote::invoke::Ready;
use crate::remote::job::Job;
use crate::remote::node::{Identities, Node};
use crate::report::Reporter;

/// The live session of `host`, with its spare node claimed for this run; `None` (and a note for
/// `-v`) when there is none to use, and the run connects as usual.
pub(super) async fn claim(
    host: &HostSettings,
    report: &Reporter,
) -> Option<(client::Claim, client::Claimed)> {
    let dir = session_dir(host)?;
    if !dir.exists() {
        say_none(host, report);
        return None;
    }
    let limit = Duration::from_secs(host.connect_timeout);
    match client::claim(&dir, limit).await {
        Ok(claim) => Some(claim),
        // Its spare node runs another boot program: worth saying without `-v`, as every run
        // pays for it until the session is renewed.
        Err(e) if e.get_ref().is_some_and(|e| e.is::<client::OtherBuild>()) => {
            report.warning(&format!(
                "the warm session of {} was started by another build of mix-remote: connecting as usual (`mix-remote up --host {}` renews it)",
                host.name, host.name
            ));
            None
        }
        Err(e) => {
            report.verbose(&format!(
                "the warm session of {} cannot serve this run ({e}): connecting as usual",
                host.name
            ));
            None
        }
    }
}

/// Whether the spare of `claim` holds something `job`'s build dropped (a module, a `priv/` file, an
/// empty `priv/` directory the build no longer has empty, or an application, given to it ahead by
/// an earlier run): such a node would not serve the run as a fresh one does, so the run connects
/// as usual, and says why for `-v`.
pub(super) async fn holds_dropped(
    claim: &client::Claim,
    job: &Job,
    host: &HostSettings,
    report: &Reporter,
) -> bool {
    let Some(had) = &claim.had else {
        return false;
    };
    let Ok((items, _)) = job.wire.items().await else {
        return false;
    };
    match preload::removed(had, &items.digests) {
        Some(item) => {
            report.verbose(&format!(
                "the warm session of {} holds {item}, which this build no longer has: connecting as usual",
                host.name
            ));
            true
        }
        None => false,
    }
}

/// Hands the warm session of `host` this run's batch for its next spare nodes to load ahead
/// (after a run that did not use its spare: see [`holds_dropped`]). An agent that does not take
/// it in time keeps giving its spares the old batch: a warning says how to start a session that
/// follows the build.
pub(super) async fn hand_batch(host: &HostSettings, job: &Job, report: &Reporter) {
    let (Some(dir), Ok((prepared, _))) = (session_dir(host), job.wire.get().await) else {
        return;
    };
    let encoded = preload::encode(&prepared);
    let handing = client::hand_preload(&dir, &encoded);
    match tokio::time::timeout(HAND_LIMIT, handing).await {
        Ok(Ok(())) => {}
        // The session has ended meanwhile (its idle limit, a `down`): nothing to hand on.
        Ok(Err(e)) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {}
        _ => report.warning(&format!(
            "the warm session of {} did not take this build's code for its next runs, which will connect as usual: end it and start another (`mix-remote down --host {0}`, then `up`)",
            host.name
        )),
    }
}

/// How long the agent may take to take a batch handed to it.
const HAND_LIMIT: Duration = Duration::from_secs(5);

/// Whether `host` has a warm session with these settings (live or not: a run then tries it);
/// if not, says so for `-v`.
pub(super) fn exists(host: &HostSettings, report: &Reporter) -> bool {
    let exists = session_dir(host).is_some_and(|dir| dir.exists());
    if !exists {
        say_none(host, report);
    }
    exists
}

/// The note for `-v` that `host` has no warm session with these settings.
fn say_none(host: &HostSettings, report: &Reporter) {
    report.verbose(&format!(
        "no warm session of {} with these settings (address, ssh config, ssh options, elixir): connecting",
        host.name
    ));
}

/// Where the warm session of `host` with these settings keeps its socket.
fn session_dir(host: &HostSettings) -> Option<PathBuf> {
    Some(dirs::session(&dirs::root().ok()?, &agent::key(host)))
}

/// [`super::on_host`] on a claimed spare node (reaching the run as `node` says): takes its
/// connection, sets it up and pushes as a cold run does, hands it to `work`, and lets it go.
pub(super) async fn on_spare<T, F>(
    mut claim: client::Claim,
    node: client::Claimed,
    job: &Job,
    host: &HostSettings,
    report: &Arc<Reporter>,
    input: &Input,
    work: impl FnOnce(Arc<Node>, Ready) -> F,
) -> Result<T, SessionError>
where
    F: Future<Output = Result<T, SessionError>>,
{
    let started = Instant::now();
    let mut stats = Stats::default();
    let phase = report.phase(Stage::Connect, format!("connecting to {}", host.address));
    // The connection the agent made ahead, or else the spare's socket to listen on: the spare's
    // name is its own (fresh for that node, distribution already started under it); the cookie,
    // our name and the creation are this run's.
    let (ids, way) = match node {
        client::Claimed::Held(held) => (held.ids, Way::Held(held.stream, held.read)),
        client::Claimed::Waiting { socket, remote } => {
            let Ok(remote) = remote.parse() else {
                return Err(SessionError::Socket {
                    path: socket.display().to_string(),
                    error: std::io::Error::other(format!("bad node name {remote}")),
                });
            };
            let ids = Identities {
                remote,
                ..Identities::fresh()
            };
            // A socket left by a run that died before the node connected is in the way.
            let _ = std::fs::remove_file(&socket);
            let node_end = LocalEnd::bind(socket)?;
            claim
                .go(&ids.cookie, &ids.local.to_string())
                .await
                .map_err(|e| SessionError::Socket {
                    path: node_end.path.display().to_string(),
                    error: e,
                })?;
            (ids, Way::Accept(node_end))
        }
    };
    // What the node prints of its own (Logger's lines) is this run's from now on, as a cold
    // node's session's is.
    let lines = Arc::clone(report);
    let name = host.name.clone();
    let mut claim = claim.follow(move |line| lines.remote_line(&name, line));
    stats.connect = Some(started.elapsed());
    report.verbose(&format!(
        "warm session of {}: its spare node serves this run{}",
        host.name,
        match way {
            Way::Held(..) => ", connected ahead",
            Way::Accept(_) => "",
        }
    ));
    phase.done(format!("connected to {} (warm session)", host.address));
    // A spare booted by another build of the tool (the binary changed under a live session)
    // may not hold a request for its load: the work then waits for the load's reply.
    let known = claim.known.take();
    let holds = known.as_ref().is_some_and(|k| boot::is_ours(&k.loaded));
    let session = Session {
        host,
        report,
        ids: &ids,
        started,
        input,
        had: claim.had.as_ref(),
        known,
        holds,
        output_open: watch::Sender::new(true),
    };
    let result = async {
        let booting = Instant::now();
        let phase = report.phase(Stage::Boot, "booting remote node");
        let log = Arc::clone(report);
        let log = move |note: String| log.verbose(&note);
        let limit = Duration::from_secs(host.boot_timeout);
        let (node, inbox) = match way {
            Way::Held(stream, read) => Node::over(stream, read, &ids.local, ids.creation, log),
            Way::Accept(node_end) => {
                let remote = ids.remote.to_string();
                let accept = Node::accept(
                    node_end.listener,
                    &ids.local,
                    ids.creation,
                    &ids.cookie,
                    &remote,
                    log,
                );
                let accepted = timeout(
                    limit,
                    accept,
                    "booting the remote node",
                    &host.name,
                    "--boot-timeout",
                )
                .await;
                let _ = std::fs::remove_file(&node_end.path);
                accepted?
            }
        };
        stats.boot = Some(booting.elapsed());
        stats.console = Some(console::start(
            Arc::clone(&node),
            inbox,
            Arc::clone(report),
            input.clone(),
            session.output_open.subscribe(),
        ));
        if let Err(e) = session.set_remote_env(&node, limit).await {
            // Let go: the node halts as a served one does.
            node.disconnect();
            return Err(e);
        }
        phase.done(format!("remote node {} up", ids.remote));
        session.serve(node, job, &mut stats, None, work).await
    }
    .await;
    // A node lost on the way may have halted by itself: the agent says how its session ended.
    let lost = matches!(result, Err(SessionError::Lost { .. }));
    let result = match result {
        Err(lost @ SessionError::Lost { .. }) => {
            let (status, evaluating) = claim.end(TEARDOWN_GRACE).await;
            Err(lost.halted_with(status).halted_in(evaluating))
        }
        other => other,
    };
    // The next spare nodes load this run's batch ahead (after the work: off its critical path).
    if (result.is_ok() || result.as_ref().is_err_and(SessionError::is_clean_halt))
        && let Ok((prepared, _)) = job.wire.get().await
    {
        let _ = claim.preload(&preload::encode(&prepared)).await;
    }
    // The agent stops what is left of the node once the claim is let go: after the node's own
    // output of the work is all out, as a cold run waits for it; failing that, once its session
    // has ended (the node halts as the connection closes), its last lines passed on first.
    let phase = report.phase(Stage::Stop, "stopping remote node");
    let stopping = Instant::now();
    let settled = result.is_ok() && claim.settled(SETTLE_LIMIT).await;
    if !settled && !lost {
        claim.ended(TEARDOWN_GRACE).await;
    }
    claim.close().await;
    stats.teardown = Some(stopping.elapsed());
    drop(phase);
    report.verbose(&stats.line());
    result
}

/// How the run gets its node's connection.
enum Way {
    /// Made ahead by the agent: the stream, and what was read of it past its last frame.
    Held(tokio::net::UnixStream, Vec<u8>),
    /// Accepted on the spare's socket, after handing the node our identities.
    Accept(LocalEnd),
}
