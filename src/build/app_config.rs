//! The project's configuration, as `mix run` would apply it: the files under `config/`
//! (`config.exs`, the files it imports, `runtime.exs`) and the Mix environment. They travel with
//! the call and are evaluated on the remote just before it (the `.app` files, with their `env`
//! defaults, travel in the shipped lib dirs), so `Application.get_env/2` answers as it does
//! locally and `runtime.exs` sees the server's environment variables.

use std::path::{Path, PathBuf};

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
    /// Every file under `config/`, as (path relative to the project, contents).
    pub config_files: Vec<(String, Vec<u8>)>,
    /// The Mix environment (`config_env()` in the config files).
    pub env: String,
}

impl AppConfig {
    /// Collects the project's `config/` tree, unless `skip_files`.
    pub fn collect(
        project: &Path,
        env: &str,
        skip_files: bool,
    ) -> Result<AppConfig, AppConfigError> {
        let config_files = if skip_files {
            Vec::new()
        } else {
            config_files(project)?
        };
        Ok(AppConfig {
            config_files,
            env: env.to_owned(),
        })
    }
}

/// Every regular file under `<project>/config`, sorted, symbolic links followed as Mix reads
/// them (a link that leads nowhere is left out: nothing could import it); none when there is
/// neither a `config/config.exs` nor a `config/runtime.exs`.
fn config_files(project: &Path) -> Result<Vec<(String, Vec<u8>)>, AppConfigError> {
    let dir = project.join("config");
    if !dir.join("config.exs").is_file() && !dir.join("runtime.exs").is_file() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut total = 0;
    for entry in walkdir::WalkDir::new(&dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.path().is_some_and(leads_nowhere) => continue,
            Err(e) => {
                return Err(AppConfigError::Read {
                    path: e.path().unwrap_or(&dir).to_owned(),
                    error: e.into(),
                });
            }
        };
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

/// Whether `path` is a symbolic link whose target does not exist.
fn leads_nowhere(path: &Path) -> bool {
    path.is_symlink() && !path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_the_config_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/config.exs"), "import Config").unwrap();
        std::fs::write(dir.path().join("config/prod.exs"), "import Config").unwrap();
        let config = AppConfig::collect(dir.path(), "prod", false).unwrap();
        let names: Vec<&str> = config
            .config_files
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(names, ["config/config.exs", "config/prod.exs"]);
        let skipped = AppConfig::collect(dir.path(), "prod", true).unwrap();
        assert!(skipped.config_files.is_empty());
    }

    #[test]
    fn linked_files_travel_with_their_contents_and_links_to_nothing_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir_all(shared.join("secrets")).unwrap();
        std::fs::write(shared.join("config.exs"), "import Config # shared").unwrap();
        std::fs::write(shared.join("secrets/prod.exs"), "import Config # secret").unwrap();
        let config = dir.path().join("project/config");
        std::fs::create_dir_all(&config).unwrap();
        let link =
            |target: &Path, name: &str| std::os::unix::fs::symlink(target, config.join(name));
        link(&shared.join("config.exs"), "config.exs").unwrap();
        link(&shared.join("secrets"), "secrets").unwrap();
        link(&shared.join("gone.exs"), "gone.exs").unwrap();
        let files = config_files(&dir.path().join("project")).unwrap();
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        assert_eq!(
            files,
            [
                ("config/config.exs", &b"import Config # shared"[..]),
                ("config/secrets/prod.exs", &b"import Config # secret"[..]),
            ]
        );
    }

    #[test]
    fn no_config_exs_means_no_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/notes.txt"), "x").unwrap();
        assert!(config_files(dir.path()).unwrap().is_empty());
    }
}
