//! Command-line interface: flags, help text and exit codes. A flag beats its `MIX_REMOTE_*`
//! environment variable (clap merges the two; a flag given before the command beats the
//! variable too, and `--host` or `--group` both host variables, see [`parse`]); both beat
//! mix-remote.yaml (see `config.rs`).

use std::num::NonZeroUsize;
use std::path::PathBuf;

use std::ffi::{OsStr, OsString};

use clap::builder::{BoolishValueParser, StyledStr};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use serde_saphyr::{Location, Spanned};

use crate::build::app_config::ConfigUse;
use crate::build::entry::Entry;
use crate::config::{self, Section};

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

/// The error clap gives for `flag`, typed before `subcommand`, which has no use for it: as if
/// typed after it, with the tip saying why.
fn refused(command: &mut clap::Command, subcommand: &str, flag: &str) -> clap::Error {
    let mut error = subcommand_error(command, subcommand, ErrorKind::UnknownArgument);
    error.insert(ContextKind::InvalidArg, ContextValue::String(flag.into()));
    if let Some(why) = unused(subcommand, flag) {
        let tip = StyledStr::from(format!("{flag} has no use in `{subcommand}`: {why}"));
        error.insert(ContextKind::Suggested, ContextValue::StyledStrs(vec![tip]));
    }
    error
}

/// An error of `kind` as clap gives it for `subcommand`, with its usage: for what clap cannot
/// tell itself, [`refused`] and [`conflict`].
fn subcommand_error(command: &mut clap::Command, subcommand: &str, kind: ErrorKind) -> clap::Error {
    command.build();
    let Some(sub) = command.find_subcommand_mut(subcommand) else {
        return clap::Error::new(kind).with_cmd(command);
    };
    let usage = sub.render_usage();
    let mut error = clap::Error::new(kind).with_cmd(sub);
    error.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    error
}

/// The words of `args` (the program's name first, left out) before any `--`, where flags are;
/// those not UTF-8 left out.
fn flag_words(args: &[OsString]) -> Vec<&str> {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .filter_map(|a| a.to_str())
        .collect()
}

/// Whether `args` (the program's name first) ask for JSON events: `--json` before any `--`, given
/// to a command whose output is events (`run`, `eval`, `plan`, `check`; `status --json` prints
/// its sessions, not events). For the errors clap reports itself, which come before any command
/// runs (see [`one_line`]).
pub fn asks_for_json(args: &[OsString]) -> bool {
    let words = flag_words(args);
    if !words.contains(&"--json") {
        return false;
    }
    let definition = Cli::command();
    words
        .iter()
        .find_map(|w| definition.find_subcommand(w))
        .is_some_and(|c| ["run", "eval", "plan", "check"].contains(&c.get_name()))
}

/// What clap says of `error`, without its `error: `, its usage and its help line, on one line:
/// for an `error` event (`the following required arguments were not provided: <ENTRY>`, a
/// refused flag with its tip).
pub fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let mut line = String::new();
    for part in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
    {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part.strip_prefix("error: ").unwrap_or(part));
    }
    line
}

/// What mix-remote does with text, for the errors of [`not_utf8`].
const UTF8_ONLY: &str = "mix-remote reads flags, names and entries as UTF-8 text";

/// Which argument of `args` (the program's name first) is not UTF-8, in one line, when clap
/// refused one as such (its own message names none): the first that is no path's value (a path
/// may be any bytes), else a `MIX_REMOTE_*` variable that is not UTF-8.
pub fn not_utf8(args: &[OsString]) -> String {
    let definition = Cli::command();
    let dashes = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let culprit = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, arg)| arg.to_str().is_none())
        .find_map(|(i, arg)| match i.checked_sub(dashes) {
            Some(n) => Some(format!(
                "argument {n} after --, {arg:?}, is not UTF-8 (a function takes such bytes as \
                 escapes in an Elixir string: '{arg:?}')"
            )),
            None => bad_value(&definition, args, i),
        });
    culprit
        .or_else(|| bad_variable(&definition, args))
        .unwrap_or_else(|| format!("an argument is not UTF-8: {UTF8_ONLY}"))
}

/// Why `args[i]`, not UTF-8 and before any `--`, is refused: named by its flag when it is one's
/// value; none when that flag takes a path.
fn bad_value(definition: &clap::Command, args: &[OsString], i: usize) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = args[i].as_bytes();
    let flags = flags_of(definition, args);
    let attached = bytes.strip_prefix(b"--").and_then(|rest| {
        let at = rest.iter().position(|&b| b == b'=')?;
        let long = std::str::from_utf8(&rest[..at]).ok()?;
        let flag = flags.iter().find(|f| f.get_long() == Some(long))?;
        Some((
            format!("--{long}"),
            *flag,
            OsStr::from_bytes(&rest[at + 1..]),
        ))
    });
    let before = args[i - 1].to_str().and_then(|word| {
        let flag = flags.iter().find(|f| names(f, word))?;
        Some((word.to_owned(), *flag, args[i].as_os_str()))
    });
    match attached.or(before.filter(|(_, f, _)| f.get_action().takes_values())) {
        Some((_, flag, _)) if takes_paths(flag) => None,
        Some((named, _, value)) => Some(format!("{named} {value:?}: not UTF-8 ({UTF8_ONLY})")),
        None => Some(format!("argument {:?} is not UTF-8 ({UTF8_ONLY})", args[i])),
    }
}

/// The first `MIX_REMOTE_*` variable the command of `args` reads that is not UTF-8 (and not a
/// path), said as [`bad_value`] says a flag's value.
fn bad_variable(definition: &clap::Command, args: &[OsString]) -> Option<String> {
    flags_of(definition, args)
        .into_iter()
        .filter(|flag| !takes_paths(flag))
        .filter_map(|flag| flag.get_env())
        .find_map(|name| {
            let value = std::env::var_os(name)?;
            value.to_str().is_none().then(|| {
                format!(
                    "{} {value:?}: not UTF-8 ({UTF8_ONLY})",
                    name.to_string_lossy()
                )
            })
        })
}

/// The flags of the program and of the command `args` name (the first word that names one).
fn flags_of<'a>(definition: &'a clap::Command, args: &[OsString]) -> Vec<&'a clap::Arg> {
    let command = args
        .iter()
        .filter_map(|a| a.to_str())
        .find_map(|a| definition.find_subcommand(a));
    definition
        .get_arguments()
        .chain(command.into_iter().flat_map(|c| c.get_arguments()))
        .collect()
}

/// Whether `word` is `flag`, long or short.
fn names(flag: &clap::Arg, word: &str) -> bool {
    match (word.strip_prefix("--"), word.strip_prefix('-')) {
        (Some(long), _) => flag.get_long() == Some(long),
        (None, Some(short)) => {
            let mut chars = short.chars();
            chars.next().is_some_and(|c| flag.get_short() == Some(c)) && chars.next().is_none()
        }
        (None, None) => false,
    }
}

/// Whether `flag` takes a path, which may be any bytes.
fn takes_paths(flag: &clap::Arg) -> bool {
    flag.get_value_parser().type_id() == std::any::TypeId::of::<PathBuf>()
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

/// `error`, a value clap refused, named by the `MIX_REMOTE_*` variable it came from rather than
/// by its flag (`MIX_REMOTE_NO_COMPILE=maybe` is no `--no-compile` typed): clap reads a flag's
/// variable only when the flag is not typed, and names the flag either way.
fn of_variable(mut error: clap::Error, args: &[OsString]) -> clap::Error {
    if !matches!(
        error.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return error;
    }
    let Some(ContextValue::String(shown)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    let shown = shown.split(' ').next().unwrap_or_default().to_owned();
    let definition = Cli::command();
    let words = flag_words(args);
    let typed = |flag: &clap::Arg| {
        let attached = flag.get_long().map(|long| format!("--{long}="));
        words
            .iter()
            .any(|w| names(flag, w) || attached.as_ref().is_some_and(|a| w.starts_with(a.as_str())))
    };
    let variable = flags_of(&definition, args).into_iter().find_map(|flag| {
        let name = flag.get_env()?.to_str()?;
        let named = flag
            .get_long()
            .is_some_and(|long| shown == format!("--{long}"))
            || flag
                .get_short()
                .is_some_and(|short| shown == format!("-{short}"));
        let set = std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let boolean = flag.get_num_args().is_some_and(|n| n.max_values() == 0);
        (named && set && !typed(flag)).then(|| (name.to_owned(), boolean))
    });
    let Some((name, boolean)) = variable else {
        return error;
    };
    error.insert(ContextKind::InvalidArg, ContextValue::String(name.clone()));
    if boolean {
        let tip = format!("{name} is true or false (also 1 or 0, yes or no, on or off)");
        let tips = ContextValue::StyledStrs(vec![StyledStr::from(tip)]);
        error.insert(ContextKind::Suggested, tips);
    }
    error
}

/// The error clap gives for two flags of `subcommand` that conflict, `first` given before `then`.
fn conflict(command: &mut clap::Command, subcommand: &str, first: &str, then: &str) -> clap::Error {
    let mut error = subcommand_error(command, subcommand, ErrorKind::ArgumentConflict);
    error.insert(ContextKind::InvalidArg, ContextValue::String(first.into()));
    error.insert(ContextKind::PriorArg, ContextValue::String(then.into()));
    error
}

/// `error`, with a tip when it is an argument of `run` that belongs after `--`, or a flag of
/// other commands that has no use in this one.
fn tip(mut error: clap::Error, args: &[OsString]) -> clap::Error {
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg).cloned() else {
        return error;
    };
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let command = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| names.iter().any(|n| n == a));
    if error.kind() != ErrorKind::UnknownArgument {
        return error;
    }
    let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
    // `eval -1`: after `--` it would be an argument (System.argv), not the expression.
    let negative = |arg: &str| {
        arg.strip_prefix('-')
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_digit() || c == '(')
    };
    let tip = match command {
        Some("run") if !arg.starts_with('-') => Some(format!(
            "the function's arguments go after `--`: mix-remote run ENTRY [OPTIONS] -- {arg}"
        )),
        Some("eval") if negative(&arg) => {
            // clap names the first character it does not take (`-(` of `-(1 + 2)`).
            let words = flag_words(args);
            let word = words
                .iter()
                .find(|a| a.starts_with(arg.as_str()))
                .copied()
                .unwrap_or(&arg);
            Some(format!(
                "an expression starting with `-` is taken for a flag: write it in parentheses, \
                 mix-remote eval '({word})' [OPTIONS] (after `--` it would be an argument, not \
                 the expression)"
            ))
        }
        Some(command) => {
            unused(command, flag).map(|why| format!("{flag} has no use in `{command}`: {why}"))
        }
        None => None,
    };
    let mut tips = match error.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.clone(),
        _ => Vec::new(),
    };
    let before = tips.len();
    // An entry or a shell never starts with `-`: clap's "to pass '--json' as a value, use '--
    // --json'" would only make the flag a bad entry; nor can an expression, which would be an
    // argument there.
    if matches!(command, Some("plan" | "graph" | "completions"))
        || command == Some("eval") && negative(&arg)
    {
        tips.retain(|tip| !tip.to_string().starts_with("to pass '"));
    }
    if tip.is_none() && tips.len() == before {
        return error;
    }
    tips.extend(tip.map(StyledStr::from));
    let tips = match tips.is_empty() {
        true => ContextValue::None,
        false => ContextValue::StyledStrs(tips),
    };
    error.insert(ContextKind::Suggested, tips);
    error
}

/// Why `flag`, a flag of other commands, is not one of `command`'s.
fn unused(command: &str, flag: &str) -> Option<&'static str> {
    Some(match (command, flag) {
        ("up" | "down", "--parallel") => "it takes the hosts one after another",
        ("up", "--push-timeout" | "--call-timeout") => "each run has its own limits",
        ("down", "--connect-timeout" | "--boot-timeout" | "--push-timeout" | "--call-timeout") => {
            "it connects to no server"
        }
        ("check", "--include") => "it pushes no code",
        ("check", "--push-timeout" | "--call-timeout") => "it runs no code",
        ("iex", "--call-timeout") => "a session has no time limit",
        ("init", "--config") => "it writes mix-remote.yaml in the --project directory",
        ("status", "--config") => "it reads no mix-remote.yaml",
        ("init", "--verbose" | "-v") => "it says only what it wrote, which -q leaves out",
        ("init", "--no-warnings" | "--warnings") => "it gives no warnings",
        ("completions", "--config") => {
            "what it completes reads the mix-remote.yaml of the command being typed"
        }
        ("completions", "--quiet" | "-q" | "--verbose" | "-v" | "--no-warnings" | "--warnings") => {
            "it prints the script and nothing else"
        }
        ("graph", "--json") => "it prints JSON with --format json",
        ("graph", "--no-compile" | "--compile") => "it reads the build as it is, without compiling",
        (
            "plan" | "graph",
            "--host" | "--group" | "--parallel" | "--elixir" | "--ssh-config" | "-F"
            | "--ssh-option" | "-o" | "--connect-timeout" | "--boot-timeout" | "--push-timeout"
            | "--call-timeout",
        ) => "it reads the build here and connects to no server",
        _ => return None,
    })
}

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
const CONFIG_ID: &str = "path";

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
    quiet: bool,
    #[arg(short, long, hide = true)]
    verbose: bool,
    #[arg(long, hide = true)]
    no_warnings: bool,
    #[arg(long, hide = true, conflicts_with_all = ["no_warnings", "quiet"])]
    warnings: bool,
    #[arg(long = "config", value_name = "FILE", hide = true)]
    config: Option<PathBuf>,
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
    fn command_output(&self) -> Output {
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
    /// else `MIX_REMOTE_CONFIG` (see [`parse`]).
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
    fn hosts_from_variables_mut(&mut self) -> Option<&mut bool> {
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
    fn command_config_mut(&mut self) -> Option<&mut ConfigFile> {
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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ship the project's applications to the hosts, start them as `mix run` does, and call
    /// ENTRY with the arguments after `--`; or run a script FILE.exs there, as `mix run FILE
    /// ARGS` would.
    #[command(after_help = "Examples:\n  \
        mix-remote run MyApp.Worker.process --host deploy@db-1 -- 42 '\"batch-7\"'\n  \
        mix-remote run :my_erl_mod.check --host ops@10.0.0.5 --env prod\n  \
        mix-remote run MyApp.Release.migrate --host deploy@db-1 --env prod --no-start\n  \
        mix-remote run MyApp.Smoke.check --group web --expect ok --parallel 4\n  \
        mix-remote run --group web --json    # entry from mix-remote.yaml\n  \
        mix-remote run priv/repo/seeds.exs --host db-1 -- --dry-run\n  \
        echo y | mix-remote run MyApp.Fix.run --host db-1    # IO.gets reads stdin\n\n\
        Exit codes: 0 returned, 1 the function raised/threw/exited (or, with --expect ok,\n\
        returned something else, or an application did not start), 2 bad input, 3 could not\n\
        connect, boot or load, 4 timeout, 130 interrupted. With several hosts: the highest\n\
        code of any host.")]
    Run(RunArgs),
    /// Evaluate an Elixir expression on the hosts with the project's code, and print its value.
    #[command(after_help = "Examples:\n  \
        mix-remote eval 'MyApp.Repo.aggregate(MyApp.User, :count)' --host db-1\n  \
        mix-remote eval 'Application.spec(:my_app, :vsn)' --group web\n\n\
        The project's modules the expression names are pushed (with what they need); add\n\
        --include for modules it reaches only through names built at run time.\n\
        Exit codes: as for run.")]
    Eval(EvalArgs),
    /// An interactive IEx session on one host's throw-away node, with the project's applications
    /// shipped and started as for `run`.
    #[command(after_help = "Examples:\n  \
        mix-remote iex --host deploy@db-1\n  \
        mix-remote iex --host db-1 --env prod --no-start\n  \
        printf 'MyApp.Stats.count()\\n' | mix-remote iex --host db-1\n\n\
        The prompt names the project's application and the host: iex(my_app@db-1)1>.\n\
        Editing, history ($XDG_STATE_HOME/mix-remote/iex_history, else\n\
        ~/.local/state/mix-remote/iex_history) and Tab completion are local, by IEx's own rules;\n\
        evaluation is on the server. Ctrl-C cancels the line being typed, drops an unfinished\n\
        expression, or interrupts an evaluation; pressed twice at an empty prompt, or before IEx\n\
        runs, or with Ctrl-D or System.halt(), it ends the session, and the node goes with\n\
        everything it had on the server. Not on a terminal, lines are read from stdin as IEx asks\n\
        for them.\n\
        Exit codes: 0 the session ended, 1 an application did not start, 2 bad input, 3 could\n\
        not connect, boot or load, 4 timeout, 130 interrupted.")]
    Iex(IexArgs),
    /// Show what `run` would push for ENTRY (or a script, FILE.exs), in push order, with sizes
    /// and why each module is needed. Compiles and reads the build only: no SSH, no server.
    #[command(after_help = "Examples:\n  \
        mix-remote plan MyApp.Worker.process\n  \
        mix-remote plan priv/repo/seeds.exs\n  \
        mix-remote plan      # the entry of mix-remote.yaml\n  \
        mix-remote plan MyApp.Worker.process --include MyApp.Notifiers.Slack --json | jq .module")]
    Plan(PlanArgs),
    /// Print the project's module dependency graph (or the closure of ENTRY or of a script,
    /// FILE.exs) as Graphviz DOT or JSON.
    #[command(after_help = "Examples:\n  \
        mix-remote graph | dot -Tsvg > graph.svg\n  \
        mix-remote graph MyApp.Worker.process --format json")]
    Graph(GraphArgs),
    /// Preflight: can `run` work on these hosts? Runs nothing of the project.
    #[command(after_help = "Examples:\n  \
        mix-remote check --host deploy@db-1\n  \
        mix-remote check --group web --json\n\n\
        Checks per host: SSH reachable and login works, host key known, the reverse\n\
        forward allowed, elixir found, and its OTP and Elixir versions; whether the server\n\
        can run the local build (BUILD LOADS: its OTP loads the modules, it has the\n\
        applications they name, its machine loads their native code), whether it has a\n\
        directory a run can write its files in (TEMP DIR), and how many directories killed\n\
        runs left there (STALE RUNS).\n\
        Exit codes: 0 every host is ready, 2 bad input, 3 some host is not ready,\n\
        130 interrupted.")]
    Check(CheckArgs),
    /// Start a warm session for the hosts: keeps the SSH connection and a spare node booted
    /// ahead, so that the next `run`, `eval` or `iex` there starts at once (each still gets a
    /// fresh node of its own).
    #[command(after_help = "Examples:\n  \
        mix-remote up --host deploy@db-1\n  \
        mix-remote up --host db-1 --idle 1h\n\n\
        A run uses the session of its host when it reaches the host with the same address,\n\
        ssh config, ssh options and elixir; otherwise it connects as usual (-v says why).\n\
        The session ends with `mix-remote down`, after --idle without a run, or when its\n\
        connection drops; it leaves nothing behind on either side. Only your user can use it.\n\
        `up` returns once the session's first spare node is ready. On a session already up,\n\
        --idle sets its limit anew, counted from then.\n\
        Exit codes: 0 the sessions are up (or already were), 2 bad input, 3 a host could not\n\
        connect or boot its spare node (the other hosts still get theirs), 4 --connect-timeout\n\
        or --boot-timeout reached (no session is left then).")]
    Up(UpArgs),
    /// End warm sessions, waiting until nothing of them is left on either side.
    #[command(after_help = "Examples:\n  \
        mix-remote down --host deploy@db-1\n  \
        mix-remote down --all")]
    Down(DownArgs),
    /// List the warm sessions: host, the settings it was made with, age, idle time left, runs
    /// served, the spare node's state.
    #[command(after_help = "Examples:\n  \
        mix-remote status\n  \
        mix-remote status --json")]
    Status(StatusArgs),
    /// Write a commented mix-remote.yaml and show (or append) a Makefile target.
    #[command(after_help = "Examples:\n  \
        mix-remote init --host deploy@web-1 --host deploy@web-2 --entry MyApp.Smoke.check\n  \
        mix-remote init --makefile          # also append the target to the project's Makefile\n  \
        mix-remote init --force             # overwrite an existing mix-remote.yaml")]
    Init(InitArgs),
    /// Print a shell completion script: commands, flags, and the project's functions, modules,
    /// hosts and groups (the script asks mix-remote for them on each TAB).
    #[command(after_help = "Examples:\n  \
        echo 'source <(mix-remote completions bash)' >> ~/.bashrc\n  \
        echo 'source <(mix-remote completions zsh)' >> ~/.zshrc\n  \
        mix-remote completions fish > ~/.config/fish/completions/mix-remote.fish")]
    Completions(CompletionsArgs),
}

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
const COMPILE_ID: &str = "compile";
const NO_COMPILE_ID: &str = "no_compile";

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
    /// `--group` being typed (see [`parse`]).
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

/// A number of hosts at once, which is at least 1 (clap's own parse says `number would be zero
/// for non-zero type` of a 0).
fn at_once(text: &str) -> Result<NonZeroUsize, String> {
    let whole = || format!("`{text}`: a whole number of hosts at once, at least 1");
    let n: usize = text.parse().map_err(|_| whole())?;
    NonZeroUsize::new(n).ok_or_else(|| "at least 1 host at once: 0 would work on none".to_owned())
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

/// An item of a comma-separated list of hosts or groups, which cannot be empty: `--host 'a,'`
/// has a comma too many.
/// Blanks around it are left out (`--host 'web-1, web-2'`).
fn list_item(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("an empty name in the list (a comma too many?)".to_owned()),
        name => Ok(name.to_owned()),
    }
}

/// A host `init` writes into mix-remote.yaml: a name of a list ([`list_item`]) that ssh can take
/// as a destination, which every command reading the file would refuse otherwise.
fn destination(text: &str) -> Result<String, String> {
    let name = list_item(text)?;
    match name.starts_with('-') {
        true => Err(format!(
            "`{name}` starts with `-`, which ssh takes for an option: a host is an ssh \
             destination, [USER@]HOST"
        )),
        false => Ok(name),
    }
}

/// A module to include, not empty (see [`config::include_ok`]).
fn include(text: &str) -> Result<String, String> {
    config::include_ok(text)?;
    Ok(text.to_owned())
}

/// A Mix environment, which names a directory of `_build/` (see [`config::mix_env_ok`]).
fn mix_env(text: &str) -> Result<String, String> {
    config::mix_env_ok(text)?;
    Ok(text.to_owned())
}

/// An `elixir` a remote shell is given as it is (see [`crate::remote::boot::elixir_path_ok`]).
fn elixir_path(text: &str) -> Result<String, String> {
    match crate::remote::boot::elixir_path_ok(text) {
        true => Ok(text.to_owned()),
        false => Err(format!(
            "`{text}` cannot be passed to the server's shell: {}",
            crate::remote::boot::ELIXIR_PATH_RULE
        )),
    }
}

/// An option as `ssh -o` takes it (see [`config::ssh_option_ok`]).
fn ssh_option(text: &str) -> Result<String, String> {
    config::ssh_option_ok(text)?;
    Ok(text.to_owned())
}

/// An entry function as `run` takes it (see [`Entry::parse`]): its form only, since the
/// project may not be built yet.
fn entry(text: &str) -> Result<String, String> {
    Entry::parse(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// A limit in whole seconds, at least 1: a limit of 0 could never be met. A negative one comes
/// here too (`allow_negative_numbers`), rather than be taken for a flag of its own.
fn secs(text: &str) -> Result<u64, String> {
    use std::num::IntErrorKind;
    match text.parse::<u64>() {
        Ok(0) => Err("a limit of 0 s could never be met: at least 1".to_owned()),
        Ok(secs) => Ok(secs),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => {
            Err(format!("`{text}`: at most {} seconds", u64::MAX))
        }
        Err(_) => Err(format!("`{text}`: a whole number of seconds, at least 1")),
    }
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

/// What the result must be for the run to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Expect {
    /// The function must return `:ok`; anything else exits 1.
    Ok,
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

fn idle(text: &str) -> Result<std::time::Duration, String> {
    crate::remote::agent::parse_duration(text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

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

    #[test]
    fn an_ssh_option_ssh_would_refuse_is_refused_naming_the_flag() {
        for (option, said) in [
            ("NoEqualsSign", "`NoEqualsSign` gives NoEqualsSign no value"),
            ("=value", "`=value` has no option name before its value"),
            ("Port=", "`Port=` gives Port no value"),
            ("Port=22\nUser=x", "`Port=22\\nUser=x` holds a line break"),
        ] {
            let error =
                Cli::try_parse_from(["mix-remote", "run", "A.b", "-o", option]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{option}");
            let error = error.to_string();
            assert!(error.contains("'--ssh-option <OPTION>'"), "{error}");
            assert!(error.contains(said), "{option}: {error}");
        }
        for option in ["Port=2222", "Port 2222", "Port = 2222"] {
            let cli = Cli::try_parse_from(["mix-remote", "check", "-o", option]);
            assert!(cli.is_ok(), "{option} refused");
        }
    }

    #[test]
    fn an_argument_that_is_not_utf8_is_named_by_its_flag_or_its_place() {
        use std::os::unix::ffi::OsStringExt;
        let said = |words: &[&[u8]]| {
            let args = std::iter::once(&b"mix-remote"[..]).chain(words.iter().copied());
            let args: Vec<OsString> = args.map(|w| OsString::from_vec(w.to_vec())).collect();
            let error = parse(Cli::command(), args.clone()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidUtf8, "{words:?}");
            not_utf8(&args)
        };
        assert_eq!(
            said(&[b"run", b"A.b", b"--", b"1", b"\xff"]),
            "argument 2 after --, \"\\xFF\", is not UTF-8 (a function takes such bytes as escapes \
             in an Elixir string: '\"\\xFF\"')"
        );
        let flag = "--host \"\\xFF\": not UTF-8 (mix-remote reads flags, names and entries as UTF-8 \
                    text)";
        assert_eq!(said(&[b"run", b"--host", b"\xff", b"A.b"]), flag);
        assert_eq!(said(&[b"run", b"--host=\xff", b"A.b"]), flag);
        assert_eq!(
            said(&[b"check", b"--config", b"/\xff", b"-o", b"\xff"]),
            "-o \"\\xFF\": not UTF-8 (mix-remote reads flags, names and entries as UTF-8 text)",
            "a path may be any bytes"
        );
        assert_eq!(
            said(&[b"plan", b"-v", b"A.\xff"]),
            "argument \"A.\\xFF\" is not UTF-8 (mix-remote reads flags, names and entries as UTF-8 \
             text)"
        );
    }

    #[test]
    fn limits_are_whole_seconds_and_never_zero() {
        for flag in [
            "--connect-timeout",
            "--boot-timeout",
            "--push-timeout",
            "--call-timeout",
        ] {
            let zero = Cli::try_parse_from(["mix-remote", "run", "A.b", flag, "0"]);
            assert!(zero.is_err(), "{flag} 0 accepted");
        }
        let cli = Cli::try_parse_from(["mix-remote", "run", "A.b", "--call-timeout", "9"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            (run.layer().call_timeout, run.layer().push_timeout),
            (Some(9), None)
        );
    }
}
