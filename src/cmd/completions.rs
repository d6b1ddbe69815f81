//! Shell completion that knows the project. `mix-remote completions SHELL` prints the script the
//! shell sources; on each TAB it calls the binary back (`COMPLETE=SHELL mix-remote -- WORDS`,
//! clap_complete's dynamic completion, answered by [`complete`] before anything else runs), which
//! offers the commands and flags, the project's functions (`Module.function`, from `_build`) for
//! an entry and its modules for `--include`, and the hosts and groups of mix-remote.yaml.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use crate::build::entry::{callable, display_module};
use crate::build::{beam::Beam, project};
use crate::cli::{self, CompletionsArgs, Shell};
use crate::config::{self, Config, Section};
use crate::exit;

/// The variable that asks the binary for candidates.
const VAR: &str = "COMPLETE";

/// Answers the shell when it asks for candidates (the variable `VAR` is set), and exits;
/// returns at once otherwise.
pub fn complete() {
    clap_complete::CompleteEnv::with_factory(command)
        .var(VAR)
        .complete();
}

/// Prints the script that `args.shell` sources.
pub fn exec(args: &CompletionsArgs) -> u8 {
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    let name = "mix-remote";
    let completer = completer_path();
    let mut out = std::io::stdout().lock();
    match shell.write_registration(VAR, name, name, &completer, &mut out) {
        Ok(()) => exit::OK,
        Err(_) => exit::CANNOT_RUN,
    }
}

/// The binary the script calls back: as it was started, made absolute if it was given as a
/// relative path with a directory (as clap_complete's own registration does).
fn completer_path() -> String {
    let started = PathBuf::from(
        std::env::args_os()
            .next()
            .unwrap_or_else(|| "mix-remote".into()),
    );
    let path = match std::env::current_dir() {
        Ok(dir) if started.components().count() > 1 => dir.join(started),
        _ => started,
    };
    path.to_string_lossy().into_owned()
}

/// The command line with the candidates that depend on the project and its configuration.
pub fn command() -> clap::Command {
    // `mut_args` keeps the arguments in their order (`mut_arg` would move one to the end, and a
    // positional with it).
    let known = |sub: clap::Command| {
        sub.mut_args(|arg| {
            let candidates = match arg.get_id().as_str() {
                "entry" => ArgValueCandidates::new(|| functions().unwrap_or_default()),
                "include" => ArgValueCandidates::new(|| modules().unwrap_or_default()),
                "hosts" => ArgValueCandidates::new(|| hosts().unwrap_or_default()),
                "groups" => ArgValueCandidates::new(|| groups().unwrap_or_default()),
                _ => return arg,
            };
            arg.add(candidates)
        })
    };
    ["run", "eval", "plan", "graph", "check"]
        .into_iter()
        .fold(cli::command(), |command, name| {
            command.mut_subcommand(name, known)
        })
}

/// The configuration as a command run here would find it (`MIX_REMOTE_CONFIG`, else the
/// nearest mix-remote.yaml).
fn configuration() -> Option<Config> {
    let named = std::env::var_os("MIX_REMOTE_CONFIG").map(PathBuf::from);
    Config::locate(named.as_deref(), Path::new(".")).ok()?
}

/// The modules of the build a command run here would read (`MIX_REMOTE_PROJECT`,
/// `MIX_REMOTE_ENV` or `MIX_ENV`, then mix-remote.yaml, then the defaults).
fn beams() -> Option<Vec<Beam>> {
    let config = configuration();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let flags = Section {
        mix_env: var("MIX_REMOTE_ENV").or_else(|| var("MIX_ENV")),
        ..Section::default()
    };
    let project = var("MIX_REMOTE_PROJECT").map(PathBuf::from);
    let build = config::build(config.as_ref(), project.as_deref(), &flags, &[]).ok()?;
    project::scan(&build.project, &build.mix_env).ok()
}

/// `Module.function` for every function a user could call, with its arities as help.
fn functions() -> Option<Vec<CompletionCandidate>> {
    let mut named: Vec<(String, String)> = Vec::new();
    for beam in beams()? {
        let module = display_module(&beam.name);
        for (function, arity) in callable(&beam) {
            named.push((
                format!("{module}.{function}"),
                format!("{function}/{arity}"),
            ));
        }
    }
    named.sort();
    let candidates = named
        .chunk_by(|a, b| a.0 == b.0)
        .map(|same| {
            let arities: Vec<&str> = same.iter().map(|(_, arity)| arity.as_str()).collect();
            CompletionCandidate::new(same[0].0.clone()).help(Some(arities.join(", ").into()))
        })
        .collect();
    Some(candidates)
}

/// Every module of the build, as users write it.
fn modules() -> Option<Vec<CompletionCandidate>> {
    let mut names: Vec<String> = beams()?.iter().map(|b| display_module(&b.name)).collect();
    names.sort();
    Some(names.into_iter().map(CompletionCandidate::new).collect())
}

/// The hosts of mix-remote.yaml.
fn hosts() -> Option<Vec<CompletionCandidate>> {
    let config = configuration()?;
    let hosts = config.hosts().into_iter().map(OsString::from);
    Some(hosts.map(CompletionCandidate::new).collect())
}

/// The groups of mix-remote.yaml.
fn groups() -> Option<Vec<CompletionCandidate>> {
    let config = configuration()?;
    Some(config.groups().map(CompletionCandidate::new).collect())
}
