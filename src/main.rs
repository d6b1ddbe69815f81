//! mix-remote: run a function of a compiled Mix project on a server reached only by SSH.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use mix_remote::cli::{self, Command};
use mix_remote::config::Config;
use mix_remote::{check, fleet, graph_export, init, plan, report::Reporter, run};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = match &cli.command {
        Command::Run(args) => args.json,
        Command::Plan(args) => args.json,
        Command::Check(args) => args.json,
        Command::Graph(_) | Command::Init(_) | Command::Completions(_) => false,
    };
    let reporter = Arc::new(Reporter::new(cli.quiet, cli.verbose, json));
    let code = match cli.command {
        Command::Init(args) => init_command(&args, &reporter),
        Command::Completions(args) => {
            let mut command = cli::Cli::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "mix-remote",
                &mut std::io::stdout(),
            );
            0
        }
        Command::Run(args) => match load_config(cli.config.as_deref(), Path::new("."), &reporter) {
            Ok(config) => block_on(
                &reporter,
                fleet::run(args, config.as_ref(), Arc::clone(&reporter)),
            ),
            Err(code) => code,
        },
        Command::Plan(args) => {
            match load_config(cli.config.as_deref(), Path::new("."), &reporter) {
                Ok(config) => plan::command(&args, config.as_ref(), &reporter),
                Err(code) => code,
            }
        }
        Command::Graph(args) => match load_config(cli.config.as_deref(), Path::new("."), &reporter)
        {
            Ok(config) => graph_export::command(&args, config.as_ref(), &reporter),
            Err(code) => code,
        },
        Command::Check(args) => {
            match load_config(cli.config.as_deref(), Path::new("."), &reporter) {
                Ok(config) => block_on(
                    &reporter,
                    check::check(args, config.as_ref(), Arc::clone(&reporter)),
                ),
                Err(code) => code,
            }
        }
    };
    ExitCode::from(code)
}

/// The configuration named by `--config`, else found from `start` upwards; on error, the exit
/// code after reporting it.
fn load_config(
    explicit: Option<&Path>,
    start: &Path,
    reporter: &Reporter,
) -> Result<Option<Config>, u8> {
    match Config::locate(explicit, start) {
        Ok(config) => {
            if let Some(config) = &config {
                reporter.verbose(&format!("configuration: {}", config.path().display()));
            }
            Ok(config)
        }
        Err(e) => Err(fleet::fail_early(reporter, &e.to_string(), run::EXIT_USAGE)),
    }
}

/// Runs `command` to its end on a fresh async runtime.
fn block_on(reporter: &Reporter, command: impl Future<Output = u8>) -> u8 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            let message = format!("cannot start the async runtime: {e}");
            return fleet::fail_early(reporter, &message, run::EXIT_CANNOT_RUN);
        }
    };
    let code = runtime.block_on(command);
    // Do not wait for tasks still blocked on a dead connection: everything is torn down already.
    runtime.shutdown_background();
    code
}

fn init_command(args: &cli::InitArgs, reporter: &Reporter) -> u8 {
    match init::init(args) {
        Ok(written) => {
            eprintln!("mix-remote: wrote {}", written.config.display());
            if let Some(makefile) = &written.makefile {
                eprintln!(
                    "mix-remote: added the `smoke` target to {}",
                    makefile.display()
                );
            }
            if let Some(target) = &written.target {
                print!("{target}");
            }
            0
        }
        Err(e) => {
            reporter.error(&e.to_string());
            run::EXIT_USAGE
        }
    }
}
