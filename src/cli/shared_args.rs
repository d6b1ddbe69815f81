//! The groups of flags several commands share (the project and its build, compiling, the hosts,
//! how to reach them, the limits, what `run`, `eval` and `iex` set up and expect), each also a layer of
//! settings over mix-remote.yaml.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};
use serde_saphyr::{Location, Spanned};

use super::values::{at_once, elixir_path, include, list_item, mix_env, secs, ssh_option};
use super::{ConfigFile, Output};
use crate::build::app_config::ConfigUse;
use crate::config::Section;

/// Where the compiled project is, for every command that reads its build; each flag overrides
/// mix-remote.yaml.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// The Mix project directory [default: the directory of the mix-remote.yaml found upwards
    /// (not one --config names), else .].
    #[arg(long, value_name = "DIR", env = "MIX_REMOTE_PROJECT")]
    pub project: Option<PathBuf>,
    /// The Mix environment whose build to read (`_build/<ENV>`), also `config_env()` for the
    /// project's config files [default: $MIX_ENV, else `mix_env` of mix-remote.yaml, else dev].
    #[arg(long, value_name = "ENV", env = "MIX_REMOTE_ENV", value_parser = mix_env)]
    pub env: Option<String>,
}

impl ProjectArgs {
    /// These flags (and `MIX_ENV`) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            mix_env: self
                .env
                .clone()
                .or_else(|| std::env::var("MIX_ENV").ok().filter(|e| !e.is_empty())),
            ..Section::default()
        }
    }
}

/// Where the compiled project is and what to add to the closure, for `run`, `eval`, `iex`,
/// `plan` and `graph` (`check` pushes nothing: it takes [`ProjectArgs`] only); each flag
/// overrides mix-remote.yaml.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project and its build.
    #[command(flatten)]
    pub at: ProjectArgs,
    /// Also push MODULE and its closure (repeatable): for modules no static analysis can see,
    /// such as one named only in config or built with Module.concat [default: `include` of
    /// mix-remote.yaml].
    #[arg(long = "include", value_name = "MODULE", value_parser = include)]
    pub include: Vec<String>,
}

impl BuildArgs {
    /// `--project`, if given.
    pub fn project(&self) -> Option<&std::path::Path> {
        self.at.project.as_deref()
    }

    /// These flags (and `MIX_ENV`) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            include: (!self.include.is_empty()).then(|| self.include.clone()),
            ..self.at.layer()
        }
    }
}

/// Whether to compile the project before reading its build, for the commands that run or plan
/// its code: a flag beats `MIX_REMOTE_NO_COMPILE`, which beats `compile` of mix-remote.yaml.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Do not run `mix compile` first (a build older than its sources gets a warning)
    /// [default: compile, unless `compile: false` in mix-remote.yaml].
    #[arg(
        id = NO_COMPILE_ID,
        long = "no-compile",
        env = "MIX_REMOTE_NO_COMPILE",
        num_args = 0,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub no_compile: Option<bool>,
    /// Run `mix compile` first, even where MIX_REMOTE_NO_COMPILE=true or `compile: false` of
    /// mix-remote.yaml say not to.
    #[arg(id = COMPILE_ID, long = "compile")]
    pub compile: bool,
}

/// The ids of `--compile` and `--no-compile`, which conflict when both are typed (not when the
/// variable of one meets the other flag, which beats it).
pub(super) const COMPILE_ID: &str = "compile";
pub(super) const NO_COMPILE_ID: &str = "no_compile";

impl CompileArgs {
    /// `compile: true` for `--compile` (or `MIX_REMOTE_NO_COMPILE=false`), `compile: false` for
    /// `--no-compile` (or `MIX_REMOTE_NO_COMPILE=true`); none when neither is set.
    pub fn layer(&self) -> Option<Spanned<bool>> {
        let compile = match (self.compile, self.no_compile) {
            (true, _) => true,
            (false, no_compile) => !no_compile?,
        };
        Some(Spanned::new(compile, Location::UNKNOWN, Location::UNKNOWN))
    }
}

/// Which hosts: `--host` and `--group`.
#[derive(Debug, Args)]
pub struct Hosts {
    /// SSH destination `[USER@]HOST` (anything ssh accepts), or a host of mix-remote.yaml;
    /// repeatable.
    #[arg(
        long = "host",
        value_name = "HOST",
        env = "MIX_REMOTE_HOST",
        value_delimiter = ',',
        value_parser = list_item
    )]
    pub hosts: Vec<String>,
    /// Every host of this group of mix-remote.yaml; repeatable.
    #[arg(
        long = "group",
        value_name = "NAME",
        env = "MIX_REMOTE_GROUP",
        value_delimiter = ',',
        value_parser = list_item
    )]
    pub groups: Vec<String>,
    /// Whether `MIX_REMOTE_HOST` and `MIX_REMOTE_GROUP` chose the hosts, no `--host` nor
    /// `--group` being typed (see [`parse`](super::parse)).
    #[arg(skip)]
    pub from_variables: bool,
}

/// How many hosts at once, for the commands that work on them side by side (`run`, `eval`,
/// `check`; `up` and `down` take one after another).
#[derive(Debug, Args)]
pub struct AtOnce {
    /// How many hosts to work on at once [default: all of them, at most 64].
    #[arg(
        long,
        value_name = "K",
        env = "MIX_REMOTE_PARALLEL",
        value_parser = at_once,
        allow_negative_numbers = true
    )]
    pub parallel: Option<NonZeroUsize>,
}

/// How to reach a host and run elixir there, which is also what makes a warm session's key;
/// each flag overrides mix-remote.yaml for every host.
#[derive(Debug, Args)]
pub struct Reach {
    /// The `elixir` executable on the remote host [default: elixir, found on the login PATH].
    #[arg(long, value_name = "PATH", env = "MIX_REMOTE_ELIXIR", value_parser = elixir_path)]
    pub elixir: Option<String>,
    /// ssh_config file to use instead of ~/.ssh/config (passed to ssh as -F).
    #[arg(
        short = 'F',
        long = "ssh-config",
        value_name = "FILE",
        env = "MIX_REMOTE_SSH_CONFIG"
    )]
    pub ssh_config: Option<PathBuf>,
    /// Extra ssh option, as for `ssh -o` (repeatable), e.g. -o Port=2222.
    #[arg(
        short = 'o',
        long = "ssh-option",
        value_name = "OPTION",
        value_parser = ssh_option
    )]
    pub ssh_options: Vec<String>,
}

impl Reach {
    /// These flags as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            elixir: self.elixir.clone(),
            ssh_config: self.ssh_config.clone(),
            ssh_options: (!self.ssh_options.is_empty()).then(|| self.ssh_options.clone()),
            ..Section::default()
        }
    }
}

/// The limit of the SSH connection and login: of every command that logs in (`up` too).
#[derive(Debug, Args)]
pub struct ConnectLimit {
    /// Seconds to wait for the SSH connection and login [default: 30].
    #[arg(
        long,
        value_name = "SECS",
        env = "MIX_REMOTE_CONNECT_TIMEOUT",
        value_parser = secs,
        allow_negative_numbers = true
    )]
    pub connect_timeout: Option<u64>,
}

/// The limit of the remote node's boot: of the commands that start elixir and wait for it
/// (`check` too, which waits for elixir to say its versions).
#[derive(Debug, Args)]
pub struct BootLimit {
    /// Seconds to wait for the remote node to boot and connect back [default: 60].
    #[arg(
        long,
        value_name = "SECS",
        env = "MIX_REMOTE_BOOT_TIMEOUT",
        value_parser = secs,
        allow_negative_numbers = true
    )]
    pub boot_timeout: Option<u64>,
}

/// How to reach a host and run elixir there, and the limits of connecting and booting a node,
/// for `run`, `eval`, `iex` and `check`; each flag overrides mix-remote.yaml for every host.
#[derive(Debug, Args)]
pub struct Approach {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub reach: Reach,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connect: ConnectLimit,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub boot: BootLimit,
}

impl Approach {
    /// These flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            connect_timeout: self.connect.connect_timeout,
            boot_timeout: self.boot.boot_timeout,
            ..self.reach.layer()
        }
    }
}

/// [`Approach`], and the limits of a run's push and, with [`CallLimit`] as `L`, of its call: for
/// `run` and `eval`, and `iex` (which calls no function to limit: [`NoCallLimit`]).
#[derive(Debug, Args)]
pub struct Connection<L: Args + Limit> {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub approach: Approach,
    /// Seconds to wait for the closure to load on the remote node [default: 120].
    #[arg(
        long,
        value_name = "SECS",
        env = "MIX_REMOTE_PUSH_TIMEOUT",
        value_parser = secs,
        allow_negative_numbers = true
    )]
    pub push_timeout: Option<u64>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub call: L,
}

impl<L: Args + Limit> Connection<L> {
    /// These flags as the most important layer of settings.
    pub fn layer(&self) -> Section {
        Section {
            push_timeout: self.push_timeout,
            call_timeout: self.call.call_timeout(),
            ..self.approach.layer()
        }
    }
}

/// The limit of the function a command calls, if it calls one.
pub trait Limit {
    /// Seconds the function may run, if limited.
    fn call_timeout(&self) -> Option<u64>;
}

/// The limit of the function `run` and `eval` call.
#[derive(Debug, Args)]
pub struct CallLimit {
    /// Seconds the function may run [default: as long as it needs].
    #[arg(
        long,
        value_name = "SECS",
        env = "MIX_REMOTE_CALL_TIMEOUT",
        value_parser = secs,
        allow_negative_numbers = true
    )]
    pub call_timeout: Option<u64>,
}

impl Limit for CallLimit {
    fn call_timeout(&self) -> Option<u64> {
        self.call_timeout
    }
}

/// No limit, and no flag: `iex` calls no one function (its `MIX_REMOTE_CALL_TIMEOUT`, set for
/// runs, is not read; `call_timeout` of mix-remote.yaml has nothing to limit).
#[derive(Debug, Args)]
pub struct NoCallLimit {}

impl Limit for NoCallLimit {
    fn call_timeout(&self) -> Option<u64> {
        None
    }
}

/// What the result must be for the run to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Expect {
    /// The function must return `:ok`; anything else exits 1.
    Ok,
}

/// The flags `run` and `eval` share: hosts, output, build and connection.
#[derive(Debug, Args)]
pub struct RunOptions {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub hosts: Hosts,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub at_once: AtOnce,
    /// Stop every other host as soon as one fails.
    #[arg(long)]
    pub fail_fast: bool,
    /// Newline-delimited JSON events on stdout instead of human output (schema in the README).
    #[arg(long)]
    pub json: bool,
    /// Fail (exit 1) unless the function returns `:ok`: for smoke tests.
    #[arg(long, value_enum, value_name = "RESULT")]
    pub expect: Option<Expect>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub setup: SetupArgs<CallLimit>,
}

impl RunOptions {
    /// The flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        self.setup.layer()
    }
}

/// The flags `run`, `eval` and `iex` share: how the remote is set up for the code (build,
/// compile, config, start, connection) and what the tool shows; `L`, the call's limit, if any.
#[derive(Debug, Args)]
pub struct SetupArgs<L: Args + Limit> {
    /// The build to read and the modules to add.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Whether to compile first.
    #[command(flatten)]
    pub compile: CompileArgs,
    /// Do not send the project's config/ files: the remote then runs with the applications'
    /// `.app` env defaults only (config/*.exs are evaluated on the remote otherwise).
    #[arg(long)]
    pub no_app_config: bool,
    /// Only load the project's applications, do not start them (like a release's `eval`): for
    /// code that starts what it needs itself [default: started, as `mix run` does; `start` of
    /// mix-remote.yaml].
    #[arg(long)]
    pub no_start: bool,
    /// Do not check the applications' compile-time config (`Application.compile_env/3`)
    /// against the config the server gives them, as `mix run --no-validate-compile-env`.
    #[arg(long)]
    pub no_validate_compile_env: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection<L>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigFile,
}

impl<L: Args + Limit> SetupArgs<L> {
    /// What of the project's configuration the run applies.
    pub fn config_use(&self) -> ConfigUse {
        ConfigUse {
            files: !self.no_app_config,
            validate_compile_env: !self.no_validate_compile_env,
        }
    }

    /// The flags (and environment) as the most important layer of settings.
    pub fn layer(&self) -> Section {
        let build = self.build.layer();
        Section {
            mix_env: build.mix_env,
            include: build.include,
            compile: self.compile.layer(),
            start: self.no_start.then_some(false),
            ..self.connection.layer()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn plan_and_graph_leave_the_build_to_the_config_unless_flagged() {
        let cli = Cli::try_parse_from(["mix-remote", "plan", "A.b", "--include", "C"]).unwrap();
        let Command::Plan(plan) = cli.command else {
            panic!("not plan")
        };
        assert_eq!((&plan.build.at.project, &plan.build.at.env), (&None, &None));
        assert_eq!(plan.build.layer().include, Some(vec!["C".to_owned()]));
        let cli = Cli::try_parse_from(["mix-remote", "graph", "--env", "prod"]).unwrap();
        let Command::Graph(graph) = cli.command else {
            panic!("not graph")
        };
        assert_eq!(graph.build.layer().mix_env.as_deref(), Some("prod"));
        assert_eq!(graph.build.layer().include, None);
    }

    #[test]
    fn hosts_and_groups_repeat_and_split_on_commas() {
        let cli = Cli::try_parse_from([
            "mix-remote",
            "run",
            "A.b",
            "--host",
            "a",
            "--host",
            "b,c",
            "--group",
            "web",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.options.hosts.hosts, ["a", "b", "c"]);
        assert_eq!(run.options.hosts.groups, ["web"]);
        assert_eq!(
            run.layer().connect_timeout,
            None,
            "no built-in default here"
        );
    }
}
