//! The checks of a file that serde cannot make as it reads it: a key out of its place (and the
//! keys valid there, for an unknown one), an empty address, `remote_env`'s MIX_ENV and values (its names are checked as read), groups in groups.

use std::path::Path;

use super::file::{File, Form, Group};
use super::{ConfigError, Section};

/// Where a section sits in the file, which decides the keys it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The top of the file.
    Top,
    /// `defaults`.
    Defaults,
    /// `groups.NAME`, in its mapping form.
    Group,
    /// `hosts.NAME`.
    Host,
}

/// The settings every section may have: those that may differ from host to host, and the build.
const SETTINGS: [&str; 13] = [
    "mix_env",
    "entry",
    "include",
    "start",
    "elixir",
    "ssh_config",
    "ssh_options",
    "remote_env",
    "connect_timeout",
    "boot_timeout",
    "push_timeout",
    "call_timeout",
    "forward_port",
];

impl Place {
    /// The place of the section whose dotted path is `parent` (empty: the top).
    fn of(parent: &str) -> Place {
        match parent.split_once('.').map_or(parent, |(first, _)| first) {
            "" => Place::Top,
            "defaults" => Place::Defaults,
            "groups" => Place::Group,
            _ => Place::Host,
        }
    }

    /// The keys valid here.
    fn keys(self) -> Vec<&'static str> {
        let own: &[&str] = match self {
            Place::Top => return vec!["defaults", "groups", "hosts"],
            // Settings of the whole command, which no host or group can change.
            Place::Defaults => &["compile", "warnings"],
            Place::Group => &["hosts"],
            Place::Host => &["address"],
        };
        own.iter().chain(&SETTINGS).copied().collect()
    }

    /// Where a key of a section is valid, when not everywhere.
    fn only_under(key: &str) -> Option<&'static str> {
        match key {
            "address" => Some("hosts.NAME"),
            "hosts" => Some("groups.NAME"),
            "compile" | "warnings" => Some("defaults"),
            _ => None,
        }
    }
}

/// serde's message for an unknown key lists every field of [`Section`], wherever it is; this one
/// lists only the keys valid where the key is (`key`, its dotted path), and the nearest of them.
pub(super) fn unknown_key(key: &str, message: &str) -> Option<String> {
    let name = message.strip_prefix("unknown field `")?.split('`').next()?;
    let parent = key.strip_suffix(name)?.trim_end_matches('.');
    let valid = Place::of(parent).keys();
    let listed: Vec<String> = valid.iter().map(|k| format!("`{k}`")).collect();
    let hint = crate::suggest::nearest(name, valid.iter().copied())
        .map_or_else(String::new, |k| format!(" (did you mean `{k}`?)"));
    Some(format!(
        "unknown field `{name}`{hint}, expected one of {}",
        listed.join(", ")
    ))
}

/// Refuses a member of a group that names another group of the file rather than a host (one
/// with no section of its own under `hosts`): groups do not nest, and ssh would be given the
/// group's name as a destination. So is an empty (or blank) member, which names no host.
pub(super) fn group_members(file: &File, path: &Path) -> Result<(), ConfigError> {
    for (name, group) in &file.groups {
        let Group(section, form) = &group.value;
        let members = section.hosts.iter().flat_map(|h| h.value.iter());
        for (i, member) in members.enumerate() {
            // A group named after its one host (`staging: [staging]`, an ssh alias) lists it.
            let named = member.value.as_str();
            let message = if named.trim().is_empty() {
                "an empty host name: give a host of this file or an ssh destination, \
                 [USER@]HOST, or leave the item out"
                    .to_owned()
            } else if named == name
                || !file.groups.contains_key(named)
                || file.hosts.contains_key(named)
            {
                continue;
            } else {
                format!(
                    "{named} is a group, and groups do not nest: list its hosts here, or pass \
                     --group {named} beside --group {name}"
                )
            };
            let key = match form {
                Form::List => format!("groups.{name}[{i}]"),
                Form::Mapping => format!("groups.{name}.hosts[{i}]"),
            };
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: member.referenced.line(),
                column: member.referenced.column(),
                key,
                message,
            });
        }
    }
    Ok(())
}

/// A key where it has no meaning (`address` outside `hosts`, `hosts` outside `groups`, `compile`
/// or `warnings` outside `defaults`), or a remote variable name the OS refuses.
pub(super) fn check_section(section: &Section, at: &str, path: &Path) -> Result<(), ConfigError> {
    let valid = Place::of(at).keys();
    let located = [
        ("address", section.address.as_ref().map(|s| s.referenced)),
        ("hosts", section.hosts.as_ref().map(|s| s.referenced)),
        ("compile", section.compile.as_ref().map(|s| s.referenced)),
        ("warnings", section.warnings.as_ref().map(|s| s.referenced)),
    ];
    for (key, location) in located {
        if let (Some(l), false) = (location, valid.contains(&key)) {
            let only = Place::only_under(key).unwrap_or_default();
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: l.line(),
                column: l.column(),
                key: format!("{at}.{key}"),
                message: format!("`{key}` is only valid under {only}"),
            });
        }
    }
    if let Some(address) = section
        .address
        .as_ref()
        .filter(|a| a.value.trim().is_empty())
    {
        let l = address.referenced;
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            line: l.line(),
            column: l.column(),
            key: format!("{at}.address"),
            message: "the address is empty: give the ssh destination, [USER@]HOST".into(),
        });
    }
    if let Some(env) = &section.remote_env {
        // Its names were checked as they were read (`values::remote_env`), each at its key.
        let message = match env.value.get("MIX_ENV") {
            // On the node it would only be a variable: the build that ships, the config files'
            // `config_env()` and `Mix.env()` are the run's environment.
            Some(value) => Some(format!(
                "MIX_ENV is the run's Mix environment, not a variable to set on the server: \
                 set `mix_env: {value}` instead (it chooses the build, the config files' \
                 environment and Mix.env() alike)"
            )),
            // The server's `System.put_env/2` refuses a NUL byte in a value too.
            None => env
                .value
                .iter()
                .find(|(_, v)| v.contains('\0'))
                .map(|(k, _)| format!("the value of `{k}` holds a NUL byte")),
        };
        if let Some(message) = message {
            let l = env.referenced;
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: l.line(),
                column: l.column(),
                key: format!("{at}.remote_env"),
                message,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::select;
    use crate::config::testing::{host, invalid, parse};

    #[test]
    fn a_group_listed_in_a_group_is_refused_where_it_is_written() {
        let (line, key, message) = invalid("groups:\n  web: [a, b]\n  top: [c, web]\n");
        assert_eq!((line, key.as_str()), (3, "groups.top[1]"));
        assert_eq!(
            message,
            "web is a group, and groups do not nest: list its hosts here, or pass --group web \
             beside --group top"
        );
        let text = "groups:\n  web: [a]\n  top:\n    hosts:\n      - c\n      - web\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("/p/mix-remote.yaml:6:9: `groups.top.hosts[1]`: web is a group"),
            "{err}"
        );
        // Unless it is also a host, with a section of its own: then it is that host.
        let both = parse("groups:\n  web: [a]\n  top: [web]\nhosts:\n  web: {}\n").unwrap();
        let chosen = select(Some(&both), &[], &["top".into()]).unwrap();
        assert_eq!(chosen, [host("web", Some("top"))]);
        // A group named after its one host (an ssh alias) lists that host, by group or by name.
        let alias = parse(
            "groups:
  staging: [staging]
",
        )
        .unwrap();
        let chosen = select(Some(&alias), &[], &["staging".into()]).unwrap();
        assert_eq!(chosen, [host("staging", Some("staging"))]);
        let chosen = select(Some(&alias), &["staging".into()], &[]).unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].name, "staging");
    }
}
