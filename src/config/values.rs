//! What the value of each setting must be, checked where it is written: in the file as serde
//! reads it (with the key's place), and the checks the command line's flags share.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::collections::BTreeMap;
use std::fmt;

use serde_saphyr::Spanned;

use crate::build::entry::{Entry, EntryError};

/// Whether `text` can be a module to include: not empty nor blank, which names no module (what
/// it names is checked against the build later).
pub fn include_ok(text: &str) -> Result<(), String> {
    match text.trim().is_empty() {
        true => Err("an empty module name: give a module, MyApp.Mod or :erlang_mod".to_owned()),
        false => Ok(()),
    }
}

/// Whether `text` can name a Mix environment, which names a directory of `_build/`.
pub fn mix_env_ok(text: &str) -> Result<(), String> {
    if text.is_empty() || text.contains('/') || text == "." || text == ".." {
        return Err(
            "a Mix environment names a directory of _build/: it cannot be empty, hold a `/`, \
             or be `.` or `..`"
                .to_owned(),
        );
    }
    Ok(())
}

/// How `ssh -o` takes an option, for the errors of [`ssh_option_ok`].
const SSH_OPTION_RULE: &str = "ssh takes an option as Key=Value (or `Key Value`), e.g. Port=2222";

/// Whether `text` is an option `ssh -o` takes: a name and a value, split by `=` or blanks, on
/// one line. The name is ssh's to know; an empty name or value, or a line break, ssh refuses.
pub fn ssh_option_ok(text: &str) -> Result<(), String> {
    let shown = text.escape_debug();
    if text.contains(['\n', '\r', '\0']) {
        return Err(format!(
            "`{shown}` holds a line break or a NUL byte: {SSH_OPTION_RULE}"
        ));
    }
    let text = text.trim();
    let end = text.find(|c: char| c == '=' || c.is_whitespace());
    let (name, rest) = text.split_at(end.unwrap_or(text.len()));
    let rest = rest.trim_start();
    let value = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    let why = if text.is_empty() {
        "an empty option".to_owned()
    } else if name.is_empty() {
        format!("`{shown}` has no option name before its value")
    } else if value.is_empty() {
        format!("`{shown}` gives {name} no value")
    } else {
        return Ok(());
    };
    Err(format!("{why}: {SSH_OPTION_RULE}"))
}

/// A limit in whole seconds, at least 1: a limit of 0 could never be met (none: the default).
pub(super) fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match deserializer.deserialize_option(Whole(SECONDS))? {
        Some(0) => Err(de::Error::custom(
            "a limit of 0 s could never be met: give at least 1",
        )),
        secs => Ok(secs),
    }
}

/// What a limit of the file must be.
const SECONDS: &str = "a whole number of seconds, at least 1";

/// A port of the server (none: the default).
pub(super) fn port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    deserializer
        .deserialize_option(Whole(PORT))?
        .map(|port| u16::try_from(port).map_err(|_| de::Error::custom(format!("`{port}`: {PORT}"))))
        .transpose()
}

/// What `forward_port` must be.
const PORT: &str = "a port, from 0 to 65535";

/// A whole number, written as a number or a string, or nothing (unset); `.0` says what it must
/// be when it is not one (a negative or fractional number, a word, a number too large).
struct Whole(&'static str);

impl<'de> Visitor<'de> for Whole {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<u64>, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<u64>, E> {
        Ok(Some(n))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Option<u64>, E> {
        u64::try_from(n)
            .map(Some)
            .map_err(|_| E::custom(format!("`{n}`: {}", self.0)))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Option<u64>, E> {
        Err(E::custom(format!("`{n}`: {}", self.0)))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<u64>, E> {
        match text.trim().parse::<u64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(E::custom(format!("`{text}`: {}", self.0))),
        }
    }
}

/// A `mix_env` that names a directory of `_build/` (see [`mix_env_ok`]); none: the default.
pub(super) fn mix_env<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let Some(env) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    mix_env_ok(&env).map_err(de::Error::custom)?;
    Ok(Some(env))
}

/// Modules to include, none of them empty (see [`include_ok`]), each checked as it is read, so
/// that an error names the item (`defaults.include[1]`, its line and column), not the list.
pub(super) fn include<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    /// One module of `include`, checked.
    struct Module(String);
    impl<'de> Deserialize<'de> for Module {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Module, D::Error> {
            let module = String::deserialize(deserializer)?;
            include_ok(&module).map_err(de::Error::custom)?;
            Ok(Module(module))
        }
    }
    let modules = Option::<Vec<Module>>::deserialize(deserializer)?;
    Ok(modules.map(|m| m.into_iter().map(|Module(m)| m).collect()))
}

/// Whether `name` can name an environment variable the node sets: not empty, without `=` or a
/// NUL byte (which no environment can hold), not starting with a digit.
pub fn env_name_ok(name: &str) -> Result<(), String> {
    match name.is_empty()
        || name.contains(['=', '\0'])
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        true => Err(format!("`{name}` is not a valid environment variable name")),
        false => Ok(()),
    }
}

/// `remote_env`, each name checked as it is read (see [`env_name_ok`]), so that an error names
/// the key (`defaults.remote_env.A=B`, its line and column), not the mapping.
pub(super) fn remote_env<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Spanned<BTreeMap<String, String>>>, D::Error> {
    /// One variable's name, checked.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Name(String);
    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
            let name = String::deserialize(deserializer)?;
            env_name_ok(&name).map_err(de::Error::custom)?;
            Ok(Name(name))
        }
    }
    let env = Option::<Spanned<BTreeMap<Name, String>>>::deserialize(deserializer)?;
    Ok(env.map(|env| Spanned {
        value: env.value.into_iter().map(|(Name(k), v)| (k, v)).collect(),
        referenced: env.referenced,
        defined: env.defined,
    }))
}

/// An entry function of the form `run` takes (see [`Entry::parse`]); one that names only a
/// module passes, for `run` to list that module's functions from the build.
pub(super) fn entry<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let Some(entry) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    match Entry::parse(&entry) {
        Ok(_) | Err(EntryError::ModuleOnly { .. }) => Ok(Some(entry)),
        Err(error) => Err(de::Error::custom(error)),
    }
}

/// An `elixir` path that passes through the server's shell as it is (none: the default).
pub(super) fn elixir_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let Some(elixir) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if !crate::remote::boot::elixir_path_ok(&elixir) {
        return Err(de::Error::custom(format!(
            "`{elixir}` cannot be passed to the server's shell: {}",
            crate::remote::boot::ELIXIR_PATH_RULE
        )));
    }
    Ok(Some(elixir))
}

/// `ssh_options`, each checked where it is written (see [`SshOption`]); none: the default.
pub(super) fn ssh_options<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let options = Option::<Vec<SshOption>>::deserialize(deserializer)?;
    Ok(options.map(|options| options.into_iter().map(|o| o.0).collect()))
}

/// One of `ssh_options`: an option `ssh -o` takes (see [`ssh_option_ok`]).
struct SshOption(String);

impl<'de> Deserialize<'de> for SshOption {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SshOption, D::Error> {
        let option = String::deserialize(deserializer)?;
        ssh_option_ok(&option).map_err(de::Error::custom)?;
        Ok(SshOption(option))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{invalid, parse};

    #[test]
    fn an_ssh_option_ssh_would_refuse_is_bad_input_where_it_is_written() {
        for (text, line, key, said) in [
            (
                "hosts:\n  h:\n    ssh_options: [NoEqualsSign]\n",
                3,
                "hosts.h.ssh_options[0]",
                "`NoEqualsSign` gives NoEqualsSign no value",
            ),
            (
                "defaults:\n  ssh_options:\n    - Port=22\n    - \"=value\"\n",
                4,
                "defaults.ssh_options[1]",
                "`=value` has no option name before its value",
            ),
            (
                "groups:\n  web:\n    hosts: [a]\n    ssh_options: [\"Port=\"]\n",
                4,
                "groups.web.ssh_options[0]",
                "`Port=` gives Port no value",
            ),
            (
                "hosts:\n  h:\n    ssh_options: [\"Port=22\\nUser=x\"]\n",
                3,
                "hosts.h.ssh_options[0]",
                "`Port=22\\nUser=x` holds a line break",
            ),
            (
                "hosts:\n  h:\n    ssh_options: [\"\"]\n",
                3,
                "hosts.h.ssh_options[0]",
                "an empty option",
            ),
            (
                "hosts:\n  h:\n    ssh_options: [1]\n",
                3,
                "hosts.h.ssh_options[0]",
                "`1` gives 1 no value",
            ),
        ] {
            let (at, named, message) = invalid(text);
            assert_eq!((at, named.as_str()), (line, key), "{text}");
            assert!(message.starts_with(said), "{text}: {message}");
            assert!(message.contains("Key=Value"), "{text}: {message}");
        }
        let fine = "hosts:\n  h:\n    ssh_options: [Port=22, \"User x\", \" Port = 22 \"]\n";
        assert!(parse(fine).is_ok());
    }

    #[test]
    fn an_entry_that_run_could_not_take_is_refused_where_it_is_written() {
        let (line, key, message) = invalid("defaults:\n  mix_env: dev\n  entry: foo bar\n");
        assert_eq!((line, key.as_str()), (3, "defaults.entry"));
        assert!(
            message.starts_with("entry `foo bar` is not of the form"),
            "{message}"
        );
        let (line, key, message) = invalid("groups:\n  web:\n    hosts: [a]\n    entry: A.b/300\n");
        assert_eq!((line, key.as_str()), (4, "groups.web.entry"));
        assert!(message.contains("more than 255 arguments"), "{message}");
        // A module alone is left to `run`, which lists its functions from the build.
        for fine in ["MyApp.Smoke.check", ":smoke.run/0", "MyApp.Smoke", "~"] {
            assert!(
                parse(&format!("defaults:\n  entry: {fine}\n")).is_ok(),
                "{fine}"
            );
        }
    }
}
