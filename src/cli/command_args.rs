//! The flags of each command, one type a command (what they share is in `shared_args.rs`), and
//! each as the most important layer of settings.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::values::{destination, entry, idle, list_item};
use super::{
    Approach, AtOnce, BootLimit, BuildArgs, CompileArgs, ConfigFile, ConnectLimit, Hosts,
    NoCallLimit, Output, ProjectArgs, Reach, RunOptions, SetupArgs,
};
use crate::config::Section;

/// Flags of `mix-remote plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Entry function: `MyApp.Worker.process` or `:erlang_module.function` [default: `entry` of
    /// mix-remote.yaml]; or a script, a file ending in `.exs` (what `run FILE.exs` pushes: the
    /// modules it names).
    pub entry: Option<String>,
    /// The build to read and the modules to add.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Whether to compile first.
    #[command(flatten)]
    pub compile: CompileArgs,
    /// Print newline-delimited JSON objects instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigFile,
}

impl PlanArgs {
    /// The flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            entry: self.entry.clone(),
            compile: self.compile.layer(),
            ..self.build.layer()
        }
    }
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
    /// Show only this entry function's closure, or a script's (a file ending in `.exs`)
    /// (default: the whole project).
    pub entry: Option<String>,
    /// The build to read and the modules to add.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigFile,
}

/// Flags of `mix-remote run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Entry function: `MyApp.Worker.process` or `:erlang_module.function` [default: `entry` of
    /// mix-remote.yaml]; or a script, a file ending in `.exs`.
    pub entry: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub options: RunOptions,
    /// Arguments of the function, each an Elixir literal: 42, "text", :atom, [1, 2], %{a: 1}, {1, 2};
    /// for a script, its System.argv, as strings.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

impl RunArgs {
    /// The flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            entry: self.entry.clone(),
            ..self.options.layer()
        }
    }
}

/// Flags of `mix-remote eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The Elixir expression.
    pub expr: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub options: RunOptions,
    /// The expression's System.argv, as strings (as `mix run -e CODE ARGS` sets it).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Flags of `mix-remote iex`.
#[derive(Debug, Args)]
pub struct IexArgs {
    /// The SSH destination `[USER@]HOST` (anything ssh accepts), or a host of mix-remote.yaml.
    #[arg(
        long = "host",
        value_name = "HOST",
        env = "MIX_REMOTE_HOST",
        value_delimiter = ',',
        value_parser = list_item
    )]
    pub hosts: Vec<String>,
    /// A group of mix-remote.yaml with one host.
    #[arg(
        long = "group",
        value_name = "NAME",
        env = "MIX_REMOTE_GROUP",
        value_delimiter = ',',
        value_parser = list_item
    )]
    pub groups: Vec<String>,
    /// As [`Hosts::from_variables`].
    #[arg(skip)]
    pub from_variables: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub setup: SetupArgs<NoCallLimit>,
}

impl IexArgs {
    /// The hosts chosen, as `run` chooses them.
    pub fn hosts(&self) -> Hosts {
        Hosts {
            hosts: self.hosts.clone(),
            groups: self.groups.clone(),
            from_variables: self.from_variables,
        }
    }

    /// The flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        self.setup.layer()
    }
}

/// Flags of `mix-remote check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub hosts: Hosts,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub at_once: AtOnce,
    /// The build every module of which is checked against each server's OTP.
    #[command(flatten)]
    pub build: ProjectArgs,
    /// Newline-delimited JSON events on stdout instead of the table (schema in the README).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub approach: Approach,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigFile,
}

impl CheckArgs {
    /// The connection flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        self.approach.layer()
    }
}

/// Flags of `mix-remote up`: the hosts, taken one after another, what makes their sessions' keys,
/// and the limits of the login and of the first spare node's boot.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub hosts: Hosts,
    /// End the session after this long without a run: 90s, 10m, 1h [default: 10m; a session
    /// already up keeps its own unless this is given].
    #[arg(long, value_name = "DURATION", value_parser = idle, allow_hyphen_values = true)]
    pub idle: Option<std::time::Duration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub reach: Reach,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connect: ConnectLimit,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub boot: BootLimit,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigFile,
}

impl UpArgs {
    /// The connection flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            connect_timeout: self.connect.connect_timeout,
            boot_timeout: self.boot.boot_timeout,
            ..self.reach.layer()
        }
    }
}

/// Flags of `mix-remote down`: the hosts, taken one after another, and what makes their
/// sessions' keys.
#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub hosts: Hosts,
    /// End every session of this user.
    #[arg(long, conflicts_with_all = ["hosts", "groups"])]
    pub all: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub reach: Reach,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigFile,
}

/// Flags of `mix-remote status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object per session on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: Output,
}

/// Flags of `mix-remote init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// A host of the `servers` group of the new file; repeatable, or a comma-separated list.
    #[arg(
        long = "host",
        value_name = "HOST",
        value_delimiter = ',',
        value_parser = destination
    )]
    pub hosts: Vec<String>,
    /// The default entry function of the new file, e.g. MyApp.Smoke.check.
    #[arg(long, value_name = "ENTRY", value_parser = entry)]
    pub entry: Option<String>,
    /// Append the Makefile target to the project's makefile (the GNUmakefile, makefile or
    /// Makefile that make reads there; a new Makefile when there is none) instead of printing it.
    #[arg(long)]
    pub makefile: bool,
    /// Overwrite an existing mix-remote.yaml (and replace the target in the Makefile).
    #[arg(long)]
    pub force: bool,
    /// The Mix project directory (the one with its mix.exs) to write into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// Do not say what was written (the target is still printed unless appended; errors too).
    #[arg(short, long)]
    pub quiet: bool,
}

/// The shells `mix-remote completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Flags of `mix-remote completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}
