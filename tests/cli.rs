//! What users meet around a run: the project compiled first (and a stale build named when it is
//! not), `init` matching the build, "did you mean", colours, hints, help and completions. Real
//! `mix` projects, a real sshd where something runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::{MixRemote, Output, Sshd};

/// A copy of the demo fixture's sources (no build) in a temporary directory.
fn uncompiled_demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let copied = Command::new("cp")
        .arg("-r")
        .args(["mix.exs", "lib", "src"].map(|f| source.join(f)))
        .arg(dir.path())
        .status()
        .expect("run cp");
    assert!(copied.success());
    dir
}

/// mix-remote in `dir` with `args`.
fn tool(dir: &Path, args: &[&str]) -> MixRemote {
    let mut tool = testkit::mix_remote(dir);
    tool.args(args);
    tool
}

/// Rewrites `file` of `project`, replacing `from` by `to`, a second after anything before (Mix
/// and the staleness check compare modification times).
fn edit(project: &Path, file: &str, from: &str, to: &str) {
    std::thread::sleep(Duration::from_millis(1100));
    let path = project.join(file);
    let text = std::fs::read_to_string(&path).expect("read the source");
    assert!(text.contains(from), "{from} not in {file}");
    std::fs::write(&path, text.replace(from, to)).expect("write the source");
}

/// The lines of `stderr` that are warnings.
fn warnings(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("mix-remote: warning: "))
        .collect()
}

#[test]
fn run_compiles_first_so_the_code_as_edited_runs() {
    let sshd = Sshd::start();
    let project = uncompiled_demo();
    let echo = |extra: &[&str]| {
        let out = testkit::mix_remote(project.path())
            .run_on(&sshd)
            .args(extra)
            .args(["Demo.Worker.echo", "--", "1", "2", "3"])
            .run();
        sshd.assert_no_session_processes();
        out
    };
    let out = echo(&[]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{1, 2, 3}\n"),
        "a project never compiled: {}",
        out.stderr
    );
    assert_eq!(out.stderr, "", "Mix's output is shown only on failure");

    let worker = "lib/demo/worker.ex";
    edit(project.path(), worker, "do: {a, b, c}", "do: {c, b, a}");
    let out = echo(&[]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{3, 2, 1}\n"),
        "{}",
        out.stderr
    );

    // Not compiled: the old code runs, and a warning names the source that changed.
    edit(project.path(), worker, "do: {c, b, a}", "do: {b, a, c}");
    for out in [
        echo(&["--no-compile"]),
        testkit::mix_remote(project.path())
            .run_on(&sshd)
            .env("MIX_REMOTE_NO_COMPILE", "true")
            .args(["Demo.Worker.echo", "--", "1", "2", "3"])
            .run(),
    ] {
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "{3, 2, 1}\n"),
            "{}",
            out.stderr
        );
        assert_eq!(
            warnings(&out),
            [
                "mix-remote: warning: _build/dev is older than lib/demo/worker.ex: the old code \
              will run (compile it with `MIX_ENV=dev mix compile`)"
            ]
        );
    }
    sshd.assert_no_session_processes();
}

#[test]
fn a_compile_error_is_bad_input_with_mixs_message_and_nothing_connects() {
    let project = uncompiled_demo();
    std::fs::write(
        project.path().join("lib/broken.ex"),
        "defmodule Broken do\n  def x, do: undefined_thing()\nend\n",
    )
    .expect("write a broken source");
    for args in [
        &[
            "run",
            "Demo.Worker.echo",
            "--host",
            "nowhere",
            "-o",
            "ProxyCommand=false",
        ][..],
        &["plan", "Demo.Worker.echo"],
    ] {
        let out = tool(project.path(), args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        let first = out.stderr.lines().next().unwrap_or_default();
        let dir = project.path().canonicalize().expect("canonical");
        assert_eq!(
            first,
            format!(
                "mix-remote: error: `mix compile` failed in {} (MIX_ENV=dev):",
                dir.display()
            )
        );
        assert!(
            out.stderr
                .contains("== Compilation error in file lib/broken.ex ==")
                && out.stderr.contains("undefined_thing"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stdout, "");
        out.assert_local_clean();
    }
}

#[test]
fn parallel_runs_on_one_project_take_turns_to_compile_it() {
    let project = uncompiled_demo();
    let runs: Vec<_> = (0..3)
        .map(|_| tool(project.path(), &["plan", "Demo.Worker.process"]).spawn())
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|r| r.finish()).collect();
    for out in &outs {
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout, outs[0].stdout);
        assert_eq!(out.stderr, "");
    }
}

#[test]
fn without_a_local_mix_a_stale_build_is_a_warning() {
    let project = uncompiled_demo();
    let out = tool(project.path(), &["plan", "Demo.Worker.echo"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    edit(project.path(), "mix.exs", "deps: []", "deps: [] ");
    // A PATH without mix (plan needs nothing else).
    let empty = tempfile::tempdir().expect("an empty directory");
    let out = tool(project.path(), &["plan", "Demo.Worker.echo"])
        .env("PATH", empty.path())
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        warnings(&out),
        [
            "mix-remote: warning: _build/dev is older than mix.exs: the old code will run (there \
          is no `mix` on this machine to compile it)"
        ]
    );
    assert!(out.stdout.contains("Demo.Worker"), "{}", out.stdout);
}

#[test]
fn a_first_run_after_init_reads_the_build_plain_mix_compile_made() {
    let sshd = Sshd::start();
    let project = uncompiled_demo();
    let compiled = Command::new("mix")
        .arg("compile")
        .current_dir(project.path())
        .env_remove("MIX_ENV")
        .output()
        .expect("run mix compile");
    assert!(compiled.status.success(), "{compiled:?}");
    let out = tool(project.path(), &["init", "--host", &sshd.host()]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let config = std::fs::read_to_string(project.path().join("mix-remote.yaml")).expect("read");
    assert!(
        config.contains("\n  mix_env: dev      # the build in _build/dev\n"),
        "{config}"
    );
    // Nothing compiled for the run: it reads the build that was there.
    let out = tool(
        project.path(),
        &["run", "--group", "servers", "--no-compile", "-F"],
    )
    .arg(sshd.ssh_config())
    .args(["Demo.Worker.echo", "--", "1", "2", "3"])
    .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{1, 2, 3}\n"),
        "{}",
        out.stderr
    );
    assert!(!project.path().join("_build/prod").exists());
    sshd.assert_no_session_processes();
}
