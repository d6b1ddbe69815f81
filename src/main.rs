//! mix-remote: run a function of a compiled Mix project on a server reached only by SSH.

use std::process::ExitCode;

use clap::Parser;
use mix_remote::{cli, graph_export, plan, report, run};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let reporter = std::sync::Arc::new(report::Reporter::new(cli.quiet, cli.verbose));
    let code = match cli.command {
        cli::Command::Run(args) => run_async(args, reporter),
        cli::Command::Plan(args) => plan::command(&args, &reporter),
        cli::Command::Graph(args) => graph_export::command(&args, &reporter),
    };
    ExitCode::from(code)
}

/// `run` is the only command that needs the async runtime.
fn run_async(args: cli::RunArgs, reporter: std::sync::Arc<report::Reporter>) -> u8 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            reporter.error(&format!("cannot start the async runtime: {e}"));
            return run::EXIT_CANNOT_RUN;
        }
    };
    let code = runtime.block_on(run::main(args, reporter));
    // Do not wait for tasks still blocked on a dead connection: everything is torn down already.
    runtime.shutdown_background();
    code
}
