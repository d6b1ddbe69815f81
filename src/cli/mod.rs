//! Command-line interface: flags, help text and exit codes. A flag beats its `MIX_REMOTE_*`
//! environment variable (clap merges the two; a flag given before the command beats the
//! variable too, and `--host` or `--group` both host variables, see [`parse`]); both beat
//! mix-remote.yaml (see `config/`).
//!
//! Each job has its file: the parse of the command line, with the flags on both sides of the
//! command (`parse.rs`); what the tool says when clap refuses it (`errors.rs`); the flags every
//! command also takes before its name (`global.rs`); the subcommands and their help
//! (`commands.rs`); the flags several commands share, each as a layer of settings
//! (`shared_args.rs`); each command's own (`command_args.rs`); what a flag's value must be
//! (`values.rs`).

use clap::Parser;

mod command_args;
mod commands;
mod errors;
mod global;
mod parse;
mod shared_args;
mod values;

pub use command_args::{
    CheckArgs, CompletionsArgs, DownArgs, EvalArgs, GraphArgs, GraphFormat, IexArgs, InitArgs,
    PlanArgs, RunArgs, Shell, StatusArgs, UpArgs,
};
pub use commands::Command;
pub use errors::{asks_for_json, not_utf8, one_line};
pub use global::{Before, ConfigFile, Output};
pub use parse::{command, parse};
pub use shared_args::{
    Approach, AtOnce, BootLimit, BuildArgs, CallLimit, CompileArgs, ConnectLimit, Connection,
    Expect, Hosts, Limit, NoCallLimit, ProjectArgs, Reach, RunOptions, SetupArgs,
};

/// Run a function of a compiled Mix project on a server reached only by SSH.
#[derive(Debug, Parser)]
#[command(name = "mix-remote", version, about, long_about = None)]
#[command(after_help = "Examples:\n  \
    mix-remote run MyApp.Worker.process --host deploy@db-1 -- 42 '\"batch-7\"'\n  \
    mix-remote run MyApp.Smoke.check --group web --expect ok\n  \
    mix-remote eval 'MyApp.Repo.aggregate(MyApp.User, :count)' --host deploy@db-1\n  \
    mix-remote iex --host deploy@db-1\n  \
    mix-remote check --group web\n  \
    mix-remote plan MyApp.Worker.process\n  \
    mix-remote init --host deploy@web-1 --entry MyApp.Smoke.check\n  \
    mix-remote help run      # a command's flags, with examples")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// The flags of [`Output`] and `--config`, also accepted before the command
    /// (`mix-remote -q run ...`), but shown with the commands that use them.
    #[command(flatten)]
    pub before: Before,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
