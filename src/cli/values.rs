//! What the value of a flag (or of its `MIX_REMOTE_*` variable) must be, checked as clap reads
//! it: the words of each refusal, apart from the flags that take them.

use std::num::NonZeroUsize;

use crate::build::entry::Entry;
use crate::config;

/// A number of hosts at once, which is at least 1 (clap's own parse says `number would be zero
/// for non-zero type` of a 0).
pub(super) fn at_once(text: &str) -> Result<NonZeroUsize, String> {
    let whole = || format!("`{text}`: a whole number of hosts at once, at least 1");
    let n: usize = text.parse().map_err(|_| whole())?;
    NonZeroUsize::new(n).ok_or_else(|| "at least 1 host at once: 0 would work on none".to_owned())
}

/// An item of a comma-separated list of hosts or groups, which cannot be empty: `--host 'a,'`
/// has a comma too many.
/// Blanks around it are left out (`--host 'web-1, web-2'`).
pub(super) fn list_item(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("an empty name in the list (a comma too many?)".to_owned()),
        name => Ok(name.to_owned()),
    }
}

/// A host `init` writes into mix-remote.yaml: a name of a list ([`list_item`]) that ssh can take
/// as a destination, which every command reading the file would refuse otherwise.
pub(super) fn destination(text: &str) -> Result<String, String> {
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
pub(super) fn include(text: &str) -> Result<String, String> {
    config::include_ok(text)?;
    Ok(text.to_owned())
}

/// A Mix environment, which names a directory of `_build/` (see [`config::mix_env_ok`]).
pub(super) fn mix_env(text: &str) -> Result<String, String> {
    config::mix_env_ok(text)?;
    Ok(text.to_owned())
}

/// An `elixir` a remote shell is given as it is (see [`crate::remote::boot::elixir_path_ok`]).
pub(super) fn elixir_path(text: &str) -> Result<String, String> {
    match crate::remote::boot::elixir_path_ok(text) {
        true => Ok(text.to_owned()),
        false => Err(format!(
            "`{text}` cannot be passed to the server's shell: {}",
            crate::remote::boot::ELIXIR_PATH_RULE
        )),
    }
}

/// An option as `ssh -o` takes it (see [`config::ssh_option_ok`]).
pub(super) fn ssh_option(text: &str) -> Result<String, String> {
    config::ssh_option_ok(text)?;
    Ok(text.to_owned())
}

/// An entry function as `run` takes it (see [`Entry::parse`]): its form only, since the
/// project may not be built yet.
pub(super) fn entry(text: &str) -> Result<String, String> {
    Entry::parse(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// A limit in whole seconds, at least 1: a limit of 0 could never be met. A negative one comes
/// here too (`allow_negative_numbers`), rather than be taken for a flag of its own.
pub(super) fn secs(text: &str) -> Result<u64, String> {
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

/// A duration of `--idle`: 90s, 10m, 1h (see [`crate::remote::agent::parse_duration`]).
pub(super) fn idle(text: &str) -> Result<std::time::Duration, String> {
    crate::remote::agent::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use clap::error::ErrorKind;

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
