//! `run` on one host or many: the hosts are chosen (`--host`, `--group`) and their settings
//! resolved, the closure is computed once, then every host runs it concurrently (at most
//! `--parallel` at a time), each through its own SSH connection, so one slow or unreachable host
//! never holds up the others. A summary table ends a run on several hosts.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::{Expect, Hosts, RunArgs};
use crate::config::{self, Config, ConfigError, HostSettings, Section};
use crate::events::Event;
use crate::invoke::Outcome;
use crate::push;
use crate::report::{self, Reporter};
use crate::run::{self, EXIT_INTERRUPTED, EXIT_RAISED, EXIT_USAGE, Job};

/// Hosts worked on at once when `--parallel` is not given: "all of them", within reason for
/// the local machine (two processes and a few sockets per host).
pub const MAX_PARALLEL: usize = 64;
/// Phases a host goes through in a run, for its progress bar.
const RUN_STEPS: u64 = 4;
/// Width of a result in the summary table.
const RESULT_WIDTH: usize = 60;

/// How one host's run ended, for the summary.
#[derive(Debug, Clone)]
pub struct HostEnd {
    /// The process exit code this host alone would give.
    pub code: u8,
    /// One line for the summary table.
    pub result: String,
    /// Time spent on the host.
    pub elapsed: Duration,
}

/// Chooses the hosts and resolves their settings: `flags` over mix-remote.yaml over defaults.
pub fn hosts(
    config: Option<&Config>,
    chosen: &Hosts,
    flags: &Section,
) -> Result<Vec<HostSettings>, ConfigError> {
    let selected = config::select(config, &chosen.hosts, &chosen.groups)?;
    Ok(selected
        .iter()
        .map(|s| config::resolve(config, s, flags))
        .collect())
}

/// How many hosts at once.
pub fn parallelism(flag: Option<NonZeroUsize>, hosts: usize) -> usize {
    flag.map_or(hosts.min(MAX_PARALLEL), NonZeroUsize::get)
        .max(1)
}

/// The `run` command: returns the process exit code; everything is reported through `report`.
pub async fn run(args: RunArgs, config: Option<&Config>, report: Arc<Reporter>) -> u8 {
    // Installed before anything is started, so no signal can end a run without its teardown.
    let interrupted = run::interrupted();
    let settings = match hosts(config, &args.hosts, &args.layer()).and_then(|h| {
        config::agree(&h)?;
        Ok(h)
    }) {
        Ok(settings) => settings,
        Err(e) => return fail_early(&report, &e.to_string(), EXIT_USAGE),
    };
    let first = &settings[0];
    let project = config::project_dir(args.build.project.as_deref(), config);
    let build = run::Build {
        project: &project,
        env: &first.mix_env,
        include: &first.include,
        skip_app_config: args.no_app_config,
    };
    let job = match run::prepare(first.entry.as_deref(), &args.args, &build, &report) {
        Ok(job) => Arc::new(job),
        Err(e) => return fail_early(&report, &e.to_string(), e.exit_code()),
    };

    let prefixed = settings.len() > 1;
    let limit = Arc::new(Semaphore::new(parallelism(
        args.hosts.parallel,
        settings.len(),
    )));
    let views: Vec<Arc<Reporter>> = settings
        .iter()
        .map(|h| Arc::new(report.for_host(&h.name, prefixed, RUN_STEPS)))
        .collect();
    let mut tasks = JoinSet::new();
    for (index, host) in settings.iter().enumerate() {
        let (job, host, view, limit) = (
            Arc::clone(&job),
            host.clone(),
            Arc::clone(&views[index]),
            Arc::clone(&limit),
        );
        let expect = args.expect;
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let started = Instant::now();
            let outcome = run::run_host(&job, &host, &view).await;
            let end = conclude(&job, &host, &view, outcome, expect, started.elapsed());
            view.end_host();
            (index, end)
        });
    }

    let mut ends: Vec<Option<HostEnd>> = vec![None; settings.len()];
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break,
                Some(Ok((index, end))) => {
                    let failed = end.code != 0;
                    ends[index] = Some(end);
                    if failed && args.fail_fast {
                        // Dropping a host's run kills its ssh master: its remote node halts.
                        tasks.shutdown().await;
                        break;
                    }
                }
                Some(Err(e)) => {
                    report.error(&format!("a host's task failed: {e}"));
                }
            },
            () = &mut interrupted => {
                tasks.shutdown().await;
                views.iter().for_each(|v| v.end_host());
                report.error("interrupted: remote nodes stopped, connections closed");
                report.event(Event::Summary { hosts: settings.len(), failed: settings.len(), exit_code: EXIT_INTERRUPTED });
                return EXIT_INTERRUPTED;
            }
        }
    }
    for (view, end) in views.iter().zip(&ends) {
        if end.is_none() {
            view.end_host();
        }
    }
    let unfinished = if args.fail_fast {
        "cancelled (--fail-fast)"
    } else {
        "did not finish"
    };
    summarize(&report, &settings, &ends, unfinished)
}

/// Reports the end of one host's run and sums it up.
fn conclude(
    job: &Job,
    host: &HostSettings,
    view: &Reporter,
    outcome: Result<Outcome, run::RunError>,
    expect: Option<Expect>,
    elapsed: Duration,
) -> HostEnd {
    let entry = job.entry.shown();
    let short = |text: &str| report::shorten(text, RESULT_WIDTH);
    let (code, result) = match outcome {
        Ok(outcome) => {
            let (code, result) = match &outcome {
                Outcome::Returned(value) if expect.is_none() || value == ":ok" => {
                    (0, format!("returned {}", short(value)))
                }
                Outcome::Returned(value) => (EXIT_RAISED, format!("not :ok: {}", short(value))),
                Outcome::Raised { text, .. } => (EXIT_RAISED, format!("raised {}", short(text))),
            };
            view.result(&entry, &outcome, code == 0);
            // An undef only deserves the --include hint when the missing module is one of the
            // project's (one the plan could have pushed).
            if let Outcome::Raised {
                missing_module: Some(module),
                ..
            } = &outcome
                && job.plan.graph().module(module).is_some()
            {
                let module = push::display_module(module);
                view.hint(&format!(
                    "{module} is a module of this project that was not pushed (nothing the entry \
                     uses names it in its code); add --include {module} (or list it under \
                     `include` in mix-remote.yaml)"
                ));
            }
            if let (Outcome::Returned(value), EXIT_RAISED) = (&outcome, code) {
                view.error(&format!(
                    "{entry} returned {} on {}, expected :ok",
                    short(value),
                    host.name
                ));
            }
            (code, result)
        }
        Err(e) => {
            view.error(&e.to_string());
            (e.exit_code(), format!("error: {}", short(&e.to_string())))
        }
    };
    HostEnd {
        code,
        result,
        elapsed,
    }
}

/// The summary table (several hosts) and event; returns the exit code: the highest of any host
/// that finished. Hosts without an end are shown as `unfinished`.
fn summarize(
    report: &Reporter,
    hosts: &[HostSettings],
    ends: &[Option<HostEnd>],
    unfinished: &str,
) -> u8 {
    let code = ends.iter().flatten().map(|e| e.code).max().unwrap_or(0);
    let failed = ends
        .iter()
        .filter(|e| e.as_ref().is_none_or(|e| e.code != 0))
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
    report.event(Event::Summary {
        hosts: hosts.len(),
        failed,
        exit_code: code,
    });
    code
}

/// Reports an error that stops the command before any host is contacted.
pub fn fail_early(report: &Reporter, message: &str, code: u8) -> u8 {
    report.error(message);
    report.event(Event::Summary {
        hosts: 0,
        failed: 0,
        exit_code: code,
    });
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_hosts_at_once_within_a_bound() {
        assert_eq!(parallelism(None, 3), 3);
        assert_eq!(parallelism(None, 500), MAX_PARALLEL);
        assert_eq!(parallelism(NonZeroUsize::new(2), 10), 2);
    }

    #[test]
    fn the_exit_code_is_the_worst_of_any_host() {
        let report = Reporter::new(true, false, false);
        let host = |n: &str| {
            config::resolve(
                None,
                &config::Selected {
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
