//! `mix-remote check`: preflight of every host without running any of the project's code. Per
//! host, through the same kind of SSH master connection `run` opens: the server is reachable and
//! the login works, OpenSSH accepted its host key, the server grants the run's reverse
//! forward, `elixir` is found (started the way `run` starts it) and its OTP and Elixir versions,
//! and whether that OTP loads every module of the local build (`run`'s version preflight, applied
//! to the whole build since `check` has no entry). One row per host and a verdict; hosts are
//! checked concurrently.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::beam::Beam;
use crate::boot;
use crate::cli::CheckArgs;
use crate::compat::{self, Built, RemoteVersions};
use crate::config::{self, Config, HostSettings};
use crate::events::{CheckRow, Event, Probe, Stage};
use crate::fleet;
use crate::project::{self, ProjectError};
use crate::report::{self, Reporter};
use crate::run::{self, EXIT_CANNOT_RUN, EXIT_INTERRUPTED, EXIT_USAGE};
use crate::ssh::Master;

/// Phases of a host's check, for its progress bar.
const CHECK_STEPS: u64 = 3;
/// How long teardown waits for the check session to end by itself.
const TEARDOWN_GRACE: Duration = Duration::from_secs(5);
/// Width of the verdict column.
const VERDICT_WIDTH: usize = 50;

/// The `check` command: returns the process exit code.
pub async fn check(args: CheckArgs, config: Option<&Config>, report: Arc<Reporter>) -> u8 {
    // Installed before anything is started, so no signal can end a run without its teardown.
    let interrupted = run::interrupted();
    let hosts = match fleet::hosts(config, &args.hosts, &args.connection.layer()) {
        Ok(hosts) => hosts,
        Err(e) => return fleet::fail_early(&report, &e.to_string(), EXIT_USAGE),
    };
    let build = config::build(config, args.build.project.as_deref(), &args.build.layer());
    let local = match LocalBuild::read(&build.project, &build.mix_env) {
        Ok(local) => local.map(Arc::new),
        Err(e) => return fleet::fail_early(&report, &e.to_string(), EXIT_USAGE),
    };
    if local.is_none() {
        report.verbose(&format!(
            "no compiled build in {}: the compatibility column is skipped",
            build.project.display()
        ));
    }
    let prefixed = hosts.len() > 1;
    let limit = Arc::new(Semaphore::new(fleet::parallelism(
        args.hosts.parallel,
        hosts.len(),
    )));
    let views: Vec<Arc<Reporter>> = hosts
        .iter()
        .map(|h| Arc::new(report.for_host(&h.name, prefixed, CHECK_STEPS)))
        .collect();
    let mut tasks = JoinSet::new();
    for (index, host) in hosts.iter().enumerate() {
        let (host, view, limit) = (host.clone(), Arc::clone(&views[index]), Arc::clone(&limit));
        let local = local.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let row = check_host(&host, &view, local.as_deref()).await;
            view.end_host();
            view.event(Event::Check(row.clone()));
            (index, row)
        });
    }
    let mut rows: Vec<Option<CheckRow>> = vec![None; hosts.len()];
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break,
                Some(Ok((index, row))) => rows[index] = Some(row),
                Some(Err(e)) => report.error(&format!("a host's check failed: {e}")),
            },
            () = &mut interrupted => {
                tasks.shutdown().await;
                views.iter().for_each(|v| v.end_host());
                report.error("interrupted");
                report.event(Event::Summary { hosts: hosts.len(), failed: hosts.len(), exit_code: EXIT_INTERRUPTED });
                return EXIT_INTERRUPTED;
            }
        }
    }
    let rows: Vec<CheckRow> = rows.into_iter().flatten().collect();
    let ready = rows.iter().filter(|r| r.ready).count();
    let code = if ready == hosts.len() {
        0
    } else {
        EXIT_CANNOT_RUN
    };
    if !report.json() {
        let mut text = table(&rows);
        for row in &rows {
            if let Some(problem) = &row.problem {
                text += &format!("{}: {problem}\n", row.host);
            }
        }
        text += &format!("{ready} of {} hosts ready\n", hosts.len());
        report.output(text.as_bytes());
    }
    report.event(Event::Summary {
        hosts: hosts.len(),
        failed: hosts.len() - ready,
        exit_code: code,
    });
    code
}

/// The table `check` prints: one row per host (the full problems follow it).
pub fn table(rows: &[CheckRow]) -> String {
    let cell = |p: Probe| match p {
        Probe::Ok => "ok",
        Probe::Failed => "FAILED",
        Probe::Skipped => "-",
    };
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.host.clone(),
                cell(r.ssh).into(),
                cell(r.host_key).into(),
                cell(r.forwarding).into(),
                cell(r.elixir).into(),
                r.otp_version
                    .clone()
                    .or_else(|| r.otp_release.clone())
                    .unwrap_or_else(|| "-".into()),
                r.elixir_version.clone().unwrap_or_else(|| "-".into()),
                cell(r.compat).into(),
                match &r.problem {
                    None => "ready".into(),
                    Some(p) => format!("NOT READY: {}", report::shorten(p, VERDICT_WIDTH)),
                },
            ]
        })
        .collect();
    report::table(
        &[
            "HOST",
            "SSH",
            "HOST KEY",
            "FORWARDING",
            "ELIXIR",
            "OTP",
            "ELIXIR VERSION",
            "BUILD LOADS",
            "VERDICT",
        ],
        &body,
    )
}

/// The local build `check` compares with each server: every module, and the versions Mix
/// recorded for its applications.
pub struct LocalBuild {
    beams: Vec<Beam>,
    built: Built,
}

impl LocalBuild {
    /// Reads `<project>/_build/<env>`; `None` when there is no compiled build to compare.
    pub fn read(project: &std::path::Path, env: &str) -> Result<Option<LocalBuild>, ProjectError> {
        match project::scan(project, env) {
            Ok(beams) => {
                let built = Built::read(&beams.iter().collect::<Vec<_>>());
                Ok(Some(LocalBuild { beams, built }))
            }
            Err(ProjectError::NoBuild(_) | ProjectError::Empty(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `run`'s version preflight for the whole build: the warnings, or why the server refuses it.
    fn against(&self, otp_release: &str, elixir: &str) -> Result<Vec<String>, compat::Refusal> {
        let beams: Vec<&Beam> = self.beams.iter().collect();
        let remote = RemoteVersions {
            otp_release: otp_release.to_owned(),
            elixir: elixir.to_owned(),
        };
        compat::preflight(&beams, &self.built, &remote)
    }
}

/// Checks one host against `local` (if there is a build); never fails: every problem is a cell
/// of its row.
pub async fn check_host(
    host: &HostSettings,
    report: &Arc<Reporter>,
    local: Option<&LocalBuild>,
) -> CheckRow {
    let mut row = CheckRow {
        host: host.name.clone(),
        ssh: Probe::Skipped,
        host_key: Probe::Skipped,
        forwarding: Probe::Skipped,
        elixir: Probe::Skipped,
        otp_release: None,
        otp_version: None,
        elixir_version: None,
        compat: Probe::Skipped,
        ready: false,
        problem: None,
    };
    if let Err(problem) = probe(host, report, &mut row).await {
        row.problem = Some(problem);
    }
    if let (Some(local), Some(otp), Some(elixir)) = (local, &row.otp_release, &row.elixir_version) {
        match local.against(otp, elixir) {
            Ok(warnings) => {
                row.compat = Probe::Ok;
                warnings.iter().for_each(|w| report.warning(w));
            }
            Err(refusal) => {
                row.compat = Probe::Failed;
                row.problem.get_or_insert(refusal.0);
            }
        }
    }
    row.ready = row.problem.is_none();
    row
}

/// Fills `row` probe by probe; the first problem found is the error. Probes after a failed
/// forward still run, so one check shows both a refused forward and a missing elixir.
async fn probe(
    host: &HostSettings,
    report: &Arc<Reporter>,
    row: &mut CheckRow,
) -> Result<(), String> {
    let command = boot::check_command(&host.elixir).map_err(|e| e.to_string())?;
    let dir = run::private_dir().map_err(|e| e.to_string())?;
    let mut target = run::target(host);
    // A check never waits for a password or a host key prompt: ssh keeps the first value.
    target.options.insert(0, "BatchMode=yes".into());

    let phase = report.phase(Stage::Connect, format!("connecting to {}", host.address));
    let versions: Arc<Mutex<Option<String>>> = Arc::default();
    let (seen, notes, log) = (
        Arc::clone(&versions),
        Arc::clone(report),
        Arc::clone(report),
    );
    let mut master = Master::start(
        &target,
        &dir.path().join("ctl"),
        None,
        &command,
        move |line| match line.strip_prefix(boot::VERSIONS) {
            Some(v) => *seen.lock().expect("versions lock poisoned") = Some(v.to_owned()),
            // ssh's own complaints end up in the row; show them with -v only.
            None => notes.verbose(line),
        },
        move |note| log.verbose(&note),
    )
    .map_err(|e| {
        row.ssh = Probe::Failed;
        e.to_string()
    })?;
    let connect = Duration::from_secs(host.connect_timeout);
    let connected =
        tokio::time::timeout(connect, master.wait_for("connected", "the SSH session")).await;
    match connected {
        Ok(Ok(())) => {
            (row.ssh, row.host_key) = (Probe::Ok, Probe::Ok);
            phase.done(format!("connected to {}", host.address));
        }
        Ok(Err(e)) if e.is_host_key() => {
            (row.ssh, row.host_key) = (Probe::Ok, Probe::Failed);
            master.shutdown(TEARDOWN_GRACE).await;
            return Err(format!(
                "the host key of {} is not known or has changed: {e}",
                host.address
            ));
        }
        Ok(Err(e)) => {
            row.ssh = Probe::Failed;
            master.shutdown(TEARDOWN_GRACE).await;
            return Err(e.to_string());
        }
        Err(_) => {
            row.ssh = Probe::Failed;
            master.shutdown(TEARDOWN_GRACE).await;
            return Err(format!(
                "timed out connecting to {} after {} s (raise it with --connect-timeout)",
                host.address,
                connect.as_secs()
            ));
        }
    }

    // A run requests its one forward with the connection; here it is asked for on its own, so
    // that a refusal does not end the connection before elixir is looked for.
    let phase = report.phase(Stage::Forward, "asking for the reverse forward");
    let socket = dir.path().join("node.sock");
    let sockets = [socket.as_path()];
    let mut problem = None;
    match tokio::time::timeout(connect, master.forward_remote(&sockets)).await {
        Ok(Ok(_)) => {
            row.forwarding = Probe::Ok;
            phase.done("reverse forward granted");
        }
        Ok(Err(e)) => {
            row.forwarding = Probe::Failed;
            problem = Some(e.to_string());
        }
        Err(_) => {
            row.forwarding = Probe::Failed;
            problem = Some(format!(
                "the forwarding request to {} got no answer",
                host.address
            ));
        }
    }

    let phase = report.phase(Stage::Elixir, format!("looking for {}", host.elixir));
    let boot = Duration::from_secs(host.boot_timeout);
    let found = async {
        master.send(&boot::check_input()).await?;
        master.wait_for("checked", "elixir").await
    };
    match tokio::time::timeout(boot, found).await {
        Ok(Ok(())) => {
            let line = versions.lock().expect("versions lock poisoned").take();
            let mut parts = line.as_deref().unwrap_or_default().split_whitespace();
            row.otp_release = parts.next().map(str::to_owned);
            row.elixir_version = parts.next().map(str::to_owned);
            row.otp_version = parts.next().filter(|v| *v != "-").map(str::to_owned);
            row.elixir = Probe::Ok;
            phase.done(format!(
                "OTP {}, Elixir {}",
                row.otp_release.as_deref().unwrap_or("?"),
                row.elixir_version.as_deref().unwrap_or("?")
            ));
        }
        Ok(Err(e)) => {
            row.elixir = Probe::Failed;
            problem.get_or_insert(e.to_string());
        }
        Err(_) => {
            row.elixir = Probe::Failed;
            problem.get_or_insert(format!(
                "elixir on {} did not answer within {} s (raise it with --boot-timeout)",
                host.address,
                boot.as_secs()
            ));
        }
    }
    let phase = report.phase(Stage::Stop, "closing the connection");
    master.shutdown(TEARDOWN_GRACE).await;
    drop(phase);
    problem.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_verdict_per_host() {
        let ready = CheckRow {
            host: "web-1".into(),
            ssh: Probe::Ok,
            host_key: Probe::Ok,
            forwarding: Probe::Ok,
            elixir: Probe::Ok,
            otp_release: Some("25".into()),
            otp_version: Some("25.3.2.8".into()),
            elixir_version: Some("1.14.0".into()),
            compat: Probe::Ok,
            ready: true,
            problem: None,
        };
        let refused = CheckRow {
            host: "web-2".into(),
            forwarding: Probe::Failed,
            otp_version: None,
            ready: false,
            problem: Some("port forwarding to web-2 was refused".into()),
            ..ready.clone()
        };
        let text = table(&[ready, refused]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("HOST   SSH  HOST KEY  FORWARDING  ELIXIR  OTP"));
        assert!(lines[1].contains("25.3.2.8") && lines[1].ends_with("ready"));
        assert!(lines[2].contains("FAILED") && lines[2].contains("NOT READY: port forwarding"));
        assert!(
            lines[2].contains(" 25 "),
            "the release when no full version: {}",
            lines[2]
        );
    }
}
