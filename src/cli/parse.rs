//! The parse of the command line: the definition as users meet it (colours, `MIX_REMOTE_*`
//! variables set to nothing left out), and what clap cannot say itself of the flags on both sides
//! of the command and of the host variables; apart from the words of its errors.

use std::ffi::{OsStr, OsString};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::errors::{conflict, names, of_variable, refused, tip};
use super::global::CONFIG_ID;
use super::shared_args::{COMPILE_ID, NO_COMPILE_ID};
use super::{Cli, Output};

/// The command line as users meet it, in colour only when stderr gets colours
/// (`report::stderr_colours`), and with the `MIX_REMOTE_*` variables set to nothing taken as
/// unset: CI templates export variables they leave empty.
pub fn command() -> clap::Command {
    let colour = if crate::report::stderr_colours() {
        clap::ColorChoice::Auto
    } else {
        clap::ColorChoice::Never
    };
    let empty = |name: &OsStr| std::env::var_os(name).is_some_and(|v| v.is_empty());
    without_empty_variables(Cli::command(), &empty).color(colour)
}

/// `command` with no environment variable for the arguments whose variable `empty` says is set
/// to nothing: CI templates export variables they leave empty, which mean "not set" (as an
/// empty `MIX_ENV` does), not an empty host, file or environment.
fn without_empty_variables(
    command: clap::Command,
    empty: &dyn Fn(&OsStr) -> bool,
) -> clap::Command {
    without_variables(command, &|a| a.get_env().is_some_and(empty))
}

/// `command`, its subcommands too, with no environment variable for the arguments `drop` says.
fn without_variables(command: clap::Command, drop: &dyn Fn(&clap::Arg) -> bool) -> clap::Command {
    let unset: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| a.get_env().is_some() && drop(a))
        .map(|a| a.get_id().clone())
        .collect();
    let command = unset
        .into_iter()
        .fold(command, |c, id| c.mut_arg(id, |a| a.env(None)));
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    subcommands.into_iter().fold(command, |c, name| {
        c.mut_subcommand(name, |sub| without_variables(sub, drop))
    })
}

/// The ids of `--host` and `--group`, which choose the hosts together.
const HOST_IDS: [&str; 2] = ["hosts", "groups"];

/// `args` parsed without `MIX_REMOTE_HOST` and `MIX_REMOTE_GROUP` when they name hosts or groups
/// themselves (`--host`, `--group`): those then choose the hosts alone, as flags beat variables,
/// instead of adding to the other variable's hosts (clap merges a flag with its own variable
/// only), and a variable not read is not checked either. None otherwise (or if they are refused:
/// the parse with the variables says why).
fn with_hosts_typed(command: &clap::Command, args: &[OsString]) -> Option<ArgMatches> {
    let host_flag = |a: &clap::Arg| HOST_IDS.contains(&a.get_id().as_str());
    let matches = without_variables(command.clone(), &host_flag)
        .try_get_matches_from(args)
        .ok()?;
    let (_, of_command) = matches.subcommand()?;
    HOST_IDS
        .iter()
        .any(|id| typed(of_command, id))
        .then_some(matches)
}

/// Parses `args` (with the program's name first) against `command`, the definition; an argument
/// of the function given before `--` gets a tip saying where it goes. The flags accepted on both
/// sides of the command are one setting: `-q` before it conflicts with `-v` after it (and the
/// other way round), and a `--config` typed on either side beats `MIX_REMOTE_CONFIG`. A `--host`
/// or `--group` typed beats both `MIX_REMOTE_HOST` and `MIX_REMOTE_GROUP`.
pub fn parse(mut command: clap::Command, args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let matches = match with_hosts_typed(&command, &args) {
        Some(matches) => matches,
        None => command
            .try_get_matches_from_mut(args.iter())
            .map_err(|e| tip(of_variable(e, &args), &args))?,
    };
    let mut cli = Cli::from_arg_matches(&matches)?;
    let Some((name, of_command)) = matches.subcommand() else {
        return Ok(cli);
    };
    let output = cli.command_output();
    let before = &cli.before;
    let crossed = if before.quiet && output.verbose {
        Some(("--quiet", "--verbose"))
    } else if before.verbose && output.quiet {
        Some(("--verbose", "--quiet"))
    } else if before.warnings && (output.no_warnings || output.quiet) {
        Some(("--warnings", silencing(&output)))
    } else if output.warnings && (before.no_warnings || before.quiet) {
        Some((silencing(&Output::from(before)), "--warnings"))
    } else {
        None
    };
    if let Some((first, then)) = crossed {
        return Err(conflict(&mut command, name, first, then));
    }
    // Not declared to clap, which would count a variable too: `--compile` beats
    // `MIX_REMOTE_NO_COMPILE=true`, as flags beat variables.
    if typed(of_command, COMPILE_ID) && typed(of_command, NO_COMPILE_ID) {
        let (first, then) =
            match of_command.index_of(COMPILE_ID) < of_command.index_of(NO_COMPILE_ID) {
                true => ("--compile", "--no-compile"),
                false => ("--no-compile", "--compile"),
            };
        return Err(conflict(&mut command, name, first, then));
    }
    // Taken for the command's own, it would be ignored: `--config x.yaml init` writes none.
    if let Some(flag) = without_use(&command, &matches, &args, name) {
        return Err(refused(&mut command, name, &flag));
    }
    let chosen_by_variables = !HOST_IDS.iter().any(|id| typed(of_command, id))
        && HOST_IDS.iter().any(|id| from_environment(of_command, id));
    if let Some(from_variables) = cli.hosts_from_variables_mut() {
        *from_variables = chosen_by_variables;
    }
    if from_environment(of_command, CONFIG_ID)
        && let Some(typed) = cli.before.config.clone()
        && let Some(config) = cli.command_config_mut()
    {
        config.path = Some(typed);
    }
    Ok(cli)
}

/// The flag of `output` that silences warnings, which `--warnings` conflicts with.
fn silencing(output: &Output) -> &'static str {
    match output.quiet {
        true => "--quiet",
        false => "--no-warnings",
    }
}

/// The first flag typed before the command `name` that the command has no flag of its own for
/// (`-v` before `init`, `--config` before `status`), as typed (its long name, if typed among
/// others, `-qv`): it would have no effect there.
fn without_use(
    command: &clap::Command,
    matches: &ArgMatches,
    args: &[OsString],
    name: &str,
) -> Option<String> {
    let of_command = command.find_subcommand(name)?;
    let flag = command.get_arguments().find(|flag| {
        typed(matches, flag.get_id().as_str())
            && !of_command
                .get_arguments()
                .any(|own| own.get_long() == flag.get_long())
    })?;
    let words = args.iter().skip(1).filter_map(|a| a.to_str());
    let spelt = words.take_while(|w| *w != name).find(|w| names(flag, w));
    Some(spelt.map_or_else(
        || format!("--{}", flag.get_long().unwrap_or_default()),
        str::to_owned,
    ))
}

/// Whether the value of `id` in `matches` came from its environment variable (false when the
/// command has no such argument).
fn from_environment(matches: &ArgMatches, id: &str) -> bool {
    matches.try_contains_id(id).unwrap_or(false)
        && matches.value_source(id) == Some(ValueSource::EnvVariable)
}

/// Whether `id` was typed on the command line (false when the command has no such argument).
fn typed(matches: &ArgMatches, id: &str) -> bool {
    matches.try_contains_id(id).unwrap_or(false)
        && matches.value_source(id) == Some(ValueSource::CommandLine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    #[test]
    fn quiet_and_verbose_conflict_before_after_and_across_the_command() {
        let parsed = |args: &[&str]| {
            let args = std::iter::once("mix-remote").chain(args.iter().copied());
            parse(Cli::command(), args.map(OsString::from).collect())
        };
        let same = parsed(&["run", "A.b", "-q", "-v"]).unwrap_err();
        assert_eq!(same.kind(), ErrorKind::ArgumentConflict);
        let same = same.to_string();
        assert!(
            same.contains("the argument '--quiet' cannot be used with '--verbose'"),
            "{same}"
        );
        for (args, message) in [
            (
                &["-q", "-v", "run", "A.b"][..],
                "the argument '--quiet' cannot be used with '--verbose'",
            ),
            (
                &["-q", "run", "A.b", "-v"],
                "the argument '--quiet' cannot be used with '--verbose'",
            ),
            (
                &["--verbose", "check", "--quiet"],
                "the argument '--verbose' cannot be used with '--quiet'",
            ),
        ] {
            let error = parsed(args).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ArgumentConflict, "{args:?}");
            let error = error.to_string();
            assert!(error.contains(message), "{args:?}: {error}");
            assert!(error.contains("Usage: mix-remote"), "{args:?}: {error}");
        }
        let fine = parsed(&["-q", "run", "A.b", "-q", "--no-warnings"]).unwrap();
        assert!(fine.output().quiet && fine.output().no_warnings);
        let twice = parsed(&["-v", "plan", "A.b", "-v"]).unwrap();
        assert!(twice.output().verbose);
    }
}
