//! Cross-version end-to-end tests: a Mix project built by one OTP, run on a remote whose OTP
//! differs, in both directions. The other releases are Debian chroots (testkit's [`Chroot`]):
//! as the remote, the real sshd's session runs the chroot's `elixir` through `--elixir`; as the
//! build machine, the chroot's `mix` compiles the fixture. Host: OTP 25; trixie: OTP 27; sid:
//! OTP 29. Where the remote's loader can load the beams the run works (which also proves the
//! boot flags on that OTP); where it cannot, the run fails before the call with exit 3 and one
//! line naming the module. On an OTP 27 remote, too, a node halts and leaves nothing once its
//! stdin (frames read by a port of its own, see templates/boot.sh) ends, at any point, and warm
//! sessions serve runs and preload their batches. On OTP 27 and 29 remotes, config files call the
//! project's modules and halt as under `mix run`, a crash no link takes is logged as there, and
//! the standard IO's options are the server's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::{Chroot, Output, Sshd};

/// The exit code for "could not run", which covers code the remote cannot load.
const EXIT_CANNOT_RUN: i32 = 3;

/// What `Demo.Worker.process 42 "batch-7"` prints, then the parts of its result: the order of
/// a small map's atom keys depends on the remote's OTP (term order before 26, atom order since).
const PROCESS_LINES: &str = "processing batch-7\nerlang says batch-7\n%{";
const PROCESS_RESULT: [&str; 3] = [
    "items: [1, :two, \"three\"]",
    "label: \"batch-7\"",
    "total: %Demo.Money{amount: 126, currency: :eur}",
];

/// Runs mix-remote on `project` against `sshd`, with `elixir` as the remote's elixir (None: the
/// host's), and checks the remote is left clean. The build is the one made for the test (by
/// another OTP, perhaps): the local `mix` must not compile it again.
fn run(sshd: &Sshd, project: &Path, elixir: Option<&Path>, args: &[&str]) -> Output {
    let mut tool = testkit::mix_remote(project);
    tool.run_on(sshd)
        .arg("--no-compile")
        .arg("--project")
        .arg(project);
    if let Some(elixir) = elixir {
        tool.arg("--elixir").arg(elixir);
    }
    let out = tool.args(args).run();
    sshd.assert_no_session_processes();
    out
}

/// The run worked: `stdout` exactly, exit 0.
fn assert_works(out: &Output, stdout: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), stdout),
        "stderr: {}",
        out.stderr
    );
}

/// `Demo.Worker.process 42 "batch-7"` worked.
fn assert_processed(out: &Output) {
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.starts_with(PROCESS_LINES), "{}", out.stdout);
    for part in PROCESS_RESULT {
        assert!(out.stdout.contains(part), "{part} not in {}", out.stdout);
    }
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
}

/// The run failed before the call, with exit 3 and an error line naming `module`.
fn assert_refused(out: &Output, module: &str) {
    assert_eq!(out.code, Some(EXIT_CANNOT_RUN), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "", "the function must not have run");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("mix-remote: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {}", out.stderr);
    assert!(
        errors[0].contains(module),
        "{module} not named in: {}",
        errors[0]
    );
    // The preflight's line, before anything was loaded: the remote's OTP and what to do.
    assert!(
        errors[0].contains("remote") && errors[0].contains("rebuild with OTP"),
        "not the preflight's refusal: {}",
        errors[0]
    );
}

#[test]
fn an_otp25_build_runs_on_an_otp27_remote() {
    let Some(trixie) = Chroot::open("trixie") else {
        return;
    };
    assert_eq!(
        trixie.otp_release(),
        "27",
        "these tests expect OTP 27 in trixie"
    );
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let elixir = trixie.elixir();
    let out = run(
        &sshd,
        &demo,
        Some(&elixir),
        &["Demo.Worker.process", "--", "42", "\"batch-7\""],
    );
    assert_processed(&out);
    assert!(
        out.stderr
            .contains("warning: built with OTP 25, the remote runs OTP 27"),
        "no version warning: {}",
        out.stderr
    );
    let out = run(&sshd, &demo, Some(&elixir), &["Demo.Worker.onload_state"]);
    assert_works(&out, ":initialised\n");
    // Elixir's protocols as the host's Elixir consolidated them are not for another release:
    // the server's own dispatch, unconsolidated.
    let mut tool = testkit::mix_remote(&demo);
    let code = "{Protocol.consolidated?(Enumerable), Enum.count(MapSet.new([1, 2]))}";
    tool.eval_on(&sshd, code)
        .args(["--no-compile", "--elixir"])
        .arg(&elixir);
    assert_works(&tool.run(), "{false, 2}\n");
    sshd.assert_no_session_processes();
    // A script is compiled there too (Elixir 1.18's Code.require_file/2 compiles its top level).
    let (_dir, script) = testkit::top_level_fn_script();
    let path = script.display().to_string();
    assert_works(&run(&sshd, &demo, Some(&elixir), &[&path]), "true\n");
    let compat = testkit::compiled_fixture("compat");
    let out = run(
        &sshd,
        &compat,
        Some(&elixir),
        &["Compat.Bits.first", "--", "\"\\x02abc\""],
    );
    assert_works(&out, "{2, \"ab\"}\n");
}

#[test]
fn output_and_reads_go_through_the_relay_on_otp27_and_otp29_remotes() {
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    for chroot in [trixie, sid] {
        let elixir = chroot.elixir();
        let mut tool = testkit::mix_remote(&demo);
        tool.run_on(&sshd)
            .arg("--elixir")
            .arg(&elixir)
            .args(["Demo.Ux.read_three"])
            .stdin("a\nb\nc\n");
        let out = tool.run();
        assert_works(&out, "first? third? {\"a\\n\", \"b\\n\", \"c\\n\"}\n");
        let out = run(
            &sshd,
            &demo,
            Some(&elixir),
            &["Demo.Ux.lines", "--", "20000"],
        );
        assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 20_001, "OTP {}", chroot.otp_release());
        assert_eq!(
            lines[19_999],
            "line 20000 of 20000 ..........................."
        );
        // A shipped module's halt, redirected to the relay's, loads and waits for the output.
        let out = run(
            &sshd,
            &demo,
            Some(&elixir),
            &["Demo.Worker.report_and_halt", "--", "20000"],
        );
        let rows: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            (out.code, rows.len(), rows.last().copied()),
            (Some(1), 20_000, Some("row 20000")),
            "OTP {}: {}",
            chroot.otp_release(),
            out.stderr
        );
        sshd.assert_no_session_processes();
    }
}

#[test]
fn config_files_call_and_halt_as_under_mix_run_on_otp27_and_otp29_remotes() {
    // As on the host's release (tests/deploy.rs): config.exs cannot call the project's modules,
    // runtime.exs can; what config.exs printed before a halt it does not name shows.
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    let config = project.join("config");
    std::fs::create_dir_all(&config).expect("config/");
    let calling = "IO.puts(:before)\nconfig :demo, currency: Demo.Money.new(1, :eur).currency";
    let halting = "IO.puts(:before)\napply(System, String.to_atom(\"ha\" <> \"lt\"), [3])";
    // The stacktrace's depth cuts this failure's frames before the reading of the file (Elixir
    // 1.18's and 1.20's evaluation nests deeper): shown as `mix run` shows them, erl_eval's too.
    let fetching = "config :demo, url: System.fetch_env!(\"MIX_REMOTE_TEST_UNSET\")";
    let cases = [
        (
            calling,
            "",
            1,
            "before\n",
            "(module Demo.Money is not available)",
        ),
        ("", calling, 0, "before\n:eur\n", ""),
        (
            halting,
            "",
            1,
            "before\n",
            "config/config.exs (or a file it imports) stopped the run with status 3",
        ),
        ("", fetching, 1, "", ":erl_eval.do_apply/7"),
    ];
    for chroot in [trixie, sid] {
        let elixir = chroot.elixir();
        for (config_exs, runtime_exs, code, stdout, said) in cases {
            for (file, line) in [("config.exs", config_exs), ("runtime.exs", runtime_exs)] {
                let text = format!("import Config\n{line}\n");
                std::fs::write(config.join(file), text).expect("a config file");
            }
            let mut tool = testkit::mix_remote(project);
            tool.eval_on(&sshd, "Application.get_env(:demo, :currency)")
                .args(["--no-compile", "--elixir"])
                .arg(&elixir);
            let out = tool.run();
            sshd.assert_no_session_processes();
            let release = chroot.otp_release();
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (Some(code), stdout),
                "OTP {release}: {}",
                out.stderr
            );
            assert!(out.stderr.contains(said), "OTP {release}: {}", out.stderr);
        }
    }
}

#[test]
fn an_otp25_build_runs_on_an_otp29_remote_except_what_otp29_no_longer_loads() {
    let Some(sid) = Chroot::open("sid") else {
        return;
    };
    assert_eq!(sid.otp_release(), "29", "these tests expect OTP 29 in sid");
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let elixir = sid.elixir();
    let out = run(
        &sshd,
        &demo,
        Some(&elixir),
        &["Demo.Worker.process", "--", "42", "\"batch-7\""],
    );
    assert_processed(&out);
    let out = run(&sshd, &demo, Some(&elixir), &["Demo.Worker.onload_state"]);
    assert_works(&out, ":initialised\n");
    // OTP 25's compiler emitted bs_test_unit for this match; OTP 29 refuses it.
    let compat = testkit::compiled_fixture("compat");
    let out = run(
        &sshd,
        &compat,
        Some(&elixir),
        &["Compat.Bits.first", "--", "\"\\x02abc\""],
    );
    assert_refused(&out, "Compat.Bits");
}

#[test]
fn an_otp27_build_runs_on_an_otp29_remote_and_on_an_otp25_one_where_it_loads() {
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let sshd = Sshd::start();
    let demo = trixie.compiled_fixture("demo");
    let compat = trixie.compiled_fixture("compat");
    let entry = ["Demo.Worker.process", "--", "42", "\"batch-7\""];
    assert_processed(&run(&sshd, demo.path(), Some(&sid.elixir()), &entry));
    let first = ["Compat.Bits.first", "--", "\"\\x02abc\""];
    let out = run(&sshd, compat.path(), Some(&sid.elixir()), &first);
    assert_works(&out, "{2, \"ab\"}\n");

    // OTP 25 (the host's elixir): an Erlang module without new instructions loads, although
    // OTP 27's compiler recorded the maybe_expr feature in it ...
    let out = run(
        &sshd,
        demo.path(),
        None,
        &[":demo_erl.add", "--", "40", "2"],
    );
    assert_works(&out, "42\n");
    // ... but a module with -on_load is loaded by code:load_binary/3, which checks features,
    assert_refused(
        &run(&sshd, demo.path(), None, &["Demo.Worker.onload_state"]),
        ":demo_onload",
    );
    // and OTP 27 compiles this match to bs_match (opcode 182), which OTP 25 does not know.
    assert_refused(&run(&sshd, compat.path(), None, &first), "Compat.Bits");
}

#[test]
fn an_otp29_build_is_refused_by_otp27_and_otp25_remotes() {
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let sshd = Sshd::start();
    let demo = sid.compiled_fixture("demo");
    // OTP 28+ compilers write compact atom tables, which OTP 27 and older cannot read.
    for elixir in [Some(trixie.elixir()), None] {
        let out = run(
            &sshd,
            demo.path(),
            elixir.as_deref(),
            &["Demo.Unused.hello"],
        );
        assert_refused(&out, "Demo.Unused");
    }
}

#[test]
fn check_tells_which_servers_load_the_build() {
    let Some(sid) = Chroot::open("sid") else {
        return;
    };
    let sshd = Sshd::start();
    let demo = sid.compiled_fixture("demo");
    let check = |elixir: Option<&Path>| {
        let mut tool = testkit::mix_remote(demo.path());
        tool.args(["check", "--json", "--host", &sshd.host()])
            .arg("-F")
            .arg(sshd.ssh_config())
            .arg("--project")
            .arg(demo.path());
        if let Some(elixir) = elixir {
            tool.arg("--elixir").arg(elixir);
        }
        let out = tool.run();
        let row: serde_json::Value = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON event"))
            .find(|e| e["event"] == "check")
            .unwrap_or_else(|| panic!("no check event: {}\n{}", out.stdout, out.stderr));
        (out.code, row)
    };
    // Built by OTP 29: the OTP 29 server loads it ...
    let (code, row) = check(Some(&sid.elixir()));
    assert_eq!(
        (code, &row["compat"], &row["ready"]),
        (Some(0), &"ok".into(), &true.into()),
        "{row}"
    );
    // ... the host's OTP 25 does not, and check says so with the preflight's line.
    let (code, row) = check(None);
    assert_eq!(code, Some(EXIT_CANNOT_RUN), "{row}");
    assert_eq!(
        (&row["elixir"], &row["compat"]),
        (&"ok".into(), &"failed".into()),
        "{row}"
    );
    let problem = row["problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("the remote runs OTP 25") && problem.contains("rebuild with OTP 25"),
        "{problem}"
    );
    sshd.assert_no_session_processes();
}

#[test]
fn a_version_warning_is_shown_once_per_run_and_not_at_all_with_no_warnings() {
    let Some(trixie) = Chroot::open("trixie") else {
        return;
    };
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let dir = tempfile::tempdir().expect("temporary directory");
    let host = |name: &str| {
        format!(
            "  {name}:\n    address: {:?}\n    ssh_config: {:?}\n",
            sshd.host(),
            sshd.ssh_config().display().to_string()
        )
    };
    let config = dir.path().join("mix-remote.yaml");
    std::fs::write(
        &config,
        format!(
            "defaults:\n  elixir: {:?}\nhosts:\n{}{}groups:\n  both: [a, b]\n",
            trixie.elixir().display().to_string(),
            host("a"),
            host("b")
        ),
    )
    .expect("write the config");
    let run = |extra: &[&str]| {
        let out = testkit::mix_remote(dir.path())
            .args(["run", "--group", "both", "--no-compile", "--project"])
            .arg(&demo)
            .args(extra)
            .arg("Demo.Unused.hello")
            .run();
        sshd.assert_no_session_processes();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        out.stderr
            .lines()
            .filter(|l| l.contains("warning: "))
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    // Both hosts run OTP 27 and Elixir 1.18: each of the two warnings once, not once per host.
    let warnings = run(&[]);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("built with OTP 25, the remote runs OTP 27")
            && warnings[1].contains("the remote runs Elixir 1.18"),
        "{warnings:?}"
    );
    assert_eq!(run(&["--no-warnings"]), Vec::<String>::new());
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace("defaults:\n", "defaults:\n  warnings: false\n"),
    )
    .expect("edit");
    assert_eq!(run(&[]), Vec::<String>::new());
}

/// The run directories in `chroot`'s /tmp, where a node there makes them (the sessions'
/// `TMPDIR` is the host's).
fn run_dirs_in(chroot: &Chroot) -> Vec<PathBuf> {
    testkit::entries(&chroot.root().join("tmp"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mix-remote-run-"))
        })
        .collect()
}

/// Panics unless, within 15 s, `chroot`'s /tmp holds no run directory but those of `before`:
/// the other tests here run there too, and remove theirs as their runs end.
fn assert_no_run_dir_left_in(chroot: &Chroot, before: &[PathBuf], context: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left: Vec<PathBuf> = run_dirs_in(chroot)
            .into_iter()
            .filter(|dir| !before.contains(dir))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{context}: left {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_tool_stopped_as_it_writes_the_batch_leaves_nothing_on_an_otp27_remote() {
    // Stopped at points from the login to the end of the run (the batch is written as the node
    // boots, some 500-700 ms in here): the node's stdin ends before its first frame, between
    // frames or in one, or the connection back goes.
    let Some(trixie) = Chroot::open("trixie") else {
        return;
    };
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("many");
    let before = run_dirs_in(&trixie);
    for signal in ["KILL", "TERM", "INT"] {
        for delay in [0, 150, 300, 400, 500, 600, 700, 900] {
            let mut tool = testkit::mix_remote(&project);
            tool.run_on(&sshd)
                .args(["--no-compile", "--elixir"])
                .arg(trixie.elixir())
                .arg("Many.M0.depth");
            let run = tool.spawn();
            std::thread::sleep(Duration::from_millis(delay));
            run.signal(signal);
            let out = run.finish();
            let context = format!("{signal} after {delay} ms: {:?} {}", out.code, out.stderr);
            assert!([Some(0), Some(130), None].contains(&out.code), "{context}");
            sshd.wait_until_no_session_processes(Duration::from_secs(15))
                .unwrap_or_else(|left| panic!("{context}: left {left:?}"));
            out.assert_local_clean();
            assert_eq!(sshd.run_dirs(), Vec::<PathBuf>::new(), "{context}");
            assert_no_run_dir_left_in(&trixie, &before, &context);
        }
    }
}

#[test]
fn a_node_whose_input_ends_before_it_reads_it_halts_on_an_otp27_remote() {
    // The tool killed while the server's elixir is held back: the node starts once sshd has
    // gone, with what of its input reached the pipe before (the boot's beams are more than a
    // pipe holds), then its end, in the middle of a frame.
    let Some(trixie) = Chroot::open("trixie") else {
        return;
    };
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("many");
    let before = run_dirs_in(&trixie);
    let dir = tempfile::tempdir().expect("temporary directory");
    let open = dir.path().join("open");
    let gate = testkit::ElixirWrapper::new(&format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done\nexec '{}' \"$@\"",
        open.display(),
        trixie.elixir().display()
    ));
    let mut tool = testkit::mix_remote(&project);
    tool.run_on(&sshd)
        .args(["--no-compile", "-v", "--elixir"])
        .arg(gate.path())
        .arg("Many.M0.depth");
    let mut run = tool.spawn();
    run.stderr_until("tunnel:");
    std::thread::sleep(Duration::from_millis(300));
    run.signal("KILL");
    let out = run.finish();
    assert_eq!(out.code, None, "{}", out.stderr);
    out.assert_local_clean();
    std::fs::write(&open, b"").expect("open the gate");
    sshd.wait_until_no_session_processes(Duration::from_secs(15))
        .unwrap_or_else(|left| panic!("left {left:?}"));
    assert_eq!(sshd.run_dirs(), Vec::<PathBuf>::new());
    assert_no_run_dir_left_in(&trixie, &before, "the tool killed");
}

#[test]
fn a_warm_session_serves_and_preloads_on_an_otp27_remote_and_down_leaves_nothing() {
    let Some(trixie) = Chroot::open("trixie") else {
        return;
    };
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let runtime = tempfile::tempdir().expect("a runtime dir");
    let config = sshd.ssh_config().display().to_string();
    let elixir = trixie.elixir().display().to_string();
    let tool = |args: &[&str]| {
        let mut tool = testkit::mix_remote(&demo);
        tool.env("XDG_RUNTIME_DIR", runtime.path())
            .args(args)
            .args(["--host", &sshd.host(), "-F", &config]);
        tool
    };
    // Each run's batch is preloaded to the spare that serves the next: the second run pushes
    // only what each run loads itself.
    let spare_ready = |runs: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = testkit::mix_remote(&demo)
                .env("XDG_RUNTIME_DIR", runtime.path())
                .args(["status", "--json"])
                .run();
            let status: serde_json::Value =
                serde_json::from_str(out.stdout.trim()).expect("status");
            if status["runs"] == runs && status["spare"] == "ready" {
                return;
            }
            assert!(Instant::now() < deadline, "{status:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let up = tool(&["up", "--elixir", &elixir]).run();
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    spare_ready(0);
    let mut pushed = Vec::new();
    for runs in 1..=2 {
        let out = tool(&["run", "-v", "--no-compile", "--elixir", &elixir])
            .arg("Demo.Worker.process")
            .args(["--", "42", "\"batch-7\""])
            .run();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(
            out.stderr.contains("its spare node serves this run"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.starts_with(PROCESS_LINES), "{}", out.stdout);
        pushed.push(out.stat("pushed_modules"));
        spare_ready(runs);
    }
    assert!(pushed[1] < pushed[0], "{pushed:?}");
    let down = testkit::mix_remote(&demo)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["down", "--all"])
        .run();
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    sshd.wait_until_no_session_processes(Duration::from_secs(15))
        .unwrap_or_else(|left| panic!("left {left:?}"));
    assert_eq!(sshd.run_dirs(), Vec::<PathBuf>::new());
}

#[test]
fn a_crash_no_link_takes_is_logged_as_under_mix_run_on_otp27_and_otp29_remotes() {
    // Elixir 1.15+ starts Logger as the node boots, and puts its translator ahead of the filters
    // already there as it (re)starts: Logger said "Process #PID<...> on node
    // :mix_remote_...@localhost raised an exception", where `mix run`'s node is not alive. With
    // Logger running (otp_app needs it) and with Logger stopped (demo does not).
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let sshd = Sshd::start();
    let code = "spawn(fn -> raise \"lost\" end); Process.sleep(300)";
    let cases = [
        ("otp_app", "[error] Process #PID<"),
        ("demo", "Error in process #PID<"),
    ];
    for chroot in [trixie, sid] {
        let elixir = chroot.elixir();
        for (fixture, said) in cases {
            let project = testkit::compiled_fixture(fixture);
            let mut tool = testkit::mix_remote(&project);
            tool.eval_on(&sshd, code)
                .args(["--no-compile", "--no-warnings", "--elixir"])
                .arg(&elixir);
            let out = tool.run();
            sshd.assert_no_session_processes();
            let release = chroot.otp_release();
            assert_eq!(out.code, Some(0), "OTP {release}: {}", out.stderr);
            let line = out.stderr.lines().find(|l| l.contains(said));
            assert!(
                line.is_some_and(|l| !l.contains(" on node ")),
                "OTP {release}, {fixture}: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn io_options_are_those_of_the_servers_standard_io_on_otp25_27_and_29_remotes() {
    // OTP 26+ gives a device that is no terminal more options than binary and encoding
    // (`terminal: false`, `stdin: false`...), and standard_error its own (`onlcr`, `log`); code
    // that tells a terminal by them, or fetches one, saw them missing.
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let code = "{:io.getopts(), :io.getopts(:standard_error), :io.setopts(:io.getopts())}";
    let printed = format!("IO.puts(inspect({code}))");
    for chroot in [Some(&trixie), Some(&sid), None] {
        let mut elixir = match chroot {
            Some(chroot) => chroot.command("elixir"),
            None => std::process::Command::new("elixir"),
        };
        let expected = elixir
            .args(["-e", &printed])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the server's elixir");
        let expected = String::from_utf8_lossy(&expected.stdout);
        let mut tool = testkit::mix_remote(&demo);
        tool.eval_on(&sshd, code).args(["--no-compile"]);
        if let Some(chroot) = chroot {
            tool.arg("--elixir").arg(chroot.elixir());
        }
        let out = tool.run();
        sshd.assert_no_session_processes();
        assert_eq!(out.stdout, expected, "{}", out.stderr);
    }
}

#[test]
fn a_password_is_read_from_the_tools_stdin_on_an_otp29_remote() {
    // OTP 29's io:get_password/0 asks `user`, the node's own standard input, not the group
    // leader: it was `{:error, :enotsup}` there, on a terminal too, where `mix run`'s `user` is
    // the terminal. Read as on other releases (tests/terminal.rs).
    let Some(sid) = Chroot::open("sid") else {
        return;
    };
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let mut tool = testkit::mix_remote(&demo);
    tool.eval_on(
        &sshd,
        "{:io.get_password(), IO.gets(\"next? \"), :io.get_password()}",
    )
    .args(["--no-compile", "--elixir"])
    .arg(sid.elixir())
    .stdin("s3cré t\nrest\n");
    assert_works(
        &tool.run(),
        "next? {[115, 51, 99, 114, 233, 32, 116], \"rest\\n\", :eof}\n",
    );
    sshd.assert_no_session_processes();
}

#[test]
fn compile_time_config_that_differs_is_told_as_under_mix_run_on_otp27_and_otp29_remotes() {
    // Elixir 1.15+ says what differs as a Mix error on stderr, `** (Mix) the application ...`
    // (Elixir 1.14: `ERROR! ...` on stdout, tests/deploy.rs): the tool's line pointed to
    // "Elixir's ERROR", which these releases do not print.
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "dev");
    let project = staged.path();
    // OtpApp.Modes was compiled with mode: :dev.
    let dev = project.join("config/dev.exs");
    let text = std::fs::read_to_string(&dev).expect("dev.exs");
    std::fs::write(&dev, text.replace("mode: :dev", "mode: :elsewhere")).expect("dev.exs");
    for chroot in [trixie, sid] {
        let mut tool = testkit::mix_remote(project);
        tool.eval_on(&sshd, "OtpApp.Modes.now()")
            .args(["--no-compile", "--no-warnings", "--elixir"])
            .arg(chroot.elixir());
        let out = tool.run();
        sshd.assert_no_session_processes();
        let release = chroot.otp_release();
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(1), ""),
            "OTP {release}: {}",
            out.stderr
        );
        assert!(
            out.stderr.starts_with(
                "** (Mix) the application :otp_app has a different value set for key :mode"
            ),
            "OTP {release}: {}",
            out.stderr
        );
        let said = format!(
            "mix-remote: error: application otp_app was compiled with another config than it \
             has on {} (Elixir's message says what differs)",
            sshd.host()
        );
        assert!(out.stderr.contains(&said), "OTP {release}: {}", out.stderr);
    }
}
