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
    /// Show what `run` would push for ENTRY, in push order, with sizes and why each module is
    /// needed. Reads the build only: no SSH, no server.
    #[command(after_help = "Examples:\n  \
        mix-remote plan MyApp.Worker.process\n  \
        mix-remote plan MyApp.Worker.process --include MyApp.Notifiers.Slack --json | jq .module")]
    Plan(PlanArgs),
    /// Print the project's module dependency graph (or ENTRY's closure) as Graphviz DOT or JSON.
    #[command(after_help = "Examples:\n  \
        mix-remote graph | dot -Tsvg > graph.svg\n  \
        mix-remote graph MyApp.Worker.process --format json")]
    Graph(GraphArgs),
}

/// Where the compiled project is, and what to add to the closure.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Mix project directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// The Mix environment whose build to read (`_build/<ENV>`).
    #[arg(long, value_name = "ENV", env = "MIX_ENV", default_value = "dev")]
    pub env: String,
    /// Also push MODULE and its closure: for modules no static analysis can see, such as one
    /// named only in config or built with Module.concat (repeatable).
    #[arg(long = "include", value_name = "MODULE")]
    pub include: Vec<String>,
}

/// Flags of `mix-remote plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Entry function: `MyApp.Worker.process` or `:erlang_module.function`.
    pub entry: String,
    /// The build to read and the modules to add.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Print newline-delimited JSON objects instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Output formats of `mix-remote graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT, one cluster per application.
    Dot,
    /// One JSON object with `nodes` and `edges`.
    Json,
}

/// Flags of `mix-remote graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Show only this entry function's closure (default: the whole project).
    pub entry: Option<String>,
    /// The build to read and the modules to add.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Flags of `mix-remote run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Entry function: `MyApp.Worker.process` or `:erlang_module.function`.
    pub entry: String,
    /// SSH destination, `[user@]host` (anything ssh accepts, including ~/.ssh/config aliases).
    #[arg(long, value_name = "[USER@]HOST")]
    pub host: String,
    /// The build to read and the modules to add.
    #[command(flatten)]
    pub build: BuildArgs,
    /// The `elixir` executable on the remote host (default: found on the login PATH).
    #[arg(long, value_name = "PATH", default_value = "elixir")]
    pub elixir: String,
    /// ssh_config file to use instead of ~/.ssh/config (passed to ssh as -F).
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Extra ssh option, as for `ssh -o` (repeatable), e.g. -o Port=2222.
    #[arg(short = 'o', long = "ssh-option", value_name = "OPTION")]
    pub ssh_options: Vec<String>,
    /// Do not send the project's config/ files: the remote then runs with the applications'
    /// `.app` env defaults only (config/*.exs are evaluated on the remote otherwise).
    #[arg(long)]
    pub no_config: bool,
    /// Seconds to wait for the SSH connection.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub connect_timeout: u64,
    /// Seconds to wait for the remote node to boot and for the code to load.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub boot_timeout: u64,
    /// Arguments of the function, each an Elixir literal: 42, "text", :atom, [1, 2], %{a: 1}, {1, 2}.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}
