//! What the tool says when clap refuses the command line: tips (an argument that goes after
//! `--`, a flag of other commands), the variable named instead of its flag, the argument that is
//! not UTF-8, one line for an `error` event; apart from the parse, which only calls on them.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::CommandFactory;
use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::Cli;

/// The error clap gives for `flag`, typed before `subcommand`, which has no use for it: as if
/// typed after it, with the tip saying why.
pub(super) fn refused(command: &mut clap::Command, subcommand: &str, flag: &str) -> clap::Error {
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

/// The error clap gives for two flags of `subcommand` that conflict, `first` given before `then`.
pub(super) fn conflict(
    command: &mut clap::Command,
    subcommand: &str,
    first: &str,
    then: &str,
) -> clap::Error {
    let mut error = subcommand_error(command, subcommand, ErrorKind::ArgumentConflict);
    error.insert(ContextKind::InvalidArg, ContextValue::String(first.into()));
    error.insert(ContextKind::PriorArg, ContextValue::String(then.into()));
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
pub(super) fn names(flag: &clap::Arg, word: &str) -> bool {
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

/// `error`, a value clap refused, named by the `MIX_REMOTE_*` variable it came from rather than
/// by its flag (`MIX_REMOTE_NO_COMPILE=maybe` is no `--no-compile` typed): clap reads a flag's
/// variable only when the flag is not typed, and names the flag either way.
pub(super) fn of_variable(mut error: clap::Error, args: &[OsString]) -> clap::Error {
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

/// `error`, with a tip when it is an argument of `run` that belongs after `--`, or a flag of
/// other commands that has no use in this one.
pub(super) fn tip(mut error: clap::Error, args: &[OsString]) -> clap::Error {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

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
}
