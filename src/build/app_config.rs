//! The project's application environment, as `mix run` would set it: the `.app` specs of the
//! applications whose modules are pushed (their `env` defaults) and the files under `config/`
//! (`config.exs`, the files it imports, `runtime.exs`). They travel with the call and are applied
//! on the remote just before it, so `Application.get_env/2` answers as it does locally; config
//! files are evaluated there, so `runtime.exs` sees the server's environment variables.

use std::path::{Path, PathBuf};

use crate::build::beam::Beam;

/// Larger config trees are surely not config: refuse rather than ship them.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Why the application environment could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum AppConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The config directory holds more than any real config.
    #[error(
        "{0}: more than 4 MiB of files; is it really the project's config directory? (--no-app-config skips it)"
    )]
    TooLarge(PathBuf),
}

/// What the remote applies before the call.
#[derive(Debug, Default)]
pub struct AppConfig {
    /// The text of each pushed application's `.app` file.
    pub app_specs: Vec<String>,
    /// Every file under `config/`, as (path relative to the project, contents).
    pub config_files: Vec<(String, Vec<u8>)>,
    /// The Mix environment (`config_env()` in the config files).
    pub env: String,
}

impl AppConfig {
    /// Collects the `.app` files of the applications `closure` comes from and, unless `skip_files`,
    /// the project's `config/` tree.
    pub fn collect(
        project: &Path,
        env: &str,
        closure: &[&Beam],
        skip_files: bool,
    ) -> Result<AppConfig, AppConfigError> {
        let mut app_specs = Vec::new();
        let mut ebins: Vec<&Path> = closure.iter().filter_map(|b| b.path.parent()).collect();
        ebins.sort();
        ebins.dedup();
        for ebin in ebins {
            let Some(app) = ebin
                .parent()
                .and_then(Path::file_name)
                .filter(|_| ebin.file_name() == Some("ebin".as_ref()))
            else {
                continue;
            };
            let path = ebin.join(app).with_extension("app");
            match std::fs::read_to_string(&path) {
                Ok(text) => app_specs.push(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(AppConfigError::Read { path, error }),
            }
        }
        let config_files = if skip_files {
            Vec::new()
        } else {
            config_files(project)?
        };
        Ok(AppConfig {
            app_specs,
            config_files,
            env: env.to_owned(),
        })
    }
}

/// Every regular file under `<project>/config`, sorted; none when there is no `config/config.exs`.
fn config_files(project: &Path) -> Result<Vec<(String, Vec<u8>)>, AppConfigError> {
    let dir = project.join("config");
    if !dir.join("config.exs").is_file() && !dir.join("runtime.exs").is_file() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut total = 0;
    for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
        let entry = entry.map_err(|e| AppConfigError::Read {
            path: e.path().unwrap_or(&dir).to_owned(),
            error: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        if total > MAX_CONFIG_BYTES {
            return Err(AppConfigError::TooLarge(dir));
        }
        let bytes = std::fs::read(path).map_err(|error| AppConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let relative = path.strip_prefix(project).unwrap_or(path);
        files.push((relative.to_string_lossy().into_owned(), bytes));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_app_specs_of_pushed_apps_and_the_config_tree() {
        let dir = tempfile::tempdir().unwrap();
        let ebin = dir.path().join("_build/dev/lib/shop/ebin");
        std::fs::create_dir_all(&ebin).unwrap();
        std::fs::write(ebin.join("shop.app"), "{application,shop,[{env,[]}]}.").unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/config.exs"), "import Config").unwrap();
        std::fs::write(dir.path().join("config/prod.exs"), "import Config").unwrap();
        let beam = Beam {
            path: ebin.join("Elixir.Shop.beam"),
            ..Beam::default()
        };
        let config = AppConfig::collect(dir.path(), "prod", &[&beam], false).unwrap();
        assert_eq!(config.app_specs, ["{application,shop,[{env,[]}]}."]);
        let names: Vec<&str> = config
            .config_files
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(names, ["config/config.exs", "config/prod.exs"]);
        let skipped = AppConfig::collect(dir.path(), "prod", &[&beam], true).unwrap();
        assert!(skipped.config_files.is_empty());
    }

    #[test]
    fn no_config_exs_means_no_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/notes.txt"), "x").unwrap();
        assert!(config_files(dir.path()).unwrap().is_empty());
    }
}
