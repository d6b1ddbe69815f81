//! Compiling the Mix projects under `fixtures/`, and where their third-party libraries are.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use tempfile::TempDir;

/// The variable naming the vendored libraries' directory, read by testkit and by the fixtures'
/// `mix.exs` (set for every `mix compile` testkit runs).
pub const VENDOR_VAR: &str = "MIX_REMOTE_VENDOR";

/// One cell per `<fixture name> <Mix env>`: compiled at most once per process.
static COMPILED: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());

/// Compiles the Mix project `fixtures/<name>` (relative to the workspace
/// root) with `mix compile` (MIX_ENV=dev, output captured and shown only in
/// the panic message on failure) into its own git-ignored `_build`, and
/// returns the project directory.
///
/// Compilation is serialised across threads and processes by an exclusive
/// lock on `mix-remote-fixture-<name>.lock` in [`std::env::temp_dir`] (and,
/// with mix-remote's own compiles, on the project's `mix.exs`), and happens
/// once per process per fixture. Panics with a clear message if the
/// fixture does not exist, if `mix` is missing, or if compilation fails.
pub fn compiled_fixture(name: &str) -> PathBuf {
    compiled_fixture_in(name, "dev")
}

/// Like [`compiled_fixture`], with `MIX_ENV=mix_env` (into `_build/<mix_env>`), e.g. `prod` for
/// a fixture whose prod config sets the logger level.
pub fn compiled_fixture_in(name: &str, mix_env: &str) -> PathBuf {
    assert!(
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']),
        "testkit: invalid fixture name {name:?}"
    );
    assert!(
        !mix_env.is_empty()
            && mix_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "testkit: invalid MIX_ENV {mix_env:?}"
    );
    let dir = repo_root().join("fixtures").join(name);
    let cell = COMPILED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(format!("{name} {mix_env}"))
        .or_default()
        .clone();
    // A panic inside leaves the cell empty: the next caller tries (and reports) again.
    cell.get_or_init(|| compile_project(&dir, name, mix_env))
        .clone()
}

/// A copy of a fixture's sources compiled in a temporary directory of its own (for a test that
/// changes files of the build, e.g. a NIF in `priv/`), removed on drop.
pub struct StagedFixture {
    /// The temporary directory, removed on drop.
    _dir: TempDir,
    /// The project: `dir` itself, or `dir/<name>` beside the fixtures it names as path
    /// dependencies.
    project: PathBuf,
    name: String,
    mix_env: String,
}

impl StagedFixture {
    /// The project directory.
    pub fn path(&self) -> &Path {
        &self.project
    }

    /// Compiles the copy again, as it was first (after a test changed or removed sources).
    pub fn recompile(&self) {
        compile_project(&self.project, &self.name, &self.mix_env);
    }
}

/// A temporary directory holding only a minimal `mix.exs` (project `:empty`, no code): a Mix
/// project for tests that need one but no build, such as those of `init`. Removed on drop.
pub fn empty_mix_project() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mix-remote-empty-")
        .tempdir()
        .unwrap_or_else(|e| panic!("testkit: cannot create a project directory: {e}"));
    let mix_exs = "defmodule Empty.MixProject do\n  use Mix.Project\n\n  \
                   def project, do: [app: :empty, version: \"0.1.0\"]\nend\n";
    fs::write(dir.path().join("mix.exs"), mix_exs)
        .unwrap_or_else(|e| panic!("testkit: cannot write mix.exs: {e}"));
    dir
}

/// Copies the sources of `fixtures/<name>` (everything but `_build` and `deps`) into a fresh
/// temporary directory and compiles them there with `MIX_ENV=mix_env`, as [`compiled_fixture_in`]
/// does in place. A fixture whose `mix.exs` names other fixtures as path dependencies (`path:
/// "../pathdep"`) is copied to `<dir>/<name>`, with those beside it, so that Mix finds them.
/// Panics with a clear message on failure.
pub fn staged_fixture(name: &str, mix_env: &str) -> StagedFixture {
    check_mix_env(mix_env);
    let source = fixture_source(name);
    let dir = tempfile::Builder::new()
        .prefix("mix-remote-staged-")
        .tempdir()
        .unwrap_or_else(|e| panic!("testkit: cannot create a directory to stage {name:?}: {e}"));
    let siblings = sibling_fixtures(&source);
    let project = if siblings.is_empty() {
        dir.path().to_owned()
    } else {
        dir.path().join(name)
    };
    for (from, to) in std::iter::once((source, project.clone())).chain(
        siblings
            .iter()
            .map(|sibling| (fixture_source(sibling), dir.path().join(sibling))),
    ) {
        fs::create_dir_all(&to)
            .and_then(|()| copy_sources(&from, &to))
            .unwrap_or_else(|e| panic!("testkit: cannot copy fixture {}: {e}", from.display()));
    }
    compile_project(&project, name, mix_env);
    StagedFixture {
        _dir: dir,
        project,
        name: name.to_owned(),
        mix_env: mix_env.to_owned(),
    }
}

/// The fixtures the `mix.exs` of the fixture at `source` names as path dependencies beside it
/// (`path: "../pathdep"`).
fn sibling_fixtures(source: &Path) -> Vec<String> {
    let text = fs::read_to_string(source.join("mix.exs")).unwrap_or_default();
    text.split("path: \"../")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name.to_owned()))
        .filter(|name| {
            !name.is_empty()
                && !name.starts_with('.')
                && !name.contains(['/', '\\', '\0'])
                && fixture_source(name).is_dir()
        })
        .collect()
}

/// The third-party Mix libraries for tests: `$MIX_REMOTE_VENDOR` when set, else
/// `../shared/vendor` from the repository root (whether it exists or not).
pub fn vendor_dir() -> PathBuf {
    match std::env::var_os(VENDOR_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root()
            .parent()
            .unwrap_or(Path::new("/"))
            .join("shared/vendor"),
    }
}

/// For tests that need [`vendor_dir`]: true if it exists; if not, panics when env CI is set,
/// else says on stderr that the test is skipped and why, and returns false (the test returns).
pub fn vendor_available() -> bool {
    let dir = vendor_dir();
    if dir.is_dir() {
        return true;
    }
    let why = format!(
        "the vendored Mix libraries are not at {} (set {VENDOR_VAR} to their directory)",
        dir.display()
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("testkit: this test must run in CI: {why}");
    }
    eprintln!("testkit: skipping a test that needs third-party libraries: {why}");
    false
}

/// The sources of `fixtures/<name>`; panics on a name that is not one directory name.
pub(crate) fn fixture_source(name: &str) -> PathBuf {
    assert!(
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']),
        "testkit: invalid fixture name {name:?}"
    );
    repo_root().join("fixtures").join(name)
}

fn check_mix_env(mix_env: &str) {
    assert!(
        !mix_env.is_empty()
            && mix_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "testkit: invalid MIX_ENV {mix_env:?}"
    );
}

/// Copies a project's sources (everything but `_build` and `deps`) from `from` into `to`.
pub(crate) fn copy_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "_build" || name == "deps" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            fs::create_dir(&target)?;
            copy_sources(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The workspace root (the directory above testkit's).
pub(crate) fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit is a directory of the workspace")
}

/// Runs `mix compile` with `MIX_ENV=mix_env` in `dir` under the cross-process lock named after
/// `lock_name`; returns the canonical project directory.
pub(crate) fn compile_project(dir: &Path, lock_name: &str, mix_env: &str) -> PathBuf {
    if !dir.join("mix.exs").is_file() {
        panic!(
            "testkit: fixture {lock_name:?}: no Mix project (mix.exs) in {}",
            dir.display()
        );
    }
    let dir = dir
        .canonicalize()
        .unwrap_or_else(|e| panic!("testkit: cannot resolve {}: {e}", dir.display()));

    let lock_path = std::env::temp_dir().join(format!("mix-remote-fixture-{lock_name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("testkit: cannot open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("testkit: cannot lock {}: {e}", lock_path.display()));
    // mix-remote compiles a project holding a lock on its mix.exs: take turns with its runs too.
    let mix_exs = File::open(dir.join("mix.exs"))
        .unwrap_or_else(|e| panic!("testkit: cannot open {}/mix.exs: {e}", dir.display()));
    mix_exs
        .lock()
        .unwrap_or_else(|e| panic!("testkit: cannot lock {}/mix.exs: {e}", dir.display()));

    let output = Command::new("mix")
        .arg("compile")
        .current_dir(&dir)
        .env("MIX_ENV", mix_env)
        .env(VENDOR_VAR, vendor_dir())
        // The project's own _build, whatever the caller's environment says.
        .env_remove("MIX_BUILD_PATH")
        .env_remove("MIX_BUILD_ROOT")
        .env_remove("MIX_DEPS_PATH")
        .env_remove("MIX_TARGET")
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "testkit: `mix` was not found on PATH; install Elixir (Debian: apt-get install elixir) \
             to compile the fixture {lock_name:?}"
        ),
        Err(e) => panic!(
            "testkit: cannot run `mix compile` in {}: {e}",
            dir.display()
        ),
    };
    if !output.status.success() {
        panic!(
            "testkit: `mix compile` of the fixture {lock_name:?} in {} failed ({}):\n{}{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    drop((mix_exs, lock)); // closing the files releases the locks
    dir
}

/// `mix run --no-compile [--no-start] -e CODE` in `project` with `MIX_ENV=env`, the vendored
/// libraries and `vars`, finished within [`crate::RUN_LIMIT`]: what a test compares a run with.
pub fn mix_run(
    project: &Path,
    env: &str,
    start: bool,
    code: &str,
    vars: &[(&str, String)],
) -> crate::Finished {
    let mut cmd = Command::new("mix");
    cmd.args(["run", "--no-compile"])
        .args((!start).then_some("--no-start"))
        .args(["-e", code])
        .current_dir(project)
        .env("MIX_ENV", env)
        .env(VENDOR_VAR, vendor_dir())
        .envs(vars.iter().map(|(k, v)| (k, v)));
    crate::run_within(cmd, crate::RUN_LIMIT)
}

/// `mix run --no-compile FILE ARGS` in `project` with `MIX_ENV=env` and the vendored libraries,
/// finished within [`crate::RUN_LIMIT`]: what a test compares a script's run with.
pub fn mix_run_file(project: &Path, env: &str, file: &Path, args: &[&str]) -> crate::Finished {
    let mut cmd = Command::new("mix");
    cmd.args(["run", "--no-compile"])
        .arg(file)
        .args(args)
        .current_dir(project)
        .env("MIX_ENV", env)
        .env(VENDOR_VAR, vendor_dir());
    crate::run_within(cmd, crate::RUN_LIMIT)
}

/// A throw-away script whose top level prints `true` when its `fn` is compiled code (as
/// `mix run FILE` compiles a script), `false` when erl_eval interprets it (as `mix run -e`
/// evaluates code): the directory that holds it, and its path.
pub fn top_level_fn_script() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("testkit: a temporary directory");
    let script = dir.path().join("top_level_fn.exs");
    std::fs::write(
        &script,
        "f = fn x -> x end\nIO.puts(:erlang.fun_info(f, :module) != {:module, :erl_eval})\n",
    )
    .expect("testkit: write the script");
    (dir, script)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throw-away Mix project for app `app` whose one module is `source` in lib/.
    fn mix_project(app: &str, source: &str) -> tempfile::TempDir {
        let project = tempfile::tempdir().unwrap();
        let mix_exs = format!(
            "defmodule MixProject do\n  use Mix.Project\n  \
             def project, do: [app: :{app}, version: \"0.1.0\"]\nend\n"
        );
        std::fs::write(project.path().join("mix.exs"), mix_exs).unwrap();
        std::fs::create_dir(project.path().join("lib")).unwrap();
        std::fs::write(project.path().join(format!("lib/{app}.ex")), source).unwrap();
        project
    }

    #[test]
    fn compiles_a_mix_project_into_its_own_build_dir() {
        let project = mix_project("probe", "defmodule Probe do\n  def hi, do: :hi\nend\n");
        let lock_name = format!("testkit-selftest-{}", std::process::id());
        let dir = compile_project(project.path(), &lock_name, "dev");
        assert!(
            dir.join("_build/dev/lib/probe/ebin/Elixir.Probe.beam")
                .is_file()
        );
        let _ = std::fs::remove_file(
            std::env::temp_dir().join(format!("mix-remote-fixture-{lock_name}.lock")),
        );
    }

    #[test]
    fn a_broken_project_panics_with_the_compiler_output() {
        let project = mix_project(
            "broken",
            "defmodule Broken do\n  def oops, do: undefined_thing()\nend\n",
        );
        let lock_name = format!("testkit-selftest-broken-{}", std::process::id());
        let err = std::panic::catch_unwind(|| compile_project(project.path(), &lock_name, "dev"))
            .unwrap_err();
        let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("mix compile"), "{message}");
        assert!(message.contains("undefined_thing"), "{message}");
        let _ = std::fs::remove_file(
            std::env::temp_dir().join(format!("mix-remote-fixture-{lock_name}.lock")),
        );
    }

    #[test]
    fn a_missing_fixture_is_named_in_the_panic() {
        let err =
            std::panic::catch_unwind(|| compiled_fixture("no-such-fixture-here")).unwrap_err();
        let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("no-such-fixture-here"), "{message}");
    }
}
