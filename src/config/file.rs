//! Reading `mix-remote.yaml`: where it is, the file as written (groups in either form, sections
//! written empty), and its errors at the line and key of the text at fault; apart from what the
//! settings then resolve to.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned};

use super::checks::{check_section, group_members, unknown_key};
use super::ssh_config::relative_to;
use super::{ConfigError, FILE_NAME, Section};

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

/// The key the YAML parser found twice in one mapping, from its message.
fn duplicated(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("duplicate mapping key: ")?;
    Some(
        rest.strip_suffix(", set DuplicateKeyPolicy in Options if acceptable")
            .unwrap_or(rest),
    )
}

/// A group: a list of hosts, or a section with `hosts` and settings.
#[derive(Debug, Clone)]
pub(super) struct Group(pub(super) Section, pub(super) Form);

/// How a group is written, which decides the key path of its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
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
pub(super) struct File {
    #[serde(default, deserialize_with = "or_empty")]
    pub(super) defaults: Section,
    #[serde(default, deserialize_with = "or_empty")]
    pub(super) groups: BTreeMap<String, Spanned<Group>>,
    #[serde(default, deserialize_with = "hosts")]
    pub(super) hosts: BTreeMap<String, Section>,
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
    pub(super) path: PathBuf,
    pub(super) file: File,
    /// Found by walking up (so its directory is the project root), not named by --config.
    pub(super) discovered: bool,
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
    pub(super) fn only_a_group(&self, name: &str) -> bool {
        self.file.groups.contains_key(name) && !self.hosts().contains(&name)
    }

    /// The dotted path of `section` if it is one of this file's (`defaults`, `groups.web`,
    /// `hosts.db-1`); none for another, such as the flags' layer.
    pub(super) fn key_of(&self, section: &Section) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{PATH, invalid, parse};
    use crate::config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MIX_ENV, Selected, build, resolve};

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
        let err = parse("defaults:\n  remote_env: {\"A=B\": x}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/p/mix-remote.yaml:2:16: `defaults.remote_env.A=B`: `A=B` is not a valid \
             environment variable name"
        );
        for (text, at, key) in [
            (
                "hosts:\n  h:\n    remote_env:\n      OK: x\n      1X: y\n",
                (5, 7),
                "hosts.h.remote_env.1X",
            ),
            (
                "groups:\n  g:\n    hosts: [a]\n    remote_env: {\"\": y}\n",
                (4, 18),
                "groups.g.remote_env.",
            ),
        ] {
            let err = parse(text).unwrap_err();
            let ConfigError::Invalid {
                line,
                column,
                key: found,
                message,
                ..
            } = &err
            else {
                panic!("{err:?}");
            };
            assert_eq!(((*line, *column), found.as_str()), (at, key), "{text:?}");
            assert!(
                message.ends_with("is not a valid environment variable name"),
                "{message}"
            );
        }
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
