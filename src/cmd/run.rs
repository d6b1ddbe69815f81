//! `mix-remote run`: the hosts are chosen and their settings resolved, the closure is computed
//! once, then every host runs it concurrently through its own SSH connection (`cmd/fanout.rs`).
//! A summary table ends a run on several hosts; the exit code is the worst of any host's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::build::entry::display_module;
use crate::build::project;
use crate::cli::{Expect, RunArgs};
use crate::cmd::fanout::{self, Fanout};
use crate::config::{self, Config, HostSettings};
use crate::events::Status;
use crate::exit::{self, CliError};
use crate::remote::console::Input;
use crate::remote::invoke::Outcome;
use crate::remote::job::Job;
use crate::remote::session::{self, SessionError};
use crate::report::{self, Reporter};

/// Phases a host goes through in a run, for its progress bar.
const RUN_STEPS: u64 = 4;
/// Width of a result in the summary table.
const RESULT_WIDTH: usize = 60;

/// How one host's run ended, for the summary.
#[derive(Debug, Clone)]
struct HostEnd {
    /// The process exit code this host alone would give.
    code: u8,
    /// One line for the summary table.
    result: String,
    /// Time spent on the host.
    elapsed: Duration,
}

/// Runs the entry on every chosen host; returns the exit code (errors before any host is
/// contacted are the `Err`).
pub async fn exec(
    args: RunArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    let fanout = Fanout::begin();
    let flags = args.layer();
    let (selected, hosts) = fanout::choose(config, &args.hosts, &flags)?;
    let build = config::build(config, args.build.project.as_deref(), &flags, &selected)?;
    let job = Arc::new(Job::prepare(
        &build,
        &args.args,
        args.no_app_config,
        &report,
    )?);
    let expect = args.expect;
    let input = Input::for_hosts(hosts.len());
    let work = |host: HostSettings, view: Arc<Reporter>| {
        let job = Arc::clone(&job);
        let input = input.clone();
        async move {
            let started = Instant::now();
            let outcome = session::run_host(&job, &host, &view, &input).await;
            conclude(&job, &host, &view, outcome, expect, started.elapsed())
        }
    };
    let fail_fast = args.fail_fast;
    let stop = |end: &HostEnd| fail_fast && end.code != exit::OK;
    let ends = match fanout
        .run(&report, &hosts, args.hosts.parallel, RUN_STEPS, stop, work)
        .await
    {
        Ok(ends) => ends,
        Err(fanout::Interrupted) => return Ok(exit::INTERRUPTED),
    };
    let unfinished = if fail_fast {
        "cancelled (--fail-fast)"
    } else {
        "did not finish"
    };
    Ok(summarize(&report, &hosts, &ends, unfinished))
}

/// Reports the end of one host's run and sums it up.
fn conclude(
    job: &Job,
    host: &HostSettings,
    view: &Reporter,
    outcome: Result<Outcome, SessionError>,
    expect: Option<Expect>,
    elapsed: Duration,
) -> HostEnd {
    let entry = job.call.shown();
    let short = |text: &str| report::shorten(text, RESULT_WIDTH);
    let (code, result) = match outcome {
        Ok(Outcome::Returned(value)) => {
            let ok = expect.is_none() || value == ":ok";
            view.result(&entry, Status::Returned, &value, ok);
            if ok {
                (exit::OK, format!("returned {}", short(&value)))
            } else {
                view.error(&format!(
                    "{entry} returned {} on {}, expected :ok",
                    short(&value),
                    host.name
                ));
                (exit::RAISED, format!("not :ok: {}", short(&value)))
            }
        }
        Ok(Outcome::Raised {
            text,
            missing_module,
        }) => {
            view.result(&entry, Status::Raised, &text, false);
            if let Some(module) = missing_module {
                include_hint(job, view, &module);
            }
            (exit::RAISED, format!("raised {}", short(&text)))
        }
        Ok(Outcome::NotStarted { app, reason }) => {
            // Mix's own words (`Could not start application APP: ...`), with the host.
            view.error(&format!(
                "could not start application {app} on {}: {reason}",
                host.name
            ));
            (
                exit::RAISED,
                format!("application {app} did not start: {}", short(&reason)),
            )
        }
        Err(e) => {
            let message = e.to_string();
            view.error(&message);
            (
                CliError::from(e).code,
                format!("error: {}", short(&message)),
            )
        }
    };
    HostEnd {
        code,
        result,
        elapsed,
    }
}

/// After an `undef` of `module`: the --include hint, when the module is in the project's build but
/// was not shipped (its application is not one the project's applications need); the shipped ones
/// load on demand.
fn include_hint(job: &Job, view: &Reporter, module: &str) {
    let Some(beam) = job.plan.graph().module(module) else {
        return;
    };
    if job
        .apps
        .shipped
        .iter()
        .any(|a| a.modules.iter().any(|m| m == module))
    {
        return;
    }
    let app = project::app_of(&beam.path);
    let module = display_module(module);
    view.hint(&format!(
        "{module} is in this project's _build but was not pushed: its application {app} is not \
         one the project's applications need (a build-only dependency?) and nothing the entry \
         uses names it in its code; add --include {module} (or list it under `include` in \
         mix-remote.yaml)"
    ));
}

/// The summary table (several hosts) and event; returns the exit code: the highest of any host
/// that finished. Hosts without an end are shown as `unfinished`.
fn summarize(
    report: &Reporter,
    hosts: &[HostSettings],
    ends: &[Option<HostEnd>],
    unfinished: &str,
) -> u8 {
    let code = ends
        .iter()
        .flatten()
        .map(|e| e.code)
        .max()
        .unwrap_or(exit::OK);
    let failed = ends
        .iter()
        .filter(|e| e.as_ref().is_none_or(|e| e.code != exit::OK))
        .count();
    if hosts.len() > 1 {
        let rows: Vec<Vec<String>> = hosts
            .iter()
            .zip(ends)
            .map(|(host, end)| match end {
                Some(end) => vec![
                    host.name.clone(),
                    end.result.clone(),
                    format!("{:.1} s", end.elapsed.as_secs_f64()),
                ],
                None => vec![host.name.clone(), unfinished.into(), "-".into()],
            })
            .collect();
        report.table(&["HOST", "RESULT", "TIME"], &rows);
    }
    fanout::summary(report, hosts.len(), failed, code);
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Section, Selected};

    #[test]
    fn the_exit_code_is_the_worst_of_any_host() {
        let report = Reporter::new(true, false, false);
        let host = |n: &str| {
            config::resolve(
                None,
                &Selected {
                    name: n.into(),
                    group: None,
                },
                &Section::default(),
            )
        };
        let end = |code| {
            Some(HostEnd {
                code,
                result: String::new(),
                elapsed: Duration::ZERO,
            })
        };
        let hosts = [host("a"), host("b"), host("c")];
        assert_eq!(
            summarize(&report, &hosts, &[end(0), end(3), end(1)], "-"),
            3
        );
        assert_eq!(
            summarize(&report, &hosts, &[end(0), end(0), end(0)], "-"),
            0
        );
        assert_eq!(summarize(&report, &hosts, &[end(1), None, None], "-"), 1);
    }
}
