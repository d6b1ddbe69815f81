//! mix-remote: run a function of a compiled Mix project on a server reached only by SSH.

use std::process::ExitCode;

use clap::Parser;
use mix_remote::{cli, report, run};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let reporter = std::sync::Arc::new(report::Reporter::new(cli.quiet, cli.verbose));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            reporter.error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(run::EXIT_CANNOT_RUN);
        }
    };
    let cli::Command::Run(args) = cli.command;
    let code = runtime.block_on(run::main(args, reporter));
    // Do not wait for tasks still blocked on a dead connection: everything is torn down already.
    runtime.shutdown_background();
    ExitCode::from(code)
}
