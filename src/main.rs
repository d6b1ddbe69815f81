//! mix-remote: run a function of a compiled Mix project on a server reached only by SSH.
//!
//! The command line is parsed, handed to its command's `exec`, and the exit decided here, once:
//! an error before any host is contacted is reported as one line (and a summary event with
//! `--json`), with the code `exit.rs` gives it.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::error::ErrorKind;
use mix_remote::cli::{self, Command};
use mix_remote::cmd::{check, completions, down, eval, graph, iex, init, plan, run, status, up};
use mix_remote::config::Config;
use mix_remote::events::Event;
use mix_remote::exit::{self, CliError};
use mix_remote::remote::agent::server::AGENT;
use mix_remote::report::Reporter;
use mix_remote::screen;

fn main() -> ExitCode {
    // A shell asking for candidates gets them, and nothing else runs.
    completions::complete();
    let args: Vec<OsString> = std::env::args_os().collect();
    // A warm session's agent, which `up` starts: not a command of the user's.
    if args.get(1).is_some_and(|a| a == AGENT) {
        return ExitCode::from(mix_remote::remote::agent::server::main());
    }
    if args.len() == 1 {
        // As cargo does: the help, on stdout, and success.
        return printed(cli::command().print_help(), exit::OK);
    }
    let json_asked = cli::asks_for_json(&args);
    let cli = match cli::parse(cli::command(), args.clone()) {
        Ok(cli) => cli,
        // clap says only that some argument is not UTF-8: one line naming it instead.
        Err(e) if e.kind() == ErrorKind::InvalidUtf8 => {
            let reporter = Reporter::new(false, false, json_asked);
            let code = failed(&reporter, &CliError::usage(cli::not_utf8(&args)));
            reporter.flush();
            return ExitCode::from(code);
        }
        // `--help`, `--version`: on stdout, which may not take them.
        Err(e) if !e.use_stderr() => {
            return printed(e.print(), u8::try_from(e.exit_code()).unwrap_or(exit::OK));
        }
        Err(e) => {
            // Refused before any host: the `error` and `summary` events promised for that, and
            // clap's own message on stderr.
            if json_asked && e.use_stderr() {
                let code = u8::try_from(e.exit_code()).unwrap_or(exit::USAGE);
                mix_remote::events::emit(&Event::Error {
                    host: None,
                    message: cli::one_line(&e),
                });
                mix_remote::events::emit(&Event::Summary {
                    hosts: 0,
                    failed: 0,
                    exit_code: code,
                });
            }
            e.exit()
        }
    };
    let json = match &cli.command {
        Command::Run(args) => args.options.json,
        Command::Eval(args) => args.options.json,
        Command::Plan(args) => args.json,
        Command::Check(args) => args.json,
        // `status --json` prints its sessions, not events: an error is a line on stderr.
        Command::Up(_) | Command::Down(_) | Command::Status(_) => false,
        Command::Iex(_) | Command::Graph(_) | Command::Init(_) | Command::Completions(_) => false,
    };
    let output = cli.output();
    let reporter = Arc::new(Reporter::new(output.quiet, output.verbose, json));
    if output.no_warnings {
        reporter.silence_warnings();
    }
    let config = cli.config().map(Path::to_owned);
    let config = config.as_deref();
    // A password read the run left waiting must not leave the terminal without echo, however
    // the command ends (a panic unwinds through here too).
    let terminal = TerminalGuard;
    let result = match cli.command {
        Command::Init(args) => init::exec(&args, output.quiet),
        Command::Completions(args) => completions::exec(&args),
        Command::Plan(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| block_on(plan::exec(args, c.as_ref(), Arc::clone(&reporter)))),
        Command::Graph(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| graph::exec(&args, c.as_ref(), &reporter)),
        Command::Run(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| block_on(run::exec(args, c.as_ref(), Arc::clone(&reporter)))),
        Command::Eval(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| block_on(eval::exec(args, c.as_ref(), Arc::clone(&reporter)))),
        Command::Iex(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| block_on(iex::exec(args, c.as_ref(), Arc::clone(&reporter)))),
        Command::Check(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| block_on(check::exec(args, c.as_ref(), Arc::clone(&reporter)))),
        Command::Up(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| block_on(up::exec(args, c.as_ref(), Arc::clone(&reporter)))),
        Command::Down(args) => load_config(config, &reporter, output.warnings)
            .and_then(|c| block_on(down::exec(args, c.as_ref(), Arc::clone(&reporter)))),
        Command::Status(args) => block_on(status::exec(args, Arc::clone(&reporter))),
    };
    drop(terminal);
    let code = match result {
        Ok(code) => code,
        Err(e) => failed(&reporter, &e),
    };
    // Everything said is on the terminal before the process goes.
    reporter.flush();
    // Output that could not be written is a failure (a reader that has gone is not: `| head -1`
    // has what it wants); a command that failed already keeps its code.
    let code = match screen::stdout_failed() {
        Some(why) => {
            reporter.error(&CliError::stdout(why).message);
            reporter.flush();
            if code == exit::OK {
                exit::CANNOT_RUN
            } else {
                code
            }
        }
        None => code,
    };
    ExitCode::from(code)
}

/// The exit of a command that only printed on stdout (the help): `code`, unless the print
/// failed for another reason than its reader's going, which is said.
fn printed(print: std::io::Result<()>, code: u8) -> ExitCode {
    match print {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            let reporter = Reporter::new(false, false, false);
            let code = failed(&reporter, &CliError::stdout(e));
            reporter.flush();
            ExitCode::from(code)
        }
        _ => ExitCode::from(code),
    }
}

/// Reports `error`, which ended the command before any host did (with `--json`, an `error` and
/// a `summary` event), and gives its exit code.
fn failed(reporter: &Reporter, error: &CliError) -> u8 {
    reporter.error(&error.message);
    reporter.event(Event::Summary {
        hosts: 0,
        failed: 0,
        exit_code: error.code,
    });
    error.code
}

/// Puts the terminal's settings back when dropped (see `remote::stdin::restore_terminal`).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        mix_remote::remote::stdin::restore_terminal();
    }
}

/// The configuration named by `--config`, else found from the current directory upwards; its
/// `warnings: false` silences the warnings unless `warnings` (`--warnings`) says to show them.
fn load_config(
    explicit: Option<&Path>,
    reporter: &Reporter,
    warnings: bool,
) -> Result<Option<Config>, CliError> {
    let config = Config::locate(explicit, Path::new("."))?;
    if let Some(config) = &config {
        reporter.verbose(&format!("configuration: {}", config.path().display()));
        if config.warnings() == Some(false) && !warnings {
            reporter.silence_warnings();
        }
    }
    Ok(config)
}

/// Runs `command` to its end on a fresh async runtime.
fn block_on(command: impl Future<Output = Result<u8, CliError>>) -> Result<u8, CliError> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| {
        CliError::new(
            format!("cannot start the async runtime: {e}"),
            exit::CANNOT_RUN,
        )
    })?;
    let result = runtime.block_on(command);
    // Do not wait for tasks still blocked on a dead connection: everything is torn down already.
    runtime.shutdown_background();
    result
}
