//! `mix-remote up`: starts a warm session per chosen host (`remote/agent`): the agent is this
//! tool re-executed, detached in a session of its own; `up` hands it the host's settings, waits
//! until it is connected and its first spare node ready to serve a run (or says why not), and
//! exits.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::cli::UpArgs;
use crate::cmd::fanout;
use crate::config::{Config, HostSettings};
use crate::events::Stage;
use crate::exit::{self, CliError};
use crate::remote::agent::client::{self, Found};
use crate::remote::agent::server::AGENT;
use crate::remote::agent::{
    self, CONNECTED, DEFAULT_IDLE, READY, Spec, Status, TIMED_OUT, UNABLE, dirs,
};
use crate::report::Reporter;

/// Starts a session for every chosen host that has none, one host after another; returns the
/// exit code, the highest of any host's. A host that fails does not stop the others: with several
/// hosts, its error is told with its name, and the next host goes on.
pub async fn exec(
    args: UpArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    let (_, hosts) = fanout::choose(config, &args.hosts, &args.layer())?;
    // Bad input, before any agent starts.
    fanout::check_elixirs(&hosts)?;
    fanout::check_ssh_configs(&hosts)?;
    if let [host] = hosts.as_slice() {
        return up(host, args.idle, &report).await.map(|()| exit::OK);
    }
    let mut code = exit::OK;
    for host in &hosts {
        if let Err(e) = up(host, args.idle, &report).await {
            report.error(&format!("[{}] {}", host.name, e.message));
            code = code.max(e.code);
        }
    }
    Ok(code)
}

/// Starts the session of `host`, which ends after `idle` without a run (10m if `None`), unless it
/// is up already: then `idle`, if given, is its new limit.
async fn up(
    host: &HostSettings,
    idle: Option<Duration>,
    report: &Reporter,
) -> Result<(), CliError> {
    let root = dirs::root().map_err(|e| session_dir_error(&e))?;
    let dir = dirs::session(&root, &agent::key(host));
    let limit = Duration::from_secs(host.connect_timeout);
    let already = |status: Status| already(host, &dir, status, idle, report);
    match client::probe(&dir).await {
        // Its spare nodes run another boot program, which this build's runs do not use.
        Found::Live(status) if status.build.as_deref() != Some(agent::build()) => {
            report.warning(&format!(
                "the session for {} was started by another build of mix-remote: ending it, and starting one of this build",
                host.name
            ));
            client::down(&dir).await.map_err(|e| {
                CliError::new(
                    format!(
                        "the session for {} is of another build of mix-remote, and did not end ({e})",
                        host.name
                    ),
                    exit::CANNOT_RUN,
                )
            })?;
        }
        Found::Live(status) => {
            already(*status).await;
            return Ok(());
        }
        // Another `up` of this host's is bringing it up: that session is the one.
        Found::Starting | Found::Silent => {
            return match other_up(&dir, limit).await {
                Some(status) => {
                    already(status).await;
                    Ok(())
                }
                None => Err(CliError::new(
                    format!(
                        "a session for {} is starting, and did not come up (or its agent does not answer)",
                        host.name
                    ),
                    exit::CANNOT_RUN,
                )),
            };
        }
        // Its agent removes its directory, where the new one goes: once that is done.
        Found::Ending if !client::ended(&dir).await => {
            return Err(CliError::new(
                format!("the last session for {} is still ending", host.name),
                exit::CANNOT_RUN,
            ));
        }
        Found::Ending | Found::Stale => {}
    }
    let phase = report.phase(Stage::Connect, format!("connecting to {}", host.address));
    let idle = idle.unwrap_or(DEFAULT_IDLE);
    let spec = Spec::of(host, idle);
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("cannot find this program: {e}"), exit::CANNOT_RUN))?;
    let mut cmd = Command::new(exe);
    cmd.arg(AGENT)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec the closure only makes the async-signal-safe call setsid.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own: no terminal, and the user's Ctrl-C or logout do not reach it.
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        CliError::new(
            format!("cannot start the session agent: {e}"),
            exit::CANNOT_RUN,
        )
    })?;
    let line = serde_json::to_string(&spec).expect("a spec serializes") + "\n";
    // Held open until the agent has answered: if this process goes, so does the session.
    let mut stdin = child.stdin.take();
    if let Some(stdin) = stdin.as_mut() {
        let _ = stdin.write_all(line.as_bytes()).await;
    }
    let mut lines = child
        .stdout
        .take()
        .map(|stdout| BufReader::new(stdout).lines());
    // The agent bounds each wait (the connection's, the first spare's boot) and says why it
    // gave up: one side decides, so that a session is either up or gone.
    let mut said = next_line(&mut lines).await;
    let phase = if said == CONNECTED {
        phase.done(format!("connected to {}", host.address));
        let booting = report.phase(
            Stage::Boot,
            format!("booting a spare node on {}", host.address),
        );
        said = next_line(&mut lines).await;
        booting
    } else {
        phase
    };
    drop(stdin);
    if said == READY {
        phase.done(format!(
            "session for {} up (ends after {} without a run)",
            host.name,
            humane(idle)
        ));
        return Ok(());
    }
    let _ = child.wait().await;
    // Another `up` of this host made the session's directory first: that session is the one.
    if let Some(status) = other_up(&dir, limit).await {
        drop(phase);
        already(status).await;
        return Ok(());
    }
    let (why, code) = match said.split_once(' ') {
        Some((TIMED_OUT, why)) => (why, exit::TIMEOUT),
        Some((UNABLE, why)) => (why, exit::CANNOT_RUN),
        _ => ("the session agent exited at once", exit::CANNOT_RUN),
    };
    Err(CliError::new(why.to_owned(), code))
}

/// Says that the session of `host` in `dir` is up already (`status`), and gives it the idle limit
/// `idle` if one was asked for; an agent that does not take it (of an older build of the tool)
/// keeps its own, and a warning says so.
async fn already(
    host: &HostSettings,
    dir: &Path,
    status: Status,
    idle: Option<Duration>,
    report: &Reporter,
) {
    let phase = report.phase(Stage::Connect, "");
    let said = format!(
        "a session for {} is already up (pid {})",
        host.name, status.pid
    );
    let Some(idle) = idle else {
        phase.done(said);
        return;
    };
    match client::set_idle(dir, idle).await {
        Ok(()) => phase.done(format!(
            "{said}: it now ends after {} without a run",
            humane(idle)
        )),
        Err(e) => {
            drop(phase);
            report.warning(&format!(
                "the session for {} was already up and keeps its idle limit ({} left): its agent did not take --idle ({e}); `mix-remote down --host {0}`, then `up --idle {}s`, starts one with the new limit",
                host.name,
                humane(Duration::from_secs(status.idle_left)),
                idle.as_secs(),
            ));
        }
    }
}

/// The agent's next line on its stdout (without its newline); empty once it has said all.
async fn next_line(lines: &mut Option<Lines<BufReader<ChildStdout>>>) -> String {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten().unwrap_or_default(),
        None => String::new(),
    }
}

/// How long, beyond its login's limit, a session another `up` starts may take to boot its first
/// spare node and serve.
const FIRST_SPARE: Duration = Duration::from_secs(60);

/// The status of the session in `dir` once it serves, if one is there (made by another `up`)
/// and does so within `limit` (its login) and [`FIRST_SPARE`]; a limit too far away to be a
/// point in time is no deadline.
async fn other_up(dir: &Path, limit: Duration) -> Option<Status> {
    let deadline = limit
        .checked_add(FIRST_SPARE)
        .and_then(|wait| tokio::time::Instant::now().checked_add(wait));
    while deadline.is_none_or(|deadline| tokio::time::Instant::now() < deadline) {
        match client::probe(dir).await {
            Found::Live(status) => return Some(*status),
            Found::Stale => return None,
            Found::Starting | Found::Silent | Found::Ending => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    None
}

/// The error for a session directory that cannot be made.
pub fn session_dir_error(error: &std::io::Error) -> CliError {
    CliError::new(
        format!("cannot use the sessions directory: {error}"),
        exit::CANNOT_RUN,
    )
}

/// `90s`, `10m`, `1h 30m`: as a person writes it.
pub fn humane(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_limit_past_what_time_can_hold_waits_without_a_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("no-session");
        assert!(
            other_up(&none, Duration::from_secs(u64::MAX))
                .await
                .is_none()
        );
        assert!(other_up(&none, Duration::MAX).await.is_none());
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(humane(Duration::from_secs(90)), "1m 30s");
        assert_eq!(humane(Duration::from_secs(600)), "10m");
        assert_eq!(humane(Duration::from_secs(5)), "5s");
        assert_eq!(humane(Duration::from_secs(5400)), "1h 30m");
    }
}
