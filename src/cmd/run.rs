//! `mix-remote run`: the hosts are chosen and their settings resolved, the closure is computed
//! once, then every host runs it concurrently through its own SSH connection (`cmd/fanout.rs`).
//! A summary table ends a run on several hosts; the exit code is the worst of any host's. An
//! entry ending in `.exs` is a script; `eval` (`cmd/eval.rs`) runs an expression the same way.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::build::entry::display_module;
use crate::build::{parallel, project};
use crate::cli::{Expect, RunArgs, RunOptions};
use crate::cmd::fanout::{self, Fanout};
use crate::cmd::fresh;
use crate::config::{self, Build, Config, HostSettings, Section};
use crate::events::Status;
use crate::exit::{self, CliError};
use crate::remote::console::Input;
use crate::remote::invoke::Outcome;
use crate::remote::job::{Call, Code, Job, JobError};
use crate::remote::session::{self, Login, SessionError};
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

/// Runs the entry (or the script) on every chosen host; returns the exit code (errors before any
/// host is contacted are the `Err`).
pub async fn exec(
    args: RunArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    let config_use = args.options.setup.config_use();
    // A script is read first: an unreadable one is bad input before anything else happens.
    let script = Code::script_of(args.entry.as_deref(), args.args.clone())?;
    // A script's arguments are its System.argv, flags included (`-- --dry-run`).
    if let (None, Some(flag)) = (&script, args.args.iter().find(|a| is_flag(a))) {
        return Err(CliError::usage(format!(
            "`{flag}` comes after `--`, where every word is an argument of the function: put \
             mix-remote's flags before `--` (mix-remote run ENTRY {flag} ... -- ARGS)"
        )));
    }
    let is_script = script.is_some();
    let looks_right = |build: &Build| {
        if is_script {
            Job::code_looks_preparable(build)
        } else {
            Job::looks_preparable(build, &args.args)
        }
    };
    let prepare = |build: &Build, report: &Reporter| match script {
        Some(code) => Job::prepare_code(build, code, config_use, report),
        None => Job::prepare(build, &args.args, config_use, report),
    };
    on_hosts(
        &args.options,
        args.layer(),
        config,
        report,
        looks_right,
        prepare,
    )
    .await
}

/// Chooses the hosts of `options` with the settings `flags` and `config` give them, compiles the
/// project, prepares the job once, runs it on every host and sums up: what `run` and `eval`
/// share. If the job `looks_right` (a quick look at the modules it names), the login to a single
/// host goes on while it is prepared.
pub async fn on_hosts(
    options: &RunOptions,
    flags: Section,
    config: Option<&Config>,
    report: Arc<Reporter>,
    looks_right: impl FnOnce(&Build) -> bool,
    prepare: impl FnOnce(&Build, &Reporter) -> Result<Job, JobError>,
) -> Result<u8, CliError> {
    let (selected, hosts) = fanout::choose(config, &options.hosts, &flags)?;
    fanout::check_ssh_configs(&hosts)?;
    let build = config::build(config, options.setup.build.project(), &flags, &selected)?;
    // The signal handlers first: a signal while Mix compiles stops Mix (and all it started) and
    // ends the run as interrupted.
    let mut fanout = Fanout::begin();
    fresh::ensure(&build, &report, fanout.interrupted()).await?;
    let input = Input::for_hosts(hosts.len());
    // The login to a single host goes on while the project is read (and ends if that fails);
    // input that is plainly wrong connects nowhere.
    let ahead = looks_right(&build)
        .then(|| Login::ahead(&hosts, &report, &input))
        .flatten();
    // Its ssh keeps a core busy for a while: the project is read on the others.
    let _for_login = ahead.is_some().then(parallel::reserve);
    let login = Mutex::new(ahead);
    let mut job = prepare(&build, &report)?;
    // As `mix run` has them: colours when the function's output and errors go to a terminal
    // (one host's, not among events).
    job.ansi = hosts.len() == 1
        && !report.json()
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal();
    // The value ahead of the hooks' output, as `mix run -e 'IO.inspect(...)'` prints it: on
    // stdout, or in `output` events, where a hook that ends the run otherwise leaves it (the
    // `result` event then says how the run ended).
    job.value_ahead = job.call.prints_value();
    let job = Arc::new(job);
    let expect = options.expect;
    let work = |host: HostSettings, view: Arc<Reporter>| {
        let job = Arc::clone(&job);
        let near = fanout::near_host(config, &host.name);
        let input = input.clone();
        let login = login.lock().expect("login lock poisoned").take();
        async move {
            let started = Instant::now();
            let outcome = session::run_host(&job, &host, &view, &input, login).await;
            let unreached = matches!(outcome, Err(SessionError::Ssh(_)));
            let end = conclude(&job, &view, outcome, expect, started.elapsed());
            if let (true, Some(near)) = (unreached, &near) {
                view.hint(&fanout::near_host_hint(&host.name, near));
            }
            end
        }
    };
    let fail_fast = options.fail_fast;
    let stop = |end: &HostEnd| fail_fast && end.code != exit::OK;
    let ends = match fanout
        .run(
            &report,
            &hosts,
            options.at_once.parallel,
            RUN_STEPS,
            stop,
            work,
        )
        .await
    {
        Ok(ends) => ends,
        Err(fanout::Interrupted(ends)) => {
            host_table(&report, &hosts, &ends, "interrupted");
            return Ok(fanout::interrupted_end(&report, hosts.len()));
        }
    };
    let unfinished = if fail_fast {
        "cancelled (--fail-fast)"
    } else {
        "did not finish"
    };
    Ok(summarize(&report, &hosts, &ends, unfinished))
}

/// Whether `word` is a flag (`--host`, `-o`), which no Elixir literal is (`-7` is a number).
fn is_flag(word: &str) -> bool {
    word.strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c == '-' || c.is_ascii_alphabetic()))
}

/// Reports the end of one host's run and sums it up.
fn conclude(
    job: &Job,
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
            // A script's value is not printed, as `mix run FILE` prints none; events carry it.
            if job.call.prints_value() || view.json() {
                view.result(&entry, Status::Returned, &value, ok);
            }
            if ok {
                (exit::OK, format!("returned {}", short(&value)))
            } else {
                view.error(&format!(
                    "{entry} returned {}{}, expected :ok",
                    short(&value),
                    view.on_host()
                ));
                (exit::RAISED, format!("not :ok: {}", short(&value)))
            }
        }
        Ok(Outcome::Failed {
            how,
            text,
            missing_module,
            status,
        }) => {
            // A Mix exception's `exit_status: 0` ends `mix run` with 0, and so the run (unless
            // `--expect` wanted a value); any other status with 1, as `exit({:shutdown, n})`.
            let ok = status == 0 && expect.is_none();
            view.result(&entry, how, &text, ok);
            if let Some(module) = missing_module {
                include_hint(job, view, &module);
            }
            let code = if ok { exit::OK } else { exit::RAISED };
            (code, format!("{} {}", how.word(), short(&text)))
        }
        Ok(Outcome::Stopped(status)) => {
            // As `mix run` ends: no value to print; a status other than 0 is a failure.
            let ok = status == 0 && expect.is_none();
            view.result(&entry, Status::Stopped, &status.to_string(), ok);
            if ok {
                (exit::OK, "stopped with status 0".to_owned())
            } else {
                let expected = if status == 0 { ", expected :ok" } else { "" };
                view.error(&format!(
                    "{entry} stopped with status {status}{}{expected}",
                    view.on_host()
                ));
                (exit::RAISED, format!("stopped with status {status}"))
            }
        }
        // A config file's Mix exception with `exit_status: 0` ends `mix run` with 0 before the
        // code runs: Mix's words alone, as in the code (unless `--expect` wanted a value); so
        // does its `exit(:normal)`, without a word.
        Ok(Outcome::ConfigFailed {
            file,
            text,
            status: 0,
        }) if expect.is_none() => {
            match text.is_empty() {
                true => view.result(&entry, Status::Stopped, "0", true),
                false => view.result(&entry, Status::Raised, &text, true),
            }
            (exit::OK, format!("{file} ended the run with status 0"))
        }
        Ok(
            outcome @ (Outcome::NotStarted { .. }
            | Outcome::ConfigFailed { .. }
            | Outcome::CompileEnvDiffers { .. }),
        ) => {
            // Mix's own words for an application (`Could not start application APP: ...`),
            // with the host; the whole failure of a config file, as `mix run` prints it.
            let why = outcome.not_called(&view.on_host()).unwrap_or_default();
            view.error_lines(&why, outcome.not_called_more());
            let summary = match outcome {
                Outcome::NotStarted { app, reason } => {
                    format!("application {app} did not start: {}", short(&reason))
                }
                Outcome::ConfigFailed { file, text, status } if text.is_empty() => {
                    format!("{file} stopped the run with status {status}")
                }
                Outcome::ConfigFailed { file, .. } => format!("{file} failed"),
                _ => "the compile-time config differs".to_owned(),
            };
            (exit::RAISED, summary)
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
    let user = match job.call {
        Call::Function { .. } => "the entry",
        Call::Code(_) => "the code",
        Call::Session => "the session",
    };
    view.hint(&format!(
        "{module} is in this project's _build but was not pushed: its application {app} is not \
         one the project's applications need (a build-only dependency?) and nothing {user} \
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
    host_table(report, hosts, ends, unfinished);
    fanout::summary(report, hosts.len(), failed, code);
    code
}

/// The summary table of a run on several hosts (nothing for one); hosts without an end are shown
/// as `unfinished`.
fn host_table(
    report: &Reporter,
    hosts: &[HostSettings],
    ends: &[Option<HostEnd>],
    unfinished: &str,
) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Section, Selected};

    #[test]
    fn flags_are_told_from_negative_numbers() {
        for flag in ["--host", "-o", "--", "-F"] {
            assert!(is_flag(flag), "{flag}");
        }
        for literal in ["-7", "-1.5", ":a", "\"--host\"", "-"] {
            assert!(!is_flag(literal), "{literal}");
        }
    }

    #[test]
    fn the_exit_code_is_the_worst_of_any_host() {
        let report = Reporter::new(true, false, false);
        let host = |n: &str| {
            config::resolve(
                None,
                &Selected {
                    name: n.into(),
                    groups: Vec::new(),
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
