//! The Mix package (`mix_remote/`): a fresh `mix new` project with the package as a path
//! dependency, never compiled beforehand, runs `mix remote.run` against a real sshd; the tasks
//! compile first, pass the binary's exit status through, say in one line when the binary is
//! missing, and document themselves in `mix help`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use testkit::{Finished, Sshd};

/// Generous: the first `mix` run compiles the package and the project.
const LIMIT: Duration = Duration::from_secs(180);
/// How long the remote side may take to clean up after the tool has exited.
const CLEANUP_LIMIT: Duration = Duration::from_secs(15);

/// The package, as a project of the user's adds it.
fn package() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mix_remote")
}

/// A project made by `mix new proj` in a temporary directory, with `package` as a path
/// dependency and a few functions beside the generated `Proj.hello`; nothing compiled.
struct Project {
    dir: TempDir,
    /// The TMPDIR of the runs, to see that they leave nothing there.
    tmp: TempDir,
}

impl Project {
    fn new(package: &Path) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("mix-remote-mix-package-")
            .tempdir()
            .expect("a directory for the project");
        let tmp = tempfile::tempdir().expect("a TMPDIR for the runs");
        let mut new = Command::new("mix");
        new.args(["new", "proj"]).current_dir(dir.path());
        let made = testkit::run_within(clean_env(new), LIMIT);
        assert_eq!(made.code, Some(0), "mix new: {}", made.stderr);
        let project = Project { dir, tmp };
        let mix_exs = project.path().join("mix.exs");
        let text = fs::read_to_string(&mix_exs).expect("read mix.exs");
        let dep = format!(
            "{{:mix_remote, path: {:?}, only: :dev, runtime: false}},",
            package.display().to_string()
        );
        let with_dep = text.replacen(
            "defp deps do\n    [\n",
            &format!("defp deps do\n    [\n      {dep}\n"),
            1,
        );
        assert_ne!(
            with_dep, text,
            "no deps list in the generated mix.exs: {text}"
        );
        fs::write(&mix_exs, with_dep).expect("write mix.exs");
        project.write(
            "lib/jobs.ex",
            "defmodule Proj.Jobs do\n  \
               def boom, do: raise(\"boom from the job\")\n  \
               def sleep do\n    IO.puts(\"sleeping\")\n    Process.sleep(:infinity)\n  end\n\
             end\n",
        );
        assert!(!project.path().join("_build").exists());
        project
    }

    /// The project's directory.
    fn path(&self) -> PathBuf {
        self.dir.path().join("proj")
    }

    /// Writes `text` to `file` of the project.
    fn write(&self, file: &str, text: &str) {
        fs::write(self.path().join(file), text).expect("write a project file");
    }

    /// `mix ARGS` in the project, with MIX_REMOTE_BIN the binary under test.
    fn mix(&self, args: &[&str]) -> Command {
        let mut mix = Command::new("mix");
        mix.args(args)
            .current_dir(self.path())
            .env("TMPDIR", self.tmp.path())
            .env("MIX_REMOTE_BIN", env!("CARGO_BIN_EXE_mix-remote"));
        clean_env(mix)
    }

    /// `mix remote.run ARGS --host <sshd> -F <its config>`, finished.
    fn remote_run(&self, sshd: &Sshd, args: &[&str]) -> Finished {
        let mut mix = self.mix(&["remote.run"]);
        mix.args(args)
            .arg("--host")
            .arg(sshd.host())
            .arg("-F")
            .arg(sshd.ssh_config());
        testkit::run_within(mix, LIMIT)
    }

    /// Starts `mix remote.run Proj.Jobs.sleep` on `sshd` and returns once the job runs: the mix
    /// process (the BEAM, which `mix` execs) and its stdout, read up to the job's `sleeping`.
    fn sleeping(&self, sshd: &Sshd) -> (std::process::Child, std::process::ChildStdout) {
        let mut mix = self.mix(&["remote.run", "Proj.Jobs.sleep", "--host"]);
        mix.arg(sshd.host()).arg("-F").arg(sshd.ssh_config());
        mix.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = mix.spawn().expect("start mix");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"sleeping\n") {
            if stdout.read(&mut byte).ok() != Some(1) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mix ended before the job ran: {}",
                    String::from_utf8_lossy(&seen)
                );
            }
            seen.push(byte[0]);
        }
        (child, stdout)
    }

    /// Panics unless the runs left nothing in their TMPDIR and no process naming it.
    fn assert_local_clean(&self) {
        let tmp = self.tmp.path().display().to_string();
        if let Err(left) = testkit::wait_until_no_processes_mentioning(&tmp, CLEANUP_LIMIT) {
            panic!("local processes of the run remain: {left:?}");
        }
        let left: Vec<_> = fs::read_dir(self.tmp.path())
            .expect("read TMPDIR")
            .collect();
        assert!(
            left.is_empty(),
            "the run left files in its TMPDIR: {left:?}"
        );
    }
}

/// `cmd` with no Mix or mix-remote settings from the caller's environment (MIX_HOME and
/// MIX_ARCHIVES, where Mix keeps its own tools, excepted).
fn clean_env(mut cmd: Command) -> Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("MIX_") && name != "MIX_HOME" && name != "MIX_ARCHIVES" {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Panics unless, within [`CLEANUP_LIMIT`], no process of the run's sessions is left on the remote.
fn assert_remote_clean(sshd: &Sshd) {
    if let Err(left) = sshd.wait_until_no_session_processes(CLEANUP_LIMIT) {
        panic!("processes of the run remain on the remote: {left:?}");
    }
}

/// The lines of `text` that are not empty.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn remote_run_compiles_the_fresh_project_then_prints_the_result() {
    let sshd = Sshd::start();
    let project = Project::new(&package());
    let out = project.remote_run(&sshd, &["Proj.hello"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    // Mix may first report building the package itself (on stdout, before the task starts);
    // the result is the last line, and the project's compilation went to stderr.
    assert_eq!(
        lines(&out.stdout).last(),
        Some(&":world"),
        "stdout: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("Generated proj app"),
        "stderr: {}",
        out.stderr
    );
    assert!(
        project
            .path()
            .join("_build/dev/lib/proj/ebin/Elixir.Proj.beam")
            .exists()
    );
    assert_remote_clean(&sshd);
    project.assert_local_clean();
}

#[test]
fn a_raising_function_exits_1_through_mix() {
    let sshd = Sshd::start();
    let project = Project::new(&package());
    let out = project.remote_run(&sshd, &["Proj.Jobs.boom"]);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("boom from the job"),
        "stderr: {}",
        out.stderr
    );
    assert_remote_clean(&sshd);
    project.assert_local_clean();
}

#[test]
fn a_compile_error_exits_2_with_mix_message_and_runs_nothing() {
    let project = Project::new(&package());
    project.write(
        "lib/broken.ex",
        "defmodule Broken do\n  def f, do: undefined_thing()\nend\n",
    );
    let out = testkit::run_within(
        project.mix(&["remote.run", "Proj.hello", "--host", "nowhere"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("lib/broken.ex"),
        "stderr: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("mix-remote: "),
        "the binary ran: {}",
        out.stderr
    );
}

#[test]
fn no_compile_skips_compiling_and_is_not_passed_on() {
    let project = Project::new(&package());
    let out = testkit::run_within(
        project.mix(&["remote.plan", "--no-compile", "Proj.hello"]),
        LIMIT,
    );
    // The binary ran (it accepted the arguments) on a build without the project's modules.
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert_eq!(
        lines(&out.stderr),
        [
            "mix-remote: error: module Proj is not in this project's _build (is the project \
          compiled, and the name right?)"
        ]
    );
    assert!(!project.path().join("_build/dev/lib/proj").exists());
}

#[test]
fn compile_is_mix_s_to_follow_and_not_passed_on() {
    let project = Project::new(&package());
    // Passed on, `--compile` would have the binary compile what Mix has just compiled.
    let out = testkit::run_within(
        project.mix(&["remote.plan", "--compile", "Proj.hello", "--json"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("\"event\":\"plan\""), "{}", out.stdout);
    assert!(!out.stdout.contains("\"compile\""), "{}", out.stdout);
    // Both: the binary says they conflict.
    let out = testkit::run_within(
        project.mix(&["remote.plan", "--compile", "--no-compile", "Proj.hello"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
}

#[test]
fn killing_mix_stops_the_run_and_its_remote_node() {
    let sshd = Sshd::start();
    let project = Project::new(&package());
    let (mut child, _stdout) = project.sleeping(&sshd);
    // `mix` execs its way to the BEAM, so this is the BEAM; the binary is its port's child.
    testkit::signal("KILL", &[child.id()]);
    child.wait().expect("reap mix");
    assert_remote_clean(&sshd);
    project.assert_local_clean();
}

#[test]
fn terminating_mix_stops_the_run_and_exits_as_interrupted() {
    // A cancelled CI job: SIGTERM to the BEAM (the binary is in a session of its own) ends the
    // run as SIGTERM ends the binary, not with Mix's status 0.
    let sshd = Sshd::start();
    let project = Project::new(&package());
    let (mut child, mut stdout) = project.sleeping(&sshd);
    testkit::signal("TERM", &[child.id()]);
    let status = child.wait().expect("reap mix");
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    assert_eq!(status.code(), Some(130), "stdout after: {rest}");
    assert_eq!(rest, "", "the BEAM wrote on stdout");
    assert_remote_clean(&sshd);
    project.assert_local_clean();
}

#[test]
fn a_build_mix_has_just_made_is_fresh_whatever_else_lib_holds_and_wherever_it_is() {
    let project = Project::new(&package());
    // A build path mix-remote cannot read in mix.exs (not a plain string): the task says where.
    let mix_exs = project.path().join("mix.exs");
    let text = fs::read_to_string(&mix_exs).expect("read mix.exs");
    let moved = text.replacen(
        "app: :proj,",
        "app: :proj,\n      build_path: Path.expand(\"../out\", __DIR__),",
        1,
    );
    assert_ne!(moved, text);
    fs::write(&mix_exs, moved).expect("write mix.exs");
    project.write("lib/NOTES.md", "not a source\n");
    let out = testkit::run_within(project.mix(&["remote.plan", "Proj.hello"]), LIMIT);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("older than"), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("Proj  "), "stdout: {}", out.stdout);
    assert!(
        project
            .path()
            .join("../out/dev/lib/proj/ebin/Elixir.Proj.beam")
            .exists()
    );
}

#[test]
fn another_project_named_with_project_is_compiled_by_the_binary() {
    let project = Project::new(&package());
    let other = testkit::staged_fixture("demo", "dev");
    let worker = other.path().join("lib/demo/worker.ex");
    let source = fs::read_to_string(&worker).expect("read the worker");
    fs::write(&worker, format!("{source}\n")).expect("touch the worker");
    let out = testkit::run_within(
        project.mix(&[
            "remote.plan",
            "Demo.Worker.process",
            "--project",
            &other.path().display().to_string(),
        ]),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("older than"), "stderr: {}", out.stderr);
}

#[test]
fn with_json_a_task_that_fails_before_the_binary_prints_the_events() {
    let project = Project::new(&package());
    let mut mix = project.mix(&["remote.run", "Proj.hello", "--json"]);
    mix.env(
        "MIX_REMOTE_BIN",
        project.tmp.path().join("no-such-mix-remote"),
    );
    let out = testkit::run_within(mix, LIMIT);
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    assert_eq!(events.len(), 2, "stdout: {}", out.stdout);
    assert_eq!(events[0]["event"], "error");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("is not an executable file"),
        "{}",
        out.stdout
    );
    assert_eq!(
        events[1],
        serde_json::json!({"event": "summary", "hosts": 0, "failed": 0, "exit_code": 3})
    );
}

#[test]
fn a_missing_binary_is_one_line_saying_which() {
    let project = Project::new(&package());
    let mut mix = project.mix(&["remote.run", "Proj.hello"]);
    let nowhere = project.tmp.path().join("no-such-mix-remote");
    mix.env("MIX_REMOTE_BIN", &nowhere);
    let out = testkit::run_within(mix, LIMIT);
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    assert_eq!(
        lines(&out.stderr),
        [format!(
            "mix remote.run: error: MIX_REMOTE_BIN={} is not an executable file",
            nowhere.display()
        )],
    );
}

#[test]
fn no_binary_anywhere_is_one_line_saying_how_to_install_it() {
    // A copy of the package outside this checkout, so that there is nothing to build it from.
    let copy = tempfile::tempdir().expect("a directory for the package");
    copy_tree(&package().join("lib"), &copy.path().join("lib"));
    fs::copy(package().join("mix.exs"), copy.path().join("mix.exs")).expect("copy mix.exs");
    let project = Project::new(copy.path());
    let mut mix = project.mix(&["remote.run", "Proj.hello"]);
    mix.env_remove("MIX_REMOTE_BIN")
        .env("PATH", path_without("mix-remote"));
    let out = testkit::run_within(mix, LIMIT);
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    assert_eq!(
        lines(&out.stderr),
        [
            "mix remote.run: error: mix-remote not found: put it on PATH (from a checkout of \
          mix-remote: `cargo install --path .`) or set MIX_REMOTE_BIN to it"
        ],
    );
}

#[test]
fn mix_help_documents_the_tasks() {
    let project = Project::new(&package());
    // As for any dependency's tasks, `mix help` knows them once the dependency is compiled.
    let compiled = testkit::run_within(project.mix(&["deps.compile"]), LIMIT);
    assert_eq!(compiled.code, Some(0), "stderr: {}", compiled.stderr);
    let out = testkit::run_within(project.mix(&["help", "remote.run"]), LIMIT);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    for part in [
        "mix remote.run",
        "MIX_REMOTE_BIN",
        "--no-compile",
        "remote.iex",
    ] {
        assert!(out.stdout.contains(part), "{part:?} not in: {}", out.stdout);
    }
    let out = testkit::run_within(project.mix(&["help"]), LIMIT);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    for task in [
        "remote.run",
        "remote.eval",
        "remote.iex",
        "remote.plan",
        "remote.check",
    ] {
        assert!(
            out.stdout.contains(&format!("mix {task} ")),
            "{task} not in: {}",
            out.stdout
        );
    }
}

/// Copies the files under `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a directory");
    for entry in fs::read_dir(from).expect("read a directory").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// PATH without the directories holding `program`.
fn path_without(program: &str) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<_> = std::env::split_paths(&path)
        .filter(|dir| !dir.join(program).exists())
        .collect();
    std::env::join_paths(kept)
        .expect("PATH entries")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn an_env_or_mix_remote_env_naming_another_environment_than_mix_env_is_refused() {
    let project = Project::new(&package());
    let plan = |args: &[&str], variable: Option<&str>| {
        let mut mix = project.mix(&["remote.plan", "Proj.hello"]);
        mix.args(args);
        if let Some(env) = variable {
            mix.env("MIX_REMOTE_ENV", env);
        }
        testkit::run_within(mix, LIMIT)
    };
    let refused = |said: &str| {
        format!(
            "mix remote.plan: error: {said} is not MIX_ENV (dev): run `MIX_ENV=prod mix \
             remote.plan` instead"
        )
    };
    for (args, variable, said) in [
        (&["--env", "prod"][..], None, "--env prod"),
        (&["--env=prod"], Some("dev"), "--env prod"),
        (&[], Some("prod"), "MIX_REMOTE_ENV=prod"),
    ] {
        let out = plan(args, variable);
        assert_eq!(out.code, Some(2), "{args:?} {variable:?}: {}", out.stderr);
        assert_eq!(lines(&out.stderr), [refused(said)], "{args:?} {variable:?}");
    }
    // Naming Mix's own, or the flag beating the variable, it plans.
    for (args, variable) in [(&["--env", "dev"][..], Some("prod")), (&[], Some("dev"))] {
        let out = plan(args, variable);
        assert_eq!(out.code, Some(0), "{args:?} {variable:?}: {}", out.stderr);
        assert!(out.stdout.contains("Proj.hello"), "{}", out.stdout);
    }
}
