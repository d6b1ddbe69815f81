//! `mix-remote eval EXPR`: evaluates an Elixir expression on every chosen host with the
//! project's code, pushed as for `run` (the closure of the project modules the expression names),
//! and prints its value as `run` prints a result.

use std::sync::Arc;

use crate::cli::EvalArgs;
use crate::cmd::run;
use crate::config::{Build, Config, Section};
use crate::exit::CliError;
use crate::remote::job::{Code, Job};
use crate::report::Reporter;

/// Evaluates the expression on every chosen host; returns the exit code, as `run` does.
pub async fn exec(
    args: EvalArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    let config_use = args.options.setup.config_use();
    let prepare = |build: &Build, report: &Reporter| {
        Job::prepare_code(
            build,
            Code::expression(&args.expr, args.args.clone()),
            config_use,
            report,
        )
    };
    let looks_right = Job::code_looks_preparable;
    // An expression has no entry: the hosts' `entry` settings are not its concern (nor a
    // disagreement among them).
    let flags = Section {
        entry: Some(String::new()),
        ..args.options.layer()
    };
    run::on_hosts(&args.options, flags, config, report, looks_right, prepare).await
}
