//! The flags every command may take before its name as well as after it (how much to say,
//! `--config`), and the one setting [`Cli`] makes of both sides: kept apart from the commands'
//! own flags, since each command's flags hold them again.

use std::path::PathBuf;

use clap::Args;

use super::{Cli, Command};

/// How much a command says: for the commands that report progress and warnings.
#[derive(Debug, Clone, Default, Args)]
pub struct Output {
    /// Print nothing but the function's output and result (and errors).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show what the tool does: ssh commands, tunnels, modules pushed.
    #[arg(short, long)]
    pub verbose: bool,
    /// Show no warnings (version differences, a stale build), without -q's silence
    /// [default: `warnings` of mix-remote.yaml].
    #[arg(long)]
    pub no_warnings: bool,
    /// Show warnings, even where `warnings: false` of mix-remote.yaml says not to.
    #[arg(long, conflicts_with_all = ["no_warnings", "quiet"])]
    pub warnings: bool,
}

/// The id of the command's `--config` (see [`parse`]).
pub(super) const CONFIG_ID: &str = "path";

/// Which mix-remote.yaml, for the commands that read one.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFile {
    /// The configuration file [default: mix-remote.yaml in the current directory or a parent].
    #[arg(id = CONFIG_ID, long = "config", value_name = "FILE", env = "MIX_REMOTE_CONFIG")]
    pub path: Option<PathBuf>,
}

/// The flags of [`Output`] and [`ConfigFile`] given before the command: accepted there as well,
/// not shown.
#[derive(Debug, Args)]
pub struct Before {
    #[arg(short, long, hide = true, conflicts_with = "verbose")]
    pub(super) quiet: bool,
    #[arg(short, long, hide = true)]
    pub(super) verbose: bool,
    #[arg(long, hide = true)]
    pub(super) no_warnings: bool,
    #[arg(long, hide = true, conflicts_with_all = ["no_warnings", "quiet"])]
    pub(super) warnings: bool,
    #[arg(long = "config", value_name = "FILE", hide = true)]
    pub(super) config: Option<PathBuf>,
}

impl From<&Before> for Output {
    fn from(before: &Before) -> Self {
        Output {
            quiet: before.quiet,
            verbose: before.verbose,
            no_warnings: before.no_warnings,
            warnings: before.warnings,
        }
    }
}

impl Cli {
    /// How much to say: the command's flags, or the same given before it.
    pub fn output(&self) -> Output {
        let of_command = self.command_output();
        Output {
            quiet: of_command.quiet || self.before.quiet,
            verbose: of_command.verbose || self.before.verbose,
            no_warnings: of_command.no_warnings || self.before.no_warnings,
            warnings: of_command.warnings || self.before.warnings,
        }
    }

    /// The flags of [`Output`] given after the command.
    pub(super) fn command_output(&self) -> Output {
        match &self.command {
            Command::Run(a) => a.options.setup.output.clone(),
            Command::Eval(a) => a.options.setup.output.clone(),
            Command::Iex(a) => a.setup.output.clone(),
            Command::Check(a) => a.output.clone(),
            Command::Plan(a) => a.output.clone(),
            Command::Up(a) => a.output.clone(),
            Command::Down(a) => a.output.clone(),
            Command::Status(a) => a.output.clone(),
            Command::Graph(a) => a.output.clone(),
            Command::Init(a) => Output {
                quiet: a.quiet,
                ..Output::default()
            },
            Command::Completions(_) => Output::default(),
        }
    }

    /// The configuration file named: by the command's `--config`, else the same given before it,
    /// else `MIX_REMOTE_CONFIG` (see [`parse`](super::parse)).
    pub fn config(&self) -> Option<&std::path::Path> {
        let before = self.before.config.as_deref();
        match self.command_config() {
            Some(of_command) => of_command.path.as_deref().or(before),
            None => before,
        }
    }

    /// The command's own `--config`, for the commands that read mix-remote.yaml.
    fn command_config(&self) -> Option<&ConfigFile> {
        match &self.command {
            Command::Run(a) => Some(&a.options.setup.config),
            Command::Eval(a) => Some(&a.options.setup.config),
            Command::Iex(a) => Some(&a.setup.config),
            Command::Check(a) => Some(&a.config),
            Command::Plan(a) => Some(&a.config),
            Command::Graph(a) => Some(&a.config),
            Command::Up(a) => Some(&a.config),
            Command::Down(a) => Some(&a.config),
            Command::Status(_) | Command::Init(_) | Command::Completions(_) => None,
        }
    }

    /// Whether the command's hosts came from the variables alone ([`Hosts::from_variables`]), to
    /// set, for the commands that choose hosts.
    pub(super) fn hosts_from_variables_mut(&mut self) -> Option<&mut bool> {
        match &mut self.command {
            Command::Run(a) => Some(&mut a.options.hosts.from_variables),
            Command::Eval(a) => Some(&mut a.options.hosts.from_variables),
            Command::Iex(a) => Some(&mut a.from_variables),
            Command::Check(a) => Some(&mut a.hosts.from_variables),
            Command::Up(a) => Some(&mut a.hosts.from_variables),
            Command::Down(a) => Some(&mut a.hosts.from_variables),
            _ => None,
        }
    }

    /// As [`Cli::command_config`], to change.
    pub(super) fn command_config_mut(&mut self) -> Option<&mut ConfigFile> {
        match &mut self.command {
            Command::Run(a) => Some(&mut a.options.setup.config),
            Command::Eval(a) => Some(&mut a.options.setup.config),
            Command::Iex(a) => Some(&mut a.setup.config),
            Command::Check(a) => Some(&mut a.config),
            Command::Plan(a) => Some(&mut a.config),
            Command::Graph(a) => Some(&mut a.config),
            Command::Up(a) => Some(&mut a.config),
            Command::Down(a) => Some(&mut a.config),
            Command::Status(_) | Command::Init(_) | Command::Completions(_) => None,
        }
    }
}
