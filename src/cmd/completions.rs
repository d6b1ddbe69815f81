//! `mix-remote completions SHELL`: the shell completion script, generated from the clap
//! definition.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit;

/// Prints the completion script for the shell asked for.
pub fn exec(args: &CompletionsArgs) -> u8 {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "mix-remote",
        &mut std::io::stdout(),
    );
    exit::OK
}
