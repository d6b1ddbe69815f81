//! Command-line interface: flags, help text and exit codes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run a function of a compiled Mix project on a server reached only by SSH.
#[derive(Debug, Parser)]
#[command(name = "mix-remote", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing but the function's output and result (and errors).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show what the tool does: ssh commands, tunnels, modules pushed.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Push the closure of ENTRY to HOST and call it with the arguments after `--`.
    #[command(after_help = "Examples:\n  \
        mix-remote run MyApp.Worker.process --host deploy@db-1 -- 42 '\"batch-7\"'\n  \
        mix-remote run :my_erl_mod.check --host ops@10.0.0.5 --env prod\n\n\
        Exit codes: 0 returned, 1 the function raised/threw/exited, 2 bad input,\n\
        3 could not connect, boot or load, 4 timeout, 130 interrupted.")]
    Run(RunArgs),
}

/// Flags of `mix-remote run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Entry function: `MyApp.Worker.process` or `:erlang_module.function`.
    pub entry: String,
    /// SSH destination, `[user@]host` (anything ssh accepts, including ~/.ssh/config aliases).
    #[arg(long, value_name = "[USER@]HOST")]
    pub host: String,
    /// The Mix project directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// The Mix environment whose build to read (`_build/<ENV>`).
    #[arg(long, value_name = "ENV", env = "MIX_ENV", default_value = "dev")]
    pub env: String,
    /// The `elixir` executable on the remote host (default: found on the login PATH).
    #[arg(long, value_name = "PATH", default_value = "elixir")]
    pub elixir: String,
    /// ssh_config file to use instead of ~/.ssh/config (passed to ssh as -F).
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Extra ssh option, as for `ssh -o` (repeatable), e.g. -o Port=2222.
    #[arg(short = 'o', long = "ssh-option", value_name = "OPTION")]
    pub ssh_options: Vec<String>,
    /// Seconds to wait for the SSH connection and login.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = secs())]
    pub connect_timeout: u64,
    /// Seconds to wait for the remote node to boot and connect back.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = secs())]
    pub boot_timeout: u64,
    /// Seconds to wait for the closure to load on the remote node.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = secs())]
    pub push_timeout: u64,
    /// Seconds the function may run; without it, as long as it needs.
    #[arg(long, value_name = "SECS", value_parser = secs())]
    pub call_timeout: Option<u64>,
    /// Arguments of the function, each an Elixir literal: 42, "text", :atom, [1, 2], %{a: 1}, {1, 2}.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// A limit in whole seconds, at least 1: a limit of 0 could never be met.
fn secs() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}
