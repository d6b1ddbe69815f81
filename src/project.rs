//! Finds the compiled modules of a Mix project: `_build/<env>/lib/*/ebin/*.beam`.
//!
//! Everything under `_build` is the project's own code or its dependencies; OTP and Elixir ship
//! their modules elsewhere, so this set is exactly what may be pushed.

use std::path::{Path, PathBuf};

use crate::beam::{self, Beam, BeamError};

/// Why the project's modules could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// `_build/<env>` does not exist.
    #[error("no compiled build at {0}: run `mix compile` first (or pass --project / --env)")]
    NoBuild(PathBuf),
    /// `_build/<env>` holds no `.beam` file.
    #[error("no .beam files under {0}: run `mix compile` first")]
    Empty(PathBuf),
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
    #[error(transparent)]
    Beam(#[from] BeamError),
    /// Walking the directory tree failed.
    #[error("cannot read {path}: {source}")]
    Walk {
        /// The directory at fault.
        path: PathBuf,
        /// The underlying error.
        source: walkdir::Error,
    },
}

/// Reads only the module `name` (`Elixir.MyApp.Worker`), if the build has it: enough to check
/// the entry before connecting, while the full [`scan`] runs alongside the connection.
pub fn find(project: &Path, env: &str, name: &str) -> Result<Option<Beam>, ProjectError> {
    let lib = lib_dir(project, env)?;
    let file = format!("{name}.beam");
    for app in walkdir::WalkDir::new(&lib).min_depth(1).max_depth(1) {
        let app = app.map_err(|source| ProjectError::Walk {
            path: lib.clone(),
            source,
        })?;
        let path = app.path().join("ebin").join(&file);
        if path.is_file() {
            return Ok(Some(beam::read(&path)?));
        }
    }
    Ok(None)
}

fn lib_dir(project: &Path, env: &str) -> Result<PathBuf, ProjectError> {
    let lib = project.join("_build").join(env).join("lib");
    if !lib.is_dir() {
        return Err(ProjectError::NoBuild(project.join("_build").join(env)));
    }
    Ok(lib)
}

/// Reads every module under `<project>/_build/<env>/lib/*/ebin`, sorted by name.
pub fn scan(project: &Path, env: &str) -> Result<Vec<Beam>, ProjectError> {
    let lib = lib_dir(project, env)?;
    let mut beams: Vec<Beam> = Vec::new();
    for entry in walkdir::WalkDir::new(&lib)
        .min_depth(3)
        .max_depth(3)
        .follow_links(true)
    {
        let entry = entry.map_err(|source| ProjectError::Walk {
            path: lib.clone(),
            source,
        })?;
        let path = entry.path();
        let in_ebin = path.parent().and_then(Path::file_name) == Some("ebin".as_ref());
        if in_ebin && path.extension() == Some("beam".as_ref()) {
            beams.push(beam::read(path)?);
        }
    }
    if beams.is_empty() {
        return Err(ProjectError::Empty(project.join("_build").join(env)));
    }
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
