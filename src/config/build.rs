//! What every host of a command shares, resolved once (the project, its build, the entry and
//! what to include, compile, start), and the check that the hosts agree on it: one closure
//! serves them all.

use std::path::{Path, PathBuf};

use crate::build::entry::EntryError;
use crate::build::plan::PlanError;

use super::section::layers;
use super::{Config, ConfigError, DEFAULT_MIX_ENV, Section, Selected, mix_env_ok};

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
/// (its own and its group's, as [`resolve`](super::resolve) reads them: every host must come to the same build,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{host, invalid, parse};

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
}
