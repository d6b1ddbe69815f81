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

    // `eval`, a script and `iex` compile first as well.
    let script = project.path().join("echo.exs");
    std::fs::write(&script, "IO.inspect(Demo.Worker.echo(1, 2, 3))\n").expect("write a script");
    edit(project.path(), worker, "do: {c, b, a}", "do: {a, c, b}");
    let evaluated = testkit::mix_remote(project.path())
        .args([
            "eval",
            "Demo.Worker.echo(1, 2, 3)",
            "--host",
            &sshd.host(),
            "-F",
        ])
        .arg(sshd.ssh_config())
        .run();
    let scripted = testkit::mix_remote(project.path())
        .run_on(&sshd)
        .arg("echo.exs")
        .run();
    for out in [evaluated, scripted] {
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(0), "{1, 3, 2}\n", ""),
        );
    }
    edit(project.path(), worker, "do: {a, c, b}", "do: {c, a, b}");
    let session = testkit::mix_remote(project.path())
        .args(["iex", "--host", &sshd.host(), "-F"])
        .arg(sshd.ssh_config())
        .stdin("Demo.Worker.echo(1, 2, 3)\n")
        .run();
    assert_eq!((session.code, session.stderr.as_str()), (Some(0), ""));
    assert!(
        session
            .stdout
            .lines()
            .any(|l| l == "iex(demo@127.0.0.1)1> {3, 1, 2}"),
        "{}",
        session.stdout
    );

    // Not compiled: the old code runs, and a warning names the source that changed.
    edit(project.path(), worker, "do: {c, a, b}", "do: {b, a, c}");
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
            (Some(0), "{3, 1, 2}\n"),
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
fn compile_false_of_the_file_gives_way_to_compile_and_to_the_variable_set_false() {
    let project = uncompiled_demo();
    let config = "defaults:\n  compile: false\n";
    std::fs::write(project.path().join("mix-remote.yaml"), config).expect("write the config");
    let plan = |args: &[&str], variable: Option<&str>| {
        let mut tool = tool(project.path(), &["plan", "Demo.Worker.echo"]);
        tool.args(args);
        if let Some(value) = variable {
            tool.env("MIX_REMOTE_NO_COMPILE", value);
        }
        tool.run()
    };
    let out = plan(&[], None);
    assert_eq!(out.code, Some(2), "the file's word: no compile");
    assert!(out.stderr.contains("no compiled build"), "{}", out.stderr);
    // The flag beats the variable, which beats the file.
    let worker = "lib/demo/worker.ex";
    let compiled = [
        (&["--compile"][..], Some("true"), "do: {c, b, a}"),
        (&[], Some("false"), "do: {b, c, a}"),
        (&[], Some("0"), "do: {a, b, c}"),
    ];
    let mut was = "do: {a, b, c}";
    for (args, variable, now) in compiled {
        let out = plan(args, variable);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (Some(0), ""),
            "{args:?} {variable:?}"
        );
        edit(project.path(), worker, was, now);
        was = now;
    }
    let out = plan(&["--no-compile"], Some("false"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(warnings(&out).len(), 1, "not compiled: {}", out.stderr);
    // Typed together, the two flags conflict, in either order.
    for (first, then) in [("--compile", "--no-compile"), ("--no-compile", "--compile")] {
        let out = plan(&[first, then], None);
        assert_eq!(out.code, Some(2));
        let conflict = format!("error: the argument '{first}' cannot be used with '{then}'");
        assert!(out.stderr.starts_with(&conflict), "{}", out.stderr);
    }
}

#[test]
fn graph_reads_the_build_as_it_is_and_warns_when_a_source_is_newer() {
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    let graph_with = |before: &[&str], after: &[&str]| {
        let out = tool(project, before)
            .args(["graph", "--format", "json"])
            .args(after)
            .run();
        assert_eq!(out.code, Some(0), "{before:?} {after:?}: {}", out.stderr);
        assert!(out.stdout.contains("\"Demo.Worker\""), "{}", out.stdout);
        out
    };
    let graph = || graph_with(&[], &[]);
    assert_eq!(warnings(&graph()), Vec::<&str>::new());
    edit(
        project,
        "lib/demo/worker.ex",
        "do: {a, b, c}",
        "do: {c, a, b}",
    );
    assert_eq!(
        warnings(&graph()),
        [
            "mix-remote: warning: _build/dev is older than lib/demo/worker.ex: the graph is the \
             old code's (compile it with `MIX_ENV=dev mix compile`)"
        ]
    );
    // Silenced as for the other commands, by either flag, before the command or after it.
    for flag in ["--no-warnings", "-q"] {
        assert_eq!(graph_with(&[flag], &[]).stderr, "", "{flag} before");
        assert_eq!(graph_with(&[], &[flag]).stderr, "", "{flag} after");
    }
}

#[test]
fn warnings_false_of_the_file_gives_way_to_warnings_typed_before_or_after_the_command() {
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    std::fs::write(
        project.join("mix-remote.yaml"),
        "defaults:\n  warnings: false\n",
    )
    .expect("write the config");
    edit(
        project,
        "lib/demo/worker.ex",
        "do: {a, b, c}",
        "do: {c, a, b}",
    );
    let graph = |before: &[&str], after: &[&str]| {
        tool(project, before)
            .args(["graph", "--format", "json"])
            .args(after)
            .run()
    };
    let out = graph(&[], &[]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(0), ""),
        "the file's word"
    );
    let stale = "mix-remote: warning: _build/dev is older than lib/demo/worker.ex";
    for (before, after) in [(&["--warnings"][..], &[][..]), (&[], &["--warnings"])] {
        let out = graph(before, after);
        assert_eq!(out.code, Some(0), "{before:?} {after:?}: {}", out.stderr);
        assert_eq!(
            warnings(&out).len(),
            1,
            "{before:?} {after:?}: {}",
            out.stderr
        );
        assert!(out.stderr.starts_with(stale), "{}", out.stderr);
    }
    // With a flag that silences them, on either side of the command, it conflicts.
    for (before, after, first, then) in [
        (
            &[][..],
            &["--warnings", "--no-warnings"][..],
            "--warnings",
            "--no-warnings",
        ),
        (&["-q"], &["--warnings"], "--quiet", "--warnings"),
        (
            &["--warnings"],
            &["--no-warnings"],
            "--warnings",
            "--no-warnings",
        ),
        (
            &["--no-warnings"],
            &["--warnings"],
            "--no-warnings",
            "--warnings",
        ),
    ] {
        let out = graph(before, after);
        assert_eq!(out.code, Some(2), "{before:?} {after:?}: {}", out.stderr);
        let conflict = format!("error: the argument '{first}' cannot be used with '{then}'");
        assert!(out.stderr.starts_with(&conflict), "{}", out.stderr);
    }
}

#[test]
fn plan_without_an_entry_plans_the_entry_of_the_file_as_run_takes_it() {
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    let plan = |args: &[&str]| tool(project, &["plan", "--no-compile"]).args(args).run();
    let out = plan(&[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "mix-remote: error: no entry function: name one (mix-remote plan \
         MyApp.Module.function) or set `entry` in mix-remote.yaml\n"
    );
    let config = project.join("mix-remote.yaml");
    std::fs::write(&config, "defaults:\n  entry: Demo.Worker.echo\n").unwrap();
    let named = plan(&["Demo.Worker.echo"]);
    assert_eq!(named.code, Some(0), "{}", named.stderr);
    for json in [&[][..], &["--json"]] {
        let out = plan(json);
        assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{json:?}");
        let typed = plan(&[&["Demo.Worker.echo"][..], json].concat());
        assert_eq!(out.stdout, typed.stdout, "{json:?}");
    }
    // The entry typed beats the file's; the file's, when the build lacks it, is named by its key.
    let other = plan(&["Demo.Worker.process"]);
    assert!(
        other
            .stdout
            .starts_with("Push order for Demo.Worker.process "),
        "{}",
        other.stdout
    );
    std::fs::write(&config, "defaults:\n  entry: Demo.Wroker.echo\n").unwrap();
    let out = plan(&[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let key = format!(
        "mix-remote: error: {}: `defaults.entry`: module Demo.Wroker is not in this project's \
         _build (did you mean Demo.Worker?)",
        config.canonicalize().unwrap().display()
    );
    assert!(out.stderr.starts_with(&key), "{}", out.stderr);
}

#[test]
fn a_build_not_compiled_for_the_environment_says_how_to_compile_that_environment() {
    let staged = testkit::staged_fixture("demo", "dev");
    for (args, env) in [
        (&["graph", "--env", "prod"][..], "prod"),
        (
            &[
                "plan",
                "Demo.Worker.echo",
                "--no-compile",
                "--env",
                "staging",
            ],
            "staging",
        ),
    ] {
        let out = tool(staged.path(), args).run();
        let said = format!(
            "_build/{env}: run `MIX_ENV={env} mix compile` first (or pass --project / --env)"
        );
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&said), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_mix_remote_yaml_found_above_a_directory_without_mix_exs_is_no_project_and_says_so() {
    // A monorepo's mix-remote.yaml at its root, above the Mix project the command runs in.
    let mono = tempfile::tempdir().expect("temporary directory");
    std::fs::write(mono.path().join("mix-remote.yaml"), "groups:\n  web: [a]\n").unwrap();
    let project = mono.path().join("apps/x");
    std::fs::create_dir_all(&project).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let copied = Command::new("cp")
        .arg("-r")
        .args(["mix.exs", "lib", "src"].map(|f| source.join(f)))
        .arg(&project)
        .status()
        .expect("run cp");
    assert!(copied.success());
    let root = mono.path().canonicalize().unwrap();
    for args in [&["plan", "Demo.Worker.echo"][..], &["graph"]] {
        let out = tool(&project, args).run();
        assert_eq!(
            error_line(&out, 2),
            format!(
                "no compiled build at {}, and {} is no Mix project (no mix.exs): pass --project \
                 DIR, the Mix project (the default is the directory of a mix-remote.yaml found \
                 from here, else .)",
                root.join("_build/dev").display(),
                root.display()
            ),
            "{args:?}"
        );
    }
}

#[test]
fn a_compile_error_is_bad_input_with_mixs_message_and_nothing_connects() {
    let project = uncompiled_demo();
    std::fs::write(
        project.path().join("lib/broken.ex"),
        "defmodule Broken do\n  def x, do: undefined_thing()\nend\n",
    )
    .expect("write a broken source");
    std::fs::write(project.path().join("echo.exs"), "IO.puts(:never)\n").expect("write a script");
    for args in [
        &[
            "run",
            "Demo.Worker.echo",
            "--host",
            "nowhere",
            "-o",
            "ProxyCommand=false",
        ][..],
        &[
            "eval",
            "Demo.Worker.echo(1, 2, 3)",
            "--host",
            "nowhere",
            "-o",
            "ProxyCommand=false",
        ],
        &[
            "run",
            "echo.exs",
            "--host",
            "nowhere",
            "-o",
            "ProxyCommand=false",
        ],
        &["iex", "--host", "nowhere", "-o", "ProxyCommand=false"],
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

/// The demo fixture's sources with a module whose compile, when `COMPILE_MARKER` names a file,
/// writes there the OS pid of the BEAM compiling it, then starts a program that writes its own
/// and waits 10 minutes: as the BEAM starts the programs of ports (a `make` building a NIF), in
/// a session of its own. Each compile it is part of waits so; none is finished.
fn slow_to_compile_demo() -> tempfile::TempDir {
    let project = uncompiled_demo();
    std::fs::write(
        project.path().join("lib/slow_compile.ex"),
        r#"defmodule Demo.SlowCompile do
  if marker = System.get_env("COMPILE_MARKER") do
    File.write!(marker, System.pid() <> "\n")
    System.cmd("sh", ["-c", ~S(echo $$ >> "$0"; exec sleep 600), marker])
  end
end
"#,
    )
    .expect("write the slow module");
    project
}

/// Waits until the compile of a [`slow_to_compile_demo`] has written both pids to `marker`: the
/// BEAM compiling and the program it started; returns them.
fn compiling(marker: &Path) -> [u32; 2] {
    let deadline = std::time::Instant::now() + testkit::RUN_LIMIT;
    loop {
        let text = std::fs::read_to_string(marker).unwrap_or_default();
        let pids: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        if let ([beam, program], true) = (pids.as_slice(), text.ends_with('\n')) {
            return [*beam, *program];
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the compile never started: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Panics unless each of `pids` is gone (or a zombie: dead, not yet reaped) within testkit's
/// cleanup limit.
fn assert_gone(pids: &[u32], what: &str) {
    let alive = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let state = stat
                .rfind(')')
                .and_then(|end| stat[end + 1..].trim_start().chars().next());
            !matches!(state, Some('Z' | 'X'))
        })
    };
    let deadline = std::time::Instant::now() + testkit::CLEANUP_LIMIT;
    while pids.iter().any(alive) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: left running: {:?}",
            pids.iter().filter(|p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_signal_while_mix_compiles_stops_the_compile_and_ends_as_interrupted() {
    let project = slow_to_compile_demo();
    let marker = project.path().join("compiling");
    let unreachable = ["--host", "nowhere", "-o", "ProxyCommand=false"];
    // SIGTERM or SIGINT to the tool alone, as `timeout`, a CI cancellation or `kill` send it;
    // SIGHUP as a terminal that closes sends it to the foreground group, the tool alone.
    let cases: [(&str, &[&str], bool); 6] = [
        ("TERM", &["run", "Demo.Worker.echo", "--json"], true),
        ("HUP", &["run", "Demo.Worker.echo", "--json"], true),
        (
            "INT",
            &["eval", "Demo.Worker.echo(1, 2, 3)", "--json"],
            true,
        ),
        ("TERM", &["iex"], false),
        ("TERM", &["plan", "Demo.Worker.echo", "--json"], true),
        ("INT", &["plan", "Demo.Worker.echo"], false),
    ];
    for (signal, args, json) in cases {
        let _ = std::fs::remove_file(&marker);
        let mut run = tool(project.path(), args);
        if args[0] != "plan" {
            run.args(unreachable);
        }
        let run = run.env("COMPILE_MARKER", &marker).spawn();
        let pids = compiling(&marker);
        run.signal(signal);
        let out = run.finish();
        let case = format!("{signal} to {args:?}");
        assert_eq!(out.code, Some(130), "{case}: {}", out.stderr);
        assert_eq!(
            out.stderr, "mix-remote: error: interrupted: `mix compile` stopped\n",
            "{case}"
        );
        if json {
            let events: Vec<&str> = out.stdout.lines().collect();
            assert_eq!(
                events,
                [
                    "{\"event\":\"phase_started\",\"host\":null,\"phase\":\"compile\",\
                     \"message\":\"compiling (mix compile, MIX_ENV=dev)\"}",
                    "{\"event\":\"error\",\"host\":null,\"message\":\"interrupted: `mix \
                     compile` stopped\"}",
                    "{\"event\":\"summary\",\"hosts\":0,\"failed\":0,\"exit_code\":130}",
                ],
                "{case}"
            );
        } else {
            assert_eq!(out.stdout, "", "{case}");
        }
        // Mix, and the program its compile started in a session of its own.
        assert_gone(&pids, &case);
        out.assert_local_clean();
    }

    // At a terminal, Ctrl-C: the spinner is taken off, the line says what happened.
    let _ = std::fs::remove_file(&marker);
    let term = tool(project.path(), &["run", "Demo.Worker.echo"])
        .args(unreachable)
        .env("COMPILE_MARKER", &marker)
        .spawn_in_pty();
    let pids = compiling(&marker);
    term.wait_until("the compile's spinner", |s| {
        testkit::has_spinner(&s.contents())
    });
    term.send("\x03");
    let out = term.finish();
    assert_eq!(out.code, Some(130), "{}", out.stdout);
    assert!(!testkit::has_spinner(&out.stdout), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "mix-remote: error: interrupted: `mix compile` stopped"),
        "{}",
        out.stdout
    );
    assert_gone(&pids, "Ctrl-C");

    // Nothing holds the project: the next run compiles it.
    let out = tool(project.path(), &["plan", "Demo.Worker.echo"]).run();
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
}

#[test]
fn a_tool_killed_outright_while_mix_compiles_takes_mix_with_it() {
    let project = slow_to_compile_demo();
    let marker = project.path().join("compiling");
    let run = tool(project.path(), &["plan", "Demo.Worker.echo"])
        .env("COMPILE_MARKER", &marker)
        .spawn();
    let [beam, program] = compiling(&marker);
    // No handler of the tool's runs: the kernel kills Mix as the tool dies.
    run.signal("KILL");
    let out = run.finish();
    assert_eq!(out.code, None, "{}", out.stderr);
    assert_gone(&[beam], "SIGKILL");
    // What the compile started in a session of its own stays (README, Limits): ours to end.
    testkit::signal("KILL", &[program]);
    assert_gone(&[program], "the test's cleanup");

    // Nothing holds the project: the next run compiles it.
    let out = tool(project.path(), &["plan", "Demo.Worker.echo"]).run();
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
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
        config.contains("\n  mix_env: \"dev\"      # the environment built\n"),
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

/// mix-remote in the compiled demo fixture, `run`ning `args` on a host nothing can reach
/// (`ProxyCommand=false`): whatever fails, fails before anything connects.
fn run_unreachable(args: &[&str]) -> Output {
    let demo = testkit::compiled_fixture("demo");
    let out = tool(
        &demo,
        &["run", "--host", "nowhere", "-o", "ProxyCommand=false"],
    )
    .args(args)
    .run();
    out.assert_local_clean();
    out
}

/// The one error line of a run that failed with `code`.
fn error_line(out: &Output, code: i32) -> String {
    assert_eq!(out.code, Some(code), "{}", out.stderr);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("mix-remote: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    errors[0]
        .trim_start_matches("mix-remote: error: ")
        .to_owned()
}

#[test]
fn misspelt_names_get_the_nearest_one_and_module_or_stdlib_entries_say_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["Demo.Wroker.process", "--", "1", "2"],
            "module Demo.Wroker is not in this project's _build (did you mean Demo.Worker?)",
        ),
        (
            &["Demo.Worker.proces", "--", "1", "2"],
            "Demo.Worker.proces/2 is not exported by Demo.Worker (did you mean process/2?)",
        ),
        (
            &[":demo_erl.ad", "--", "1", "2"],
            ":demo_erl.ad/2 is not exported by :demo_erl (did you mean add/2?)",
        ),
        (
            &["Demo.Worker"],
            "Demo.Worker is a module, and a function of it is missing: name one, e.g. \
             Demo.Worker.ask (it exports ask/0, crash_node/0, deep_output/1, echo/3, fail/1, \
             linked_crash/0, and ",
        ),
        // A module alone that the build lacks: a misspelling, or a function written capitalised.
        (
            &["Demo.Wroker"],
            "module Demo.Wroker is not in this project's _build (did you mean Demo.Worker?)",
        ),
        (
            &["Demo.Worker.Echo"],
            "module Demo.Worker.Echo is not in this project's _build (did you mean the function \
             Demo.Worker.echo?)",
        ),
        (
            &["Enum.sum", "--", "[1, 2]"],
            "Enum.sum is in the standard library of Elixir, not in this project: mix-remote \
             calls the project's own functions (write one that calls it)",
        ),
        (
            &["Demo.Worker.echo/2", "--", "1", "2", "3"],
            "Demo.Worker.echo/2 takes 2 arguments, but 3 were given after --",
        ),
    ];
    for (args, expected) in cases {
        let line = error_line(&run_unreachable(args), 2);
        assert!(line.starts_with(expected), "{args:?}: {line}");
    }
    // The arity named and the arguments given agree: the run gets as far as connecting.
    let line = error_line(
        &run_unreachable(&["Demo.Worker.echo/3", "--", "1", "2", "3"]),
        3,
    );
    assert!(line.contains("ssh to nowhere failed"), "{line}");
    let demo = testkit::compiled_fixture("demo");
    let out = tool(&demo, &["plan", "Demo.Worker.echo/3"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = tool(&demo, &["plan", "Demo.Worker.echo/1"]).run();
    assert!(
        error_line(&out, 2).starts_with("Demo.Worker.echo/1 is not exported by Demo.Worker"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_misspelt_host_or_group_of_the_config_gets_the_nearest_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        "hosts:\n  web-1:\n    address: nowhere\n    ssh_options: [ProxyCommand=false]\n\
         groups:\n  web: [web-1]\n",
    )
    .expect("write the config");
    let demo = testkit::compiled_fixture("demo");
    let run = |args: &[&str]| {
        tool(dir.path(), &["run", "--project"])
            .arg(&demo)
            .args(["-o", "ProxyCommand=false"])
            .args(args)
            .arg("Demo.Worker.echo/3")
            .args(["--", "1", "2", "3"])
            .run()
    };
    let out = run(&["--host", "web1"]);
    error_line(&out, 3);
    assert!(
        out.stderr.ends_with(
            "mix-remote: hint: web1 is not a host of mix-remote.yaml (so ssh was given it as it \
             is): did you mean web-1?\n"
        ),
        "{}",
        out.stderr
    );
    let out = run(&["--group", "wbe"]);
    let line = error_line(&out, 2);
    assert!(
        line.contains(": did you mean web? (groups there: web)"),
        "{line}"
    );
    let out = tool(
        dir.path(),
        &["check", "--host", "web1", "-o", "ProxyCommand=false"],
    )
    .run();
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean web-1?"), "{}", out.stderr);
}

#[test]
fn a_group_is_no_host_nor_a_member_of_a_group() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("mix-remote.yaml");
    std::fs::write(
        &config,
        "hosts:\n  a:\n    address: nowhere\n    ssh_options: [ProxyCommand=false]\n\
         groups:\n  web: [a]\n  frontend: [a]\n",
    )
    .expect("write the config");
    let demo = testkit::compiled_fixture("demo");
    let run = |args: &[&str]| {
        tool(dir.path(), &["run", "--project"])
            .arg(&demo)
            .args(args)
            .arg("Demo.Worker.echo/3")
            .args(["--", "1", "2", "3"])
            .run()
    };
    // A group's name is refused as a host before anything connects (ssh was given it).
    let check = tool(
        dir.path(),
        &["check", "--host", "web", "-o", "ProxyCommand=false"],
    )
    .run();
    for out in [run(&["--host", "web"]), check] {
        assert_eq!(
            error_line(&out, 2),
            format!(
                "--host web: web is a group of {}, not a host: pass --group web (to reach an SSH \
                 destination of that name, give it a section under `hosts`)",
                config.display()
            ),
        );
    }
    // A misspelt one, given to ssh, gets the flag that names it.
    let out = run(&["--host", "frontnd"]);
    error_line(&out, 3);
    assert!(
        out.stderr.ends_with(
            "mix-remote: hint: frontnd is not a host of mix-remote.yaml (so ssh was given it as \
             it is): did you mean --group frontend?\n"
        ),
        "{}",
        out.stderr
    );
    // A group that lists a group: the file is refused where it does.
    let text = std::fs::read_to_string(&config).expect("read the config");
    std::fs::write(&config, format!("{text}  top: [web, b]\n")).expect("write the config");
    let out = tool(dir.path(), &["check", "--group", "top"]).run();
    let line = error_line(&out, 2);
    assert!(
        line.starts_with(&format!(
            "{}:8:9: `groups.top[0]`: web is a group, and groups do not nest",
            config.display()
        )),
        "{line}"
    );
}

/// mix-remote with `args` in `dir` on a terminal (a pty `script` makes), with `env`: what the
/// terminal showed, stdout and stderr together, is the output's stdout.
fn on_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut tool = testkit::mix_remote(dir);
    tool.wrapper(&["sh", "-c", "exec script -qec \"$*\" /dev/null", "sh"])
        .args(args);
    for (name, value) in env {
        tool.env(name, value);
    }
    tool.run()
}

#[test]
fn colours_on_a_terminal_as_cargo_shows_them_and_none_when_asked_not_to() {
    let project = uncompiled_demo();
    let out = tool(project.path(), &["plan", "Demo.Worker.echo"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    edit(
        project.path(),
        "lib/demo/worker.ex",
        "do: {a, b, c}",
        "do: {c, b, a}",
    );
    let colour = [("TERM", "xterm"), ("NO_COLOR", ""), ("CLICOLOR", "1")];
    let off = [
        [("TERM", "xterm"), ("NO_COLOR", "1"), ("CLICOLOR", "1")],
        [("TERM", "dumb"), ("NO_COLOR", ""), ("CI", "true")],
    ];
    // Colours are asked for with SGR sequences (`ESC [ ... m`); a terminal still gets progress.
    let coloured = |text: &str| text.contains("\x1b[1;3") || text.contains("\x1b[2m");

    // A stale build (not compiled): a warning.
    let stale = ["plan", "Demo.Worker.echo", "--no-compile"];
    let out = on_terminal(project.path(), &stale, &colour);
    assert!(
        out.stdout
            .contains("mix-remote: \x1b[1;33mwarning:\x1b[0m _build/dev is older than"),
        "{:?}",
        out.stdout
    );
    for env in &off {
        let out = on_terminal(project.path(), &stale, env);
        assert!(!coloured(&out.stdout), "{env:?}: {:?}", out.stdout);
        assert!(
            out.stdout.contains("warning: _build/dev"),
            "{:?}",
            out.stdout
        );
    }

    // Compiled, then an error.
    let failing = ["plan", "Demo.Worker.nope"];
    let out = on_terminal(project.path(), &failing, &colour);
    assert_eq!(out.code, Some(2), "{:?}", out.stdout);
    assert!(
        out.stdout
            .contains("\x1b[1;32m✓\x1b[0m compiled 1 file (mix compile, MIX_ENV=dev) \x1b[2m("),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("mix-remote: \x1b[1;31merror:\x1b[0m Demo.Worker.nope is not"),
        "{:?}",
        out.stdout
    );
    for env in &off {
        let out = on_terminal(project.path(), &failing, env);
        assert!(!coloured(&out.stdout), "{env:?}: {:?}", out.stdout);
        // Nothing is drawn on a dumb terminal, which cannot redraw a line.
        let dumb = env[0].1 == "dumb";
        assert!(
            dumb || out.stdout.contains("✓ build up to date"),
            "{:?}",
            out.stdout
        );
        assert!(!(dumb && out.stdout.contains("\x1b[")), "{:?}", out.stdout);
        assert!(
            out.stdout.contains("error: Demo.Worker.nope"),
            "{:?}",
            out.stdout
        );
    }
    let out = tool(project.path(), &failing).env("CLICOLOR", "1").run();
    assert!(!coloured(&out.stderr), "not a terminal: {:?}", out.stderr);
}

#[test]
fn the_bars_keep_their_colours_with_stdout_off_the_terminal() {
    // Styles of the bars' templates go through console, which asks about stdout by default.
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("out");
    let config = sshd.ssh_config().display().to_string();
    let host = sshd.host();
    // `script` hands the words to a shell: stdout goes to the file, stderr stays on the terminal.
    let eval = [
        "eval",
        "'Process.sleep(1500); :done'",
        "--host",
        &host,
        "-F",
        &config,
    ];
    let redirect = [">", &file.display().to_string()];
    let colour = [("TERM", "xterm"), ("NO_COLOR", ""), ("CLICOLOR", "1")];
    let out = on_terminal(&project, &[&eval[..], &redirect[..]].concat(), &colour);
    assert_eq!(out.code, Some(0), "{:?}", out.stdout);
    // The spinners, cyan (the lines of phases done are painted without console).
    assert!(out.stdout.contains("\x1b[36m"), "{:?}", out.stdout);
    let written = std::fs::read_to_string(&file).expect("the output file");
    assert_eq!(written, ":done\n");
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn with_several_hosts_each_line_names_its_host_once() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let host = |name: &str| {
        format!(
            "  {name}:\n    address: {:?}\n    ssh_config: {:?}\n",
            sshd.host(),
            sshd.ssh_config().display().to_string()
        )
    };
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        format!(
            "hosts:\n{}{}groups:\n  both: [a, b]\n",
            host("a"),
            host("b")
        ),
    )
    .expect("write the config");
    let demo = testkit::compiled_fixture("demo");
    let run = |args: &[&str]| {
        let out = tool(dir.path(), &["run", "--group", "both", "--project"])
            .arg(&demo)
            .args(args)
            .run();
        sshd.assert_no_session_processes();
        out
    };
    // Not started: Logger runs (started, demo's application would not start it).
    let out = run(&[
        "--no-start",
        "Demo.Worker.log_it",
        "--",
        "\"disk almost full\"",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let logged: Vec<&str> = out.stderr.lines().filter(|l| !l.contains("HOST")).collect();
    for name in ["a", "b"] {
        let of_host: Vec<&&str> = logged
            .iter()
            .filter(|l| l.starts_with(&format!("[{name}] ")))
            .collect();
        assert_eq!(of_host.len(), 1, "{}", out.stderr);
        assert!(
            of_host[0].ends_with(" [warning] disk almost full"),
            "{}",
            out.stderr
        );
    }

    let out = run(&["Demo.Worker.fail", "--", "\"bad input\""]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    for name in ["a", "b"] {
        assert!(
            out.stderr.contains(&format!(
                "mix-remote: error: [{name}] Demo.Worker.fail raised:\n"
            )),
            "{}",
            out.stderr
        );
    }
    let out = run(&["Demo.Smoke.check", "--expect", "ok"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "mix-remote: error: [a] Demo.Smoke.check returned {:error, {:missing_env, \
             \"DEMO_REGION\"}}, expected :ok\n"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn arguments_before_dashes_and_flags_after_them_get_a_hint() {
    let demo = testkit::compiled_fixture("demo");
    let out = tool(
        &demo,
        &["run", "Demo.Worker.echo", "--host", "x", "1", "2", "3"],
    )
    .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "tip: the function's arguments go after `--`: mix-remote run ENTRY [OPTIONS] -- 1"
        ),
        "{}",
        out.stderr
    );
    let out = tool(
        &demo,
        &["run", "Demo.Worker.echo", "--", "1", "2", "--host", "x"],
    )
    .run();
    assert_eq!(
        error_line(&out, 2),
        "`--host` comes after `--`, where every word is an argument of the function: put \
         mix-remote's flags before `--` (mix-remote run ENTRY --host ... -- ARGS)"
    );
    // An expression starting with `-` is taken for a flag; after `--` it would be an argument.
    for (expr, written) in [("-1", "(-1)"), ("-(1 + 2)", "(-(1 + 2))")] {
        let out = tool(&demo, &["eval", expr, "--host", "x"]).run();
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        let tip = format!(
            "tip: an expression starting with `-` is taken for a flag: write it in parentheses, \
             mix-remote eval '{written}' [OPTIONS]"
        );
        assert!(out.stderr.contains(&tip), "{expr}: {}", out.stderr);
        assert!(!out.stderr.contains("use '--"), "{expr}: {}", out.stderr);
    }
}

#[test]
fn a_config_typed_before_or_after_the_command_beats_mix_remote_config() {
    let demo = testkit::compiled_fixture("demo");
    let demo = demo.to_str().expect("a UTF-8 path");
    let dir = tempfile::tempdir().expect("temporary directory");
    let named = dir.path().join("named.yaml");
    std::fs::write(&named, "bogus: 1\n").expect("write the variable's config");
    let typed = dir.path().join("typed.yaml");
    std::fs::write(&typed, "defaults:\n  mix_env: dev\n").expect("write the typed config");
    let typed = typed.to_str().expect("a UTF-8 path");
    let graph = |before: &[&str], after: &[&str]| {
        tool(dir.path(), before)
            .args(["graph", "--project", demo, "--format", "json"])
            .args(after)
            .env("MIX_REMOTE_CONFIG", &named)
            .run()
    };
    let out = graph(&[], &[]);
    assert!(
        error_line(&out, 2).starts_with(&format!("{}:1:1:", named.display())),
        "the variable alone names the file: {}",
        out.stderr
    );
    for (before, after) in [
        (&["--config", typed][..], &[][..]),
        (&[], &["--config", typed]),
    ] {
        let out = graph(before, after);
        assert_eq!(out.code, Some(0), "{before:?} {after:?}: {}", out.stderr);
    }
}

#[test]
fn help_shows_examples_and_each_command_only_the_flags_it_uses() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let help = |args: &[&str]| {
        let out = tool(dir.path(), args).run();
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        out.stdout
    };
    // Bare, as cargo: the help on stdout, and success.
    let bare = tool(dir.path(), &[]).run();
    assert_eq!((bare.code, bare.stderr.as_str()), (Some(0), ""));
    assert!(
        bare.stdout.contains("Usage: mix-remote <COMMAND>"),
        "{}",
        bare.stdout
    );
    let top = help(&["--help"]);
    assert!(
        top.contains("Examples:\n  mix-remote run MyApp.Worker.process --host deploy@db-1 -- 42"),
        "{top}"
    );
    let shown = |text: &str| -> Vec<&'static str> {
        ["--quiet", "--verbose", "--config", "--no-warnings"]
            .into_iter()
            .filter(|flag| text.contains(&format!(" {flag}")))
            .collect()
    };
    for command in ["run", "plan", "check"] {
        let text = help(&[command, "--help"]);
        assert_eq!(
            shown(&text),
            ["--quiet", "--verbose", "--config", "--no-warnings"],
            "{command}"
        );
        assert!(text.contains("Examples:"), "{command}: {text}");
    }
    assert_eq!(
        shown(&help(&["graph", "--help"])),
        ["--quiet", "--verbose", "--config", "--no-warnings"]
    );
    assert_eq!(shown(&help(&["init", "--help"])), ["--quiet"]);
    // check's help names every column of its table but the verdict.
    let check = help(&["check", "--help"]);
    for column in ["BUILD LOADS", "TEMP DIR", "STALE RUNS", "130 interrupted"] {
        assert!(check.contains(column), "{column}: {check}");
    }
    // up's exit codes, as the README has them.
    let up = help(&["up", "--help"]);
    assert!(
        up.contains("4 --connect-timeout\nor --boot-timeout reached"),
        "{up}"
    );
    assert_eq!(shown(&help(&["completions", "--help"])), Vec::<&str>::new());
    let completions = help(&["completions", "-h"]);
    // The shells offered are those the README names.
    assert!(
        completions.contains("[possible values: bash, zsh, fish]"),
        "{completions}"
    );
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read the README");
    assert!(readme.contains("mix-remote completions bash|zsh|fish"));
    // Before the command, as before: still accepted.
    assert_eq!(
        tool(dir.path(), &["-q", "init", "--help"]).run().code,
        Some(0)
    );
}

/// What bash offers for `words` (the last one being completed) in `dir`, through the script
/// `mix-remote completions bash` prints, as bash runs it on TAB.
fn bash_completes(dir: &Path, words: &[&str]) -> Vec<String> {
    let script = tool(dir, &["completions", "bash"]).run();
    assert_eq!(script.code, Some(0), "{}", script.stderr);
    let file = tempfile::NamedTempFile::new().expect("a file for the script");
    std::fs::write(file.path(), &script.stdout).expect("write the script");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_TYPE=9; \
         _clap_complete_mix_remote mix-remote {} {}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.path().display(),
        quoted.join(" "),
        words.len() - 1,
        quoted[words.len() - 1],
        quoted[words.len() - 2],
    );
    let out = tool(dir, &[]).wrapper(&["bash", "-c", &program]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn completion_offers_the_projects_functions_modules_hosts_and_groups() {
    let demo = testkit::compiled_fixture("demo");
    let offered = bash_completes(&demo, &["mix-remote", "run", "Demo.Worker.e"]);
    assert_eq!(offered, ["Demo.Worker.echo"]);
    let offered = bash_completes(&demo, &["mix-remote", "plan", ":demo_erl."]);
    assert!(offered.contains(&":demo_erl.add".to_owned()), "{offered:?}");
    let offered = bash_completes(&demo, &["mix-remote", "run", "--include", "Demo.M"]);
    assert_eq!(offered, ["Demo.Money"]);
    let offered = bash_completes(&demo, &["mix-remote", "ch"]);
    assert_eq!(offered, ["check"]);

    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        "hosts:\n  web-1: {}\n  db-1: {}\ngroups:\n  web: [web-1, deploy@web-2]\n  db: [db-1]\n",
    )
    .expect("write the config");
    let offered = bash_completes(dir.path(), &["mix-remote", "run", "--host", "web"]);
    assert_eq!(offered, ["web-1"]);
    let offered = bash_completes(dir.path(), &["mix-remote", "check", "--host", "dep"]);
    assert_eq!(offered, ["deploy@web-2"]);
    let offered = bash_completes(dir.path(), &["mix-remote", "check", "--group", ""]);
    assert_eq!(offered, ["db", "web"]);
    // Every command that takes hosts offers them.
    let offered = bash_completes(dir.path(), &["mix-remote", "iex", "--host", "web"]);
    assert_eq!(offered, ["web-1"]);
    let offered = bash_completes(dir.path(), &["mix-remote", "up", "--host", "db"]);
    assert_eq!(offered, ["db-1"]);
    let offered = bash_completes(dir.path(), &["mix-remote", "down", "--group", ""]);
    assert_eq!(offered, ["db", "web"]);

    // The configuration and the project the line names, on either side of the command.
    let other = tempfile::tempdir().expect("temporary directory");
    let config = other.path().join("far.yaml");
    std::fs::write(&config, "hosts:\n  far-1: {}\n").expect("write the other config");
    let config = config.to_str().expect("a UTF-8 path");
    let offered = bash_completes(
        dir.path(),
        &["mix-remote", "run", "--config", config, "--host", "f"],
    );
    assert_eq!(offered, ["far-1"]);
    let offered = bash_completes(
        dir.path(),
        &["mix-remote", "--config", config, "down", "--host", ""],
    );
    assert_eq!(offered, ["far-1"]);
    // `--config=FILE`: three words in bash (`=` breaks words), one in zsh and fish.
    let offered = bash_completes(
        dir.path(),
        &["mix-remote", "iex", "--config", "=", config, "--host", ""],
    );
    assert_eq!(offered, ["far-1"]);
    let typed = format!("--config={config}");
    let offered = bash_completes(dir.path(), &["mix-remote", "up", &typed, "--host", ""]);
    assert_eq!(offered, ["far-1"]);
    let demo = demo.to_str().expect("a UTF-8 path");
    let offered = bash_completes(
        other.path(),
        &["mix-remote", "plan", "--project", demo, "Demo.Worker.e"],
    );
    assert_eq!(offered, ["Demo.Worker.echo"]);
    let offered = bash_completes(
        other.path(),
        &[
            "mix-remote",
            "plan",
            "--project",
            demo,
            "--env",
            "none",
            "Demo.Worker.e",
        ],
    );
    assert_eq!(offered, [""], "the demo has no _build/none");

    // An entry can be a script: the `.exs` files the word starts, and directories to go into.
    let here = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir(here.path().join("scripts")).expect("make scripts/");
    for file in [
        "seeds.exs",
        "seeds.ex",
        "scripts/fix.exs",
        "scripts/notes.txt",
    ] {
        std::fs::write(here.path().join(file), "").expect("write a file");
    }
    let entry = |command: &str, word: &str| {
        let line = ["mix-remote", command, "--project", demo, word];
        bash_completes(here.path(), &line)
    };
    for command in ["run", "plan", "graph"] {
        assert_eq!(entry(command, "se"), ["seeds.exs"], "{command}");
        assert_eq!(entry(command, "scripts/"), ["scripts/fix.exs"], "{command}");
        assert_eq!(
            entry(command, "Demo.Worker.e"),
            ["Demo.Worker.echo"],
            "{command}"
        );
        let all = entry(command, "");
        for offered in ["Demo.Worker.echo", "seeds.exs", "scripts/"] {
            assert!(
                all.iter().any(|o| o == offered),
                "{command}: {offered} in {all:?}"
            );
        }
    }
}

#[test]
fn output_to_a_reader_that_has_gone_changes_neither_the_exit_code_nor_what_is_done() {
    // stdout and stderr a pipe nobody reads any more (`| head -1` that has exited): every write
    // fails with EPIPE.
    let closed = [
        "sh",
        "-c",
        "f=\"$TMPDIR/closed\" && mkfifo \"$f\" && exec 3<>\"$f\" 4>\"$f\" 3<&- && rm \"$f\" && exec \"$@\" >&4 2>&4 4>&-",
        "sh",
    ];
    let empty = tempfile::tempdir().unwrap();
    let out = tool(empty.path(), &["run", "Foo.bar", "--host", "nowhere"])
        .wrapper(&closed)
        .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);

    let project = uncompiled_demo();
    let out = tool(project.path(), &["init", "--host", "deploy@db-1"])
        .wrapper(&closed)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(project.path().join("mix-remote.yaml").is_file());

    for args in [&["completions", "bash"][..], &[]] {
        let out = tool(project.path(), args).wrapper(&closed).run();
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
    }
    let demo = testkit::compiled_fixture("demo");
    for args in [
        &["graph"][..],
        &["plan", "Demo.Worker.echo", "--no-compile", "--json"],
        &["run", "--help"],
    ] {
        let out = tool(&demo, args).wrapper(&closed).run();
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn output_that_cannot_be_written_is_an_error_naming_stdout() {
    let full = ["sh", "-c", "exec \"$@\" > /dev/full", "sh"];
    let said = "mix-remote: error: cannot write to stdout: No space left on device (os error 28)\n";
    let demo = testkit::compiled_fixture("demo");
    let runtime = tempfile::tempdir().unwrap();
    for args in [
        &["graph"][..],
        &["graph", "Demo.Worker.echo", "--format", "json"],
        &["plan", "Demo.Worker.echo", "--no-compile"],
        &["plan", "Demo.Worker.echo", "--no-compile", "--json"],
        &["run", "--help"],
        &["--version"],
        &[],
    ] {
        let out = tool(&demo, args)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .wrapper(&full)
            .run();
        assert_eq!((out.code, out.stderr.as_str()), (Some(3), said), "{args:?}");
    }
    // init's target is its output: when it cannot be printed, init fails and writes nothing
    // (a file it would overwrite with --force stays as it was).
    let project = uncompiled_demo();
    let config = project.path().join("mix-remote.yaml");
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(project.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = files();
    let out = tool(project.path(), &["init", "--host", "deploy@db-1"])
        .wrapper(&full)
        .run();
    assert_eq!((out.code, out.stderr.as_str()), (Some(3), said));
    assert_eq!(files(), before, "init wrote something");
    std::fs::write(&config, "mine\n").unwrap();
    let before = files();
    let out = tool(project.path(), &["init", "--force"])
        .wrapper(&full)
        .run();
    assert_eq!((out.code, out.stderr.as_str()), (Some(3), said));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "mine\n");
    assert_eq!(files(), before, "init wrote something");
}

#[test]
fn a_config_path_that_is_no_plain_string_is_a_warning_naming_what_ships() {
    // Mix evaluates mix.exs; mix-remote reads it as text and says what it took instead.
    let project = uncompiled_demo();
    let mix_exs = project.path().join("mix.exs");
    let text = std::fs::read_to_string(&mix_exs).unwrap();
    let text = text.replace(
        "deps: []",
        "deps: [], config_path: Path.expand(\"config/config.exs\", __DIR__)",
    );
    std::fs::write(&mix_exs, text).unwrap();
    std::fs::create_dir(project.path().join("config")).unwrap();
    std::fs::write(project.path().join("config/config.exs"), "import Config\n").unwrap();
    let out = tool(
        project.path(),
        &["run", "--host", "nowhere", "-o", "ProxyCommand=false"],
    )
    .args([":demo_erl.add", "--", "1", "2"])
    .run();
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let warned = warnings(&out);
    assert_eq!(warned.len(), 1, "{}", out.stderr);
    assert!(
        warned[0].contains("mix.exs: config_path is set to something other than a plain string"),
        "{}",
        out.stderr
    );
    out.assert_local_clean();
}

#[test]
fn the_build_is_read_where_mix_s_variables_and_build_per_environment_put_it() {
    let project = uncompiled_demo();
    edit(
        project.path(),
        "mix.exs",
        "deps: []",
        "deps: [], build_per_environment: false",
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let root = elsewhere.path().join("root");
    let out = tool(project.path(), &["plan", "Demo.Worker.echo"])
        .env("MIX_BUILD_ROOT", &root)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("Demo.Worker"), "{}", out.stdout);
    assert!(root.join("shared/lib/demo/ebin").is_dir());
    assert!(!project.path().join("_build").exists());

    // MIX_BUILD_PATH is the build itself; a build elsewhere is not read instead.
    let path = elsewhere.path().join("path");
    let out = tool(
        project.path(),
        &["plan", "Demo.Worker.echo", "--no-compile"],
    )
    .env("MIX_BUILD_PATH", &path)
    .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("no compiled build at {}", path.display())),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("(where MIX_BUILD_PATH puts it)"),
        "{}",
        out.stderr
    );
    let out = tool(project.path(), &["plan", "Demo.Worker.echo"])
        .env("MIX_BUILD_PATH", &path)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(path.join("lib/demo/ebin").is_dir());
}

#[test]
fn up_with_a_connect_timeout_past_what_time_can_hold_fails_to_connect_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let up = |extra: &[&str]| {
        let out = tool(
            dir.path(),
            &["up", "--host", "nobody@127.0.0.1", "-o", "Port=1"],
        )
        .args(extra)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .run();
        out.assert_local_clean();
        out
    };
    let out = up(&["--connect-timeout", "18446744073709551615"]);
    assert!(error_line(&out, 3).contains("127.0.0.1"), "{}", out.stderr);
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        "defaults:\n  connect_timeout: 18446744073709551615\n",
    )
    .unwrap();
    let out = up(&[]);
    assert!(error_line(&out, 3).contains("127.0.0.1"), "{}", out.stderr);
}

#[test]
fn check_refuses_an_elixir_no_shell_can_be_given_as_bad_input_naming_where_it_was_set() {
    let dir = tempfile::tempdir().unwrap();
    let check = |extra: &[&str]| {
        let out = tool(
            dir.path(),
            &["check", "--host", "nobody@127.0.0.1", "-o", "Port=1"],
        )
        .args(extra)
        .run();
        out.assert_local_clean();
        out
    };
    let out = check(&["--elixir", "a b"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let refused = "`a b` cannot be passed to the server's shell: only letters";
    assert!(
        out.stderr.starts_with(&format!(
            "error: invalid value 'a b' for '--elixir <PATH>': {refused}"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "", "no table: no host was checked");
    let out = tool(dir.path(), &["check", "--host", "nobody@127.0.0.1"])
        .env("MIX_REMOTE_ELIXIR", "a b")
        .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let named = format!("error: invalid value 'a b' for 'MIX_REMOTE_ELIXIR': {refused}");
    assert!(out.stderr.starts_with(&named), "{}", out.stderr);
    let config = dir.path().join("mix-remote.yaml");
    std::fs::write(&config, "defaults:\n  elixir: a b\n").unwrap();
    let out = check(&[]);
    assert!(
        error_line(&out, 2).starts_with(&format!(
            "{}:2:11: `defaults.elixir`: `a b` cannot be passed to the server's shell",
            config.canonicalize().unwrap().display()
        )),
        "{}",
        out.stderr
    );
}

/// Every variable mix-remote reads for a flag.
const VARIABLES: [&str; 13] = [
    "MIX_REMOTE_HOST",
    "MIX_REMOTE_GROUP",
    "MIX_REMOTE_PARALLEL",
    "MIX_REMOTE_CONFIG",
    "MIX_REMOTE_PROJECT",
    "MIX_REMOTE_ENV",
    "MIX_REMOTE_NO_COMPILE",
    "MIX_REMOTE_ELIXIR",
    "MIX_REMOTE_SSH_CONFIG",
    "MIX_REMOTE_CONNECT_TIMEOUT",
    "MIX_REMOTE_BOOT_TIMEOUT",
    "MIX_REMOTE_PUSH_TIMEOUT",
    "MIX_REMOTE_CALL_TIMEOUT",
];

#[test]
fn variables_set_to_nothing_are_taken_as_unset() {
    let demo = testkit::compiled_fixture("demo");
    let empty = |args: &[&str]| {
        let mut tool = tool(&demo, args);
        for name in VARIABLES {
            tool.env(name, "");
        }
        let out = tool.run();
        out.assert_local_clean();
        out
    };
    let out = empty(&["plan", "Demo.Worker.echo", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("Demo.Worker"), "{}", out.stdout);
    let out = empty(&["check"]);
    assert!(
        error_line(&out, 2).starts_with("no host: pass --host"),
        "{}",
        out.stderr
    );
    // `down` ends every session with --all, which it says too.
    let runtime = tempfile::tempdir().unwrap();
    let mut down = tool(&demo, &["down"]);
    for name in VARIABLES {
        down.env(name, "");
    }
    let out = down.env("XDG_RUNTIME_DIR", runtime.path()).run();
    assert_eq!(
        error_line(&out, 2),
        "no host: pass --host [USER@]HOST or --group NAME (or set MIX_REMOTE_HOST / \
         MIX_REMOTE_GROUP), or --all for every session"
    );
    let out = empty(&[
        "run",
        "Demo.Worker.echo",
        "--host",
        "nowhere",
        "-o",
        "ProxyCommand=false",
        "--",
        "1",
        "2",
        "3",
    ]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
}

#[test]
fn down_of_a_host_without_a_session_says_so_on_stderr_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let down = |args: &[&str]| {
        tool(
            dir.path(),
            &[&["down", "--host", "typo"][..], args].concat(),
        )
        .env("XDG_RUNTIME_DIR", dir.path())
        .run()
    };
    let out = down(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "mix-remote: no session for typo\n");
    assert_eq!(out.stdout, "");
    let out = down(&["-q"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
}

#[test]
fn an_empty_module_to_include_is_bad_input_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let why = "an empty module name: give a module, MyApp.Mod or :erlang_mod";
    for module in ["", " "] {
        let out = tool(dir.path(), &["plan", "A.b", "--include", module]).run();
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        let said = format!("error: invalid value '{module}' for '--include <MODULE>': {why}");
        assert_eq!(
            out.stderr.lines().next(),
            Some(said.as_str()),
            "{}",
            out.stderr
        );
    }
    // In mix-remote.yaml, the error points at the item (its line, column and index), not at the
    // list, as it does for an item of another type.
    let config = dir.path().join("mix-remote.yaml");
    for (text, at) in [
        ("defaults:\n  include: [Demo.Worker, \"\"]\n", "2:26"),
        (
            "hosts:\n  a:\n    include:\n      - Demo.Worker\n      - \" \"\n",
            "5:9",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = tool(dir.path(), &["plan", "A.b"]).run();
        let key = match text.starts_with("hosts") {
            true => "hosts.a.include[1]",
            false => "defaults.include[1]",
        };
        assert_eq!(
            error_line(&out, 2),
            format!("{}:{at}: `{key}`: {why}", config.display())
        );
    }
}

#[test]
fn an_empty_host_group_or_build_environment_is_bad_input_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (&["check", "--host", "a,"][..], "--host <HOST>"),
        (&["run", "A.b", "--host", "a,,b"], "--host <HOST>"),
        (&["iex", "--host", ","], "--host <HOST>"),
        (&["check", "--group", ","], "--group <NAME>"),
        (&["plan", "A.b", "--env", ""], "--env <ENV>"),
        (&["graph", "--env", "../x"], "--env <ENV>"),
        (&["run", "A.b", "--host", "a", "--env", ".."], "--env <ENV>"),
        (&["check", "--host", "a", "--env", "."], "--env <ENV>"),
    ] {
        let out = tool(dir.path(), args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: invalid value '")
                && out.stderr.contains(&format!("' for '{flag}': ")),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = tool(dir.path(), &["check"])
        .env("MIX_REMOTE_HOST", "a,")
        .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("'MIX_REMOTE_HOST'"), "{}", out.stderr);
    // MIX_ENV too, and mix_env: of the file, each named.
    let out = tool(dir.path(), &["plan", "A.b", "--no-compile"])
        .env("MIX_ENV", "/etc")
        .run();
    assert_eq!(
        (out.code, out.stderr.lines().next()),
        (
            Some(2),
            Some(
                "mix-remote: error: MIX_ENV `/etc`: a Mix environment names a directory of \
                 _build/: it cannot be empty, hold a `/`, or be `.` or `..`"
            )
        ),
        "{}",
        out.stderr
    );
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        "defaults:\n  mix_env: \"\"\n",
    )
    .unwrap();
    let out = tool(dir.path(), &["plan", "A.b", "--no-compile"]).run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("mix-remote.yaml:2:12: `defaults.mix_env`: a Mix environment"),
        "{}",
        out.stderr
    );
}

#[test]
fn blanks_around_a_name_of_a_list_are_left_out() {
    // `--host 'a, b'` names host `b`, which mix-remote.yaml defines, not ` b`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        "hosts:\n  a:\n    address: nobody@127.0.0.1\n  b:\n    address: nobody@127.0.0.1\n",
    )
    .unwrap();
    let out = tool(
        dir.path(),
        &["check", "--host", "a, b", "--json", "-o", "Port=1"],
    )
    .run();
    assert_eq!(checked_hosts(&out), ["a", "b"], "{}", out.stdout);
}

/// The hosts a `check --json` reported on, from its `check` events, sorted.
fn checked_hosts(out: &Output) -> Vec<String> {
    let mut hosts: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "check")
        .map(|e| e["host"].as_str().unwrap_or_default().to_owned())
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn a_host_or_group_typed_chooses_the_hosts_alone_over_both_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        "hosts:\n  a:\n    address: nobody@127.0.0.1\n  b:\n    address: nobody@127.0.0.1\n  \
         c:\n    address: nobody@127.0.0.1\ngroups:\n  web: [a, b]\n  db: [c]\n",
    )
    .unwrap();
    // The hosts `check` checks (it reaches none: port 1), from its events.
    let checked = |env: &[(&str, &str)], args: &[&str]| {
        let mut check = tool(dir.path(), &["check", "--json", "-o", "Port=1"]);
        check.args(args);
        for (name, value) in env {
            check.env(name, value);
        }
        let out = check.run();
        let hosts = checked_hosts(&out);
        assert!(!hosts.is_empty(), "{env:?} {args:?}: {}", out.stderr);
        hosts
    };
    let (group, host) = (("MIX_REMOTE_GROUP", "web"), ("MIX_REMOTE_HOST", "c"));
    assert_eq!(checked(&[group], &["--host", "c"]), ["c"]);
    assert_eq!(checked(&[group], &["--host=c"]), ["c"]);
    assert_eq!(checked(&[host], &["--group", "web"]), ["a", "b"]);
    assert_eq!(checked(&[host, group], &["--host", "a"]), ["a"]);
    assert_eq!(checked(&[group], &["--group", "db"]), ["c"]);
    // A variable not read is not checked either.
    assert_eq!(
        checked(&[("MIX_REMOTE_HOST", "a,")], &["--group", "db"]),
        ["c"]
    );
    // Without either flag, the variables add up, as the flags do.
    assert_eq!(checked(&[host, group], &[]), ["a", "b", "c"]);
    assert_eq!(
        checked(&[], &["--host", "c", "--group", "web"]),
        ["a", "b", "c"]
    );
    // `iex` too, which takes one host.
    let iex = |args: &[&str]| {
        tool(dir.path(), &["iex", "-o", "Port=1"])
            .args(args)
            .env("MIX_REMOTE_GROUP", "web")
            .run()
    };
    let out = iex(&[]);
    assert!(
        out.stderr
            .contains("iex works on one host, and 2 are chosen"),
        "{}",
        out.stderr
    );
    let out = iex(&["--host", "c"]);
    assert!(
        !out.stderr.contains("iex works on one host"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_argument_that_is_not_utf8_is_one_line_naming_it_and_bad_input() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let bad = OsStr::from_bytes(b"\xff");
    let out = tool(dir.path(), &["run", "--host", "h", "M.f", "--"])
        .arg(bad)
        .run();
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            Some(2),
            "mix-remote: error: argument 1 after --, \"\\xFF\", is not UTF-8 (a function takes \
             such bytes as escapes in an Elixir string: '\"\\xFF\"')\n"
        )
    );
    let out = tool(dir.path(), &["run", "M.f", "--json", "--host"])
        .arg(bad)
        .run();
    assert_eq!(
        error_line(&out, 2),
        "--host \"\\xFF\": not UTF-8 (mix-remote reads flags, names and entries as UTF-8 text)"
    );
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    assert_eq!(events.len(), 2, "{}", out.stdout);
    assert_eq!(events[0]["event"], "error");
    assert_eq!(events[1]["exit_code"], 2);
}

#[test]
fn with_json_an_error_clap_reports_is_an_error_and_a_summary_event_too() {
    let dir = tempfile::tempdir().unwrap();
    for (args, said) in [
        (
            &["run", "X.y", "--json", "--call-timeout", "0"][..],
            "invalid value '0' for '--call-timeout <SECS>'",
        ),
        (&["check", "--json", "--host", "a,"], "for '--host <HOST>'"),
        (
            &["eval", "--json"],
            "the following required arguments were not provided: <EXPR>",
        ),
        (&["-q", "eval", "1", "--json", "--bogus"], "'--bogus'"),
        (
            &["check", "--json", "--include", "X"],
            "'--include' found; tip: --include has no use in `check`",
        ),
    ] {
        let out = tool(dir.path(), args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
        let events: Vec<serde_json::Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON event"))
            .collect();
        assert_eq!(events.len(), 2, "{args:?}: {}", out.stdout);
        assert_eq!(
            (&events[0]["event"], &events[0]["host"]),
            (&"error".into(), &serde_json::Value::Null),
            "{args:?}"
        );
        let message = events[0]["message"].as_str().unwrap();
        assert!(message.contains(said), "{args:?}: {message}");
        assert!(!message.starts_with("error"), "{args:?}: {message}");
        assert_eq!(
            events[1],
            serde_json::json!({"event": "summary", "hosts": 0, "failed": 0, "exit_code": 2}),
            "{args:?}"
        );
    }
    // Not asked for, or given to a command without it: no events.
    for args in [
        &["run", "X.y", "--call-timeout", "0"][..],
        &["graph", "--json"],
        &["run", "X.y", "--call-timeout", "0", "--", "--json"],
    ] {
        let out = tool(dir.path(), args).run();
        assert_eq!((out.code, out.stdout.as_str()), (Some(2), ""), "{args:?}");
    }
}

#[test]
fn a_flag_a_command_has_no_use_for_is_refused_saying_why_and_its_variable_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let unreachable = ["--host", "nobody@127.0.0.1", "-o", "Port=1"];
    for (command, flag, why) in [
        ("up", "--parallel", "it takes the hosts one after another"),
        ("down", "--parallel", "it takes the hosts one after another"),
        ("up", "--push-timeout", "each run has its own limits"),
        ("up", "--call-timeout", "each run has its own limits"),
        ("down", "--connect-timeout", "it connects to no server"),
        ("down", "--call-timeout", "it connects to no server"),
        ("check", "--include", "it pushes no code"),
        ("check", "--push-timeout", "it runs no code"),
        ("check", "--call-timeout", "it runs no code"),
        ("iex", "--call-timeout", "a session has no time limit"),
    ] {
        let value = if flag == "--include" {
            "Demo.Worker"
        } else {
            "9"
        };
        let out = tool(dir.path(), &[command])
            .args(unreachable)
            .args([flag, value])
            .env("XDG_RUNTIME_DIR", runtime.path())
            .run();
        assert_eq!(out.code, Some(2), "{command} {flag}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("error: unexpected argument '{flag}' found"))
                && out
                    .stderr
                    .contains(&format!("tip: {flag} has no use in `{command}`: {why}")),
            "{command} {flag}: {}",
            out.stderr
        );
        let help = tool(dir.path(), &[command, "--help"]).run();
        assert!(!help.stdout.contains(flag), "{command}: {}", help.stdout);
    }
    // Their variables, set for `run`, are no business of these commands: not even a bad value.
    let limits = ["MIX_REMOTE_PUSH_TIMEOUT", "MIX_REMOTE_CALL_TIMEOUT"];
    let up = [&limits[..], &["MIX_REMOTE_PARALLEL"]].concat();
    let demo = testkit::compiled_fixture("demo");
    let iex = [
        &["--project", demo.to_str().expect("a UTF-8 path")][..],
        &unreachable,
    ]
    .concat();
    for (command, args, variables) in [
        ("up", &unreachable[..], &up[..]),
        ("check", &unreachable, &limits),
        ("iex", &iex, &limits[1..]),
    ] {
        let mut tool = tool(dir.path(), &[command]);
        tool.args(args).env("XDG_RUNTIME_DIR", runtime.path());
        for variable in variables {
            tool.env(variable, "0");
        }
        let out = tool.run();
        assert_eq!(out.code, Some(3), "{command}: {}", out.stderr);
        out.assert_local_clean();
    }
}

#[test]
fn a_flag_before_a_command_that_has_no_use_for_it_is_refused_not_ignored() {
    let project = uncompiled_demo();
    let runtime = tempfile::tempdir().unwrap();
    let config = project.path().join("staging.yaml");
    let config = config.to_str().expect("a UTF-8 path");
    let init = &["init", "--host", "db-1"][..];
    let completions = &["completions", "bash"][..];
    let prints_only_the_script = "it prints the script and nothing else";
    for (before, command, why) in [
        (
            &["--config", config][..],
            init,
            "it writes mix-remote.yaml in the --project directory",
        ),
        (
            &["--config", config],
            &["status"],
            "it reads no mix-remote.yaml",
        ),
        (
            &["--config", config],
            completions,
            "what it completes reads the mix-remote.yaml of the command being typed",
        ),
        (
            &["-v"],
            init,
            "it says only what it wrote, which -q leaves out",
        ),
        (&["--no-warnings"], init, "it gives no warnings"),
        (&["--warnings"], init, "it gives no warnings"),
        (&["-q"], completions, prints_only_the_script),
        (&["--verbose"], completions, prints_only_the_script),
        (&["--no-warnings"], completions, prints_only_the_script),
    ] {
        let flag = before[0];
        // Before the command as after it.
        let typed = [
            [before, command].concat(),
            [&[command[0]][..], before, &command[1..]].concat(),
        ];
        for args in typed {
            let out = tool(project.path(), &args)
                .env("XDG_RUNTIME_DIR", runtime.path())
                .run();
            assert_eq!((out.code, out.stdout.as_str()), (Some(2), ""), "{args:?}");
            let tip = format!("tip: {flag} has no use in `{}`: {why}", command[0]);
            assert!(
                out.stderr
                    .starts_with(&format!("error: unexpected argument '{flag}' found"))
                    && out.stderr.contains(&tip),
                "{args:?}: {}",
                out.stderr
            );
        }
    }
    assert!(!project.path().join("mix-remote.yaml").exists());
    assert!(!project.path().join("staging.yaml").exists());
    // Their variable, set for the other commands, is no business of theirs.
    let out = tool(project.path(), &["status"])
        .env("MIX_REMOTE_CONFIG", config)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn a_flag_plan_or_graph_has_no_use_for_is_not_offered_as_their_entry() {
    // clap's "to pass '--json' as a value, use '-- --json'" would make the flag a bad entry.
    let dir = tempfile::tempdir().unwrap();
    for (args, tip) in [
        (
            &["graph", "--json"][..],
            Some("tip: --json has no use in `graph`: it prints JSON with --format json"),
        ),
        (
            &["graph", "--no-compile"],
            Some("tip: --no-compile has no use in `graph`: it reads the build as it is"),
        ),
        (
            &["plan", "--host", "db-1"],
            Some(
                "tip: --host has no use in `plan`: it reads the build here and connects to no server",
            ),
        ),
        (
            &["graph", "-o", "Port=2"],
            Some(
                "tip: -o has no use in `graph`: it reads the build here and connects to no server",
            ),
        ),
        (&["plan", "--fail-fast"], None),
        (&["completions", "--json"], None),
    ] {
        let out = tool(dir.path(), args).run();
        assert_eq!((out.code, out.stdout.as_str()), (Some(2), ""), "{args:?}");
        assert!(
            out.stderr.starts_with("error: unexpected argument"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("as a value"), "{}", out.stderr);
        match tip {
            Some(tip) => assert!(out.stderr.contains(tip), "{}", out.stderr),
            None => assert!(
                !out.stderr.contains("tip:") && !out.stderr.contains("\n\n\n"),
                "{}",
                out.stderr
            ),
        }
    }
    // `run` and `eval` pass what follows `--` on: there, clap's advice stands.
    let out = tool(dir.path(), &["run", "--dry-run"]).run();
    assert!(
        out.stderr
            .contains("tip: to pass '--dry-run' as a value, use '-- --dry-run'"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_module_to_include_is_named_by_the_flag_or_the_key_of_the_file_that_gave_it() {
    let demo = testkit::compiled_fixture("demo");
    let demo = demo.to_str().expect("a UTF-8 path");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mix-remote.yaml");
    std::fs::write(
        &config,
        "defaults:\n  include: [Demo.Ghost]\n\
         groups:\n  web:\n    hosts: [nowhere]\n    include: [lower.case]\n\
         hosts:\n  db:\n    include: [Demo.Worker, Demo.Phantom]\n",
    )
    .unwrap();
    let file = config.display().to_string();
    let unreachable = ["-o", "ProxyCommand=false", "--project", demo];
    for (args, said) in [
        (
            &["plan", "Demo.Worker.echo", "--project", demo][..],
            format!(
                "{file}: `defaults.include`: Demo.Ghost: no such module in this project's _build"
            ),
        ),
        (
            &["run", "Demo.Worker.echo", "--group", "web"],
            format!(
                "{file}: `groups.web.include`: lower.case: not a module name (MyApp.Mod or :erlang_mod)"
            ),
        ),
        (
            &["eval", "1", "--host", "db"],
            format!(
                "{file}: `hosts.db.include`: Demo.Phantom: no such module in this project's _build"
            ),
        ),
        (
            &[
                "graph",
                "Demo.Worker.echo",
                "--project",
                demo,
                "--include",
                "Demo.Ghost",
            ],
            "--include Demo.Ghost: no such module in this project's _build".to_owned(),
        ),
    ] {
        let mut tool = tool(dir.path(), args);
        if args[0] == "run" || args[0] == "eval" {
            tool.args(unreachable);
        }
        if args[0] == "run" {
            tool.args(["--", "1", "2", "3"]);
        }
        let out = tool.run();
        assert_eq!(error_line(&out, 2), said, "{args:?}");
        out.assert_local_clean();
    }
}

#[test]
fn an_entry_of_the_file_that_the_build_lacks_is_named_by_its_key() {
    let demo = testkit::compiled_fixture("demo");
    let demo = demo.to_str().expect("a UTF-8 path");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mix-remote.yaml");
    std::fs::write(
        &config,
        "defaults:\n  entry: Demo.Workr.echo\nhosts:\n  db:\n    entry: Demo.Worker.echo/2\n",
    )
    .unwrap();
    let file = config.display().to_string();
    let missing = "module Demo.Workr is not in this project's _build (did you mean Demo.Worker?)";
    for (args, said) in [
        (
            &["--host", "web"][..],
            format!("{file}: `defaults.entry`: {missing}"),
        ),
        (
            &["--host", "db", "--", "1"],
            format!(
                "{file}: `hosts.db.entry`: Demo.Worker.echo/2 takes 2 arguments, but 1 was given \
                 after --"
            ),
        ),
        // Typed on the command line, it is the command line's.
        (&["Demo.Workr.echo", "--host", "web"], missing.to_owned()),
    ] {
        let out = tool(
            dir.path(),
            &["run", "--project", demo, "-o", "ProxyCommand=false"],
        )
        .args(args)
        .run();
        assert_eq!(error_line(&out, 2), said, "{args:?}");
        out.assert_local_clean();
    }
}

#[test]
fn a_project_or_ssh_config_that_is_not_there_is_refused_naming_it() {
    // A typo in a CI job's `--project` must not pass `check` with the build left out.
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("nope");
    let shown = |dir: &Path| dir.display().to_string();
    for (args, said) in [
        (
            vec![
                "check",
                "--host",
                "nobody@127.0.0.1",
                "--project",
                &shown(&missing),
            ],
            format!(
                "--project (or MIX_REMOTE_PROJECT) {}: no such directory",
                shown(&missing)
            ),
        ),
        (
            vec![
                "plan",
                "Demo.Worker.echo",
                "--project",
                &shown(empty.path()),
            ],
            format!(
                "--project (or MIX_REMOTE_PROJECT) {}: not a Mix project (no mix.exs)",
                shown(empty.path())
            ),
        ),
        // A mix-remote.yaml that is not there, or no file, is named with its flag and variable.
        (
            vec!["plan", "Demo.Worker.echo", "--config", &shown(&missing)],
            format!(
                "--config (or MIX_REMOTE_CONFIG) {}: cannot read it: No such file",
                shown(&missing)
            ),
        ),
        (
            vec!["--config", &shown(empty.path()), "check", "--host", "a"],
            format!(
                "--config (or MIX_REMOTE_CONFIG) {}: cannot read it: Is a directory",
                shown(empty.path())
            ),
        ),
        // Likewise an ssh config that is not there: ssh would fail every host's connection.
        (
            vec![
                "check",
                "--host",
                "nobody@127.0.0.1",
                "-F",
                &shown(&missing),
            ],
            format!(
                "the ssh config {} of nobody@127.0.0.1 is not there",
                shown(&missing)
            ),
        ),
    ] {
        let out = tool(empty.path(), &args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&said), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    // `-F /dev/null` (no config at all) is taken; `down` connects to nothing, and ends a session
    // whose config has gone as well.
    let runtime = tempfile::tempdir().unwrap();
    for (args, code) in [
        (
            vec![
                "check",
                "--host",
                "nobody@127.0.0.1",
                "-o",
                "Port=1",
                "-F",
                "/dev/null",
            ],
            3,
        ),
        (
            vec!["down", "--host", "nobody@127.0.0.1", "-F", &shown(&missing)],
            0,
        ),
    ] {
        let out = tool(empty.path(), &args)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .run();
        assert_eq!(out.code, Some(code), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_project_that_is_a_file_or_an_ssh_config_that_is_a_directory_is_refused_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mix.exs");
    std::fs::write(&file, "").unwrap();
    let (file, folder) = (file.display().to_string(), dir.path().display().to_string());
    for (args, said) in [
        (
            vec!["check", "--host", "nobody@127.0.0.1", "--project", &file],
            format!("--project (or MIX_REMOTE_PROJECT) {file}: not a directory"),
        ),
        (
            vec![
                "plan",
                "Demo.Worker.echo",
                "--no-compile",
                "--project",
                &file,
            ],
            format!("--project (or MIX_REMOTE_PROJECT) {file}: not a directory"),
        ),
        (
            vec!["check", "--host", "nobody@127.0.0.1", "-F", &folder],
            format!(
                "the ssh config {folder} of nobody@127.0.0.1 is a directory, not a file (-F, \
                 MIX_REMOTE_SSH_CONFIG, or ssh_config in mix-remote.yaml)"
            ),
        ),
        (
            vec!["up", "--host", "nobody@127.0.0.1", "-F", &folder],
            format!("the ssh config {folder} of nobody@127.0.0.1 is a directory, not a file"),
        ),
    ] {
        let out = tool(dir.path(), &args).run();
        assert!(
            error_line(&out, 2).contains(&said),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        out.assert_local_clean();
    }
}

#[test]
fn a_sessions_directory_that_cannot_be_made_is_named_and_status_json_prints_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::write(&runtime, "").unwrap();
    let said = format!(
        "cannot use the sessions directory: {} (in XDG_RUNTIME_DIR): Not a directory",
        runtime.join("mix-remote").display()
    );
    for args in [
        &["status", "--json"][..],
        &["status"],
        &["up", "--host", "nobody@127.0.0.1"],
        &["down", "--all"],
    ] {
        let out = tool(dir.path(), args)
            .env("XDG_RUNTIME_DIR", &runtime)
            .run();
        assert!(
            error_line(&out, 3).starts_with(&said),
            "{args:?}: {}",
            out.stderr
        );
        // `status --json` prints sessions, one object each: no `error` or `summary` event.
        assert_eq!(out.stdout, "", "{args:?}");
        out.assert_local_clean();
    }
    // The runtime directory is the system's to make: one that does not exist is not made.
    let gone = dir.path().join("gone");
    let out = tool(dir.path(), &["status"])
        .env("XDG_RUNTIME_DIR", &gone)
        .run();
    assert_eq!(
        error_line(&out, 3),
        format!(
            "cannot use the sessions directory: {} (in XDG_RUNTIME_DIR): No such file or \
             directory (os error 2)",
            gone.join("mix-remote").display()
        )
    );
    assert!(!gone.exists());
    // A relative one is no runtime directory (the XDG spec): the cache's is used.
    let cache = dir.path().join("cache");
    let out = tool(dir.path(), &["status"])
        .env("XDG_RUNTIME_DIR", "relative")
        .env("XDG_CACHE_HOME", &cache)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!dir.path().join("relative").exists());
    assert!(cache.join("mix-remote/sessions").is_dir());
}

#[test]
fn a_parallel_of_zero_or_of_no_number_is_bad_input_saying_what_it_takes() {
    let dir = tempfile::tempdir().unwrap();
    for (args, said) in [
        (
            &["check", "--host", "a", "--parallel", "0"][..],
            "invalid value '0' for '--parallel <K>': at least 1 host at once: 0 would work on none",
        ),
        (
            &["run", "A.b", "--host", "a", "--parallel", "two"],
            "invalid value 'two' for '--parallel <K>': `two`: a whole number of hosts at once, at \
             least 1",
        ),
        (
            &[
                "eval",
                "1",
                "--host",
                "a",
                "--parallel",
                "99999999999999999999999",
            ],
            "`99999999999999999999999`: a whole number of hosts at once, at least 1",
        ),
    ] {
        let out = tool(dir.path(), args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{args:?}: {}", out.stderr);
    }
    let out = tool(dir.path(), &["check", "--host", "a"])
        .env("MIX_REMOTE_PARALLEL", "0")
        .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("at least 1 host at once"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_variable_with_a_bad_value_is_bad_input_naming_the_variable_not_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let run = ["run", "A.b", "--host", "x"];
    let boolean = "MIX_REMOTE_NO_COMPILE is true or false (also 1 or 0, yes or no, on or off)";
    for (variable, value, args, said) in [
        (
            "MIX_REMOTE_NO_COMPILE",
            "maybe",
            &run[..],
            "value was not a boolean",
        ),
        (
            "MIX_REMOTE_PARALLEL",
            "two",
            &run,
            "`two`: a whole number of hosts at once",
        ),
        (
            "MIX_REMOTE_CONNECT_TIMEOUT",
            "0",
            &["check", "--host", "x"],
            "a limit of 0 s",
        ),
        (
            "MIX_REMOTE_BOOT_TIMEOUT",
            "ten",
            &run,
            "`ten`: a whole number of seconds",
        ),
        (
            "MIX_REMOTE_PUSH_TIMEOUT",
            "-1",
            &run,
            "`-1`: a whole number of seconds",
        ),
        (
            "MIX_REMOTE_CALL_TIMEOUT",
            "1.5",
            &run,
            "`1.5`: a whole number of seconds",
        ),
        (
            "MIX_REMOTE_ENV",
            "a/b",
            &["plan", "A.b"],
            "cannot be empty, hold a `/`",
        ),
        (
            "MIX_REMOTE_HOST",
            "a,",
            &["check"],
            "an empty name in the list",
        ),
        (
            "MIX_REMOTE_GROUP",
            ",b",
            &["run", "A.b"],
            "an empty name in the list",
        ),
    ] {
        let out = tool(dir.path(), args).env(variable, value).run();
        assert_eq!(out.code, Some(2), "{variable}: {}", out.stderr);
        let shown = if variable == "MIX_REMOTE_HOST" || variable == "MIX_REMOTE_GROUP" {
            ""
        } else {
            value
        };
        let line = format!("error: invalid value '{shown}' for '{variable}': ");
        assert!(out.stderr.starts_with(&line), "{variable}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{variable}: {}", out.stderr);
        assert_eq!(
            out.stderr.contains(boolean),
            variable == "MIX_REMOTE_NO_COMPILE",
            "{variable}: {}",
            out.stderr
        );
    }
    // A flag typed is named as before, and its variable is not read.
    let out = tool(dir.path(), &["plan", "A.b", "--env", "a/b"])
        .env("MIX_REMOTE_ENV", "c/d")
        .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let line = "error: invalid value 'a/b' for '--env <ENV>': ";
    assert!(out.stderr.starts_with(line), "{}", out.stderr);
    // With --json, the error event names it too.
    let out = tool(dir.path(), &["plan", "A.b", "--json"])
        .env("MIX_REMOTE_NO_COMPILE", "maybe")
        .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let error = out.stdout.lines().next().unwrap_or_default();
    assert!(
        error.contains("invalid value 'maybe' for 'MIX_REMOTE_NO_COMPILE'"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_group_the_file_lacks_or_a_host_that_is_a_group_is_named_by_the_variable_that_gave_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mix-remote.yaml"), "groups:\n  web: [a]\n").unwrap();
    let config = dir.path().join("mix-remote.yaml").canonicalize().unwrap();
    let group_as_host = |named: &str| {
        format!(
            "{named} web: web is a group of {}, not a host: pass --group web",
            config.display()
        )
    };
    let unknown = |named: &str| {
        format!(
            "{named} wbe: not defined in {}: did you mean web?",
            config.display()
        )
    };
    for (command, variables, typed, said) in [
        (
            "check",
            &[("MIX_REMOTE_GROUP", "wbe")][..],
            &[][..],
            unknown("MIX_REMOTE_GROUP"),
        ),
        (
            "iex",
            &[("MIX_REMOTE_HOST", "web")],
            &[],
            group_as_host("MIX_REMOTE_HOST"),
        ),
        (
            "up",
            &[("MIX_REMOTE_HOST", "a"), ("MIX_REMOTE_GROUP", "wbe")],
            &[],
            unknown("MIX_REMOTE_GROUP"),
        ),
        // A flag typed chooses the hosts alone, and is named.
        (
            "check",
            &[("MIX_REMOTE_HOST", "web")],
            &["--host", "web"],
            group_as_host("--host"),
        ),
        (
            "down",
            &[("MIX_REMOTE_HOST", "a")],
            &["--group", "wbe"],
            unknown("--group"),
        ),
    ] {
        let mut tool = tool(dir.path(), &[command]);
        tool.args(typed).env("XDG_RUNTIME_DIR", dir.path());
        for (name, value) in variables {
            tool.env(name, value);
        }
        let out = tool.run();
        assert!(
            error_line(&out, 2).starts_with(&said),
            "{command} {variables:?} {typed:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_completion_script_that_cannot_be_written_is_one_error_line() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_mix-remote"))
        .args(["completions", "fish"])
        .env_remove("COMPLETE")
        .stdout(full)
        .output()
        .expect("run mix-remote");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr,
        "mix-remote: error: cannot write the fish completion script to stdout: No space left on \
         device (os error 28)\n"
    );
}

#[test]
fn a_negative_or_unnumbered_limit_is_bad_input_naming_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let whole = "a whole number of seconds, at least 1";
    for (args, said) in [
        (
            &["run", "A.b", "--host", "x", "--call-timeout", "-1"][..],
            format!("invalid value '-1' for '--call-timeout <SECS>': `-1`: {whole}"),
        ),
        (
            &["check", "--host", "x", "--connect-timeout", "-3"],
            format!("invalid value '-3' for '--connect-timeout <SECS>': `-3`: {whole}"),
        ),
        (
            &["eval", "1", "--host", "x", "--boot-timeout=ten"],
            format!("invalid value 'ten' for '--boot-timeout <SECS>': `ten`: {whole}"),
        ),
        (
            &["run", "A.b", "--host", "x", "--push-timeout", "0"],
            "invalid value '0' for '--push-timeout <SECS>': a limit of 0 s could never be met: at \
             least 1"
                .to_owned(),
        ),
        (
            &["up", "--host", "x", "--idle", "-5"],
            "invalid value '-5' for '--idle <DURATION>': `-5`: use a positive whole number"
                .to_owned(),
        ),
        (
            &["up", "--host", "x", "--idle", "-5m"],
            "invalid value '-5m' for '--idle <DURATION>': `-5m`: use a positive whole number"
                .to_owned(),
        ),
        (
            &["run", "A.b", "--host", "x", "--parallel", "-2"],
            "invalid value '-2' for '--parallel <K>': `-2`: a whole number of hosts at once"
                .to_owned(),
        ),
    ] {
        let out = tool(dir.path(), args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&said), "{args:?}: {}", out.stderr);
        // Not taken for a flag, with a tip to pass it after `--`, as a function's argument.
        assert!(!out.stderr.contains("use '--"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn an_ssh_destination_that_starts_with_a_dash_is_bad_input_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mix-remote.yaml"),
        "hosts:\n  web-1:\n    address: -oProxyCommand=x\n",
    )
    .unwrap();
    let runtime = tempfile::tempdir().unwrap();
    for (args, said) in [
        (
            &["check", "--host=-x"][..],
            "the ssh destination of -x, `-x`, starts with `-`, which ssh takes for an option",
        ),
        (
            &["up", "--host", "web-1"],
            "the ssh destination of web-1, `-oProxyCommand=x`, starts with `-`",
        ),
        (
            &["run", "A.b", "--host", "ok", "--host=-x"],
            "the ssh destination of -x, `-x`, starts with `-`",
        ),
        (
            &["iex", "--host", "web-1"],
            "`-oProxyCommand=x`, starts with `-`",
        ),
    ] {
        let out = tool(dir.path(), args)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .run();
        assert!(
            error_line(&out, 2).contains(said),
            "{args:?}: {}",
            out.stderr
        );
        out.assert_local_clean();
    }
}
