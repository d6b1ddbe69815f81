//! Cross-version end-to-end tests: a Mix project built by one OTP, run on a remote whose OTP
//! differs, in both directions. The other releases are Debian chroots (testkit's [`Chroot`]):
//! as the remote, the real sshd's session runs the chroot's `elixir` through `--elixir`; as the
//! build machine, the chroot's `mix` compiles the fixture. Host: OTP 25; trixie: OTP 27; sid:
//! OTP 29. Where the remote's loader can load the beams the run works (which also proves the
//! boot flags on that OTP); where it cannot, the run fails before the call with exit 3 and one
//! line naming the module.

use std::path::Path;

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
        sshd.assert_no_session_processes();
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
