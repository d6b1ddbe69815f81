//! A fresh build, as `mix run` makes sure of: the project compiled with its own `mix compile`
//! for the environment about to be read, when `mix` is found here and the project has a
//! `mix.exs`; and, when it is not compiled, the source that changed after the build, if any.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use crate::build::mix_exs::{self, Layout};

/// Why the project could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// `mix compile` ran and failed: Mix's own words follow the first line.
    #[error("`mix compile` failed in {dir} (MIX_ENV={env}):\n{said}")]
    Failed {
        /// The project.
        dir: PathBuf,
        /// The environment compiled for.
        env: String,
        /// What Mix printed, stdout then stderr.
        said: String,
    },
    /// `mix` was found but could not be run, or its `mix.exs` could not be locked.
    #[error("cannot run `mix compile` in {dir}: {error}")]
    Run {
        /// The project.
        dir: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

/// What `mix compile` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiled {
    /// It ran: how many files it compiled (0: the build was up to date) and everything it printed.
    Ran {
        /// Files compiled, from Mix's `Compiling N files` lines.
        files: usize,
        /// Mix's output, stdout then stderr (its warnings are there), for `-v`.
        said: String,
    },
    /// There is no `mix` on this machine's PATH.
    NoMix,
    /// The tool was interrupted first: Mix, if it had started, is stopped with every process under
    /// it.
    Stopped,
}

/// Whether `project` is a Mix project this tool may compile: it has a `mix.exs`.
pub fn is_mix_project(project: &Path) -> bool {
    project.join("mix.exs").is_file()
}

/// Runs `mix compile` in `project` for `env`, its output captured. Runs of this tool on the same
/// project take turns (Mix before 1.18 has no build lock of its own): each holds an exclusive lock
/// on the project's `mix.exs` while Mix runs, which creates no file. Mix runs in a process group
/// of its own, so the terminal's Ctrl-C reaches the tool alone, which decides: once `stop`
/// resolves (the tool got SIGINT or SIGTERM), while Mix runs or while the lock is awaited, Mix is
/// stopped with every process under it (`kill_tree`) before the lock is let go, and the
/// compile is [`Compiled::Stopped`]. A tool killed outright takes Mix with it
/// ([`crate::child::die_with_parent`]); a program Mix started in a session of its own stays.
pub async fn compile(
    project: &Path,
    env: &str,
    stop: impl Future<Output = ()>,
) -> Result<Compiled, CompileError> {
    let run_error = |error| CompileError::Run {
        dir: project.to_owned(),
        error,
    };
    tokio::pin!(stop);
    let lock = std::fs::File::open(project.join("mix.exs")).map_err(run_error)?;
    // Another run's compile may hold the lock for long: awaited aside, so a signal is heard.
    let locking = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock));
    let lock = tokio::select! {
        locked = locking => locked.map_err(std::io::Error::other).flatten().map_err(run_error)?,
        () = &mut stop => return Ok(Compiled::Stopped),
    };
    let mut mix = tokio::process::Command::new("mix");
    mix.arg("compile")
        .current_dir(project)
        .env("MIX_ENV", env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // A tool killed outright (SIGKILL, where `stop` never resolves) takes Mix with it: left
    // compiling, it would race the next run's compile over `_build`.
    crate::child::die_with_parent(&mut mix);
    let spawned = mix.spawn();
    let mut mix = match spawned {
        Ok(mix) => mix,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Compiled::NoMix),
        Err(e) => return Err(run_error(e)),
    };
    let (stdout, stderr) = (mix.stdout.take(), mix.stderr.take());
    let ended = tokio::select! {
        ended = finished(&mut mix, stdout, stderr) => Some(ended),
        () = &mut stop => None,
    };
    let Some(ended) = ended else {
        // Not yet reaped (its pid still its own): stopped with all it started.
        if let Some(pid) = mix.id() {
            kill_tree(pid);
        }
        let _ = mix.wait().await;
        drop(lock);
        return Ok(Compiled::Stopped);
    };
    drop(lock);
    let (status, said) = ended.map_err(run_error)?;
    if !status.success() {
        return Err(CompileError::Failed {
            dir: project
                .canonicalize()
                .unwrap_or_else(|_| project.to_owned()),
            env: env.to_owned(),
            said: said.trim_end().to_owned(),
        });
    }
    Ok(Compiled::Ran {
        files: files_compiled(&said),
        said,
    })
}

/// Mix's exit status and what it printed, stdout then stderr, once it has ended.
async fn finished(
    mix: &mut tokio::process::Child,
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
) -> std::io::Result<(std::process::ExitStatus, String)> {
    use tokio::io::AsyncReadExt;
    async fn read_all(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut bytes).await?;
        }
        Ok(bytes)
    }
    let (out, err, status) = tokio::join!(read_all(stdout), read_all(stderr), mix.wait());
    let (out, err, status) = (out?, err?, status?);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    Ok((status, said))
}

/// Kills `leader` (Mix, the leader of its process group, not yet reaped) and every process under
/// it, for good. A signal to the group is not enough: the BEAM starts the programs of its ports
/// (a `make` or `cargo` building a NIF, a dependency's `rebar3`, whatever the project's
/// compile-time code runs) each in a session of its own, and they go on without the BEAM. So the
/// group is stopped (SIGSTOP), then every process found under the leader (through `/proc`), again
/// until no new one shows up (a stopped process starts none), and then all of them are killed.
/// Without `/proc`, the group alone.
fn kill_tree(leader: u32) {
    let Ok(group) = i32::try_from(leader) else {
        return;
    };
    let signal = |pid: i32, signal: i32| {
        // SAFETY: kill sends a signal; nothing of this process is touched.
        unsafe { libc::kill(pid, signal) };
    };
    signal(-group, libc::SIGSTOP);
    let mut stopped: BTreeSet<u32> = BTreeSet::from([leader]);
    // A bound for a tree that keeps growing faster than it is stopped (none does).
    for _ in 0..100 {
        let found: Vec<u32> = under(leader)
            .into_iter()
            .filter(|pid| !stopped.contains(pid))
            .collect();
        if found.is_empty() {
            break;
        }
        for pid in found {
            if let Ok(p) = i32::try_from(pid) {
                signal(p, libc::SIGSTOP);
            }
            stopped.insert(pid);
        }
    }
    signal(-group, libc::SIGKILL);
    for pid in stopped {
        if let Ok(p) = i32::try_from(pid) {
            signal(p, libc::SIGKILL);
        }
    }
}

/// Every process under `root` (its children, theirs...), from the parents `/proc` gives; none
/// without `/proc`.
fn under(root: u32) -> BTreeSet<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // `pid (comm) state ppid ...`: the command may hold anything, so after the last `)`.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat.rfind(')').and_then(|end| {
            stat[end + 1..]
                .split_whitespace()
                .nth(1)?
                .parse::<u32>()
                .ok()
        });
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if found.insert(child) {
                todo.push(child);
            }
        }
    }
    found
}

/// The files Mix says it compiled: the sum of its `Compiling N files (.ex)` lines.
fn files_compiled(said: &str) -> usize {
    said.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("Compiling ")?;
            let (n, what) = rest.split_once(' ')?;
            what.starts_with("file").then(|| n.parse::<usize>().ok())?
        })
        .sum()
}

/// A source that changed after the build was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The most recently changed source, relative to the project.
    pub newest: PathBuf,
    /// How many other sources changed after the build.
    pub others: usize,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.newest.display())?;
        match self.others {
            0 => Ok(()),
            1 => write!(f, " (and 1 more source)"),
            n => write!(f, " (and {n} more sources)"),
        }
    }
}

/// When the build of `project` for `env` (`_build/<env>`, or where `build_path:` puts it) was
/// last written to (its newest `.beam` or compile manifest); none without one.
pub fn built_at(project: &Path, env: &str) -> Option<SystemTime> {
    newest(&Layout::of(project).build(env))
}

/// The sources of `project` that changed after its build for `env` was last compiled: the
/// files under `lib/`, `src/`, `include/` and `config/` (the project's own: the directory of
/// `config_path:`; but `runtime.exs`, which is read when the code runs, not compiled),
/// `mix.exs` and `mix.lock` (the one `lockfile:` names), of each app in an umbrella
/// (`apps_path:`) too, and the code and `mix.exs` of the path dependencies (`path:`,
/// `in_umbrella: true`), against the newest `.beam` or compile manifest of the build. None when
/// the build is fresh, or when there is no build to compare with.
pub fn stale(project: &Path, env: &str) -> Option<Stale> {
    let layout = Layout::of(project);
    let built = newest(&layout.build(env))?;
    let mut roots = vec![project.to_owned()];
    roots.extend(layout.children());
    // The path dependencies (an umbrella child's siblings, `in_umbrella: true`) of the project
    // and of its children, and theirs, which `mix compile` compiles with it: their code and
    // `mix.exs`, not their config nor lock (neither is the project's).
    let mut deps: Vec<PathBuf> = Vec::new();
    for found in mix_exs::all_deps(project, &layout) {
        let (Some(_), Some(dir)) = (&found.dep.path, found.dir) else {
            continue;
        };
        let same = |root: &PathBuf| same_dir(root, &dir);
        if !roots.iter().chain(&deps).any(same) {
            deps.push(dir);
        }
    }
    let config_of = roots.len();
    roots.extend(deps);
    let not_runtime = |path: &Path| path.file_name().is_none_or(|n| n != "runtime.exs");
    let mut changed: Vec<(SystemTime, PathBuf)> = Vec::new();
    for (at, root) in roots.iter().enumerate() {
        let lockfile = match root == project {
            true => Some(layout.lockfile.clone()),
            false => (at < config_of).then(|| root.join("mix.lock")),
        };
        for path in std::iter::once(root.join("mix.exs")).chain(lockfile) {
            if let Some(time) = modified(&path) {
                changed.push((time, path));
            }
        }
        for dir in ["lib", "src", "include"] {
            changed.extend(files(&root.join(dir), &|_: &Path| true));
        }
        match root == project {
            // The main file alone: its directory's other files are the sources and the build.
            true if layout.config_in_project_dir(project) => {
                if let Some(time) = modified(&layout.config_file) {
                    changed.push((time, layout.config_file.clone()));
                }
            }
            true => changed.extend(files(&layout.config_dir(), &not_runtime)),
            false if at < config_of => changed.extend(files(&root.join("config"), &not_runtime)),
            false => {}
        }
    }
    changed.retain(|(time, _)| *time > built);
    let (_, newest) = changed.iter().max_by_key(|(time, _)| *time)?.clone();
    Some(Stale {
        newest: relative(&newest, project),
        others: changed.len() - 1,
    })
}

/// Every source file under `dir` that `keep` accepts, with its modification time; editors' and
/// hidden files (`.x.swp`, `x~`, `#x#`) are not sources.
fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<(SystemTime, PathBuf)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| !e.file_name().to_string_lossy().starts_with(['.', '#']))
        .flatten()
        .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().ends_with('~'))
        .filter(|e| keep(e.path()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.into_path())))
        .collect()
}

/// When the most recently modified file under `build`'s `lib/*/ebin`, `lib/*/.mix` and
/// `consolidated` directories was written.
fn newest(build: &Path) -> Option<SystemTime> {
    let mut dirs = vec![build.join("consolidated")];
    if let Ok(apps) = std::fs::read_dir(build.join("lib")) {
        for app in apps.flatten() {
            dirs.push(app.path().join("ebin"));
            dirs.push(app.path().join(".mix"));
            dirs.push(app.path().join("consolidated"));
        }
    }
    dirs.iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

/// `path` as seen from `base`, both taken as written (`apps/api/../../../util/x.ex` from the
/// umbrella is `../util/x.ex`).
fn relative(path: &Path, base: &Path) -> PathBuf {
    use std::path::Component;
    fn tidy(path: &Path) -> Vec<Component<'_>> {
        let mut parts: Vec<Component> = Vec::new();
        for part in path.components() {
            match (part, parts.last()) {
                (Component::CurDir, _) => {}
                (Component::ParentDir, Some(Component::Normal(_))) => {
                    parts.pop();
                }
                _ => parts.push(part),
            }
        }
        parts
    }
    let (path, base) = (tidy(path), tidy(base));
    let shared = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let up = base.len() - shared;
    std::iter::repeat_n(Component::ParentDir, up)
        .chain(path[shared..].iter().copied())
        .collect()
}

/// Whether `a` and `b` are the same directory (`apps/api/../core` and `apps/core`).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, FileTimes};
    use std::time::Duration;

    /// Writes `path` under `root` with its modification time `secs` after the epoch.
    fn file_at(root: &Path, path: &str, secs: u64) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "x").unwrap();
        set_modified(&path, secs);
    }

    /// Sets the modification time of `path` to `secs` after the epoch.
    fn set_modified(path: &Path, secs: u64) {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(FileTimes::new().set_modified(time))
            .unwrap();
    }

    #[test]
    fn a_source_newer_than_the_newest_beam_or_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(stale(root, "dev"), None, "no build, nothing to compare");
        fs::write(root.join("mix.exs"), "[apps_path: \"apps\"]").unwrap();
        set_modified(&root.join("mix.exs"), 100);
        file_at(root, "lib/a.ex", 100);
        file_at(root, "config/runtime.exs", 900);
        file_at(root, "lib/.a.ex.swp", 900);
        file_at(root, "_build/dev/lib/app/ebin/Elixir.A.beam", 200);
        file_at(root, "_build/dev/lib/app/.mix/compile.elixir", 300);
        assert_eq!(
            stale(root, "dev"),
            None,
            "runtime.exs and swap files are not compiled"
        );
        file_at(root, "lib/deep/b.ex", 250);
        assert_eq!(stale(root, "dev"), None, "older than the manifest");
        file_at(root, "lib/deep/b.ex", 400);
        file_at(root, "src/c.erl", 500);
        file_at(root, "apps/web/mix.exs", 100);
        file_at(root, "apps/web/lib/w.ex", 350);
        assert_eq!(
            stale(root, "dev"),
            Some(Stale {
                newest: PathBuf::from("src/c.erl"),
                others: 2
            })
        );
        assert_eq!(
            stale(root, "dev").unwrap().to_string(),
            "src/c.erl (and 2 more sources)"
        );
        assert_eq!(stale(root, "prod"), None, "another environment's build");
    }

    #[test]
    fn the_paths_of_mix_exs_say_where_the_build_config_and_children_are() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // An umbrella whose children are under services/, one of them taken as the project.
        fs::create_dir_all(root.join("services/api")).unwrap();
        fs::write(
            root.join("mix.exs"),
            "[apps_path: \"services\", build_path: \"out\"]",
        )
        .unwrap();
        fs::write(
            root.join("services/api/mix.exs"),
            "[app: :api, build_path: \"../../out\", config_path: \"../../config/config.exs\",\
             lockfile: \"../../mix.lock\"]",
        )
        .unwrap();
        let child = root.join("services/api");
        for project in [root, child.as_path()] {
            set_modified(&project.join("mix.exs"), 100);
        }
        file_at(root, "out/dev/lib/api/ebin/Elixir.Api.beam", 200);
        file_at(root, "services/api/lib/api.ex", 100);
        assert!(built_at(&child, "dev").is_some());
        assert_eq!(stale(&child, "dev"), None);
        assert_eq!(stale(root, "dev"), None);
        file_at(root, "config/config.exs", 300);
        assert_eq!(
            stale(&child, "dev"),
            Some(Stale {
                newest: PathBuf::from("../../config/config.exs"),
                others: 0
            })
        );
        file_at(root, "services/api/lib/api.ex", 400);
        assert_eq!(
            stale(root, "dev").map(|s| s.newest),
            Some(PathBuf::from("services/api/lib/api.ex"))
        );
        // The umbrella's lock is the child's.
        file_at(root, "mix.lock", 500);
        assert_eq!(
            stale(&child, "dev").map(|s| s.newest),
            Some(PathBuf::from("../../mix.lock"))
        );
    }

    #[test]
    fn an_umbrella_childs_siblings_and_path_dependencies_are_its_sources_too() {
        let dir = tempfile::tempdir().unwrap();
        // An umbrella in umb/, a path dependency beside it in util/.
        let root = dir.path().join("umb");
        let child = root.join("apps/api");
        fs::create_dir_all(&child).unwrap();
        fs::write(
            child.join("mix.exs"),
            "[app: :api, build_path: \"../../_build\",\n deps: [{:core, in_umbrella: true},\n \
             {:util, path: \"../../../util\"}, {:jason, \"~> 1.4\"}]]",
        )
        .unwrap();
        for project in ["umb/apps/core", "util"] {
            file_at(dir.path(), &format!("{project}/mix.exs"), 100);
            // A dependency's config is not the project's.
            file_at(dir.path(), &format!("{project}/config/config.exs"), 900);
        }
        set_modified(&child.join("mix.exs"), 100);
        file_at(&root, "_build/dev/lib/api/ebin/Elixir.Api.beam", 200);
        assert_eq!(stale(&child, "dev"), None);
        file_at(&root, "apps/core/lib/core.ex", 300);
        file_at(dir.path(), "util/lib/util.ex", 400);
        let stale = stale(&child, "dev").unwrap();
        assert_eq!(stale.newest, PathBuf::from("../../../util/lib/util.ex"));
        assert_eq!(stale.others, 1);
    }

    #[test]
    fn an_umbrellas_children_bring_their_path_dependencies_and_theirs_but_not_their_locks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("umb");
        fs::create_dir_all(root.join("apps/api")).unwrap();
        fs::write(root.join("mix.exs"), "[apps_path: \"apps\"]").unwrap();
        fs::write(
            root.join("apps/api/mix.exs"),
            "[app: :api, deps: [{:util, path: \"../../../util\"}]]",
        )
        .unwrap();
        fs::create_dir_all(dir.path().join("util")).unwrap();
        fs::write(
            dir.path().join("util/mix.exs"),
            "[app: :util, deps: [{:base, path: \"../base\"}]]",
        )
        .unwrap();
        file_at(dir.path(), "base/mix.exs", 100);
        for file in ["umb/mix.exs", "umb/apps/api/mix.exs", "util/mix.exs"] {
            set_modified(&dir.path().join(file), 100);
        }
        file_at(&root, "_build/dev/lib/api/ebin/Elixir.Api.beam", 200);
        // A path dependency's own lock is not the project's.
        file_at(dir.path(), "util/mix.lock", 900);
        assert_eq!(stale(&root, "dev"), None);
        file_at(dir.path(), "base/lib/base.ex", 300);
        assert_eq!(
            stale(&root, "dev").map(|s| s.newest),
            Some(PathBuf::from("../base/lib/base.ex"))
        );
    }

    #[test]
    fn a_config_path_beside_mix_exs_is_watched_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("mix.exs"), "[config_path: \"settings.exs\"]").unwrap();
        set_modified(&root.join("mix.exs"), 100);
        file_at(root, "_build/dev/lib/a/ebin/a.app", 200);
        file_at(root, "settings.exs", 100);
        // Not config: a file of the project's own directory beside it, a dependency's source.
        file_at(root, "notes.txt", 300);
        file_at(root, "deps/b/lib/b.ex", 300);
        assert_eq!(stale(root, "dev"), None);
        file_at(root, "settings.exs", 300);
        assert_eq!(
            stale(root, "dev").map(|s| s.newest),
            Some(PathBuf::from("settings.exs"))
        );
    }

    #[test]
    fn the_files_mix_compiled_are_counted_from_its_lines() {
        let said =
            "==> dep\nCompiling 2 files (.erl)\nCompiling 1 file (.ex)\nGenerated demo app\n";
        assert_eq!(files_compiled(said), 3);
        assert_eq!(files_compiled(""), 0);
        assert_eq!(
            files_compiled("Compiling lib/x.ex (it's taking more than 10s)"),
            0
        );
    }

    /// Whether `pid` runs (a zombie has ended, only not yet reaped).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .trim_start()
                .chars()
                .next();
            !matches!(state, Some('Z' | 'X'))
        })
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_killed_tree_leaves_nothing_even_in_sessions_of_their_own() {
        use std::os::unix::process::CommandExt;
        // A group leader with a child in its group and one in a session of its own, as the BEAM
        // starts the programs of ports.
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 600 & setsid sleep 600 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = leader.id();
        let started = std::time::Instant::now();
        let below = loop {
            let below = under(pid);
            if below.len() == 2 {
                break below;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{below:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        kill_tree(pid);
        assert!(!leader.wait().unwrap().success());
        let started = std::time::Instant::now();
        while below.iter().any(|&p| alive(p)) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "left: {below:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_stop_while_another_run_compiles_is_heard_at_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("mix.exs"), "").unwrap();
        // Another run holds the project's lock for as long as this test runs.
        let other = File::open(dir.path().join("mix.exs")).unwrap();
        other.lock().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let compiled = runtime.block_on(compile(dir.path(), "dev", std::future::ready(())));
        assert_eq!(compiled.unwrap(), Compiled::Stopped);
        runtime.shutdown_background();
    }
}
