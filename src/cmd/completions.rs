//! Shell completion that knows the project. `mix-remote completions SHELL` prints the script the
//! shell sources; on each TAB it calls the binary back (`COMPLETE=SHELL mix-remote -- WORDS`,
//! clap_complete's dynamic completion, answered by [`complete`] before anything else runs), which
//! offers the commands and flags, the project's functions (`Module.function`, from `_build`) and
//! the `.exs` scripts for an entry, its modules for `--include`, and the hosts and groups of
//! mix-remote.yaml. The
//! project and the configuration are those the command being typed would read: its `--config`,
//! `--project` and `--env` when the line has them, else their `MIX_REMOTE_*` variables.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap_complete::engine::{
    ArgValueCandidates, ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use crate::build::entry::{callable, display_module};
use crate::build::{beam::Beam, project};
use crate::cli::{self, CompletionsArgs, Shell};
use crate::config::{self, Config, Section};
use crate::exit::{self, CliError};

/// The variable that asks the binary for candidates.
const VAR: &str = "COMPLETE";

/// Answers the shell when it asks for candidates (the variable `VAR` is set), and exits;
/// returns at once otherwise.
pub fn complete() {
    clap_complete::CompleteEnv::with_factory(command)
        .var(VAR)
        .complete();
}

/// Prints the script that `args.shell` sources; a script that cannot be written (a full disk) is
/// an error saying so.
pub fn exec(args: &CompletionsArgs) -> Result<u8, CliError> {
    let (shell, said): (&dyn EnvCompleter, &str) = match args.shell {
        Shell::Bash => (&Bash, "bash"),
        Shell::Zsh => (&Zsh, "zsh"),
        Shell::Fish => (&Fish, "fish"),
    };
    let name = "mix-remote";
    let completer = completer_path();
    let mut out = std::io::stdout().lock();
    match shell
        .write_registration(VAR, name, name, &completer, &mut out)
        .and_then(|()| out.flush())
    {
        Ok(()) => Ok(exit::OK),
        // A reader that has gone (`| head`) is not the script's failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(CliError::new(
            format!("cannot write the {said} completion script to stdout: {e}"),
            exit::CANNOT_RUN,
        )),
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
        sub.mut_args(|arg| match arg.get_id().as_str() {
            "entry" => arg.add(ArgValueCompleter::new(entries)),
            "include" => arg.add(ArgValueCandidates::new(|| modules().unwrap_or_default())),
            "hosts" => arg.add(ArgValueCandidates::new(|| hosts().unwrap_or_default())),
            "groups" => arg.add(ArgValueCandidates::new(|| groups().unwrap_or_default())),
            _ => arg,
        })
    };
    let command = cli::command();
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        // Its hosts are those of the file it writes.
        .filter(|name| name != "init")
        .collect();
    names
        .iter()
        .fold(command, |command, name| command.mut_subcommand(name, known))
}

/// The value of the last `flag` (`--flag VALUE` or `--flag=VALUE`, which bash passes as three
/// words) on the line being completed, which the shell passes after the binary's `--`; the
/// function's arguments (after the line's own `--`) are not looked at.
fn typed(flag: &str) -> Option<OsString> {
    let mut words = std::env::args_os().skip_while(|a| a != "--").skip(1);
    let mut value = None;
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        } else if word == flag {
            let given = match words.next() {
                Some(equals) if equals == "=" => words.next(),
                given => given,
            };
            value = given.or(value);
        } else if let Some(given) = word
            .to_str()
            .and_then(|w| w.strip_prefix(flag)?.strip_prefix('='))
        {
            value = Some(given.into());
        }
    }
    value
}

/// The variable `name`, unless it is empty.
fn var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The configuration as the command being typed would find it (`--config`, else
/// `MIX_REMOTE_CONFIG`, else the nearest mix-remote.yaml).
fn configuration() -> Option<Config> {
    let named = typed("--config")
        .or_else(|| var("MIX_REMOTE_CONFIG"))
        .map(PathBuf::from);
    Config::locate(named.as_deref(), Path::new(".")).ok()?
}

/// The modules of the build the command being typed would read (`--project` or
/// `MIX_REMOTE_PROJECT`, `--env`, `MIX_REMOTE_ENV` or `MIX_ENV`, then mix-remote.yaml, then the
/// defaults).
fn beams() -> Option<Vec<Beam>> {
    let config = configuration();
    let mix_env = typed("--env")
        .or_else(|| var("MIX_REMOTE_ENV"))
        .or_else(|| var("MIX_ENV"));
    let flags = Section {
        mix_env: mix_env.and_then(|env| env.into_string().ok()),
        ..Section::default()
    };
    let project = typed("--project")
        .or_else(|| var("MIX_REMOTE_PROJECT"))
        .map(PathBuf::from);
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

/// What an entry can be that starts with `current`: a function of the project, or a script (a
/// `.exs` file, from the current directory as `run FILE.exs` reads it, and the directories to go
/// into for one).
fn entries(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    let mut candidates: Vec<CompletionCandidate> = functions()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.get_value().to_string_lossy().starts_with(&*typed))
        .collect();
    let scripts =
        PathCompleter::any().filter(|p| p.is_file() && p.extension() == Some("exs".as_ref()));
    candidates.extend(scripts.complete(current));
    candidates
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
