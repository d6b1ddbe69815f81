//! What `check` asks each server, without running any of the project's code, through the same
//! kind of SSH master connection `run` opens: the server is reachable and the login works,
//! OpenSSH accepted its host key, the server grants the run's reverse forward, `elixir` is found
//! (started the way `run` starts it) and its OTP and Elixir versions, whether it has a directory a
//! run can write its files in, and whether it can run the local build: its OTP loads every
//! module (`run`'s version preflight, applied to the whole build), it has every OTP and Elixir
//! application the build's applications name, and its machine loads their native code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::build::compat::{LocalBuild, MIN_REMOTE_OTP, RemoteVersions};
use crate::build::native::{self, Object};
use crate::config::HostSettings;
use crate::events::{CheckRow, Probe, Stage};
use crate::remote::agent::client;
use crate::remote::boot;
use crate::remote::session::{self, SessionError, TEARDOWN_GRACE};
use crate::remote::ssh::{Master, SshError};
use crate::report::Reporter;

/// What `check` compares each server with: the whole local build, and what it needs of a
/// server as a run of any of its code would (`run`'s checks before it sends anything).
pub struct Local {
    /// Every module, and the versions Mix recorded.
    pub build: LocalBuild,
    /// The applications the build's applications name that it does not ship (the server must
    /// have them), each with one that names it: (needed, by).
    pub apps: Vec<(String, String)>,
    /// The native code in their `priv/` directories.
    pub natives: Vec<Object>,
}

/// What the check program said of the server (the lines it printed, by kind).
#[derive(Default)]
struct Heard {
    versions: Option<String>,
    stale: Option<String>,
    no_run_dir: Option<String>,
    missing: Option<Vec<String>>,
    machine: Option<native::Server>,
}

/// Checks one host against `local` (if there is a build); never fails: every problem is a cell
/// of its row.
pub async fn check_host(
    host: &HostSettings,
    report: &Arc<Reporter>,
    local: Option<&Local>,
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
        temp_dir: Probe::Skipped,
        stale_runs: None,
        ready: false,
        problem: None,
    };
    let apps: Vec<&str> = local
        .map(|local| local.apps.iter().map(|(app, _)| app.as_str()).collect())
        .unwrap_or_default();
    let mut heard = Heard::default();
    if let Err(problem) = probe(host, report, &mut row, &apps, &mut heard).await {
        row.problem = Some(problem);
    }
    if let (Some(local), Some(otp), Some(elixir)) = (local, &row.otp_release, &row.elixir_version) {
        let remote = RemoteVersions {
            otp_release: otp.clone(),
            erts: String::new(),
            elixir: elixir.clone(),
        };
        match runs_there(local, &remote, &heard, &host.name) {
            Ok(warnings) => {
                row.compat = Probe::Ok;
                warnings.iter().for_each(|w| report.warning(w));
            }
            Err(refusal) => {
                row.compat = Probe::Failed;
                row.problem.get_or_insert(refusal);
            }
        }
    }
    row.ready = row.problem.is_none();
    row
}

/// Whether the server `heard` describes can run `local`, as a run checks before it sends
/// anything: the warnings, or the first reason it cannot (its loader would refuse a module, it
/// lacks an application, its machine cannot load a native object).
fn runs_there(
    local: &Local,
    remote: &RemoteVersions,
    heard: &Heard,
    host: &str,
) -> Result<Vec<String>, String> {
    let warnings = local.build.against(remote).map_err(|refusal| refusal.0)?;
    if let Some(app) = heard.missing.iter().flatten().next() {
        return Err(SessionError::missing_app(app, &local.apps, host).to_string());
    }
    if let Some(server) = &heard.machine {
        native::check(&local.natives, server, host).map_err(|m| m.to_string())?;
    }
    Ok(warnings)
}

/// Fills `row` probe by probe, and `heard` with what the check program printed; the first
/// problem found is the error. Probes after a failed forward still run, so one check shows both
/// a refused forward and a missing elixir.
async fn probe(
    host: &HostSettings,
    report: &Arc<Reporter>,
    row: &mut CheckRow,
    apps: &[&str],
    heard: &mut Heard,
) -> Result<(), String> {
    let command = boot::check_command(&host.elixir).map_err(|e| e.to_string())?;
    let dir = session::private_dir().map_err(|e| e.to_string())?;
    let mut target = session::target(host);
    // A check never waits for a password or a host key prompt: ssh keeps the first value.
    target.options.insert(0, "BatchMode=yes".into());

    let phase = report.phase(Stage::Connect, format!("connecting to {}", host.address));
    let lines: Arc<Mutex<Heard>> = Arc::default();
    let (seen, notes, log) = (Arc::clone(&lines), Arc::clone(report), Arc::clone(report));
    let output = move |line: &str| {
        let mut said = seen.lock().expect("check lines lock poisoned");
        if let Some(v) = line.strip_prefix(boot::VERSIONS) {
            said.versions = Some(v.to_owned());
        } else if let Some(s) = line.strip_prefix(boot::STALE) {
            said.stale = Some(s.to_owned());
        } else if let Some(tried) = line.strip_prefix(boot::NO_RUN_DIR) {
            said.no_run_dir = Some(tried.to_owned());
        } else if let Some(apps) = line.strip_prefix(boot::MISSING) {
            said.missing = Some(apps.split_whitespace().map(str::to_owned).collect());
        } else if let Some((triple, wordsize)) = line
            .strip_prefix(boot::MACHINE)
            .and_then(|m| m.split_once(' '))
        {
            said.machine = wordsize.parse().ok().map(|wordsize| native::Server {
                triple: triple.to_owned(),
                wordsize,
            });
        } else {
            // ssh's own complaints end up in the row; show them with -v only.
            notes.verbose(line);
        }
    };
    let log = move |note: String| log.verbose(&note);
    // A live warm session of the host: its connection serves, and nothing logs in again.
    let shared = client::live_control(host).await;
    let started = match &shared {
        Some(control) => {
            report.verbose(&format!(
                "checking {} through its warm session's connection",
                host.name
            ));
            Master::through(&target, control, &command, output, log)
        }
        None => Master::start(
            &target,
            &dir.path().join("ctl"),
            None,
            &command,
            output,
            log,
        ),
    };
    let mut master = started.map_err(|e| {
        row.ssh = Probe::Failed;
        e.to_string()
    })?;
    let connect = Duration::from_secs(host.connect_timeout);
    let connected =
        tokio::time::timeout(connect, master.wait_for(boot::CONNECTED, "the SSH session")).await;
    match connected {
        Ok(Ok(())) => {
            (row.ssh, row.host_key) = (Probe::Ok, Probe::Ok);
            phase.done(format!("connected to {}", host.address));
        }
        Ok(Err(e)) if e.is_host_key() => {
            // ssh refused to go on: no login was tried, the connection is not usable.
            (row.ssh, row.host_key) = (Probe::Failed, Probe::Failed);
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
            return Err(timed_out("connecting", host, connect, "--connect-timeout"));
        }
    }

    // A run requests its one forward with the connection; here it is asked for on its own, so
    // that a refusal does not end the connection before elixir is looked for.
    let phase = report.phase(Stage::Forward, "asking for the reverse forward");
    // The host's `forward_port` if it has one (a port its sshd's PermitListen allows), else one
    // the server allocates: a run's port drawn at random and refused costs only a second login.
    let socket = dir.path().join("node.sock");
    let forwards = [(socket.as_path(), host.forward_port.unwrap_or(0))];
    let mut problem = None;
    // Whether the master may hold the forward: held, or asked for without an answer in time
    // (the master still takes a late grant).
    let mut held = true;
    match tokio::time::timeout(connect, master.control().forward_remote(&forwards)).await {
        Ok(Ok(_)) => {
            row.forwarding = Probe::Ok;
            phase.done("reverse forward held");
        }
        Ok(Err(e)) => {
            held = false;
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
        master
            .send(&boot::check_input(&host.remote_env, apps))
            .await?;
        master.wait_for(boot::CHECKED, "elixir").await
    };
    match tokio::time::timeout(boot, found).await {
        Ok(Ok(())) => {
            *heard = std::mem::take(&mut *lines.lock().expect("check lines lock poisoned"));
            let line = heard.versions.take();
            let mut parts = line.as_deref().unwrap_or_default().split_whitespace();
            row.otp_release = parts.next().map(str::to_owned);
            row.elixir_version = parts.next().map(str::to_owned);
            row.otp_version = parts.next().filter(|v| *v != "-").map(str::to_owned);
            row.elixir = Probe::Ok;
            let otp = row
                .otp_release
                .as_deref()
                .and_then(|o| o.parse::<u32>().ok());
            if let Some(otp) = otp.filter(|&otp| otp < MIN_REMOTE_OTP) {
                let old = SshError::OldOtp {
                    host: host.address.clone(),
                    otp: otp.to_string(),
                };
                problem.get_or_insert(old.to_string());
            }
            // A run fails to load where it finds no directory to make its own in.
            if let Some(tried) = heard.no_run_dir.take() {
                row.temp_dir = Probe::Failed;
                let none = SessionError::NoRunDir {
                    host: host.name.clone(),
                    said: tried,
                };
                problem.get_or_insert(none.to_string());
            }
            let stale = heard.stale.take();
            if let Some((count, tmp)) = stale.as_deref().and_then(|s| s.split_once(' ')) {
                row.temp_dir = Probe::Ok;
                row.stale_runs = count.parse().ok();
                if row.stale_runs.is_some_and(|n| n > 0) {
                    report.warning(&format!(
                        "{count} director{} left in {tmp} on {} by runs that were killed (the \
                         next run there removes them)",
                        if count == "1" { "y" } else { "ies" },
                        host.address
                    ));
                }
            }
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
            problem.get_or_insert(timed_out(
                "waiting for elixir",
                host,
                boot,
                "--boot-timeout",
            ));
        }
    }
    let phase = report.phase(Stage::Stop, "closing the connection");
    // The session's connection outlives this check: the forward asked for on it goes.
    if shared.is_some()
        && held
        && let Err(said) = master.control().cancel_remote(&forwards).await
    {
        report.verbose(&format!(
            "could not withdraw the check's forward from the session's connection: {said}"
        ));
    }
    master.shutdown(TEARDOWN_GRACE).await;
    drop(phase);
    problem.map_or(Ok(()), Err)
}

/// The message of a probe that ran out of time, worded as a run's.
fn timed_out(phase: &str, host: &HostSettings, limit: Duration, flag: &'static str) -> String {
    SessionError::Timeout {
        phase: phase.to_owned(),
        host: host.name.clone(),
        secs: limit.as_secs(),
        flag,
    }
    .to_string()
}
