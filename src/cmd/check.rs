//! `mix-remote check`: a preflight of every host without running any of the project's code
//! (what is asked of each server is `remote/probe.rs`). One row per host and a verdict; hosts are
//! checked concurrently (`cmd/fanout.rs`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::build::apps::{self, Apps};
use crate::build::compat::LocalBuild;
use crate::build::native;
use crate::cli::CheckArgs;
use crate::cmd::fanout::{self, Fanout};
use crate::config::{self, Config, HostSettings};
use crate::events::{CheckRow, Event, Probe};
use crate::exit::{self, CliError};
use crate::remote::job::counted;
use crate::remote::probe::{self, Local};
use crate::report::{self, Reporter};

/// Phases of a host's check, for its progress bar.
const CHECK_STEPS: u64 = 3;
/// Width of the verdict column.
const VERDICT_WIDTH: usize = 50;

/// Checks every chosen host; returns the exit code: 0 when every host is ready.
pub async fn exec(
    args: CheckArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    let fanout = Fanout::begin();
    let (selected, hosts) = fanout::choose(config, &args.hosts, &args.layer())?;
    // Bad input, before any host is checked.
    fanout::check_elixirs(&hosts)?;
    fanout::check_ssh_configs(&hosts)?;
    // Each host is checked against the build `run` would ship it: a group or host may set its
    // own mix_env. Each build is read once.
    let mut builds: Vec<(String, Option<Arc<Local>>)> = Vec::new();
    let mut local_of = HashMap::new();
    for chosen in &selected {
        let build = config::build(
            config,
            args.build.project.as_deref(),
            &args.build.layer(),
            std::slice::from_ref(chosen),
        )?;
        let local = match builds.iter().find(|(env, _)| *env == build.mix_env) {
            Some((_, local)) => local.clone(),
            None => {
                let local = match LocalBuild::read(&build.project, &build.mix_env)? {
                    Some(local) => Some(Arc::new(needs(local, &build.project, &build.mix_env)?)),
                    None => None,
                };
                if local.is_none() {
                    report.verbose(&format!(
                        "no compiled build in {} for MIX_ENV={}: the compatibility column is skipped",
                        build.project.display(),
                        build.mix_env
                    ));
                }
                builds.push((build.mix_env, local.clone()));
                local
            }
        };
        local_of.insert(chosen.name.clone(), local);
    }
    let work = |host: HostSettings, view: Arc<Reporter>| {
        let local = local_of.get(&host.name).cloned().flatten();
        let near = fanout::near_host(config, &host.name);
        async move {
            let row = probe::check_host(&host, &view, local.as_deref()).await;
            if let (Probe::Failed, Some(near)) = (row.ssh, &near) {
                view.hint(&fanout::near_host_hint(&host.name, near));
            }
            view.event(Event::Check(row.clone()));
            row
        }
    };
    let rows = match fanout
        .run(
            &report,
            &hosts,
            args.at_once.parallel,
            CHECK_STEPS,
            |_| false,
            work,
        )
        .await
    {
        Ok(rows) => rows,
        Err(fanout::Interrupted(_)) => return Ok(fanout::interrupted_end(&report, hosts.len())),
    };
    let rows: Vec<CheckRow> = rows.into_iter().flatten().collect();
    let ready = rows.iter().filter(|r| r.ready).count();
    let code = if ready == hosts.len() {
        exit::OK
    } else {
        exit::CANNOT_RUN
    };
    if !report.json() {
        let mut text = table(&rows);
        for row in &rows {
            if let Some(problem) = &row.problem {
                text += &format!("{}: {problem}\n", row.host);
            }
        }
        text += &format!("{ready} of {} ready\n", counted(hosts.len(), "host"));
        report.output(text.as_bytes());
    }
    fanout::summary(&report, hosts.len(), hosts.len() - ready, code);
    Ok(code)
}

/// `build` with what it needs of a server: as `run` works it out for a closure, here for every
/// module of the build (the applications its applications name, their native code).
fn needs(build: LocalBuild, project: &Path, env: &str) -> Result<Local, CliError> {
    let apps = Apps::resolve(project, env, None, &build.modules())?;
    // Only native objects are read whole: the other files of priv/ are not sent.
    let priv_files = apps::priv_entries(&apps.shipped, native::target_at)?;
    let natives = native::objects_found(project, &priv_files);
    Ok(Local {
        build,
        apps: apps.from_server,
        natives,
    })
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
                cell(r.temp_dir).into(),
                r.stale_runs.map_or_else(|| "-".into(), |n| n.to_string()),
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
            "TEMP DIR",
            "STALE RUNS",
            "VERDICT",
        ],
        &body,
    )
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
            temp_dir: Probe::Ok,
            stale_runs: Some(0),
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
