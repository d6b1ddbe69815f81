//! Why a configuration cannot be used: the one error type of reading `mix-remote.yaml` and of
//! choosing hosts and resolving their settings, apart from the code that finds each one.

use std::path::PathBuf;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The ssh config file of a host (`-F`, `ssh_config:`) is not there, or is a directory.
    #[error(
        "the ssh config {} of {host} {why} (-F, MIX_REMOTE_SSH_CONFIG, or ssh_config in mix-remote.yaml)",
        path.display()
    )]
    NoSshConfig {
        /// The file.
        path: PathBuf,
        /// The host it is for.
        host: String,
        /// What it is: `is not there`, `is a directory, not a file`.
        why: &'static str,
    },
    /// The ssh destination of a host starts with `-`: ssh would take it for an option.
    #[error(
        "the ssh destination of {host}, `{address}`, starts with `-`, which ssh takes for an \
         option (--host, MIX_REMOTE_HOST, or the host's name or address in mix-remote.yaml)"
    )]
    DashedAddress {
        /// The host.
        host: String,
        /// Its destination.
        address: String,
    },
    /// `--project` names no Mix project.
    #[error("--project (or MIX_REMOTE_PROJECT) {}: {why}", path.display())]
    NoProject {
        /// The directory given.
        path: PathBuf,
        /// What it is not.
        why: &'static str,
    },
    /// The file `--config` (or `MIX_REMOTE_CONFIG`) names could not be read.
    #[error("--config (or MIX_REMOTE_CONFIG) {}: cannot read it: {error}", path.display())]
    NoConfig {
        /// The file named.
        path: PathBuf,
        /// The OS error, as text.
        error: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error, as text.
        error: String,
    },
    /// The file is not valid YAML, has an unknown key or a value of the wrong type.
    #[error("{path}:{line}:{column}: {}{message}", key_prefix(.key))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: u64,
        /// 1-based column.
        column: u64,
        /// Dotted path of the key (`hosts.web-1.connect_timeout`), empty at the top.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A group was named that the file does not define.
    #[error("{named} {group}: {why}")]
    UnknownGroup {
        /// What named it: `--group`, or `MIX_REMOTE_GROUP` (see [`ConfigError::from_variables`]).
        named: &'static str,
        /// The group named.
        group: String,
        /// Where it was looked for.
        why: String,
    },
    /// `--host` names a group of the file, and none of its hosts.
    #[error(
        "{named} {group}: {group} is a group of {}, not a host: pass --group {group} (to reach \
         an SSH destination of that name, give it a section under `hosts`)",
        .path.display()
    )]
    GroupAsHost {
        /// What named it: `--host`, or `MIX_REMOTE_HOST` (see [`ConfigError::from_variables`]).
        named: &'static str,
        /// The name given.
        group: String,
        /// The file.
        path: PathBuf,
    },
    /// A group lists no host.
    #[error("{path}:{line}: group `{group}` lists no host")]
    EmptyGroup {
        /// The file.
        path: PathBuf,
        /// Line of the group.
        line: u64,
        /// The group.
        group: String,
    },
    /// Nothing selects a host.
    #[error(
        "no host: pass --host [USER@]HOST or --group NAME (or set MIX_REMOTE_HOST / MIX_REMOTE_GROUP)"
    )]
    NoHost,
    /// `MIX_ENV` cannot name a Mix environment (see [`mix_env_ok`](super::mix_env_ok)).
    #[error("MIX_ENV `{value}`: {why}")]
    MixEnv {
        /// Its value.
        value: String,
        /// Why not.
        why: String,
    },
    /// The selected hosts need different builds, so one closure cannot serve them all.
    #[error("hosts {hosts} disagree on `{key}` ({values}): run them separately or {settle}")]
    Disagree {
        /// The setting.
        key: &'static str,
        /// How to settle it for every host: "pass --env".
        settle: &'static str,
        /// "a and b".
        hosts: String,
        /// "prod vs staging".
        values: String,
    },
}

impl ConfigError {
    /// This error, for hosts that `MIX_REMOTE_HOST` and `MIX_REMOTE_GROUP` chose (no `--host`
    /// nor `--group` typed) when `from_variables`: a name it refuses is named by its variable.
    pub fn from_variables(self, from_variables: bool) -> ConfigError {
        match self {
            ConfigError::UnknownGroup { group, why, .. } if from_variables => {
                ConfigError::UnknownGroup {
                    named: "MIX_REMOTE_GROUP",
                    group,
                    why,
                }
            }
            ConfigError::GroupAsHost { group, path, .. } if from_variables => {
                ConfigError::GroupAsHost {
                    named: "MIX_REMOTE_HOST",
                    group,
                    path,
                }
            }
            other => other,
        }
    }
}

/// `key` as the start of a message, `` `key`: ``; nothing for the top of the file.
fn key_prefix(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("`{key}`: ")
    }
}
