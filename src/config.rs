//! `mix-remote.yaml`: the hosts and groups a team works with and their settings, found by walking
//! up from the current directory, and the resolution of every setting for one host.
//!
//! Precedence, most important first: command-line flags, `MIX_REMOTE_*` environment variables
//! (clap merges these two into the override layer), the config file (the host's own section, then
//! its group's, then `defaults`), the built-in defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned};

use crate::build::entry::{Entry, EntryError};
use crate::build::plan::PlanError;

/// The file looked for in the current directory and its parents.
pub const FILE_NAME: &str = "mix-remote.yaml";

/// Built-in default of `mix_env`.
pub const DEFAULT_MIX_ENV: &str = "dev";
/// Built-in default of `elixir`: found on the remote login PATH.
pub const DEFAULT_ELIXIR: &str = "elixir";
/// Built-in default of `connect_timeout`, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 30;
/// Built-in default of `boot_timeout`, in seconds.
pub const DEFAULT_BOOT_TIMEOUT: u64 = 60;
/// Built-in default of `push_timeout`, in seconds: loading runs every module's `-on_load`.
pub const DEFAULT_PUSH_TIMEOUT: u64 = 120;

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
    /// `MIX_ENV` cannot name a Mix environment (see [`mix_env_ok`]).
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

/// The dotted path of a key as the user wrote it (`groups.web.hosts[1]`): without the `value`
/// steps of our `Spanned` wrappers (a group's, those of [`SPANNED`] keys, and a group's
/// members').
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut keys: Vec<&str> = Vec::new();
    let mut text = String::new();
    let mut member = false;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                text += &format!("[{index}]");
                member = keys.first() == Some(&"groups");
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let wrapper = key == "value"
                    && (matches!(keys.as_slice(), ["groups", _])
                        || keys.last().is_some_and(|k| SPANNED.contains(k))
                        || member);
                member = false;
                keys.push(key);
                if !wrapper {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text += key;
                }
            }
            Segment::Unknown => {}
        }
    }
    text
}

/// The keys whose values are `Spanned`, for their line in errors found after parsing.
const SPANNED: [&str; 5] = ["address", "hosts", "remote_env", "compile", "warnings"];

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
fn unknown_key(key: &str, message: &str) -> Option<String> {
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

/// The key the YAML parser found twice in one mapping, from its message.
fn duplicated(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("duplicate mapping key: ")?;
    Some(
        rest.strip_suffix(", set DuplicateKeyPolicy in Options if acceptable")
            .unwrap_or(rest),
    )
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

fn key_prefix(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("`{key}`: ")
    }
}

/// One layer of settings: `defaults`, a group, a host, or the flags and environment.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Under `hosts` only: the ssh destination when it differs from the host's name.
    pub address: Option<Spanned<String>>,
    /// Under `groups` only (long form): the group's members, each where it is written.
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    /// Which `_build/<ENV>` to read.
    #[serde(default, deserialize_with = "mix_env")]
    pub mix_env: Option<String>,
    /// The entry function when `run` names none.
    #[serde(default, deserialize_with = "entry")]
    pub entry: Option<String>,
    /// Modules pushed with the entry's closure (and their own closures).
    #[serde(default, deserialize_with = "include")]
    pub include: Option<Vec<String>>,
    /// Start the project's applications before the call, as `mix run` does (false: only load
    /// them, like a release's `eval`).
    pub start: Option<bool>,
    /// The `elixir` executable on the server.
    #[serde(default, deserialize_with = "elixir_path")]
    pub elixir: Option<String>,
    /// ssh_config file (`ssh -F`); relative to the config file's directory.
    pub ssh_config: Option<PathBuf>,
    /// `ssh -o` options.
    #[serde(default, deserialize_with = "ssh_options")]
    pub ssh_options: Option<Vec<String>>,
    /// Environment variables set in the remote node before the call.
    pub remote_env: Option<Spanned<BTreeMap<String, String>>>,
    /// Seconds to wait for the SSH connection and login.
    #[serde(default, deserialize_with = "seconds")]
    pub connect_timeout: Option<u64>,
    /// Seconds to wait for the remote node to boot and connect back.
    #[serde(default, deserialize_with = "seconds")]
    pub boot_timeout: Option<u64>,
    /// Seconds to wait for the closure to load on the remote node.
    #[serde(default, deserialize_with = "seconds")]
    pub push_timeout: Option<u64>,
    /// Seconds the function may run (no limit when no layer sets one).
    #[serde(default, deserialize_with = "seconds")]
    pub call_timeout: Option<u64>,
    /// The server port of a cold run's reverse forward (0: one the server allocates; none: one
    /// the tool draws at random).
    #[serde(default, deserialize_with = "port")]
    pub forward_port: Option<u16>,
    /// Under `defaults` only: whether `run` and `plan` compile the project first.
    pub compile: Option<Spanned<bool>>,
    /// Under `defaults` only: whether warnings are shown.
    pub warnings: Option<Spanned<bool>>,
}

/// A limit in whole seconds, at least 1: a limit of 0 could never be met (none: the default).
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
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
fn port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
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
fn mix_env<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let Some(env) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    mix_env_ok(&env).map_err(de::Error::custom)?;
    Ok(Some(env))
}

/// Modules to include, none of them empty (see [`include_ok`]).
fn include<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    let Some(modules) = Option::<Vec<String>>::deserialize(deserializer)? else {
        return Ok(None);
    };
    for module in &modules {
        include_ok(module).map_err(de::Error::custom)?;
    }
    Ok(Some(modules))
}

/// An entry function of the form `run` takes (see [`Entry::parse`]); one that names only a
/// module passes, for `run` to list that module's functions from the build.
fn entry<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let Some(entry) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    match Entry::parse(&entry) {
        Ok(_) | Err(EntryError::ModuleOnly { .. }) => Ok(Some(entry)),
        Err(error) => Err(de::Error::custom(error)),
    }
}

/// An `elixir` path that passes through the server's shell as it is (none: the default).
fn elixir_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
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
fn ssh_options<'de, D: Deserializer<'de>>(
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

/// A group: a list of hosts, or a section with `hosts` and settings.
#[derive(Debug, Clone)]
struct Group(Section, Form);

/// How a group is written, which decides the key path of its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `web: [a, b]`: its members are `groups.web[i]`.
    List,
    /// `web: {hosts: [a, b], ...}`: its members are `groups.web.hosts[i]`.
    Mapping,
}

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Group, D::Error> {
        struct GroupVisitor;
        impl<'de> Visitor<'de> for GroupVisitor {
            type Value = Group;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of hosts, or a mapping with `hosts` and settings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Group, A::Error> {
                let mut hosts = Vec::new();
                while let Some(host) = seq.next_element::<Spanned<String>>()? {
                    hosts.push(host);
                }
                let section = Section {
                    hosts: Some(Spanned::new(hosts, Location::UNKNOWN, Location::UNKNOWN)),
                    ..Section::default()
                };
                Ok(Group(section, Form::List))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Group, A::Error> {
                Section::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|section| Group(section, Form::Mapping))
            }
        }
        deserializer.deserialize_any(GroupVisitor)
    }
}

/// The file as written. A section with nothing under it (`defaults:` whose lines are all
/// commented out, a host `web-1:` without settings) is an empty one, as a setting written
/// without a value is unset.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, deserialize_with = "or_empty")]
    defaults: Section,
    #[serde(default, deserialize_with = "or_empty")]
    groups: BTreeMap<String, Spanned<Group>>,
    #[serde(default, deserialize_with = "hosts")]
    hosts: BTreeMap<String, Section>,
}

/// A section, or a mapping of them, that may be written empty.
fn or_empty<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `hosts`, each of which may be written empty.
fn hosts<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Section>, D::Error> {
    let hosts = Option::<BTreeMap<String, Option<Section>>>::deserialize(deserializer)?;
    Ok(hosts
        .unwrap_or_default()
        .into_iter()
        .map(|(name, section)| (name, section.unwrap_or_default()))
        .collect())
}

/// A loaded, checked `mix-remote.yaml`.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    file: File,
    /// Found by walking up (so its directory is the project root), not named by --config.
    discovered: bool,
}

/// A host chosen by `--host` or through `--group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The name shown in output: a `hosts` key, or the destination as given.
    pub name: String,
    /// The groups it was chosen through, whose settings then apply: in the order the file
    /// defines them, the first one's setting winning, whatever the order of the flags.
    pub groups: Vec<String>,
}

/// Every setting of one host, resolved: what may differ between the hosts of a run (the build
/// they share is a [`Build`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// The name shown in output and in the summary.
    pub name: String,
    /// The ssh destination, `[user@]host` or an ssh_config alias.
    pub address: String,
    /// What gave the destination, for the hint of one that does not resolve: see [`origin`].
    pub origin: String,
    /// The remote `elixir`.
    pub elixir: String,
    /// `ssh -F`.
    pub ssh_config: Option<PathBuf>,
    /// `ssh -o`, most important first (ssh keeps the first value of an option).
    pub ssh_options: Vec<String>,
    /// Set in the remote node before the call.
    pub remote_env: BTreeMap<String, String>,
    /// Seconds to wait for the SSH connection and login.
    pub connect_timeout: u64,
    /// Seconds to wait for the remote node to boot and connect back.
    pub boot_timeout: u64,
    /// Seconds to wait for the closure to load.
    pub push_timeout: u64,
    /// Seconds the function may run; `None`: as long as it needs.
    pub call_timeout: Option<u64>,
    /// The server port of a cold run's reverse forward: 0 for one the server allocates, `None`
    /// for one the tool draws at random.
    pub forward_port: Option<u16>,
}

impl Config {
    /// The nearest `mix-remote.yaml` in `start` or one of its parents.
    pub fn discover(start: &Path) -> Option<PathBuf> {
        let start = start.canonicalize().ok()?;
        start
            .ancestors()
            .map(|dir| dir.join(FILE_NAME))
            .find(|candidate| candidate.is_file())
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            error: e.to_string(),
        })?;
        Config::parse(&text, path)
    }

    /// Checks `text`, the contents of `path` (relative paths inside are relative to its
    /// directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut key = String::new();
        let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize::<_, File>(de).map_err(|e| {
                key = key_path(e.path());
                e.into_inner()
            })
        });
        let mut file = parsed.map_err(|e| {
            let at = e.location();
            let message = match e.without_snippet() {
                // The parser's own words name functions of its API.
                serde_saphyr::Error::MultipleDocuments { .. } => {
                    "only one YAML document is allowed: a second one, after a `---` line, starts here".into()
                }
                _ => match serde_saphyr::DefaultMessageFormatter.format_message(&e) {
                    // "cannot deserialize null into string; use Option<String>" names Rust's types.
                    m if m.starts_with("cannot deserialize null into ") => {
                        "no value (null) where text is expected: write one, or leave the item out"
                            .into()
                    }
                    m => m,
                },
            };
            let (key, message) = match duplicated(&message) {
                Some(name) if key.is_empty() => (name.to_owned(), "set twice".to_owned()),
                Some(name) => (format!("{key}.{name}"), "set twice".to_owned()),
                None => (
                    key.clone(),
                    unknown_key(&key, &message).unwrap_or_else(|| message.into_owned()),
                ),
            };
            ConfigError::Invalid {
                path: path.to_owned(),
                line: at.map_or(0, |l| l.line()),
                column: at.map_or(0, |l| l.column()),
                message,
                key,
            }
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        check_section(&file.defaults, "defaults", path)?;
        for (name, group) in &mut file.groups {
            let section = &mut group.value.0;
            check_section(section, &format!("groups.{name}"), path)?;
            relative_to(section, dir);
        }
        for (name, section) in &mut file.hosts {
            check_section(section, &format!("hosts.{name}"), path)?;
            relative_to(section, dir);
        }
        relative_to(&mut file.defaults, dir);
        group_members(&file, path)?;
        Ok(Config {
            path: path.to_owned(),
            file,
            discovered: false,
        })
    }

    /// The file named by `--config` (or `MIX_REMOTE_CONFIG`), else the nearest `mix-remote.yaml`
    /// in `start` or a parent; none if there is none.
    pub fn locate(explicit: Option<&Path>, start: &Path) -> Result<Option<Config>, ConfigError> {
        if let Some(path) = explicit {
            return match Config::load(path) {
                Err(ConfigError::Read { path, error }) => {
                    Err(ConfigError::NoConfig { path, error })
                }
                loaded => loaded.map(Some),
            };
        }
        match Config::discover(start) {
            Some(path) => Config::load(&path).map(|c| {
                Some(Config {
                    discovered: true,
                    ..c
                })
            }),
            None => Ok(None),
        }
    }

    /// The file this configuration was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of the groups, sorted.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.file.groups.keys().map(String::as_str)
    }

    /// The names of the hosts: those with a section of their own, then the other members of
    /// groups, each once.
    pub fn hosts(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.file.hosts.keys().map(String::as_str).collect();
        let members = self
            .file
            .groups
            .values()
            .filter_map(|g| g.value.0.hosts.as_ref());
        for member in members.flat_map(|m| &m.value) {
            if !names.contains(&member.value.as_str()) {
                names.push(&member.value);
            }
        }
        names
    }

    /// Whether `name` names a group of the file and none of its hosts (a member of a group is
    /// never a group: see [`group_members`]).
    fn only_a_group(&self, name: &str) -> bool {
        self.file.groups.contains_key(name) && !self.hosts().contains(&name)
    }

    /// The dotted path of `section` if it is one of this file's (`defaults`, `groups.web`,
    /// `hosts.db-1`); none for another, such as the flags' layer.
    fn key_of(&self, section: &Section) -> Option<String> {
        if std::ptr::eq(section, &self.file.defaults) {
            return Some("defaults".to_owned());
        }
        let host = self
            .file
            .hosts
            .iter()
            .find(|(_, s)| std::ptr::eq(*s, section));
        if let Some((name, _)) = host {
            return Some(format!("hosts.{name}"));
        }
        let group = self
            .file
            .groups
            .iter()
            .find(|(_, g)| std::ptr::eq(&g.value.0, section));
        group.map(|(name, _)| format!("groups.{name}"))
    }

    /// `warnings` of `defaults`: false silences warnings.
    pub fn warnings(&self) -> Option<bool> {
        self.file.defaults.warnings.as_ref().map(|w| w.value)
    }
}

/// Refuses a member of a group that names another group of the file rather than a host (one
/// with no section of its own under `hosts`): groups do not nest, and ssh would be given the
/// group's name as a destination. So is an empty (or blank) member, which names no host.
fn group_members(file: &File, path: &Path) -> Result<(), ConfigError> {
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
fn check_section(section: &Section, at: &str, path: &Path) -> Result<(), ConfigError> {
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
        let bad = env.value.keys().find(|k| {
            k.is_empty() || k.contains(['=', '\0']) || k.starts_with(|c: char| c.is_ascii_digit())
        });
        let message = match (bad, env.value.get("MIX_ENV")) {
            (Some(bad), _) => Some(format!("`{bad}` is not a valid environment variable name")),
            // On the node it would only be a variable: the build that ships, the config files'
            // `config_env()` and `Mix.env()` are the run's environment.
            (None, Some(value)) => Some(format!(
                "MIX_ENV is the run's Mix environment, not a variable to set on the server: \
                 set `mix_env: {value}` instead (it chooses the build, the config files' \
                 environment and Mix.env() alike)"
            )),
            // The server's `System.put_env/2` refuses a NUL byte in a value too.
            (None, None) => env
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

fn relative_to(section: &mut Section, dir: &Path) {
    if let Some(file) = &mut section.ssh_config {
        *file = ssh_config_path(file, dir, &home_of);
    }
}

/// An `ssh_config` of the file in `dir` as ssh takes it: `none` (no configuration file at all)
/// as it is, `~/...` and `~user/...` under the home directory `home` gives (of this user for
/// `""`), and other relative paths (a `~user` without a home among them) from `dir`.
fn ssh_config_path(file: &Path, dir: &Path, home: &dyn Fn(&str) -> Option<PathBuf>) -> PathBuf {
    if file.as_os_str() == "none" {
        return file.to_owned();
    }
    let mut parts = file.components();
    let tilde = parts.next().and_then(|first| {
        let user = first.as_os_str().to_str()?.strip_prefix('~')?;
        Some((home(user)?, parts.as_path()))
    });
    match tilde {
        Some((home, rest)) => home.join(rest),
        None if file.is_relative() => dir.join(file),
        None => file.to_owned(),
    }
}

/// The home directory of `user` (`""`: `HOME`, else this process's user's), from the user
/// database as ssh and the shell find it.
fn home_of(user: &str) -> Option<PathBuf> {
    use std::ffi::{CStr, CString, OsStr};
    use std::os::unix::ffi::OsStrExt;
    if user.is_empty()
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        return Some(PathBuf::from(home));
    }
    let name = CString::new(user).ok()?;
    // An entry larger than the buffer is ERANGE: again with a larger one, up to 1 MiB.
    let mut size = 16 * 1024;
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: getpwuid_r/getpwnam_r write only into `entry` and `buf` (of the length given),
        // and `found` points at `entry` or is null; `pw_dir` then points into `buf`, read
        // before it goes.
        unsafe {
            let mut entry: libc::passwd = std::mem::zeroed();
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let status = if user.is_empty() {
                libc::getpwuid_r(
                    libc::getuid(),
                    &mut entry,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut found,
                )
            } else {
                libc::getpwnam_r(
                    name.as_ptr(),
                    &mut entry,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut found,
                )
            };
            if status == libc::ERANGE && size < 1 << 20 {
                size *= 2;
                continue;
            }
            if status != 0 || found.is_null() || entry.pw_dir.is_null() {
                return None;
            }
            let dir = CStr::from_ptr(entry.pw_dir).to_bytes();
            return (!dir.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(dir)));
        }
    }
}

/// The Mix project: `--project` (or `MIX_REMOTE_PROJECT`), else the directory of the
/// `mix-remote.yaml` found by walking up, else the current directory.
pub fn project_dir(flag: Option<&Path>, config: Option<&Config>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_owned();
    }
    config
        .filter(|c| c.discovered)
        .and_then(|c| c.path.parent())
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// What every host of a command shares, resolved once: the build to read and what to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The Mix project directory.
    pub project: PathBuf,
    /// Which `_build/<ENV>` to read; also `config_env()` of the project's config files.
    pub mix_env: String,
    /// The entry function, if any layer names one (`run` without one on its command line).
    pub entry: Option<String>,
    /// The key of mix-remote.yaml that gave `entry`, for its errors; none when the command line
    /// did, or nothing names one.
    pub entry_key: Option<Key>,
    /// Modules added to the entry's closure.
    pub include: Vec<String>,
    /// The key of mix-remote.yaml that gave `include`, for its errors; none when `--include`
    /// did, or nothing is included.
    pub include_key: Option<Key>,
    /// Whether to compile the project (`mix compile`) before reading its build.
    pub compile: bool,
    /// Whether the project's applications are started before the call (`--no-start`: false).
    pub start: bool,
}

/// A key of a mix-remote.yaml, for an error in its value found only once the build is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The file.
    pub path: PathBuf,
    /// The key's dotted path: `defaults.include`.
    pub key: String,
}

impl Build {
    /// `error`, naming the key of mix-remote.yaml instead of `--include` when a module to include
    /// is at fault and the file named it.
    pub fn include_error(&self, error: PlanError) -> PlanError {
        match (error, &self.include_key) {
            (PlanError::Entry(EntryError::Include(module, why)), Some(at)) => {
                PlanError::Entry(EntryError::IncludeSetting {
                    path: at.path.clone(),
                    key: at.key.clone(),
                    module,
                    why,
                })
            }
            (error, _) => error,
        }
    }

    /// `error`, naming the key of mix-remote.yaml that gave the entry when the entry is at fault
    /// and the file named it (not the command line): `mix-remote.yaml: `defaults.entry`: ...`.
    pub fn entry_error(&self, error: PlanError) -> PlanError {
        match (error, &self.entry_key) {
            (PlanError::Entry(error), Some(at)) if !error.is_include() => {
                PlanError::Entry(EntryError::EntrySetting {
                    path: at.path.clone(),
                    key: at.key.clone(),
                    error: Box::new(error),
                })
            }
            (error, _) => error,
        }
    }
}

/// Resolves the build: `flags` (flags and environment), then the sections of each of `hosts`
/// (its own and its group's, as [`resolve`] reads them: every host must come to the same build,
/// since one closure serves them all), then `defaults`, then the built-in defaults. `plan` and
/// `graph` involve no host.
pub fn build(
    config: Option<&Config>,
    project: Option<&Path>,
    flags: &Section,
    hosts: &[Selected],
) -> Result<Build, ConfigError> {
    if let Some(dir) = project {
        let why = if !dir.exists() {
            Some("no such directory")
        } else if !dir.is_dir() {
            Some("not a directory")
        } else if !dir.join("mix.exs").is_file() {
            Some("not a Mix project (no mix.exs)")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ConfigError::NoProject {
                path: dir.to_owned(),
                why,
            });
        }
    }
    let project = project_dir(project, config);
    // `--env` and `mix_env:` were checked as they were read: only `MIX_ENV` is left to check.
    if let Some(env) = &flags.mix_env {
        mix_env_ok(env).map_err(|why| ConfigError::MixEnv {
            value: env.clone(),
            why,
        })?;
    }
    let of = |host: Option<&Selected>| {
        let layers = layers(config, host, flags);
        Build {
            project: project.clone(),
            mix_env: layers
                .iter()
                .find_map(|s| s.mix_env.clone())
                .unwrap_or_else(|| DEFAULT_MIX_ENV.into()),
            entry: layers.iter().find_map(|s| s.entry.clone()),
            entry_key: config.and_then(|c| {
                let from = layers.iter().find(|s| s.entry.is_some())?;
                Some(Key {
                    path: c.path.clone(),
                    key: format!("{}.entry", c.key_of(from)?),
                })
            }),
            include: layers
                .iter()
                .find_map(|s| s.include.clone())
                .unwrap_or_default(),
            include_key: config.and_then(|c| {
                let from = layers.iter().find(|s| s.include.is_some())?;
                Some(Key {
                    path: c.path.clone(),
                    key: format!("{}.include", c.key_of(from)?),
                })
            }),
            compile: layers
                .iter()
                .find_map(|s| s.compile.as_ref().map(|c| c.value))
                .unwrap_or(true),
            start: layers.iter().find_map(|s| s.start).unwrap_or(true),
        }
    };
    let Some((first, rest)) = hosts.split_first() else {
        return Ok(of(None));
    };
    let build = of(Some(first));
    for other in rest {
        agree(
            &build,
            &of(Some(other)),
            &format!("{} and {}", first.name, other.name),
        )?;
    }
    Ok(build)
}

/// Checks that two hosts (`hosts` names them) come to the same build.
fn agree(a: &Build, b: &Build, hosts: &str) -> Result<(), ConfigError> {
    let entry = |e: &Option<String>| e.clone().unwrap_or_else(|| "none".into());
    let include = |i: &[String]| match i {
        [] => "none".to_owned(),
        modules => modules.join(", "),
    };
    let differ = if a.mix_env != b.mix_env {
        Some((
            "mix_env",
            "pass --env",
            a.mix_env.clone(),
            b.mix_env.clone(),
        ))
    } else if a.entry != b.entry {
        Some((
            "entry",
            "name the entry on the command line",
            entry(&a.entry),
            entry(&b.entry),
        ))
    } else if a.include != b.include {
        Some((
            "include",
            "pass --include",
            include(&a.include),
            include(&b.include),
        ))
    } else if a.start != b.start {
        Some((
            "start",
            "pass --no-start",
            a.start.to_string(),
            b.start.to_string(),
        ))
    } else {
        None
    };
    match differ {
        Some((key, settle, a, b)) => Err(ConfigError::Disagree {
            key,
            settle,
            hosts: hosts.to_owned(),
            values: format!("{a} vs {b}"),
        }),
        None => Ok(()),
    }
}

/// The hosts chosen by `--host` and `--group`, each once: those of `--host` first, then each
/// group's members, in the order given; a host is given the settings of every group given that
/// lists it, whether or not `--host` names it too (see [`Selected::groups`]).
pub fn select(
    config: Option<&Config>,
    hosts: &[String],
    groups: &[String],
) -> Result<Vec<Selected>, ConfigError> {
    if let Some((config, group)) =
        config.and_then(|c| Some((c, hosts.iter().find(|h| c.only_a_group(h))?)))
    {
        return Err(ConfigError::GroupAsHost {
            named: "--host",
            group: group.clone(),
            path: config.path.clone(),
        });
    }
    let mut chosen: Vec<Selected> = hosts
        .iter()
        .map(|h| Selected {
            name: h.clone(),
            groups: Vec::new(),
        })
        .collect();
    for group in groups {
        let Some(config) = config else {
            return Err(ConfigError::UnknownGroup {
                named: "--group",
                group: group.clone(),
                why: format!(
                    "no {FILE_NAME} found (looked in the current directory and its parents; --config names one)"
                ),
            });
        };
        let Some(spanned) = config.file.groups.get(group) else {
            if config.hosts().contains(&group.as_str()) {
                return Err(ConfigError::UnknownGroup {
                    named: "--group",
                    group: group.clone(),
                    why: format!(
                        "{group} is a host of {}, not a group: pass --host {group}",
                        config.path.display()
                    ),
                });
            }
            let known: Vec<&str> = config.groups().collect();
            return Err(ConfigError::UnknownGroup {
                named: "--group",
                group: group.clone(),
                why: format!(
                    "not defined in {}{} (groups there: {})",
                    config.path.display(),
                    crate::suggest::nearest(group, known.iter().copied())
                        .map_or_else(String::new, |g| format!(": did you mean {g}?")),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        };
        let members = spanned.value.0.hosts.as_ref().map(|h| &h.value);
        match members {
            Some(members) if !members.is_empty() => {
                chosen.extend(members.iter().map(|m| Selected {
                    name: m.value.clone(),
                    groups: vec![group.clone()],
                }));
            }
            _ => {
                return Err(ConfigError::EmptyGroup {
                    path: config.path.clone(),
                    line: spanned.referenced.line(),
                    group: group.clone(),
                });
            }
        }
    }
    // Each host once, where first chosen, with the groups of all its choices in the file's order.
    let mut once: Vec<Selected> = Vec::new();
    for host in chosen {
        match once.iter_mut().find(|s| s.name == host.name) {
            Some(first) => first.groups.extend(host.groups),
            None => once.push(host),
        }
    }
    let defined = |group: &String| {
        let at = config?.file.groups.get(group)?.referenced;
        Some((at.line(), at.column()))
    };
    for host in &mut once {
        host.groups.sort_by_key(defined);
        host.groups.dedup();
    }
    let chosen = once;
    if chosen.is_empty() {
        return Err(ConfigError::NoHost);
    }
    Ok(chosen)
}

/// Resolves every setting of `host`: `flags` (flags and environment), then the host's section,
/// its group's, `defaults`, and the built-in defaults.
pub fn resolve(config: Option<&Config>, host: &Selected, flags: &Section) -> HostSettings {
    let layers = layers(config, Some(host), flags);
    let first = |pick: &dyn Fn(&Section) -> Option<String>| layers.iter().find_map(|s| pick(s));
    let mut remote_env = BTreeMap::new();
    // Least important first, so that more important layers overwrite.
    for layer in layers.iter().rev() {
        if let Some(env) = &layer.remote_env {
            remote_env.extend(env.value.clone());
        }
    }
    HostSettings {
        name: host.name.clone(),
        address: first(&|s| s.address.as_ref().map(|a| a.value.clone()))
            .unwrap_or_else(|| host.name.clone()),
        origin: origin(config, host, false),
        elixir: first(&|s| s.elixir.clone()).unwrap_or_else(|| DEFAULT_ELIXIR.into()),
        ssh_config: layers.iter().find_map(|s| s.ssh_config.clone()),
        ssh_options: layers
            .iter()
            .flat_map(|s| s.ssh_options.iter().flatten().cloned())
            .collect(),
        remote_env,
        connect_timeout: layers
            .iter()
            .find_map(|s| s.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        boot_timeout: layers
            .iter()
            .find_map(|s| s.boot_timeout)
            .unwrap_or(DEFAULT_BOOT_TIMEOUT),
        push_timeout: layers
            .iter()
            .find_map(|s| s.push_timeout)
            .unwrap_or(DEFAULT_PUSH_TIMEOUT),
        call_timeout: layers.iter().find_map(|s| s.call_timeout),
        forward_port: layers.iter().find_map(|s| s.forward_port),
    }
}

/// What gave the ssh destination of `host`, as a hint names it ("check ORIGIN"): its `address`
/// in mix-remote.yaml, else its name in the group that chose it, else `--host` (the group's
/// `MIX_REMOTE_GROUP`, or `MIX_REMOTE_HOST`, when `from_variables`, as
/// [`ConfigError::from_variables`] names them).
pub fn origin(config: Option<&Config>, host: &Selected, from_variables: bool) -> String {
    let name = &host.name;
    if let Some(config) = config {
        let path = config.path.display();
        if let Some(address) = config.file.hosts.get(name).and_then(|h| h.address.as_ref()) {
            return format!(
                "the address of {name} at {path}:{}",
                address.referenced.line()
            );
        }
        if let Some(group) = host.groups.first() {
            let by = if from_variables {
                " (MIX_REMOTE_GROUP)"
            } else {
                ""
            };
            return format!("the host {name} of the group {group}{by} in {path}");
        }
    }
    match from_variables {
        true => "the host name MIX_REMOTE_HOST gives".to_owned(),
        false => "the host name given to --host".to_owned(),
    }
}

/// The layers of settings for `host` (none: the flags and `defaults` only), most important
/// first: `flags`, the host's own section, its group's (when chosen through it), `defaults`.
fn layers<'c>(
    config: Option<&'c Config>,
    host: Option<&Selected>,
    flags: &'c Section,
) -> Vec<&'c Section> {
    let mut layers: Vec<&Section> = vec![flags];
    if let Some(config) = config {
        if let Some(host) = host {
            layers.extend(config.file.hosts.get(&host.name));
            for group in &host.groups {
                layers.extend(config.file.groups.get(group).map(|g| &g.value.0));
            }
        }
        layers.push(&config.file.defaults);
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/p/mix-remote.yaml";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new(PATH))
    }

    fn invalid(text: &str) -> (u64, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn a_setting_or_section_written_without_a_value_is_unset() {
        // As `entry:` or `elixir:` always were: a line whose value is still to be filled in, a
        // section whose lines are all commented out.
        let text = "defaults:\n  mix_env:\n  connect_timeout: ~\n  call_timeout: null\n\
                    \x20 forward_port:\n\
                    hosts:\n  web-1:\n  db-1:\n    # elixir: /opt/elixir\n\
                    groups:\n  web: [web-1]\n";
        let config = parse(text).unwrap();
        let host = Selected {
            name: "web-1".into(),
            groups: Vec::new(),
        };
        let settings = resolve(Some(&config), &host, &Section::default());
        assert_eq!(
            (
                settings.connect_timeout,
                settings.call_timeout,
                settings.forward_port
            ),
            (DEFAULT_CONNECT_TIMEOUT, None, None)
        );
        let built = build(Some(&config), None, &Section::default(), &[host]).unwrap();
        assert_eq!(built.mix_env, DEFAULT_MIX_ENV);
        assert_eq!(config.hosts(), ["db-1", "web-1"]);
        for text in [
            "defaults:\n",
            "groups:\n",
            "hosts:\n",
            "defaults:\n  # x: 1\nhosts:\n",
        ] {
            assert!(parse(text).is_ok(), "{text:?}");
        }
    }

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

    const FLEET: &str = "\
defaults:
  mix_env: prod
  elixir: /usr/bin/elixir
  ssh_options: [ServerAliveInterval=10]
  remote_env: {REGION: eu, LOG: info}
  connect_timeout: 20
  push_timeout: 300
groups:
  web: [web-1, deploy@web-2]
  db:
    hosts: [db-1]
    elixir: /opt/elixir/bin/elixir
    remote_env: {LOG: debug}
hosts:
  web-1:
    address: deploy@10.0.0.5
    ssh_config: ssh/web.conf
    ssh_options: [Port=2222]
  db-1:
    boot_timeout: 5
    call_timeout: 10
    elixir: /db/elixir
    forward_port: 0
";

    fn host(name: &str, group: Option<&str>) -> Selected {
        Selected {
            name: name.into(),
            groups: group.into_iter().map(Into::into).collect(),
        }
    }

    #[test]
    fn an_ssh_config_is_found_as_ssh_finds_it() {
        let dir = Path::new("/p");
        let homes = |user: &str| match user {
            "" => Some(PathBuf::from("/home/me")),
            "deploy" => Some(PathBuf::from("/srv/deploy")),
            _ => None,
        };
        let path = |file: &str| ssh_config_path(Path::new(file), dir, &homes);
        assert_eq!(path("ssh/web.conf"), Path::new("/p/ssh/web.conf"));
        assert_eq!(path("/etc/ssh/web.conf"), Path::new("/etc/ssh/web.conf"));
        assert_eq!(path("~/.ssh/work"), Path::new("/home/me/.ssh/work"));
        assert_eq!(
            path("~deploy/.ssh/config"),
            Path::new("/srv/deploy/.ssh/config")
        );
        assert_eq!(path("none"), Path::new("none"));
        assert_eq!(path("~nobody-here/x"), Path::new("/p/~nobody-here/x"));
        let homeless = ssh_config_path(Path::new("~/.ssh/work"), dir, &|_| None);
        assert_eq!(homeless, Path::new("/p/~/.ssh/work"));
        // The user database, as the shell reads it.
        assert_eq!(home_of("root"), Some(PathBuf::from("/root")));
        assert_eq!(home_of("no-such-user-of-mix-remote"), None);
    }

    #[test]
    fn flags_beat_host_beat_group_beat_defaults_beat_built_ins() {
        let config = parse(FLEET).unwrap();
        let none = Section::default();
        let db = resolve(Some(&config), &host("db-1", Some("db")), &none);
        assert_eq!(db.elixir, "/db/elixir", "host over group");
        assert_eq!((db.boot_timeout, db.call_timeout), (5, Some(10)));
        assert_eq!(db.forward_port, Some(0), "0: the server allocates");
        assert_eq!(db.connect_timeout, 20, "defaults over built-ins");
        assert_eq!(db.push_timeout, 300);
        let db_build = build(Some(&config), None, &none, &[host("db-1", Some("db"))]).unwrap();
        assert_eq!(db_build.mix_env, "prod");
        assert_eq!(
            db.remote_env,
            BTreeMap::from([
                ("LOG".into(), "debug".into()),
                ("REGION".into(), "eu".into())
            ]),
            "group over defaults, per variable"
        );
        let flags = Section {
            elixir: Some("/flag/elixir".into()),
            connect_timeout: Some(3),
            call_timeout: Some(7),
            ssh_options: Some(vec!["Port=22".into()]),
            ..Section::default()
        };
        let db = resolve(Some(&config), &host("db-1", Some("db")), &flags);
        assert_eq!(
            (db.elixir.as_str(), db.connect_timeout, db.call_timeout),
            ("/flag/elixir", 3, Some(7))
        );

        let web = resolve(Some(&config), &host("web-1", Some("web")), &flags);
        assert_eq!(web.address, "deploy@10.0.0.5");
        assert_eq!(web.ssh_config, Some(PathBuf::from("/p/ssh/web.conf")));
        // ssh keeps the first value it sees of each option: the flags' come first.
        assert_eq!(
            web.ssh_options,
            ["Port=22", "Port=2222", "ServerAliveInterval=10"]
        );
        let other = resolve(Some(&config), &host("deploy@web-2", Some("web")), &none);
        assert_eq!(other.address, "deploy@web-2");
        assert_eq!(other.elixir, "/usr/bin/elixir");

        let bare = resolve(None, &host("h", None), &none);
        let bare_build = build(None, None, &none, &[host("h", None)]).unwrap();
        assert_eq!(
            (bare_build.mix_env.as_str(), bare.elixir.as_str()),
            (DEFAULT_MIX_ENV, DEFAULT_ELIXIR)
        );
        assert_eq!(
            (
                bare.connect_timeout,
                bare.boot_timeout,
                bare.push_timeout,
                bare.call_timeout
            ),
            (
                DEFAULT_CONNECT_TIMEOUT,
                DEFAULT_BOOT_TIMEOUT,
                DEFAULT_PUSH_TIMEOUT,
                None
            )
        );
        assert_eq!(bare.forward_port, None, "drawn at random");
    }

    #[test]
    fn compiling_first_and_warnings_are_on_unless_turned_off() {
        let none = Section::default();
        assert!(build(None, None, &none, &[]).unwrap().compile);
        let config = parse("defaults:\n  compile: false\n  warnings: false\n").unwrap();
        assert!(!build(Some(&config), None, &none, &[]).unwrap().compile);
        assert_eq!(config.warnings(), Some(false));
        assert_eq!(parse("").unwrap().warnings(), None);
        let (_, key, _) = invalid("defaults:\n  compile: maybe\n");
        assert_eq!(key, "defaults.compile");
    }

    #[test]
    fn plan_and_graph_read_the_defaults_under_their_flags() {
        let config = parse("defaults:\n  mix_env: prod\n  include: [A.B]\n").unwrap();
        let none = Section::default();
        let from_file = build(Some(&config), None, &none, &[]).unwrap();
        assert_eq!(
            (from_file.mix_env.as_str(), from_file.include.as_slice()),
            ("prod", ["A.B".to_owned()].as_slice())
        );
        assert_eq!(from_file.project, Path::new("."), "named, not discovered");
        let flags = Section {
            mix_env: Some("test".into()),
            include: Some(vec!["C".into()]),
            ..Section::default()
        };
        let project = tempfile::tempdir().unwrap();
        std::fs::write(project.path().join("mix.exs"), "").unwrap();
        let flagged = build(Some(&config), Some(project.path()), &flags, &[]).unwrap();
        assert_eq!(
            (flagged.mix_env.as_str(), flagged.include.as_slice()),
            ("test", ["C".to_owned()].as_slice())
        );
        assert_eq!(flagged.project, project.path());
        let elsewhere = build(
            Some(&config),
            Some(Path::new("/nonexistent/p")),
            &flags,
            &[],
        );
        assert!(matches!(elsewhere, Err(ConfigError::NoProject { .. })));
        let bare = build(None, None, &none, &[]).unwrap();
        assert_eq!(
            (bare.mix_env.as_str(), bare.include.len()),
            (DEFAULT_MIX_ENV, 0)
        );
    }

    #[test]
    fn group_settings_apply_only_through_the_group() {
        let config = parse(FLEET).unwrap();
        let direct = resolve(Some(&config), &host("db-1", None), &Section::default());
        assert_eq!(
            direct.remote_env.get("LOG").map(String::as_str),
            Some("info")
        );
    }

    #[test]
    fn a_host_chosen_through_groups_gets_their_settings_whatever_the_order_of_the_flags() {
        // `zz` comes first in the file, `aa` after it: the file's order, not the names', decides.
        let text = "groups:\n  zz:\n    hosts: [h, z]\n    elixir: /zz/elixir\n    \
                    ssh_options: [Port=1]\n  aa:\n    hosts: [h]\n    elixir: /aa/elixir\n    \
                    ssh_options: [Port=2]\n";
        let config = parse(text).unwrap();
        let settings = |hosts: &[&str], groups: &[&str]| {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            let chosen = select(Some(&config), &hosts, &groups).unwrap();
            let h = resolve(Some(&config), &chosen[0], &Section::default());
            let names: Vec<String> = chosen.into_iter().map(|s| s.name).collect();
            (names, h.elixir, h.ssh_options)
        };
        let both = |names: &[&str]| {
            let names = names.iter().map(|n| n.to_string()).collect();
            (
                names,
                "/zz/elixir".to_owned(),
                vec!["Port=1".to_owned(), "Port=2".to_owned()],
            )
        };
        assert_eq!(settings(&[], &["zz", "aa"]), both(&["h", "z"]));
        assert_eq!(settings(&[], &["aa", "zz"]), both(&["h", "z"]));
        assert_eq!(settings(&[], &["aa", "zz", "aa"]), both(&["h", "z"]));
        // Named by --host too, it runs once, and still gets its group's settings.
        let zz = (
            vec!["h".to_owned(), "z".to_owned()],
            "/zz/elixir".to_owned(),
            vec!["Port=1".to_owned()],
        );
        assert_eq!(settings(&["h"], &["zz"]), zz);
        let alone = settings(&["h"], &[]);
        assert_eq!((alone.1.as_str(), alone.2.len()), (DEFAULT_ELIXIR, 0));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_line() {
        let (line, key, message) = invalid("hosts:\n  web-1:\n    elixr: /x\n");
        assert_eq!((line, key.as_str()), (3, "hosts.web-1.elixr"));
        assert!(
            message.starts_with("unknown field `elixr` (did you mean `elixir`?), expected one of `address`, `mix_env`,"),
            "{message}"
        );
        assert!(
            !message.contains("`hosts`") && !message.contains("`compile`"),
            "{message}"
        );
        let (_, _, message) = invalid("defaults:\n  adress: x\n");
        assert!(
            message.contains("`compile`") && !message.contains("`address`"),
            "{message}"
        );
        assert!(!message.contains("did you mean"), "{message}");
        let (_, key, message) = invalid("groups:\n  web.eu:\n    hosts: [a]\n    elixr: x\n");
        assert_eq!(key, "groups.web.eu.elixr");
        assert!(
            message.contains("`hosts`") && !message.contains("`address`"),
            "{message}"
        );
        let (_, _, message) = invalid("hots: {}\n");
        assert_eq!(
            message,
            "unknown field `hots` (did you mean `hosts`?), expected one of `defaults`, `groups`, `hosts`"
        );
        for (text, at, key) in [
            ("hosts:\n  a:\n    compile: false\n", 3, "hosts.a.compile"),
            (
                "groups:\n  g:\n    hosts: [a]\n    warnings: false\n",
                4,
                "groups.g.warnings",
            ),
        ] {
            let (line, found, message) = invalid(text);
            assert_eq!((line, found.as_str()), (at, key));
            assert!(
                message.ends_with("is only valid under defaults"),
                "{message}"
            );
        }

        for (value, shown) in [("ten", "ten"), ("-1", "-1"), ("1.5", "1.5"), ("' x'", " x")] {
            let (line, key, message) = invalid(&format!("defaults:\n  connect_timeout: {value}\n"));
            assert_eq!((line, key.as_str()), (2, "defaults.connect_timeout"));
            assert_eq!(
                message,
                format!("`{shown}`: a whole number of seconds, at least 1")
            );
        }

        for value in ["70000", "-1", "http"] {
            let (line, key, message) =
                invalid(&format!("hosts:\n  a:\n    forward_port: {value}\n"));
            assert_eq!((line, key.as_str()), (3, "hosts.a.forward_port"));
            assert_eq!(message, format!("`{value}`: a port, from 0 to 65535"));
        }

        let (line, key, message) = invalid("hosts:\n  a:\n    call_timeout: 0\n");
        assert_eq!((line, key.as_str()), (3, "hosts.a.call_timeout"));
        assert!(message.contains("at least 1"), "{message}");

        for (text, at, key) in [
            (
                "defaults:\n  remote_env: {A: null}\n",
                2,
                "defaults.remote_env.A",
            ),
            (
                "defaults:\n  include: [Demo.Worker, ~]\n",
                2,
                "defaults.include[1]",
            ),
            (
                "hosts:\n  a:\n    ssh_options: [null]\n",
                3,
                "hosts.a.ssh_options[0]",
            ),
            ("groups:\n  web:\n    - a\n    -\n", 4, "groups.web[1]"),
        ] {
            let (line, found, message) = invalid(text);
            assert_eq!((line, found.as_str()), (at, key), "{text:?}");
            assert_eq!(
                message,
                "no value (null) where text is expected: write one, or leave the item out"
            );
        }

        for (text, at, key) in [
            ("groups:\n  web: [a, \"\"]\n", 2, "groups.web[1]"),
            (
                "groups:\n  web:\n    hosts:\n      - \" \"\n",
                4,
                "groups.web.hosts[0]",
            ),
        ] {
            let (line, found, message) = invalid(text);
            assert_eq!((line, found.as_str()), (at, key), "{text:?}");
            assert!(message.starts_with("an empty host name: "), "{message}");
        }

        let (line, key, _) = invalid("groups:\n  web: deploy@x\n");
        assert_eq!((line, key.as_str()), (2, "groups.web"));

        let (line, key, _) = invalid("groups:\n  web:\n    hosts: [a]\n    elixr: x\n");
        assert_eq!((line, key.as_str()), (4, "groups.web.elixr"));

        let (line, key, _) = invalid("groups:\n  web:\n    hosts: [a, [b]]\n");
        assert_eq!((line, key.as_str()), (3, "groups.web.hosts[1]"));
        let (line, key, _) = invalid("groups:\n  web: [a, {b: c}]\n");
        assert_eq!((line, key.as_str()), (2, "groups.web[1]"));

        let (line, key, _) = invalid("defaults:\n  address: a@b\n");
        assert_eq!((line, key.as_str()), (2, "defaults.address"));

        let (line, key, message) = invalid("hosts:\n  h1:\n    address: \"\"\n");
        assert_eq!((line, key.as_str()), (3, "hosts.h1.address"));
        assert!(message.contains("the address is empty"), "{message}");
        let (line, key, message) = invalid("defaults:\n  remote_env: {\"A=B\": x}\n");
        assert_eq!((line, key.as_str()), (2, "defaults.remote_env"));
        assert!(message.contains("A=B"), "{message}");
        let (line, key, message) = invalid("hosts:\n  h:\n    remote_env: {A: \"x\\0y\"}\n");
        assert_eq!((line, key.as_str()), (3, "hosts.h.remote_env"));
        assert_eq!(message, "the value of `A` holds a NUL byte");
        let (line, key, message) = invalid("hosts:\n  h:\n    remote_env: {MIX_ENV: staging}\n");
        assert_eq!((line, key.as_str()), (3, "hosts.h.remote_env"));
        assert!(
            message.contains("set `mix_env: staging` instead"),
            "{message}"
        );

        let (line, key, message) = invalid("hosts:\n  a: {}\n  a: {}\n");
        assert_eq!(
            (line, key.as_str(), message.as_str()),
            (3, "hosts.a", "set twice")
        );
        let (line, key, message) = invalid("defaults:\n  mix_env: prod\n  mix_env: dev\n");
        assert_eq!(
            (line, key.as_str(), message.as_str()),
            (3, "defaults.mix_env", "set twice")
        );

        let (line, _, _) = invalid("top: 1\n");
        assert_eq!(line, 1);
        let err = parse("defaults:\n  elixir: [1]\n").unwrap_err().to_string();
        assert!(
            err.starts_with("/p/mix-remote.yaml:2:11: `defaults.elixir`: "),
            "{err}"
        );
        let (line, key, message) = invalid("hosts:\n  a:\n    elixir: a b\n");
        assert_eq!((line, key.as_str()), (3, "hosts.a.elixir"));
        assert!(
            message.starts_with("`a b` cannot be passed to the server's shell: only letters"),
            "{message}"
        );
        assert!(parse("defaults:\n  elixir: ~/.asdf/shims/elixir\n").is_ok());
        assert!(parse("defaults:\n  elixir:\n").is_ok());
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

    #[test]
    fn a_group_without_a_file_says_where_the_file_was_looked_for() {
        let error = select(None, &[], &["web".into()]).unwrap_err().to_string();
        assert_eq!(
            error,
            "--group web: no mix-remote.yaml found (looked in the current directory and its \
             parents; --config names one)"
        );
    }

    #[test]
    fn a_second_document_is_refused_where_it_starts() {
        for (text, line) in [
            ("defaults:\n  mix_env: dev\n---\nhosts: {}\n", 4),
            ("---\ndefaults: {}\n...\n---\nhosts: {}\n", 5),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{PATH}:{line}:"))
                    && err.ends_with(
                        ": only one YAML document is allowed: a second one, after a `---` line, starts here"
                    ),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn an_empty_file_is_a_valid_config() {
        let config = parse("# nothing yet\n").unwrap();
        assert_eq!(config.groups().count(), 0);
    }

    #[test]
    fn selection_keeps_order_drops_repeats_and_names_bad_groups() {
        let config = parse(FLEET).unwrap();
        let chosen = select(
            Some(&config),
            &["web-1".into()],
            &["web".into(), "db".into()],
        )
        .unwrap();
        assert_eq!(
            chosen,
            [
                host("web-1", Some("web")),
                host("deploy@web-2", Some("web")),
                host("db-1", Some("db"))
            ]
        );
        let err = select(Some(&config), &[], &["api".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--group api: not defined in /p/mix-remote.yaml (groups there: db, web)"
        );
        let err = select(Some(&config), &[], &["wbe".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--group wbe: not defined in /p/mix-remote.yaml: did you mean web? (groups there: db, web)"
        );
        assert_eq!(config.hosts(), ["db-1", "web-1", "deploy@web-2"]);
        assert!(matches!(
            select(None, &[], &["web".into()]),
            Err(ConfigError::UnknownGroup { .. })
        ));
        assert_eq!(select(Some(&config), &[], &[]), Err(ConfigError::NoHost));
        let empty = parse("groups:\n  web: []\n").unwrap();
        assert_eq!(
            select(Some(&empty), &[], &["web".into()])
                .unwrap_err()
                .to_string(),
            "/p/mix-remote.yaml:2: group `web` lists no host"
        );
    }

    #[test]
    fn a_group_named_as_a_host_is_refused_with_its_flag() {
        let config = parse(FLEET).unwrap();
        let err = select(Some(&config), &["web-1".into(), "web".into()], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--host web: web is a group of /p/mix-remote.yaml, not a host: pass --group web (to \
             reach an SSH destination of that name, give it a section under `hosts`)"
        );
        // A host of that name has the last word; without a file, any name is a destination.
        let both = parse("groups:\n  web: [a]\nhosts:\n  web: {}\n").unwrap();
        let chosen = select(Some(&both), &["web".into()], &[]).unwrap();
        assert_eq!(chosen, [host("web", None)]);
        assert!(select(None, &["web".into()], &[]).is_ok());
    }

    #[test]
    fn a_host_named_as_a_group_is_refused_saying_so() {
        let config = parse("groups:\n  web: [web-1]\nhosts:\n  db: {}\n").unwrap();
        for (name, kind) in [
            ("db", "a host with a section"),
            ("web-1", "a member of a group"),
        ] {
            let err = select(Some(&config), &[], &[name.into()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "--group {name}: {name} is a host of /p/mix-remote.yaml, not a group: pass \
                     --host {name}"
                ),
                "{kind}"
            );
        }
    }

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

    #[test]
    fn hosts_of_one_run_must_agree_on_the_build() {
        let config = parse("groups:\n  all: [a, b]\nhosts:\n  b:\n    mix_env: staging\n").unwrap();
        let none = Section::default();
        let both = [host("a", Some("all")), host("b", Some("all"))];
        let err = build(Some(&config), None, &none, &both)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hosts a and b disagree on `mix_env` (dev vs staging)"),
            "{err}"
        );
        assert!(err.contains("--env"), "{err}");
        let entries =
            parse("hosts:\n  a:\n    entry: Demo.Worker.ask\n  b:\n    entry: Demo.Worker.echo\n")
                .unwrap();
        let err = build(
            Some(&entries),
            None,
            &none,
            &[host("a", None), host("b", None)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with(
                "disagree on `entry` (Demo.Worker.ask vs Demo.Worker.echo): run them separately \
                 or name the entry on the command line"
            ),
            "{err}"
        );
        let flags = Section {
            mix_env: Some("prod".into()),
            ..Section::default()
        };
        let agreed = build(Some(&config), None, &flags, &both).unwrap();
        assert_eq!(agreed.mix_env, "prod");
    }

    #[test]
    fn start_is_on_unless_a_layer_turns_it_off() {
        let none = Section::default();
        assert!(build(None, None, &none, &[]).unwrap().start);
        let config = parse("defaults:\n  start: false\nhosts:\n  b:\n    start: true\n").unwrap();
        assert!(!build(Some(&config), None, &none, &[]).unwrap().start);
        let err = build(
            Some(&config),
            None,
            &none,
            &[host("a", None), host("b", None)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("disagree on `start`") && err.contains("--no-start"),
            "{err}"
        );
        let no_start = Section {
            start: Some(false),
            ..Section::default()
        };
        let both = [host("a", None), host("b", None)];
        assert!(!build(Some(&config), None, &no_start, &both).unwrap().start);
    }

    #[test]
    fn discovery_walks_up_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("lib/app");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(Config::discover(&deep), None);
        std::fs::write(dir.path().join(FILE_NAME), "").unwrap();
        assert_eq!(
            Config::discover(&deep),
            Some(dir.path().canonicalize().unwrap().join(FILE_NAME))
        );
    }
}
