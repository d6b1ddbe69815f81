//! The project's configuration, as `mix run` would apply it: the files under `config/`, or the
//! directory of `config_path:` (`config.exs`, the files it imports, `runtime.exs`), with, for an
//! umbrella root's directory, those of its children's `config/` (which it imports with
//! `../apps/*/config/config.exs`), and the Mix environment. They travel with the call and are
//! evaluated on the remote just before it (the `.app` files, with their `env` defaults, travel in
//! the shipped lib dirs), so `Application.get_env/2` answers as it does locally and `runtime.exs`
//! sees the server's environment variables.

use std::path::{Component, Path, PathBuf};

use crate::build::mix_exs::{Layout, uncommented};

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
    /// `config_path:` names a main file other than `config.exs`, and a `config.exs` is beside it:
    /// the server evaluates the main file under that name.
    #[error(
        "{other}: the config_path of mix.exs names {main}, which the server evaluates as config.exs: rename one of them (or pass --no-app-config)"
    )]
    Clash {
        /// The main config file, `config_path:`.
        main: PathBuf,
        /// The other `config.exs`.
        other: PathBuf,
    },
}

/// What of the project's configuration a run applies (`--no-app-config`,
/// `--no-validate-compile-env`).
#[derive(Debug, Clone, Copy)]
pub struct ConfigUse {
    /// Ship and evaluate the config files.
    pub files: bool,
    /// Check the shipped applications' compile-time config against it, as `mix run` does.
    pub validate_compile_env: bool,
}

/// A config file as it travels: its name on the server (from the run's config root), contents.
pub type ConfigFile = (String, Vec<u8>);

/// What the remote applies before the call.
#[derive(Debug)]
pub struct AppConfig {
    /// Every file of the config directory, as (`config/` and its path there, contents), then
    /// those of an umbrella's children's `config/`, as (their path from the umbrella's root,
    /// contents).
    pub config_files: Vec<ConfigFile>,
    /// The Mix environment (`config_env()` in the config files).
    pub env: String,
    /// The Mix target (`config_target()`): the one whose build runs.
    pub target: String,
    /// Whether the shipped applications' compile-time config is checked against it (never
    /// without the config files).
    pub validate_compile_env: bool,
    /// Whether an application the config files configure that is not there gets Mix's words, as
    /// `mix run` checks it: not when `mix.exs` sets `build_path:` ([`Layout::build_path_set`]),
    /// which Mix leaves to the umbrella that owns the build.
    pub check_configured: bool,
    /// Why files the config imports do not travel (one above the directory the files travel
    /// in, which the server would not find): for warnings.
    pub left_out: Vec<String>,
}

impl AppConfig {
    /// Collects the project's config directory, as `usage` says.
    pub fn collect(
        project: &Path,
        env: &str,
        usage: ConfigUse,
    ) -> Result<AppConfig, AppConfigError> {
        let (config_files, left_out) = if usage.files {
            config_files(project)?
        } else {
            (Vec::new(), Vec::new())
        };
        let layout = Layout::of(project);
        Ok(AppConfig {
            config_files,
            left_out,
            env: env.to_owned(),
            target: layout.target().to_owned(),
            check_configured: !layout.build_path_set,
            // Without the config files, every key they set would differ.
            validate_compile_env: usage.validate_compile_env && usage.files,
        })
    }
}

/// Every regular file of the project's config directory (`<project>/config`, or that of the
/// `config_path:` of `mix.exs`), sorted, symbolic links followed as Mix reads them (a link that
/// leads nowhere is left out: nothing could import it), each named as the server reads it:
/// `config/` and its path in the directory, the main file `config/config.exs` whatever its own
/// name; none when there is neither that file nor a `runtime.exs` beside it. When that directory
/// is an umbrella root's (see [`children_config_dirs`]), the files of its children's `config/`
/// follow, named by their path from the root (`apps/b/config/config.exs`), so that the root's
/// `import_config` of `../apps/*/config/config.exs` finds them on the server as it does here.
/// Files a config file imports that do not travel are named in the second list, each with why.
fn config_files(project: &Path) -> Result<(Vec<ConfigFile>, Vec<String>), AppConfigError> {
    let layout = Layout::of(project);
    let dir = layout.config_dir();
    if !layout.config_file.is_file() && !dir.join("runtime.exs").is_file() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut total = 0;
    let mut files = if layout.config_in_project_dir(project) {
        main_files_only(&layout)?
    } else {
        let mut files = Vec::new();
        for (path, bytes) in read_tree(&dir, &mut total)? {
            let relative = path.strip_prefix(&dir).unwrap_or(&path);
            let name = if path == layout.config_file {
                "config.exs".to_owned()
            } else if relative == Path::new("config.exs") {
                return Err(AppConfigError::Clash {
                    main: layout.config_file,
                    other: path,
                });
            } else {
                relative.to_string_lossy().into_owned()
            };
            files.push(Travelling::new(format!("config/{name}"), path, bytes));
        }
        if let Some((root, children)) = children_config_dirs(&dir) {
            for child in children {
                for (path, bytes) in read_tree(&child, &mut total)? {
                    let name = path.strip_prefix(&root).unwrap_or(&path);
                    let name = name.to_string_lossy().into_owned();
                    files.push(Travelling::new(name, path, bytes));
                }
            }
        }
        files
    };
    let left_out = imports_beside(&mut files, &dir, &mut total)?;
    Ok((
        files.into_iter().map(|f| (f.name, f.bytes)).collect(),
        left_out,
    ))
}

/// A config file on its way: its name on the server (from the run's config root), where it was
/// read here, its contents.
struct Travelling {
    name: String,
    local: PathBuf,
    bytes: Vec<u8>,
}

impl Travelling {
    fn new(name: String, local: PathBuf, bytes: Vec<u8>) -> Travelling {
        Travelling { name, local, bytes }
    }
}

/// Adds to `files` those they import (`import_config "../shared/common.exs"`, a plain string)
/// that are not among them, transitively, each named where the server's copy of its importer
/// finds it, with the contents Mix would read here. An import of a file that is not here is
/// left to fail on the server as it fails here (if it is evaluated at all); one by an absolute
/// path is the server's own file. One that climbs above the directory the files travel in
/// (`dir`'s parent) cannot go where the server would look: it is left out, and said so in the
/// list returned (the import may be in a file, or a branch, that never runs).
fn imports_beside(
    files: &mut Vec<Travelling>,
    dir: &Path,
    total: &mut u64,
) -> Result<Vec<String>, AppConfigError> {
    let mut left_out = Vec::new();
    let mut next = 0;
    while let Some(file) = files.get(next) {
        next += 1;
        let text = String::from_utf8_lossy(&file.bytes).into_owned();
        let (importer, local) = (file.name.clone(), file.local.clone());
        for import in imported(&text) {
            let source = local.parent().unwrap_or(Path::new(".")).join(import);
            if Path::new(import).is_absolute() || !source.is_file() {
                continue;
            }
            let Some(name) = beside(&importer, import) else {
                left_out.push(format!(
                    "{}: import_config \"{import}\" reaches above {}, the directory the config files travel in: it is not shipped, and fails on the server if it is evaluated there",
                    local.display(),
                    dir.parent().unwrap_or(dir).display()
                ));
                continue;
            };
            if files.iter().any(|f| f.name == name) {
                continue;
            }
            let bytes = std::fs::read(&source).map_err(|error| AppConfigError::Read {
                path: source.clone(),
                error,
            })?;
            *total += bytes.len() as u64;
            if *total > MAX_CONFIG_BYTES {
                return Err(AppConfigError::TooLarge(dir.to_owned()));
            }
            files.push(Travelling::new(name, source, bytes));
        }
    }
    Ok(left_out)
}

/// The plain paths `text` imports (`import_config "prod.exs"`, parentheses or not), comments,
/// interpolations and wildcards left out.
fn imported(text: &str) -> Vec<&str> {
    const CALL: &str = "import_config";
    text.lines()
        .map(uncommented)
        .flat_map(|line| {
            line.match_indices(CALL)
                .filter(move |&(at, _)| {
                    let before = line[..at].chars().next_back();
                    !before.is_some_and(|c| c.is_alphanumeric() || "_.:\"".contains(c))
                })
                .map(move |(at, _)| &line[at + CALL.len()..])
        })
        .filter_map(|rest| {
            // `import_config "x"` or `import_config("x")`; not `import_configs`.
            let rest = match rest.strip_prefix('(') {
                Some(inside) => inside,
                None => rest.strip_prefix([' ', '\t'])?,
            };
            let rest = rest.trim_start().strip_prefix('"')?;
            let path = &rest[..rest.find('"')?];
            let plain = !path.is_empty() && !path.contains(['\\', '*', '?', '[', '{']);
            plain.then_some(path)
        })
        .collect()
}

/// The name on the server of what `import` (relative) reaches from the file named `importer`:
/// its directory joined with it, `.` and `..` resolved; none if that climbs above the root.
fn beside(importer: &str, import: &str) -> Option<String> {
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop();
    for part in import.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// When the config directory `dir` is an umbrella root's (its parent's `mix.exs` says
/// `apps_path:`, as the root's own `config/` or a child's `config_path:
/// "../../config/config.exs"` has it), that root and the `config/` directory of each of its
/// children (`<root>/<apps_path>/<child>/config`), sorted; none when the apps directory is not
/// inside the root (an absolute path, or one with `..`).
fn children_config_dirs(dir: &Path) -> Option<(PathBuf, Vec<PathBuf>)> {
    // Its parent as Mix's `Path.expand("..", __DIR__)` has it: not that of a `..` or `.`.
    dir.file_name()?;
    let root = dir.parent()?;
    let apps = Layout::of(root).apps?;
    let inside = apps.strip_prefix(root).ok()?;
    if !inside
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&apps)
        .ok()?
        .flatten()
        .map(|child| child.path().join("config"))
        .filter(|config| config.is_dir())
        .collect();
    dirs.sort();
    Some((root.to_owned(), dirs))
}

/// Every regular file under `dir` with its contents, sorted, symbolic links followed (one that
/// leads nowhere or above is left out), their sizes added to `total`, which may not exceed the
/// limit.
fn read_tree(dir: &Path, total: &mut u64) -> Result<Vec<(PathBuf, Vec<u8>)>, AppConfigError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(entry) => entry,
            // A link to nothing, or back to a directory above it: nothing Mix could import.
            Err(e) if leads_nowhere_or_above(&e) => continue,
            Err(e) => {
                return Err(AppConfigError::Read {
                    path: e.path().unwrap_or(dir).to_owned(),
                    error: e.into(),
                });
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        *total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        if *total > MAX_CONFIG_BYTES {
            return Err(AppConfigError::TooLarge(dir.to_owned()));
        }
        let bytes = std::fs::read(path).map_err(|error| AppConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        files.push((entry.into_path(), bytes));
    }
    Ok(files)
}

/// The main config file and the `runtime.exs` beside it, as the server reads them: for a
/// `config_path:` in the project's own directory, whose other files (the build, the sources,
/// `deps/`) are no config. A file the main one imports follows it (see [`imports_beside`]).
fn main_files_only(layout: &Layout) -> Result<Vec<Travelling>, AppConfigError> {
    let runtime = layout.config_dir().join("runtime.exs");
    let mut files = Vec::new();
    for (path, name) in [
        (&layout.config_file, "config.exs"),
        (&runtime, "runtime.exs"),
    ] {
        if path.is_file() {
            let bytes = std::fs::read(path).map_err(|error| AppConfigError::Read {
                path: path.clone(),
                error,
            })?;
            files.push(Travelling::new(
                format!("config/{name}"),
                path.clone(),
                bytes,
            ));
        }
    }
    Ok(files)
}

/// Whether a walk stopped at a symbolic link to nothing, or to a directory above it: a link
/// that holds nothing to read, passed over.
pub(crate) fn leads_nowhere_or_above(error: &walkdir::Error) -> bool {
    let nowhere = |path: &Path| path.is_symlink() && !path.exists();
    error.loop_ancestor().is_some() || error.path().is_some_and(nowhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: ConfigUse = ConfigUse {
        files: true,
        validate_compile_env: true,
    };
    const NO_FILES: ConfigUse = ConfigUse {
        files: false,
        validate_compile_env: true,
    };

    #[test]
    fn collects_the_config_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/config.exs"), "import Config").unwrap();
        std::fs::write(dir.path().join("config/prod.exs"), "import Config").unwrap();
        let config = AppConfig::collect(dir.path(), "prod", ALL).unwrap();
        let names: Vec<&str> = config
            .config_files
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(names, ["config/config.exs", "config/prod.exs"]);
        let skipped = AppConfig::collect(dir.path(), "prod", NO_FILES).unwrap();
        assert!(skipped.config_files.is_empty());
    }

    #[test]
    fn linked_files_travel_with_their_contents_and_links_to_nothing_or_above_are_left_out() {
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
        link(&config, "loop").unwrap();
        let files = config_files(&dir.path().join("project")).unwrap().0;
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
    fn files_a_config_imports_from_beside_its_directory_travel_where_the_server_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let write = |path: &str, text: &str| {
            let path = project.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "config/config.exs",
            "import Config\nimport_config \"../shared/common.exs\"\n\
             # import_config \"../old.exs\"\nimport_config \"#{config_env()}.exs\"\n",
        );
        write(
            "config/dev.exs",
            "import Config\nimport_config(\"../shared/common.exs\")\n",
        );
        write(
            "shared/common.exs",
            "import Config\nimport_config \"./more/deep.exs\"\n",
        );
        write("shared/more/deep.exs", "import Config # deep");
        write("old.exs", "import Config # not imported");
        let files = config_files(&project).unwrap().0;
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "config/config.exs",
                "config/dev.exs",
                "shared/common.exs",
                "shared/more/deep.exs"
            ]
        );
        assert_eq!(files[3].1, b"import Config # deep");

        // Above the directory the files travel in: left out and said, if it is there at all
        // (an import of a file that is not there may sit in a branch that never runs).
        write(
            "config/prod.exs",
            "import Config\nimport_config \"../../elsewhere.exs\"\n\
             if false, do: import_config(\"../../nowhere.exs\")\n",
        );
        assert_eq!(config_files(&project).unwrap().1, Vec::<String>::new());
        std::fs::write(dir.path().join("elsewhere.exs"), "import Config").unwrap();
        let (files, left_out) = config_files(&project).unwrap();
        assert_eq!(files.len(), 5);
        assert_eq!(left_out.len(), 1, "{left_out:?}");
        assert!(
            left_out[0].starts_with(&format!(
                "{}: import_config \"../../elsewhere.exs\" reaches above",
                project.join("config/prod.exs").display()
            )),
            "{left_out:?}"
        );
    }

    #[test]
    fn imports_are_read_as_mix_reads_them() {
        let text = "import Config\n\
            import_config \"a.exs\" # import_config \"../../b.exs\"\n\
            x = \"import_config\"; import_config(\"c.exs\")\n\
            import_configs \"d.exs\"\n\
            Config.import_config \"e.exs\"\n\
            import_config \"#{config_env()}.exs\"\n\
            import_config \"../apps/*/config/config.exs\"\n\
            \timport_config  \"../f.exs\"\n";
        assert_eq!(imported(text), ["a.exs", "c.exs", "../f.exs"]);
        assert_eq!(
            beside("config/dev.exs", "../shared/x.exs").as_deref(),
            Some("shared/x.exs")
        );
        assert_eq!(
            beside("config/dev.exs", "./prod/./x.exs").as_deref(),
            Some("config/prod/x.exs")
        );
        assert_eq!(
            beside("apps/b/config/config.exs", "../../../config/c.exs").as_deref(),
            Some("config/c.exs")
        );
        assert_eq!(beside("config/dev.exs", "../../x.exs"), None);
    }

    #[test]
    fn config_path_names_the_directory_and_the_main_file() {
        let dir = tempfile::tempdir().unwrap();
        let umbrella = dir.path();
        let child = umbrella.join("apps/api");
        std::fs::create_dir_all(&child).unwrap();
        std::fs::create_dir_all(umbrella.join("config")).unwrap();
        std::fs::write(umbrella.join("config/config.exs"), "import Config").unwrap();
        std::fs::write(umbrella.join("config/runtime.exs"), "import Config").unwrap();
        std::fs::write(
            child.join("mix.exs"),
            "[app: :api, config_path: \"../../config/config.exs\"]",
        )
        .unwrap();
        let names = |project: &Path| -> Vec<String> {
            let config = AppConfig::collect(project, "dev", ALL).unwrap();
            config.config_files.into_iter().map(|(p, _)| p).collect()
        };
        assert_eq!(names(&child), ["config/config.exs", "config/runtime.exs"]);

        // Another name: evaluated on the server as config.exs, beside nothing of that name.
        std::fs::create_dir_all(child.join("conf")).unwrap();
        std::fs::write(child.join("conf/main.exs"), "import Config").unwrap();
        std::fs::write(child.join("conf/dev.exs"), "import Config").unwrap();
        std::fs::write(child.join("mix.exs"), "[config_path: \"conf/main.exs\"]").unwrap();
        assert_eq!(names(&child), ["config/dev.exs", "config/config.exs"]);
        std::fs::write(child.join("conf/config.exs"), "import Config").unwrap();
        let clash = AppConfig::collect(&child, "dev", ALL).unwrap_err();
        assert!(
            clash
                .to_string()
                .contains("conf/config.exs: the config_path of mix.exs names"),
            "{clash}"
        );
    }

    #[test]
    fn an_umbrella_roots_config_brings_its_childrens_config_trees() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("umbrella");
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("mix.exs", "[apps_path: \"apps\", version: \"0.1.0\"]");
        write("config/config.exs", "import Config");
        for child in ["a", "b", "c"] {
            write(
                &format!("apps/{child}/mix.exs"),
                "[app: :x, config_path: \"../../config/config.exs\"]",
            );
            write(&format!("apps/{child}/lib/x.ex"), "defmodule X, do: nil");
        }
        write("apps/b/config/config.exs", "import Config # b");
        write("apps/b/config/prod/secrets.exs", "import Config");
        write("apps/a/config/config.exs", "import Config # a");
        let gone = root.join("apps/a/config/gone.exs");
        std::os::unix::fs::symlink(root.join("nothing.exs"), gone).unwrap();
        let names = |project: &Path| -> Vec<String> {
            let files = config_files(project).unwrap().0;
            files.into_iter().map(|(name, _)| name).collect()
        };
        let umbrella = [
            "config/config.exs",
            "apps/a/config/config.exs",
            "apps/b/config/config.exs",
            "apps/b/config/prod/secrets.exs",
        ];
        // From the root, and from a child whose config_path is the root's.
        assert_eq!(names(&root), umbrella);
        assert_eq!(names(&root.join("apps/b")), umbrella);
        let files = config_files(&root.join("apps/c")).unwrap().0;
        assert_eq!(files[2].1, b"import Config # b");

        // The 4 MiB are for all of them.
        write("apps/c/config/big.exs", &"#".repeat(4 << 20));
        let too_large = config_files(&root).unwrap_err().to_string();
        assert!(
            too_large.contains("apps/c/config: more than 4 MiB"),
            "{too_large}"
        );
        std::fs::remove_file(root.join("apps/c/config/big.exs")).unwrap();

        // Children outside the root, or no umbrella: the config directory alone.
        write("mix.exs", "[apps_path: \"../umbrella/apps\"]");
        assert_eq!(names(&root), ["config/config.exs"]);
        write("mix.exs", "[app: :single]");
        assert_eq!(names(&root), ["config/config.exs"]);
        // A child with a config directory of its own is no umbrella root.
        write("mix.exs", "[apps_path: \"apps\"]");
        write("apps/a/mix.exs", "[app: :a]");
        assert_eq!(names(&root.join("apps/a")), ["config/config.exs"]);
    }

    #[test]
    fn a_config_path_in_the_projects_own_directory_ships_that_file_and_runtime_exs_only() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path();
        std::fs::write(
            project.join("mix.exs"),
            "[app: :a, config_path: \"settings.exs\"]",
        )
        .unwrap();
        std::fs::write(project.join("settings.exs"), "import Config").unwrap();
        std::fs::write(project.join("runtime.exs"), "import Config # runtime").unwrap();
        std::fs::create_dir_all(project.join("lib")).unwrap();
        std::fs::write(project.join("lib/a.ex"), "defmodule A, do: nil").unwrap();
        let names: Vec<String> = config_files(project)
            .unwrap()
            .0
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["config/config.exs", "config/runtime.exs"]);
    }

    #[test]
    fn no_config_exs_means_no_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/notes.txt"), "x").unwrap();
        assert!(config_files(dir.path()).unwrap().0.is_empty());
    }
}
