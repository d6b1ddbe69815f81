//! End-to-end tests of `mix-remote run`: a real sshd started by the harness, a real remote BEAM,
//! the fixture project compiled by a real `mix`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::{MixRemote, Sshd};

mod common;
use common::*;

const PROCESS_OUTPUT: &str = "processing batch-7\nerlang says batch-7\n\
    %{items: [1, :two, \"three\"], label: \"batch-7\", total: %Demo.Money{amount: 126, currency: :eur}}\n";

#[test]
fn returns_the_result_and_streams_output() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Worker.process", "--", "42", "\"batch-7\""]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, PROCESS_OUTPUT);
}

#[test]
fn a_raise_or_throw_exits_1_with_the_elixir_formatted_exception() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Worker.fail", "--", "\"bad input\""]);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "about to fail\n");
    assert!(
        out.stderr.contains("** (ArgumentError) bad input\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("lib/demo/worker.ex:") && out.stderr.contains("Demo.Worker.fail/1"),
        "no stacktrace in: {}",
        out.stderr
    );

    assert!(
        out.stderr
            .starts_with("mix-remote: error: Demo.Worker.fail raised on "),
        "{}",
        out.stderr
    );

    // A throw is not called a raise.
    let out = run(&sshd, &["Demo.Worker.throw_it", "--", "{:oops, 1}"]);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .starts_with("mix-remote: error: Demo.Worker.throw_it threw on ")
            && out.stderr.contains("** (throw) {:oops, 1}"),
        "{}",
        out.stderr
    );

    // Blamed as Elixir's command line blames it: with its hints.
    let code = "Map.fetch!(%{apple: 1}, :aple)";
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    let out = tool.eval_on(&sshd, code).run();
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("** (KeyError) key :aple not found in: %{apple: 1}")
            && out.stderr.contains("Did you mean:")
            && out.stderr.contains(":apple"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
}

#[test]
fn erlang_entries_and_argument_literals_arrive_intact() {
    let sshd = Sshd::start();
    let out = run(&sshd, &[":demo_erl.add", "--", "40", "2"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "42\n"),
        "{}",
        out.stderr
    );

    let out = run(
        &sshd,
        &[
            "Demo.Worker.echo",
            "--",
            "[1, :a, -2.5, nil]",
            "%{\"k\" => {true, Demo.Money}, b: [x: 1]}",
            "123456789012345678901234567890",
        ],
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout,
        "{[1, :a, -2.5, nil], %{:b => [x: 1], \"k\" => {true, Demo.Money}}, 123456789012345678901234567890}\n"
    );

    // Negative integers keep their sign in lists of small integers, the arguments' own too.
    let out = run(
        &sshd,
        &["Demo.Worker.echo", "--", "-7", "-1000", "[-1, 2, 255]"],
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "{-7, -1000, [-1, 2, 255]}\n");
    let out = run(&sshd, &[":demo_erl.add", "--", "-40", "-2"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "-42\n"));
}

#[test]
fn pushes_exactly_the_closure_of_the_entry() {
    let sshd = Sshd::start();
    let out = run(
        &sshd,
        &[
            "Demo.Probe.loaded",
            "--",
            "[Demo.Probe, Demo.Worker, Demo.Money, Demo.Unused, :demo_erl, :crypto]",
        ],
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    // Nor has the boot loaded crypto: the node's dynamic name spares distribution its NIF.
    assert_eq!(out.stdout, "[Demo.Probe]\n");
}

#[test]
fn the_cookie_never_appears_in_a_command_line_environment_or_log() {
    // The probe runs on the remote node while the whole run is live. The test host is this
    // machine, so it sees the tool, ssh, sshd and the node alike. It returns the cookie so the
    // test can look for it; -v must not show it.
    let sshd = Sshd::start();
    let out = run(&sshd, &["-v", "Demo.Probe.cookie_exposure"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let (cookie, hits) = out
        .stdout
        .trim()
        .strip_prefix("{\"")
        .and_then(|rest| rest.split_once("\", "))
        .expect("{cookie, hits}");
    assert_eq!(cookie.len(), 48, "cookie of 192 bits in hex");
    assert_eq!(hits, "[]}");
    assert!(
        out.stderr.contains("tunnel:"),
        "-v said nothing: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(cookie),
        "cookie in the log: {}",
        out.stderr
    );
}

#[test]
fn a_crashing_remote_node_writes_no_crash_dump_and_is_a_clear_error() {
    // A crash dump holds the atom table, and so the cookie.
    let sshd = Sshd::start();
    let dump = Path::new(&std::env::var("HOME").expect("HOME")).join("erl_crash.dump");
    let before = std::fs::metadata(&dump).and_then(|m| m.modified()).ok();
    let out = run(&sshd, &["Demo.Worker.crash_node"]);
    // `:erlang.halt/1` with a slogan: the node's exit status is 1, and the function failed.
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    let halted = format!(
        "the remote node on {} halted with status 1 while calling Demo.Worker.crash_node",
        sshd.host()
    );
    assert!(out.stderr.contains(&halted), "{}", out.stderr);
    let after = std::fs::metadata(&dump).and_then(|m| m.modified()).ok();
    assert_eq!(before, after, "{} was written", dump.display());
    // System.halt/1 in the code: its status is named, and what it printed just before, with
    // nothing else on its way, arrived, and so did what it wrote on stderr after that.
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    let out = tool
        .eval_on(
            &sshd,
            "IO.puts(\"last words\"); IO.puts(:stderr, \"the reason\"); System.halt(7)",
        )
        .arg("--no-compile")
        .run();
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "last words\n", "{}", out.stderr);
    assert!(out.stderr.contains("the reason\n"), "{}", out.stderr);
    assert!(
        out.stderr.contains("halted with status 7 while evaluating"),
        "{}",
        out.stderr
    );
    out.assert_local_clean();
    sshd.assert_no_session_processes();
}

#[test]
fn output_written_right_before_a_halt_arrives_whole() {
    // The VM halts without running the relay again nor sending what distribution or the
    // socket's port still holds: a writer hears back once its text is in the kernel's socket, a
    // large write once all of it is (2 MB: twice the relay's window, and a tail shorter than a
    // piece). As under `mix run`, whose stdout is written before `IO.write/1` returns.
    three_runs_that_halt(
        "IO.write(String.duplicate(\"x\", 2_000_000)); System.halt(0)",
        |out| {
            assert_eq!(
                (out.code, out.stdout.len()),
                (Some(0), 2_000_000),
                "{}",
                out.stderr
            );
        },
    );
}

#[test]
fn lines_printed_right_before_a_halt_all_arrive() {
    // Each line but the first is printed while the one before is still unacknowledged: such text
    // used to be held for the next piece, its writer answered at once, and the halt took it with
    // the VM. A few lines at a time go at once now, each answered once it is in the kernel's
    // socket, as `mix run`'s stdout is written before `IO.puts/1` returns.
    let expected: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    three_runs_that_halt(
        "for i <- 1..50, do: IO.puts(\"line #{i}\")\nSystem.halt(3)",
        |out| {
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (Some(1), expected.as_str()),
                "{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("halted with status 3"),
                "{}",
                out.stderr
            );
        },
    );
}

/// Evaluates `code`, which halts the node, three times on one sshd (a halt's race shows in some
/// runs only), checking each run's output with `check`; nothing may be left on either side.
fn three_runs_that_halt(code: &str, check: impl Fn(&testkit::Output)) {
    three_halting_runs(
        |tool, sshd| {
            tool.eval_on(sshd, code).arg("--no-compile");
        },
        check,
    );
}

/// Runs the demo's tool as `command` makes it (`--no-compile` its own), which halts the node,
/// three times on one sshd, checking each run's output with `check`; nothing may be left on
/// either side.
fn three_halting_runs(command: impl Fn(&mut MixRemote, &Sshd), check: impl Fn(&testkit::Output)) {
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    for _ in 0..3 {
        let mut tool = testkit::mix_remote(&demo);
        command(&mut tool, &sshd);
        let out = tool.run();
        check(&out);
        out.assert_local_clean();
    }
    sshd.assert_no_session_processes();
}

/// Checks that a run printed `rows` rows (`row 1` on) and ended as a halt with status 3 ends it.
fn all_rows_then_status_3(rows: usize) -> impl Fn(&testkit::Output) {
    let expected: String = (1..=rows).map(|i| format!("row {i}\n")).collect();
    move |out| {
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(
            out.stdout == expected,
            "{} of {} bytes, ending {:?}\n{}",
            out.stdout.len(),
            expected.len(),
            &out.stdout[out.stdout.len().saturating_sub(40)..],
            out.stderr
        );
        assert!(
            out.stderr.contains("halted with status 3"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_burst_printed_right_before_a_module_halts_all_arrives() {
    // 20,000 rows in a tight loop, then `System.halt(3)`: the last rows are held by the relay
    // (its writers answered at once) when the halt comes. A shipped module's halt waits for the
    // tool to have written them, as `mix run`'s flushes its stdout.
    three_halting_runs(
        |tool, sshd| {
            tool.run_on(sshd)
                .args(["Demo.Worker.report_and_halt", "--no-compile", "--", "20000"]);
        },
        all_rows_then_status_3(20_000),
    );
}

#[test]
fn a_burst_printed_right_before_evaluated_code_or_a_script_halts_all_arrives() {
    // Evaluated and script code is compiled on the node: its halts, Erlang's and Elixir's, wait
    // the same way; an `alias` of another `System` is still obeyed.
    three_runs_that_halt(
        "for i <- 1..20_000, do: IO.puts(\"row #{i}\")\n:erlang.halt(3)",
        all_rows_then_status_3(20_000),
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let script = dir.path().join("report.exs");
    std::fs::write(
        &script,
        "defmodule Report.System do\n  def halt(_), do: IO.puts(\"not halted\")\nend\n\
         defmodule Report do\n  alias Report.System\n  def run, do: System.halt(1)\nend\n\
         Report.run()\n\
         Enum.each(1..20_000, &IO.puts(\"row #{&1}\"))\n\
         System.halt(3)\n",
    )
    .expect("write the script");
    let path = script.display().to_string();
    let expected: String = std::iter::once("not halted\n".to_owned())
        .chain((1..=20_000).map(|i| format!("row {i}\n")))
        .collect();
    three_halting_runs(
        |tool, sshd| {
            tool.run_on(sshd).args([&path, "--no-compile"]);
        },
        |out| {
            assert_eq!(out.code, Some(1), "{}", out.stderr);
            assert!(
                out.stdout == expected,
                "{} bytes\n{}",
                out.stdout.len(),
                out.stderr
            );
        },
    );
}

#[test]
fn bad_entries_and_arguments_fail_before_connecting() {
    // The sshd's log shows whether anything connected, even a login cut short: nothing may.
    let sshd = Sshd::start();
    let cases: &[(&[&str], &str)] = &[
        (
            &["Demo.Nope.run"],
            "module Demo.Nope is not in this project's _build",
        ),
        (
            &["Demo.Worker.nope", "--", "1"],
            "Demo.Worker.nope/1 is not exported by Demo.Worker",
        ),
        (
            &["Demo.Worker.process", "--", "1"],
            "(it exports process/2: pass that many arguments after --)",
        ),
        (
            &["Demo.Worker.process", "--", "1", "[1,"],
            "argument 2 `[1,`",
        ),
        (&["demo.worker.process"], "is not of the form"),
        (
            &[
                "Demo.Worker.process",
                "--env",
                "nope",
                "--no-compile",
                "--",
                "1",
                "2",
            ],
            "no compiled build at",
        ),
    ];
    for (args, expected) in cases {
        let out = demo(&sshd, args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        // With -v, ssh's command line would show, had the login started.
        let out = demo(&sshd, &[&["-v"], *args].concat()).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("ssh: ssh"), "{args:?}: {}", out.stderr);
        out.assert_local_clean();
    }
    assert!(
        !sshd.log().contains("Accepted") && !sshd.log().contains("onnection"),
        "a connection was made: {}",
        sshd.log()
    );
}

#[test]
fn a_build_that_fails_to_read_while_the_login_goes_on_leaves_nothing() {
    // The entry's own module looks right, so the login starts while the whole build is read;
    // another module of the build is not a beam, and reading fails.
    let sshd = Sshd::start();
    let project = tempfile::tempdir().unwrap();
    let demo = testkit::compiled_fixture("demo");
    std::fs::copy(demo.join("mix.exs"), project.path().join("mix.exs")).unwrap();
    let ebin = project.path().join("_build/dev/lib/demo/ebin");
    std::fs::create_dir_all(&ebin).unwrap();
    for file in std::fs::read_dir(demo.join("_build/dev/lib/demo/ebin")).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, ebin.join(file.file_name().unwrap())).unwrap();
    }
    std::fs::write(ebin.join("Elixir.Demo.Broken.beam"), b"not a beam").unwrap();
    let mut tool = testkit::mix_remote(project.path());
    tool.run_on(&sshd).args([
        "-v",
        "--no-compile",
        "Demo.Worker.echo",
        "--",
        "1",
        "2",
        "3",
    ]);
    let out = tool.run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let error = out.stderr.lines().last().unwrap_or_default();
    assert!(
        error.starts_with("mix-remote: error: ") && error.contains("Elixir.Demo.Broken.beam"),
        "{}",
        out.stderr
    );
    // The login had started (`-v` shows the ssh command) before the error.
    assert!(
        out.stderr.lines().any(|l| l.contains("ssh: ssh -M")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    sshd.assert_no_session_processes();
    sshd.assert_no_client_processes();
    out.assert_local_clean();
}

#[test]
fn a_missing_remote_elixir_is_a_clear_error() {
    let sshd = Sshd::start();
    let out = run(
        &sshd,
        &[
            "--elixir",
            "/nonexistent/bin/elixir",
            ":demo_erl.add",
            "--",
            "1",
            "2",
        ],
    );
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("elixir not found on") && out.stderr.contains("--elixir"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_linked_crash_is_reported_as_an_exit() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Worker.linked_crash"]);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("\nmix-remote: error: Demo.Worker.linked_crash exited on ")
            && out.stderr.contains("** (RuntimeError) from a task"),
        "{}",
        out.stderr
    );
    // Named as mix run names it: the exit of the process that ran the code, a pid of its node.
    let demo = testkit::compiled_fixture("demo");
    let local = testkit::mix_run(&demo, "dev", true, "Demo.Worker.linked_crash()", &[]);
    let banner = |stderr: &str| pid_masked(stderr.lines().find(|l| l.starts_with("** ("))?);
    let expected = banner(&local.stderr);
    assert_eq!(
        expected.as_deref(),
        Some("** (EXIT from #PID<...>) an exception was raised:"),
        "{}",
        local.stderr
    );
    assert_eq!(banner(&out.stderr), expected, "{}", out.stderr);
    // The whole failure as mix run prints it, to the empty line its empty stack makes last.
    let failure = |stderr: &str| {
        let at = stderr.find("** (EXIT from ").expect("a banner");
        pid_masked(&stderr[at..])
    };
    assert!(local.stderr.ends_with("\n\n"), "{:?}", local.stderr);
    assert_eq!(
        failure(&out.stderr),
        failure(&local.stderr),
        "{}",
        out.stderr
    );
}

/// `line` with its first pid's numbers left out (`#PID<...>`), for comparing two nodes' words.
fn pid_masked(line: &str) -> Option<String> {
    let (head, tail) = line.split_once("#PID<")?;
    Some(format!("{head}#PID<...{}", &tail[tail.find('>')?..]))
}

#[test]
fn a_script_is_compiled_as_under_mix_run_its_top_level_too() {
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let dir = tempfile::tempdir().expect("temporary directory");
    let script = dir.path().join("fix.exs");
    // A `fn` of the top level is compiled code under `mix run FILE` (Code.require_file/2), not
    // erl_eval's interpreted closure as under `mix run -e`; a failure there has the script's line.
    std::fs::write(
        &script,
        "double = fn x -> x * 2 end\n\
         {:module, module} = :erlang.fun_info(double, :module)\n\
         IO.puts(\"interpreted: #{module == :erl_eval}\")\n\
         IO.puts(\"sum: #{Enum.sum(Enum.map(1..10, double))}\")\n\
         if System.argv() == [\"fail\"], do: raise(\"boom\")\n\
         :done\n",
    )
    .expect("write the script");
    let path = script.display().to_string();
    let output = "interpreted: false\nsum: 110\n";
    let local = testkit::mix_run_file(&demo, "dev", &script, &[]);
    assert_eq!((local.code, local.stdout.as_str()), (Some(0), output));
    let out = run(&sshd, &[&path, "--no-compile"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), output),
        "{}",
        out.stderr
    );
    // Its value is not printed, but the result event has it.
    let out = run(&sshd, &[&path, "--no-compile", "--json"]);
    let result = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "result")
        .unwrap_or_else(|| panic!("no result event: {}", out.stdout));
    assert_eq!(
        (&result["status"], &result["value"]),
        (&"returned".into(), &":done".into())
    );

    let frame = format!("{path}:5: (file)");
    let local = testkit::mix_run_file(&demo, "dev", &script, &["fail"]);
    assert_eq!(local.code, Some(1));
    assert!(local.stderr.contains(&frame), "{}", local.stderr);
    let out = run(&sshd, &[&path, "--no-compile", "--", "fail"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(1), output),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("** (RuntimeError) boom") && out.stderr.contains(&frame),
        "{}",
        out.stderr
    );
}

#[test]
fn a_crash_no_link_takes_is_logged_as_under_mix_run() {
    let sshd = Sshd::start();
    // The emulator names the node of a crash when the node is alive, as the run's is: Logger
    // said "Process #PID<...> on node :mix_remote_...@localhost raised an exception". (otp_app
    // needs Logger, so that mix run has it running.)
    let project = testkit::compiled_fixture("otp_app");
    let code = "spawn(fn -> raise \"lost\" end); Process.sleep(300)";
    let logged = |text: &str| {
        let line = text.lines().find(|l| l.contains("[error] Process #PID<"))?;
        pid_masked(&line[line.find("[error] ")?..])
    };
    let local = testkit::mix_run(&project, "dev", true, code, &[]);
    let expected = logged(&local.stdout);
    assert_eq!(
        expected.as_deref(),
        Some("[error] Process #PID<...> raised an exception"),
        "{}",
        local.stdout
    );
    let mut tool = testkit::mix_remote(&project);
    let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(logged(&out.stderr), expected, "{}", out.stderr);
    sshd.assert_no_session_processes();
}

#[test]
fn io_requests_beyond_put_chars_are_answered() {
    let sshd = Sshd::start();
    // Reading stdin gets end-of-file, after the prompt is shown.
    let out = run(&sshd, &["Demo.Worker.ask"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "name? :eof\n"),
        "{}",
        out.stderr
    );
    // The text of an MFA request is computed remotely, and what that computation prints is
    // served meanwhile instead of deadlocking behind it.
    let out = run(&sshd, &[":demo_erl.nested_output"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "inner\nouter\n:ok\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn on_load_modules_are_loaded_after_the_batch() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Worker.onload_state"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), ":initialised\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_exit_with_a_status_ends_as_under_mix_run() {
    let sshd = Sshd::start();
    let eval = |code: &str, json: bool| {
        let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
        tool.eval_on(&sshd, code)
            .arg("--no-compile")
            .args(json.then_some("--json"));
        let out = tool.run();
        out.assert_local_clean();
        out
    };
    // `mix run -e` ends with status 0 for these, and prints no value; so do a halt and a stop
    // of the node with status 0.
    for code in [
        "IO.puts(:before); exit(:normal)",
        "IO.puts(:before); exit(:shutdown)",
        "IO.puts(:before); exit({:shutdown, 0})",
        "IO.puts(:before); exit({:shutdown, :done})",
        "IO.puts(:before); System.halt(0)",
        "IO.puts(:before); System.stop(0); Process.sleep(:infinity)",
        // System.stop/1 returns `:ok` at once, while init stops the node: no value either.
        "IO.puts(:before); System.stop(0)",
    ] {
        let out = eval(code, false);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "before\n"),
            "{code}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("error"), "{code}: {}", out.stderr);
    }
    // A stop with another status is the node's halt with it, as when the code sleeps on.
    for code in ["System.stop(3)", "System.stop(3); Process.sleep(:infinity)"] {
        let out = eval(code, false);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(1), ""),
            "{code}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("halted with status 3 while evaluating"),
            "{code}: {}",
            out.stderr
        );
    }
    // However the node ended, its run directory went with it (a halt or stop by the code skips
    // the boot program's own removal).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sshd.run_dirs().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(sshd.run_dirs(), Vec::<std::path::PathBuf>::new());
    // Another status: the function failed, the status named; one past 255 as the OS has a
    // halt with it (`mix run` ends with 44 for 300).
    for (code, said) in [
        ("exit({:shutdown, 3})", "stopped with status 3"),
        ("exit({:shutdown, 300})", "stopped with status 44"),
    ] {
        let out = eval(code, false);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(out.stderr.contains(said), "{code}: {}", out.stderr);
    }
    // A halt with status 0 ends the call's phase as done, the result after it.
    let out = eval("System.halt(0)", true);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let call_finished = events
        .iter()
        .position(|e| e["event"] == "phase_finished" && e["phase"] == "call")
        .unwrap_or_else(|| panic!("no call phase_finished in {}", out.stdout));
    assert_eq!(
        events[call_finished]["message"],
        "the expression stopped with status 0"
    );
    let result = events.iter().position(|e| e["event"] == "result").unwrap();
    assert!(call_finished < result, "{}", out.stdout);
    assert_eq!(
        (&events[result]["status"], &events[result]["ok"]),
        (&"stopped".into(), &true.into())
    );
    let out = eval("exit({:shutdown, 3})", true);
    let result = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "result")
        .expect("a result event");
    assert_eq!(
        (&result["status"], &result["value"], &result["ok"]),
        (&"stopped".into(), &"3".into(), &false.into())
    );
    // A raise or a throw with --json: the event has the whole text, stderr one line of it, as
    // every error has (a CI job that keeps stdout's events still shows why on its log).
    for (code, how) in [
        ("raise \"boom\"", "raised on {}: ** (RuntimeError) boom"),
        ("throw 1", "threw on {}: ** (throw) 1"),
    ] {
        let out = eval(code, true);
        assert_eq!(out.code, Some(1), "{code}: {}", out.stderr);
        let how = how.replace("{}", &sshd.host());
        assert_eq!(
            out.stderr,
            format!("mix-remote: error: the expression {how}\n")
        );
    }
    sshd.assert_no_session_processes();
}

#[test]
fn at_exit_hooks_run_once_the_code_is_done_as_under_mix_run() {
    // Elixir's command line runs them with the status the run ends with, newest first; a hook
    // that fails fails the run, and one that exits with a status ends it so.
    let sshd = Sshd::start();
    let eval = |code: &str| {
        let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
        tool.eval_on(&sshd, code).arg("--no-compile");
        let out = tool.run();
        out.assert_local_clean();
        out
    };
    let hooks = "System.at_exit(fn s -> IO.puts(\"first #{s}\") end); \
                 System.at_exit(fn s -> IO.puts(\"second #{s}\") end);";
    // The value shows before the hooks' output, as `mix run -e 'IO.inspect(...)'` prints it.
    let local = |code: &str| {
        let out = testkit::mix_run(&testkit::compiled_fixture("demo"), "dev", true, code, &[]);
        (out.code, out.stdout)
    };
    let body = format!("{hooks} IO.puts(:body); 42");
    let expected = local(&format!("IO.inspect(({body}))"));
    assert_eq!(
        expected,
        (Some(0), "body\n42\nsecond 0\nfirst 0\n".to_owned())
    );
    let out = eval(&body);
    assert_eq!((out.code, out.stdout), expected, "{}", out.stderr);
    // So with a hook that fails the run: the value first, then the hook's failure.
    let body = "System.at_exit(fn 0 -> IO.puts(:hook); exit({:shutdown, 3}) end); :value";
    let expected = local(&format!("IO.inspect(({body}))"));
    assert_eq!(expected, (Some(3), ":value\nhook\n".to_owned()));
    let out = eval(body);
    assert_eq!((out.code, out.stdout.as_str()), (Some(1), ":value\nhook\n"));
    // With --json the value is output there too (the result event, last, says how it ended).
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.eval_on(&sshd, body).args(["--no-compile", "--json"]);
    let out = tool.run();
    out.assert_local_clean();
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "output" || e["event"] == "result")
        .collect();
    assert_eq!(events.len(), 3, "{}", out.stdout);
    assert_eq!(events[0]["text"], ":value", "{}", out.stdout);
    assert_eq!(events[1]["text"], "hook", "{}", out.stdout);
    assert_eq!(
        (&events[2]["status"], &events[2]["value"]),
        (&"stopped".into(), &"3".into())
    );
    // A script's value is not printed, hooks or not.
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    let script = tempfile::tempdir().unwrap();
    let file = script.path().join("hooked.exs");
    std::fs::write(
        &file,
        "System.at_exit(fn _ -> IO.puts(:hook) end)\n:value\n",
    )
    .unwrap();
    tool.run_on(&sshd).arg(&file).arg("--no-compile");
    let out = tool.run();
    out.assert_local_clean();
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "hook\n"));
    let out = eval(&format!("{hooks} raise \"boom\""));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(1), "second 1\nfirst 1\n"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("boom"), "{}", out.stderr);
    let out = eval("System.at_exit(fn 0 -> raise \"in the hook\" end); 42");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("in the hook"), "{}", out.stderr);
    let out = eval("System.at_exit(fn 0 -> exit({:shutdown, 3}) end); 42");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("stopped with status 3"),
        "{}",
        out.stderr
    );
    // The failure a hook's end replaces is printed first, as Elixir's command line prints it.
    let out = eval("System.at_exit(fn 1 -> raise \"cleanup\" end); raise \"boom\"");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let (boom, cleanup) = (out.stderr.find("boom"), out.stderr.find("cleanup"));
    assert!(boom.is_some() && boom < cleanup, "{}", out.stderr);
    let out = eval("System.at_exit(fn 1 -> exit(:normal) end); raise \"boom\"");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("boom"), "{}", out.stderr);
    // ExUnit runs the tests a script defines from its hook, and fails the run for a failure.
    let out = eval(
        "ExUnit.start(); defmodule T do use ExUnit.Case; test \"one\", do: assert 1 + 1 == 3 end; :defined",
    );
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 test, 1 failure"), "{}", out.stdout);
    sshd.assert_no_session_processes();
}

#[test]
fn mix_raise_exit_status_ends_the_run_as_under_mix_run() {
    // Mix's command line ends with a Mix exception's `exit_status` (its hooks get it): 0 is a
    // success there and here; another status ends the tool with 1, as `exit({:shutdown, n})`
    // does (the tool's own 2-4 mean other things).
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let hook = "System.at_exit(fn s -> IO.puts(\"hook #{s}\") end);";
    for (status, tool_code) in [(0, 0), (3, 1), (1, 1)] {
        let code = format!("{hook} Mix.raise(\"boom\", exit_status: {status})");
        let local = testkit::mix_run(&project, "dev", true, &code, &[]);
        let hooked = format!("hook {status}\n");
        assert_eq!(
            (local.code, local.stdout.as_str()),
            (Some(status), hooked.as_str()),
            "{}",
            local.stderr
        );
        assert!(local.stderr.contains("** (Mix) boom"), "{}", local.stderr);
        let mut tool = testkit::mix_remote(&project);
        let out = tool.eval_on(&sshd, &code).arg("--no-compile").run();
        out.assert_local_clean();
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(tool_code), hooked.as_str()),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("** (Mix) boom"), "{}", out.stderr);
        // A success is no error of the tool's: Mix's words alone, as mix run prints them.
        assert_eq!(
            out.stderr.contains("mix-remote: error:"),
            status != 0,
            "{}",
            out.stderr
        );
    }
    sshd.assert_no_session_processes();
}

#[test]
fn an_os_child_s_stderr_is_the_node_s_own_but_stderr_to_stdout_gives_it_to_the_code() {
    // An OS process started by the code writes its stderr where the node does (README, Limits):
    // a line of the server's, `[HOST] err`, where mix run shows `err`. With `stderr_to_stdout:
    // true` it is the code's, as under mix run.
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let eval = |code: &str| {
        let mut tool = testkit::mix_remote(&project);
        let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
        out.assert_local_clean();
        out
    };
    let code = "System.cmd(\"sh\", [\"-c\", \"echo err >&2\"])";
    let local = testkit::mix_run(&project, "dev", true, &format!("IO.inspect({code})"), &[]);
    assert_eq!(
        (local.stdout.as_str(), local.stderr.as_str()),
        ("{\"\", 0}\n", "err\n")
    );
    let out = eval(code);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{\"\", 0}\n"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("] err\n"), "{}", out.stderr);
    let code = "System.cmd(\"sh\", [\"-c\", \"echo err >&2\"], stderr_to_stdout: true)";
    let local = testkit::mix_run(&project, "dev", true, &format!("IO.inspect({code})"), &[]);
    assert_eq!(local.stdout, "{\"err\\n\", 0}\n", "{}", local.stderr);
    let out = eval(code);
    assert_eq!(
        (out.code, out.stdout),
        (Some(0), local.stdout),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("err\n"), "{}", out.stderr);
    sshd.assert_no_session_processes();
}

#[test]
fn eval_failures_are_formatted_as_mix_run_formats_them() {
    // As Elixir's command line prints them: a function clause's arguments and its clauses
    // marked, a compile error without Elixir's internal frames. mix run's stack goes on below
    // the code's frames (erl_eval's, Mix's), which mix-remote leaves out. A Mix exception as
    // Mix's command line words it: `** (Mix) message`, no stack.
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let from_banner = |stderr: &str| -> String {
        let at = stderr
            .find("** (")
            .unwrap_or_else(|| panic!("no failure in {stderr}"));
        stderr[at..].to_owned()
    };
    for code in ["String.upcase(1)", "x + 1", "Mix.raise(\"no input given\")"] {
        let local = testkit::mix_run(&project, "dev", true, code, &[]);
        assert_eq!(local.code, Some(1), "{}", local.stderr);
        let expected = from_banner(&local.stderr);
        let mut tool = testkit::mix_remote(&project);
        let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
        out.assert_local_clean();
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        let shown = from_banner(&out.stderr);
        assert!(
            shown.lines().count() > 0 && expected.starts_with(&shown),
            "{code}: mix-remote's\n{shown}\nis not the start of mix run's\n{expected}"
        );
    }
    sshd.assert_no_session_processes();
}

#[test]
fn eval_gives_the_arguments_after_its_flags_as_system_argv() {
    let sshd = Sshd::start();
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.eval_on(&sshd, "System.argv()")
        .args(["--no-compile", "--", "a", "b c", "--json"]);
    let out = tool.run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "[\"a\", \"b c\", \"--json\"]\n"),
        "{}",
        out.stderr
    );
    out.assert_local_clean();
    sshd.assert_no_session_processes();
}

#[test]
fn output_the_node_leaves_unended_on_its_stdout_hides_no_marker() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("demo", "dev");
    let onload = staged.path().join("src/demo_onload.erl");
    let source = std::fs::read_to_string(&onload).unwrap();
    let printing = source.replace(
        "init() ->\n",
        "init() ->\n    io:put_chars(user, \"on_load says, without a newline\"),\n",
    );
    assert_ne!(printing, source);
    std::fs::write(&onload, printing).unwrap();
    staged.recompile();
    // Printed as the module loads, before the line that says the load is done: that line is
    // still read, and the run does not wait out its push limit.
    let mut tool = testkit::mix_remote(staged.path());
    tool.run_on(&sshd).args([
        "--no-compile",
        "--push-timeout",
        "30",
        "Demo.Worker.onload_state",
    ]);
    let out = tool.run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), ":initialised\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("] on_load says, without a newline\n"),
        "{}",
        out.stderr
    );
    out.assert_local_clean();
    sshd.assert_no_session_processes();
}

#[test]
fn the_functions_standard_error_reaches_stderr_in_order_with_its_output() {
    let sshd = Sshd::start();
    let code = "IO.puts(\"out 1\"); IO.puts(:stderr, \"err 1\"); IO.write(:stderr, \"err 2\\n\"); \
        :io.format(:standard_error, ~c\"err ~p~n\", [3]); IO.puts(\"out 2\"); \
        IO.write(:stderr, \"unended\"); :done";
    // A Logger handler of the function's own on standard error, its queue still long as the
    // function returns: flushed as the call ends, its lines come before the result.
    let logged = ":logger.add_handler(:to_stderr, :logger_std_h, %{config: %{type: :standard_error, \
        burst_limit_enable: false, sync_mode_qlen: 10_000, drop_mode_qlen: 10_000, \
        flush_qlen: 10_001}, formatter: {:logger_formatter, %{template: [:msg, ~c\"\\n\"]}}}); \
        require Logger; for i <- 1..300, do: Logger.error(\"logged #{i}\"); :done";
    let eval = |flags: &[&str], merged: bool| {
        let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
        tool.eval_on(&sshd, code).args(flags);
        if merged {
            tool.wrapper(&["sh", "-c", "exec \"$0\" \"$@\" 2>&1"]);
        }
        let out = tool.run();
        out.assert_local_clean();
        out
    };
    // One stream: the function's lines in the order it wrote them, `-q` dropping none of them
    // (and, as for unended output, no newline added in a pipe).
    let out = eval(&["-q"], true);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "out 1\nerr 1\nerr 2\nerr 3\nout 2\nunended:done\n"),
        "{}",
        out.stderr
    );
    // Apart: stdout has the output and the result, stderr the rest as written, without the
    // `[HOST]` of the node's own lines.
    let out = eval(&[], false);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "out 1\nout 2\n:done\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("err 1\nerr 2\nerr 3\nunended") && !out.stderr.contains("] err"),
        "{}",
        out.stderr
    );
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.eval_on(&sshd, logged)
        .args(["-q"])
        .wrapper(&["sh", "-c", "exec \"$0\" \"$@\" 2>&1"]);
    let out = tool.run();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let lines: Vec<String> = (1..=300).map(|i| format!("logged {i}\n")).collect();
    assert_eq!(out.stdout, format!("{}:done\n", lines.concat()));
    sshd.assert_no_session_processes();
}

#[test]
fn a_run_makes_one_request_after_connect_whatever_the_closure_size() {
    // The call. What the remote has, it said as it booted; the whole closure (here with an
    // -on_load module among 4) went on its stdin then, in one piece. Loading module by module, or
    // asking, would add requests.
    let sshd = Sshd::start();
    let one = run(&sshd, &["-v", "Demo.Probe.loaded", "--", "[]"]);
    assert_eq!(
        (one.code, one.stdout.as_str()),
        (Some(0), "[]\n"),
        "{}",
        one.stderr
    );
    let four = run(&sshd, &["-v", "Demo.Worker.onload_state"]);
    assert_eq!(
        (four.code, four.stdout.as_str()),
        (Some(0), ":initialised\n"),
        "{}",
        four.stderr
    );
    assert_eq!(one.stat("pushed_modules"), 1);
    assert_eq!(four.stat("pushed_modules"), 4);
    assert_eq!(one.stat("requests"), 1);
    assert_eq!(four.stat("requests"), 1);
    assert_eq!(one.stat("round_trips"), 1);
    assert_eq!(four.stat("round_trips"), 1);
}

#[test]
fn a_cold_node_leaves_string_unicode_and_base_unloaded() {
    // Every module load on the booting node waits for its one code server, and a run's own
    // modules wait with them: the boot program spells lower-case hex with Erlang's functions,
    // not String.downcase/1 (String.Unicode: 136 KB, 13 ms on an idle core), nor Base (75 KB,
    // 5-6 ms). Neither is loaded when the function is called.
    let sshd = Sshd::start();
    let out = run(
        &sshd,
        &["Demo.Probe.loaded", "--", "[String.Unicode, Base]"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "[]\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_node_gives_its_connection_back_two_minutes_from_its_command_line() {
    // Connecting back may outlast OTP's 7 s on a busy server. The launcher gives the node
    // `-kernel net_setuptime 120` as it starts: set from the connecting process, through the
    // application controller, the call gave up after 5 s when 32 nodes booted at once on two
    // cores, and the node never connected.
    let sshd = Sshd::start();
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.eval_on(&sshd, "Application.get_env(:kernel, :net_setuptime)");
    let out = tool.run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "120\n"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

/// What a node says of its connection back: the descriptor of the distribution socket, and the
/// launcher's variable as the function sees it.
const CONNECTION_BACK: &str = "[{_, socket}] = :erlang.system_info(:dist_ctrl); {:inet.getfd(socket), System.get_env(\"MIX_REMOTE_FD\")}";

/// `eval` of [`CONNECTION_BACK`] on `sshd` with `-v`, with `config` (a `mix-remote.yaml`) if
/// given: stdout and stderr, after checking that the run succeeded and left nothing on either
/// side.
fn connection_back(sshd: &Sshd, config: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.eval_on(sshd, CONNECTION_BACK).arg("-v");
    if let Some(yaml) = config {
        let file = dir.path().join("mix-remote.yaml");
        std::fs::write(&file, yaml).unwrap();
        tool.arg("--config").arg(file);
    }
    let out = tool.run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    (out.stdout, out.stderr)
}

#[test]
fn the_launcher_opens_the_connection_back_before_the_node_starts() {
    // With bash, the launcher connects to the forward (its port chosen by the tool) before the
    // VM starts and hands the socket over as descriptor 3 (the VM's own first descriptors are
    // taken by the time it could open one); the variable that names it is gone by the time the
    // function runs.
    // (The drawn port may be one a service of this machine listens on: the run then logs in
    // again with an allocated port, and the test draws again.)
    let sshd = Sshd::start();
    let drawn = (0..3)
        .map(|_| connection_back(&sshd, None))
        .find(|(_, stderr)| !stderr.contains("for the forward back"))
        .expect("three drawn ports refused");
    assert_eq!(drawn.0, "{{:ok, 3}, nil}\n", "{}", drawn.1);
    // With a port the server allocates, the node opens the connection itself.
    let (allocated, _) = connection_back(&sshd, Some("defaults:\n  forward_port: 0\n"));
    assert!(allocated.ends_with("}, nil}\n"), "{allocated}");
    assert!(!allocated.starts_with("{{:ok, 3}"), "{allocated}");
}

#[test]
fn without_bash_the_node_opens_the_connection_back_itself() {
    let no_bash = testkit::PathWithout::new("bash");
    let path = no_bash.path().to_str().expect("a temporary path is UTF-8");
    let sshd = Sshd::builder().env("PATH", path).start();
    let (out, _) = connection_back(&sshd, None);
    assert!(out.starts_with("{{:ok, "), "{out}");
    assert!(!out.starts_with("{{:ok, 3}"), "{out}");
    assert!(out.ends_with("}, nil}\n"), "{out}");
}

#[test]
fn a_forward_port_taken_on_the_server_gives_way_to_one_it_allocates() {
    // The port is taken (this test listens on it, on the server's loopback): the server refuses
    // the forward, ssh ends the login, and the run logs in again with a port the server
    // allocates.
    let sshd = Sshd::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let yaml = format!("defaults:\n  forward_port: {port}\n");
    let (stdout, stderr) = connection_back(&sshd, Some(&yaml));
    assert!(!stdout.starts_with("{{:ok, 3}"), "{stdout}");
    let refused = format!("refused port {port} for the forward back");
    assert!(stderr.contains(&refused), "{stderr}");
    // Nothing connected to this listener: ssh ended the refused login before its session's
    // command (the launcher) ran.
    taken.set_nonblocking(true).unwrap();
    assert!(taken.accept().is_err(), "the refused login connected here");
}

#[test]
fn ctrl_c_stops_the_remote_node() {
    let sshd = Sshd::start();
    let child = start_sleeper(&sshd);
    child.signal("INT");
    let out = child.finish();
    assert_eq!(out.code, Some(130), "stderr: {}", out.stderr);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    assert_eq!(sshd.client_processes(), Vec::new());
}

#[test]
fn a_killed_tool_leaves_no_remote_node_no_ssh_master_and_no_file() {
    // SIGKILL gives the tool no chance to clean up: the remote node must still go, because the
    // master's stdin pipe closes with the process, and the master must exit with its session.
    // The private directory was removed as soon as the node connected back.
    let sshd = Sshd::start();
    let child = start_sleeper(&sshd);
    assert_eq!(
        testkit::entries(child.tmp()),
        Vec::<std::path::PathBuf>::new()
    );
    child.signal("KILL");
    let out = child.finish();
    assert_eq!(out.code, None, "not killed by the signal");
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    sshd.assert_no_client_processes();
}

#[test]
fn through_a_firewalled_namespace_host_distribution_travels_only_inside_ssh() {
    if !testkit::netns_available() {
        return;
    }
    let sshd = Sshd::start_in_netns();
    let blocked = sshd
        .blocked_addr()
        .expect("namespace host has a blocked port");
    assert!(
        std::net::TcpStream::connect_timeout(&blocked, Duration::from_secs(1)).is_err(),
        "the firewall lets {blocked} through"
    );
    let out = run(&sshd, &["Demo.Worker.process", "--", "42", "\"batch-7\""]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, PROCESS_OUTPUT);

    // While a run is live, nothing but sshd listens beyond loopback, and the node not at all.
    let child = start_sleeper(&sshd);
    let ns = sshd.netns().expect("namespace host");
    let ss = Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-Hltnp"])
        .output()
        .expect("run ss");
    let listeners = String::from_utf8_lossy(&ss.stdout).into_owned();
    child.signal("INT");
    assert_eq!(child.finish().code, Some(130));
    sshd.assert_no_session_processes();
    let sshd_addr = sshd.addr().ip().to_string();
    for line in listeners.lines() {
        let local = line.split_whitespace().nth(3).unwrap_or_default();
        assert!(
            local.starts_with("127.0.0.1:") || local.starts_with(&format!("{sshd_addr}:")),
            "listener beyond loopback: {line}"
        );
        assert!(!line.contains("beam"), "the remote node listens: {line}");
    }
    let forwards = listeners
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(3)
                .unwrap_or_default()
                .starts_with("127.0.0.1:")
        })
        .count();
    assert_eq!(
        forwards, 1,
        "expected the run's one reverse forward on loopback: {listeners}"
    );
    assert!(
        listeners.lines().count() >= 3,
        "expected sshd (two ports) and the forward: {listeners}"
    );
}

#[test]
fn elixirs_own_protocols_are_consolidated_as_under_mix_run() {
    // Mix consolidates Elixir's protocols into the project's build, and mix run loads them from
    // there: dispatch on a struct goes straight to its implementation. The node kept the
    // server's unconsolidated copies (false, false), a dispatch on a struct several times slower.
    let sshd = Sshd::start();
    let demo = testkit::compiled_fixture("demo");
    let code = "{Protocol.consolidated?(Enumerable), Protocol.consolidated?(Inspect), \
                Enum.count(MapSet.new([1, 2])), inspect(1..2)}";
    let local = testkit::mix_run(&demo, "dev", true, &format!("IO.inspect({code})"), &[]);
    assert_eq!(local.stdout, "{true, true, 2, \"1..2\"}\n");
    let mut tool = testkit::mix_remote(demo);
    let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), local.stdout.as_str()),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
}

#[test]
fn started_applications_that_do_not_need_logger_run_without_it_as_under_mix_run() {
    let sshd = Sshd::start();
    // Mix's app.start stops Logger for the applications to start it again: demo's does not
    // need it, so Elixir's Logger prints nothing and Erlang's logger writes in OTP's format.
    // The run kept Logger running, and wrote "... [warning] disk almost full".
    let code = "Demo.Worker.log_it(\"disk almost full\"); require Logger; \
                Logger.warning(\"not said\"); IO.puts(Process.whereis(Logger) != nil)";
    let report = |text: &str, prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once("REPORT==== ") {
                Some((head, _)) => format!("{head}REPORT===="),
                None => l.to_owned(),
            })
            .collect()
    };
    let local = testkit::mix_run(&testkit::compiled_fixture("demo"), "dev", true, code, &[]);
    let local_out = local.stdout;
    let expected = report(&local_out, "");
    assert_eq!(
        expected,
        ["=WARNING REPORT====", "disk almost full", "false"],
        "{local_out}"
    );
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "false\n:ok\n");
    let prefix = format!("[{}] ", sshd.host());
    assert_eq!(
        report(&out.stderr, &prefix),
        expected[..2],
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
}

#[test]
fn logger_lines_from_the_server_are_one_line_each_with_their_host_once() {
    let sshd = Sshd::start();
    // Not started: Logger runs (demo's application does not need it, so started it would not,
    // as under mix run; see the test below).
    let out = run(
        &sshd,
        &[
            "--no-start",
            "Demo.Worker.log_it",
            "--",
            "\"disk almost full\"",
        ],
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    // Logger's message starts with a newline: no blank `[host]` line for it.
    let lines: Vec<&str> = out.stderr.lines().collect();
    let prefix = format!("[{}] ", sshd.host());
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    let message = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        message.ends_with(" [warning] disk almost full") && !message.contains(&prefix),
        "{}",
        out.stderr
    );
}
