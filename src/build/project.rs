//! Finds the compiled modules of a Mix project: `_build/<env>/lib/*/ebin/*.beam`.
//!
//! The applications of `_build` are the project's own code or its dependencies (umbrella apps and
//! path dependencies included); OTP and Elixir ship their modules elsewhere, so this set is
//! exactly what may be pushed. But Mix never removes from `_build` the directory of a dependency
//! removed from `mix.exs` or of a renamed application: only the applications of the project
//! count (`apps::of_project`), as only they are on `mix run`'s code path.
//!
//! Consolidated protocols: Mix writes consolidated copies of every protocol it sees, the project's
//! and Elixir's own, to `_build/<env>/consolidated` (umbrella) or
//! `_build/<env>/lib/<app>/consolidated` (the project's application), unless
//! `consolidate_protocols: false`.
//! A protocol the project defines is taken in its consolidated form, as `mix run` loads it: it
//! dispatches straight to the implementations it lists, which the graph then pulls in. Elixir's own
//! protocols (Enumerable, Inspect, String.Chars, ...) are no part of the graph: their consolidated
//! copies ([`elixir_protocols`]) are made by the local Elixir, whose protocol definitions another
//! release on the server need not share, so they travel with the call and only a server running
//! that same release loads them; another keeps its own (unconsolidated) copies, which find the
//! project's implementations among the loaded modules.

use std::path::{Component, Path, PathBuf};

use std::collections::{BTreeMap, BTreeSet};

use crate::build::apps;
use crate::build::beam::{self, Beam, BeamError};
use crate::build::mix_exs::{Layout, keyword_bool};
use crate::build::parallel;

/// How many modules make a thread's worth of reading: a build of a few hundred is read on the
/// calling thread, one of thousands on every core (2000 modules: 55-60 ms on two cores instead of
/// 80, which a warm rerun waits for).
const READ_GRAIN: usize = 256;

/// Why the project's modules could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// `_build/<env>` (or where `build_path:` puts it) does not exist.
    #[error(
        "no compiled build at {dir}: run `MIX_ENV={env} mix compile` first (or pass --project / \
         --env){note}"
    )]
    NoBuild {
        /// The build looked for.
        dir: PathBuf,
        /// The Mix environment it is the build of.
        env: String,
        /// Why it was looked for there, when `mix.exs` could have meant another place (see
        /// [`Layout::note`]); else empty.
        note: String,
    },
    /// The project has no `mix.exs`, nor a build: a directory that is no Mix project, such as
    /// that of a mix-remote.yaml found above the one the command ran in.
    #[error(
        "no compiled build at {dir}, and {} is no Mix project (no mix.exs): pass --project \
         DIR, the Mix project (the default is the directory of a mix-remote.yaml found from \
         here, else .)",
        .project.display()
    )]
    NotMix {
        /// The build looked for.
        dir: PathBuf,
        /// The directory taken for the project.
        project: PathBuf,
    },
    /// `_build/<env>` holds no `.beam` file.
    #[error("no .beam files under {0}: run `MIX_ENV={1} mix compile` first")]
    Empty(PathBuf, String),
    /// Two applications define the same module.
    #[error("module {module} is defined twice: {first} and {second}")]
    Duplicate {
        /// The module name.
        module: String,
        /// One file defining it.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A `.beam` file is unreadable or malformed.
    #[error("{0} (rebuild it with `mix compile --force`)")]
    Beam(#[from] BeamError),
    /// A directory of the build could not be listed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The directory at fault.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Where `mix run` finds the project's consolidated protocols, as Mix's `consolidation_path`
/// has it: `<build>/consolidated` for an umbrella, else the project application's
/// `consolidated`; nowhere when `mix.exs` says `consolidate_protocols: false` for Mix environment
/// `env` (plainly, or by a test of the environment: `Mix.env() != :test`), as Mix then leaves
/// that directory off the code path, whatever an earlier build left there. When `mix.exs` names
/// no application plainly, the umbrella-wide directory, then each application's.
fn consolidated_dirs(project: &Path, layout: &Layout, build: &Path, env: &str) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(project.join("mix.exs")).unwrap_or_default();
    if keyword_bool(&text, "consolidate_protocols", env) == Some(false) {
        return Vec::new();
    }
    if layout.apps.is_some() {
        return vec![build.join("consolidated")];
    }
    if let [app] = apps::project_apps(project, layout).as_slice() {
        return vec![build.join("lib").join(app).join("consolidated")];
    }
    let mut dirs = vec![build.join("consolidated")];
    // The lib directory was just read; an app vanishing meanwhile only means no copy from it.
    if let Ok(apps) = std::fs::read_dir(build.join("lib")) {
        let mut app_dirs: Vec<PathBuf> = apps
            .filter_map(Result::ok)
            .map(|app| app.path().join("consolidated"))
            .collect();
        app_dirs.sort();
        dirs.extend(app_dirs);
    }
    dirs
}

/// Replaces each protocol the project defines by its consolidated copy in `dirs`, if Mix wrote
/// one (the first directory that has one wins).
fn use_consolidated_protocols(beams: &mut [Beam], dirs: &[PathBuf]) -> Result<(), ProjectError> {
    let mut replaced = std::collections::HashSet::new();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        for beam in beams.iter_mut() {
            if !beam.is_protocol || replaced.contains(&beam.name) {
                continue;
            }
            let path = dir.join(format!("{}.beam", beam.name));
            if path.is_file() {
                *beam = beam::read(&path)?;
                replaced.insert(beam.name.clone());
            }
        }
    }
    Ok(())
}

/// Elixir's own protocols (and IEx's) as Mix consolidated them for the project, as `mix run` loads
/// them: the consolidated copies in the directories [`scan`] takes the project's from, of the
/// protocols none of `project_modules` is (the first directory that has one wins), sorted by
/// name. Made by the local Elixir: they are only for a server running that same release.
pub fn elixir_protocols(
    project: &Path,
    env: &str,
    project_modules: &BTreeSet<&str>,
) -> Result<Vec<Beam>, ProjectError> {
    let layout = Layout::of(project);
    let build = layout.build(env);
    let mut found: BTreeMap<String, Beam> = BTreeMap::new();
    for dir in consolidated_dirs(project, &layout, &build, env) {
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for file in files.filter_map(Result::ok) {
            let path = file.path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension() != Some("beam".as_ref())
                || project_modules.contains(name)
                || found.contains_key(name)
            {
                continue;
            }
            let beam = beam::read(&path)?;
            if beam.is_protocol {
                found.insert(beam.name.clone(), beam);
            }
        }
    }
    Ok(found.into_values().collect())
}

/// Reads every module under `<build>/lib/*/ebin`, sorted by name, the build being
/// `<project>/_build/<env>` or where the `build_path:` of `mix.exs` puts it.
pub fn scan(project: &Path, env: &str) -> Result<Vec<Beam>, ProjectError> {
    let layout = Layout::of(project);
    let build = layout.build(env);
    let lib = build.join("lib");
    if !lib.is_dir() && !project.join("mix.exs").is_file() {
        return Err(ProjectError::NotMix {
            dir: build,
            project: project.to_owned(),
        });
    }
    if !lib.is_dir() {
        return Err(ProjectError::NoBuild {
            dir: build,
            env: env.to_owned(),
            note: layout.note("build_path"),
        });
    }
    // Only `<app>/ebin/*.beam` of the project's applications is read: the rest of an
    // application's directory (a `priv` link left dangling by a deleted `priv/`) is none of the
    // scan's business.
    let project_apps: Option<BTreeSet<String>> = apps::of_project(project, &layout, &lib);
    let list = |dir: &Path| {
        std::fs::read_dir(dir).map_err(|source| ProjectError::Read {
            path: dir.to_owned(),
            source,
        })
    };
    let mut paths = Vec::new();
    for app in list(&lib)?.filter_map(Result::ok) {
        let name = app.file_name();
        if let Some(live) = &project_apps
            && !name.to_str().is_some_and(|name| live.contains(name))
        {
            continue;
        }
        let ebin = app.path().join("ebin");
        if !ebin.is_dir() {
            continue;
        }
        for file in list(&ebin)?.filter_map(Result::ok) {
            let path = file.path();
            if path.extension() == Some("beam".as_ref()) {
                paths.push(path);
            }
        }
    }
    let mut beams = parallel::map(&paths, READ_GRAIN, |path| beam::read(path))
        .into_iter()
        .collect::<Result<Vec<Beam>, _>>()?;
    if beams.is_empty() {
        return Err(ProjectError::Empty(build, env.to_owned()));
    }
    use_consolidated_protocols(
        &mut beams,
        &consolidated_dirs(project, &layout, &build, env),
    )?;
    beams.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = beams.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(ProjectError::Duplicate {
            module: pair[0].name.clone(),
            first: pair[0].path.clone(),
            second: pair[1].path.clone(),
        });
    }
    Ok(beams)
}

/// Module `name` alone, read from the first `lib/*/ebin` of the build (as [`scan`] finds it)
/// that has it; `None` if none has it or it cannot be read. A quick look, not [`scan`]'s verdict.
pub fn find(project: &Path, env: &str, name: &str) -> Option<Beam> {
    let lib = Layout::of(project).build(env).join("lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|app| app.path().join("ebin").join(format!("{name}.beam")))
        .find(|path| path.is_file())
        .and_then(|path| beam::read(&path).ok())
}

/// The application a module belongs to, from its path: `_build/<env>/lib/<app>/ebin/M.beam`, or
/// `consolidated` for a consolidated protocol.
pub fn app_of(path: &Path) -> String {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [.., app, "ebin", _] => (*app).to_owned(),
        [.., "consolidated", _] => "consolidated".to_owned(),
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_comes_from_the_build_path() {
        assert_eq!(
            app_of(Path::new("/p/_build/dev/lib/core/ebin/Elixir.A.beam")),
            "core"
        );
        assert_eq!(
            app_of(Path::new(
                "/p/_build/dev/lib/core/consolidated/Elixir.P.beam"
            )),
            "consolidated"
        );
        assert_eq!(app_of(Path::new("x.beam")), "?");
    }

    #[test]
    fn only_the_beams_of_ebin_are_read_whatever_else_an_app_holds() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("_build/dev/lib/closure");
        std::fs::create_dir_all(app.join("ebin")).unwrap();
        let bytes = beam::tests::container(&[
            (b"AtU8", beam::tests::old_atoms(&["Elixir.Closure.Even"])),
            (b"ExpT", beam::tests::exports(&[])),
        ]);
        std::fs::write(app.join("ebin/Elixir.Closure.Even.beam"), bytes).unwrap();
        // The `priv` link of a project whose priv/ was deleted, and one into nothing deeper.
        std::os::unix::fs::symlink("../../../../priv", app.join("priv")).unwrap();
        std::fs::create_dir(app.join("other")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", app.join("other/link")).unwrap();
        let beams = scan(dir.path(), "dev").unwrap();
        let names: Vec<&str> = beams.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["Elixir.Closure.Even"]);
    }

    #[test]
    fn consolidated_protocols_come_from_where_mix_run_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let (project, build) = (dir.path(), dir.path().join("_build/dev"));
        let dirs_in = |text: &str, env: &str| {
            std::fs::write(project.join("mix.exs"), text).unwrap();
            consolidated_dirs(project, &Layout::of(project), &build, env)
        };
        let dirs = |text: &str| dirs_in(text, "dev");
        assert_eq!(
            dirs("[app: :api, deps: [{:core, in_umbrella: true}]]"),
            [build.join("lib/api/consolidated")]
        );
        assert_eq!(dirs("[apps_path: \"apps\"]"), [build.join("consolidated")]);
        assert!(dirs("[app: :api, consolidate_protocols: false]").is_empty());
        // A test of the environment, for the run's: consolidated in dev, not in test (Mix leaves
        // the directory off the code path, whatever an earlier build left there).
        let tested = "[app: :api, consolidate_protocols: Mix.env() != :test]";
        assert_eq!(dirs(tested), [build.join("lib/api/consolidated")]);
        assert!(dirs_in(tested, "test").is_empty());
        let listed =
            "[\n  app: :api,\n  consolidate_protocols: Mix.env() not in [:test, :bench],\n]";
        assert!(dirs_in(listed, "bench").is_empty());
        assert_eq!(
            dirs_in(listed, "prod"),
            [build.join("lib/api/consolidated")]
        );
        // Anything else is Mix's default: consolidated.
        assert_eq!(
            dirs_in("[app: :api, consolidate_protocols: consolidate?()]", "test"),
            [build.join("lib/api/consolidated")]
        );
    }

    #[test]
    fn a_build_path_not_read_is_said_when_the_build_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mix_exs = dir.path().join("mix.exs");
        std::fs::write(&mix_exs, "[build_path: \"out\"]").unwrap();
        let plain = scan(dir.path(), "dev").unwrap_err().to_string();
        assert!(plain.starts_with("no compiled build at "), "{plain}");
        assert!(
            plain.ends_with(
                "out/dev: run `MIX_ENV=dev mix compile` first (or pass --project / --env)"
            )
        );
        std::fs::write(&mix_exs, "[build_path: Path.expand(\"../out\", __DIR__)]").unwrap();
        let unread = scan(dir.path(), "dev").unwrap_err().to_string();
        assert!(
            unread.ends_with(
                "_build/dev: run `MIX_ENV=dev mix compile` first (or pass --project / --env) \
                 (mix.exs sets build_path: to something other than a plain value, which \
                 mix-remote does not evaluate: it read Mix's default)"
            ),
            "{unread}"
        );
    }
}
