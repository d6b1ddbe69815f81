//! End-to-end tests of `mix-remote iex` against a real sshd and real BEAM nodes: a session at a
//! terminal (a pseudo-terminal, the screen rendered by a terminal emulator) that calls the
//! project's code in its started application, completes a module name with Tab, interrupts an
//! evaluation with Ctrl-C and ends with Ctrl-D; a session fed by a pipe; `System.halt()` ending
//! one; a config file ending one before IEx starts. Every one leaves nothing behind on either side.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use testkit::{ElixirWrapper, MixRemote, Output, PtyRun, Sshd, has_spinner};

/// `mix-remote iex` on `sshd` in `project`, with `args` after it.
fn iex(sshd: &Sshd, project: &Path, args: &[&str]) -> MixRemote {
    let mut tool = testkit::mix_remote(project);
    tool.args(["iex", "--host", &sshd.host(), "-F"])
        .arg(sshd.ssh_config())
        .args(args);
    tool
}

/// Panics unless the run `out` left nothing behind: no process of the sessions, no local file, no
/// run directory on the server.
fn left_nothing(sshd: &Sshd, out: &Output) {
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    assert_eq!(sshd.run_dirs(), Vec::<PathBuf>::new());
}

#[test]
fn a_session_at_a_terminal_uses_the_started_app_completes_and_ends_with_ctrl_d() {
    let sshd = Sshd::start();
    session_at_a_terminal(&sshd, &[]);
}

/// The session at a terminal of the test above, with `elixir` flags: on the otp_app fixture in
/// prod, the run's directory on the server checked when the server's Elixir is the host's (a
/// chroot's node has a temp dir of its own). With a chroot's Elixir, it ends with Ctrl-C twice.
fn session_at_a_terminal(sshd: &Sshd, elixir: &[&str]) {
    let project = testkit::compiled_fixture_in("otp_app", "prod");
    let state = tempfile::tempdir().unwrap();
    let run = iex(sshd, &project, &[&["--env", "prod"], elixir].concat())
        .env("XDG_STATE_HOME", state.path())
        .spawn_in_pty();
    let prompt = |n: u32| format!("iex(otp_app@127.0.0.1){n}> ");
    run.wait_for(&prompt(1));
    let live = usize::from(elixir.is_empty());
    assert_eq!(sshd.run_dirs().len(), live, "the session's directory");

    // The supervision tree is up (the Registry, the GenServer), with the prod config.
    run.send("OtpApp.Jobs.tree(\"ann\", 2)\r");
    let screen = run.wait_for(&prompt(2));
    assert!(screen.contains("greeting: \"hi, ann\""), "{screen}");

    // Tab completes a module of the project, then lists a module's functions.
    run.send("OtpApp.Gree\t");
    run.wait_for("OtpApp.Greeter");
    run.send(".greet(\"bo\")\r");
    let screen = run.wait_for(&prompt(3));
    assert!(screen.contains("\"hi, bo\""), "{screen}");
    run.send("Enum.map_j\t");
    run.wait_for("Enum.map_join");
    run.send("\t");
    run.wait_for("map_join/3");
    run.send("\x15");

    // What the node logs (on its stderr) and what a background process prints (through the
    // relay) while a line is being typed go above that line, which stays as typed.
    run.send("spawn(fn -> Process.sleep(300); IO.puts(\"bg\" <> \"out\"); require Logger; Logger.warning(\"lo\" <> \"gged\") end)\r");
    run.wait_for(&prompt(4));
    run.send("Enum.co");
    let edited = format!("{}Enum.co", prompt(4));
    let screen = run.wait_until("both lines above the edited one", |s| {
        let contents = s.contents();
        let last = contents.lines().rfind(|l| !l.trim().is_empty());
        contents.contains("] logged")
            && contents.contains("\nbgout")
            && last.is_some_and(|l| l.trim_end() == edited)
    });
    assert!(!screen.contains("Enum.co["), "{screen}");
    run.send("\x15");

    // Ctrl-C interrupts an evaluation; the session goes on. A Ctrl-C for the next evaluation
    // interrupts that one too, however soon after the first (the prompt came back between).
    run.send("IO.puts(\"zz\" <> \"z\"); Process.sleep(:infinity)\r");
    run.wait_for("\nzzz");
    run.send("\x03");
    run.wait_for("** (EXIT) interrupted");
    run.send("IO.puts(\"yy\" <> \"y\"); Process.sleep(:infinity)\r");
    run.wait_for("\nyyy");
    run.send("\x03");
    let screen = run.wait_until(
        "the second evaluation interrupted, or the session ended",
        |s| {
            s.contents().rsplit_once("\nyyy").is_some_and(|(_, after)| {
                after.contains("** (EXIT) interrupted") || after.contains("mix-remote: error")
            })
        },
    );
    assert!(!screen.contains("mix-remote: error"), "{screen}");
    run.send("1 + 2\r");
    let screen = run.wait_for(&prompt(5));
    assert!(screen.contains("\n3\n"), "{screen}");

    // A line that is not UTF-8 is dropped, said so; the session goes on.
    run.send_bytes(b"x = \"caf\xe9\"\r");
    run.wait_for("that line was not UTF-8");
    run.send("\r");
    run.wait_for(&prompt(6));
    // Lines typed (or pasted) ahead, in one burst: each is evaluated in turn, none dropped.
    run.send("a1 = 40\ra2 = a1 + 2\r");
    let screen = run.wait_for(&prompt(8));
    assert!(screen.contains("\n42\n"), "{screen}");

    // Ctrl-C on text cancels the line. On an empty one, Ctrl-D ends the session, and so does
    // Ctrl-C pressed twice (the first says so).
    run.send("never_evaluated()\x03");
    run.wait_for_count(&prompt(8), 2);
    if elixir.is_empty() {
        run.send("\x04");
    } else {
        run.send("\x03");
        run.wait_for("(to end the session, press Ctrl-C again or Ctrl-D");
        // The prompt drawn again: the editor reads the terminal (raw) again, so the next Ctrl-C
        // is a key for it, not a SIGINT for the tool.
        run.wait_for_count(&prompt(8), 3);
        run.send("\x03");
    }
    let out = run.finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(!out.stdout.contains("undefined function never_evaluated"));
    left_nothing(sshd, &out);

    // The history is the user's alone, and has the session's lines.
    let history = state.path().join("mix-remote/iex_history");
    let mode = std::fs::metadata(&history).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let lines = std::fs::read_to_string(&history).unwrap();
    assert!(lines.contains("OtpApp.Jobs.tree(\"ann\", 2)"), "{lines}");
    assert!(!lines.contains("never_evaluated"), "{lines}");
}

#[test]
fn a_piped_session_reads_lines_as_iex_asks_for_them() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let out = iex(&sshd, &project, &[])
        .stdin("Demo.Worker.echo(1, 2, 3)\n[4,\n5]\n")
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let prompt = |n: u32| format!("iex(demo@127.0.0.1){n}> ");
    assert!(
        out.stdout.starts_with("Interactive Elixir ("),
        "{}",
        out.stdout
    );
    let shown: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(
        shown,
        [
            format!("{}{{1, 2, 3}}", prompt(1)),
            format!("{}...(demo@127.0.0.1)2> [4, 5]", prompt(2)),
            prompt(3),
        ],
        "{}",
        out.stdout
    );
    left_nothing(&sshd, &out);
    // A last line without its newline comes in two pieces (the text, then the end of input):
    // one line all the same, with no prompt between them. A limit of runs' calls, set in the
    // environment or in mix-remote.yaml, is no limit of the session's (which has no flag for it).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mix-remote.yaml");
    std::fs::write(&config, "defaults:\n  call_timeout: 1\n").unwrap();
    let out = iex(&sshd, &project, &["--config"])
        .arg(&config)
        .env("MIX_REMOTE_CALL_TIMEOUT", "1")
        .stdin("x = 5; Process.sleep(1500); x\nx * 2")
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let shown: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(
        shown,
        [
            format!("{}5", prompt(1)),
            format!("{}10", prompt(2)),
            prompt(3)
        ],
        "{}",
        out.stdout
    );
    left_nothing(&sshd, &out);
}

#[test]
fn system_halt_ends_the_session_and_leaves_nothing_behind() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let out = iex(&sshd, &project, &[])
        .stdin("x = 40 + 2\nSystem.halt()\nIO.puts(\"after the halt\")\n")
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("42\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("after the halt"), "{}", out.stdout);
    left_nothing(&sshd, &out);
    // Another status is an error naming it, as in `run`.
    let out = iex(&sshd, &project, &[]).stdin("System.halt(3)\n").run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("halted with status 3 while running IEx"),
        "{}",
        out.stderr
    );
    left_nothing(&sshd, &out);
    // A halt on a line read with others (after 8 reads, a read takes what the pipe holds): what
    // the session printed before it shows, and the prompt of its line, as under `iex -S mix`.
    let input: String = (1..=8).map(|n| format!(":l{n}\n")).collect::<String>()
        + "IO.puts(\"last\")\nSystem.halt(3)\n";
    let out = iex(&sshd, &project, &[]).stdin(input.as_str()).run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let mut local = std::process::Command::new("iex");
    local
        .args(["-S", "mix", "run", "--no-compile"])
        .current_dir(&project)
        .env("MIX_ENV", "dev")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut local = local.spawn().expect("iex -S mix");
    use std::io::Write as _;
    local
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let local = local.wait_with_output().unwrap();
    assert_eq!(local.status.code(), Some(3));
    let expected = String::from_utf8_lossy(&local.stdout);
    assert!(expected.ends_with("last\n:ok\niex(10)> "), "{expected}");
    // The prompts without their names: `iex(10)> ` and `iex(demo@127.0.0.1)10> `.
    let expected = expected.replace("iex(", "iex").replace(")> ", "> ");
    assert_eq!(out.stdout.replace("(demo@127.0.0.1)", ""), expected);
    left_nothing(&sshd, &out);
    // A node that is killed is no end of the session's own: exit 3, as a `run` that lost it.
    let mut session = iex(&sshd, &project, &[])
        .stdin("IO.puts(:sleeping); Process.sleep(:infinity)\n")
        .spawn();
    session.stdout_until("sleeping\n");
    let beam: Vec<u32> = sshd.remote_vms().iter().map(|p| p.pid).collect();
    testkit::signal("KILL", &beam);
    let out = session.finish();
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("went away while running IEx"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_config_file_that_ends_the_run_with_a_status_ends_the_session_before_iex() {
    // As under `iex -S mix`: a Mix exception with `exit_status: 0` in a config file ends the
    // session with 0 before IEx starts, Mix's words alone; `exit(:normal)` so without a word;
    // `exit({:shutdown, 3})` is an error naming the file and the status (the tool's 1); a
    // `System.halt/1` there alike.
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    std::fs::create_dir_all(project.join("config")).unwrap();
    let host = sshd.host();
    for (i, name) in ["config.exs", "runtime.exs"].into_iter().enumerate() {
        let file = match name {
            "config.exs" => "config/config.exs (or a file it imports)",
            _ => "config/runtime.exs",
        };
        for (ending, code, said) in [
            (
                "Mix.raise(\"boom\", exit_status: 0)",
                0,
                "** (Mix) boom\n".to_owned(),
            ),
            ("exit(:normal)", 0, String::new()),
            (
                "exit({:shutdown, 3})",
                1,
                format!("mix-remote: error: {file} stopped the run with status 3 on {host}\n"),
            ),
            ("System.halt(0)", 0, String::new()),
            (
                "System.halt(3)",
                1,
                format!("mix-remote: error: {file} stopped the run with status 3 on {host}\n"),
            ),
        ] {
            for (j, other) in ["config.exs", "runtime.exs"].into_iter().enumerate() {
                let line = if i == j { ending } else { "" };
                let text = format!("import Config\n{line}\n");
                std::fs::write(project.join("config").join(other), text).unwrap();
            }
            let out = iex(&sshd, project, &["--env", "dev", "--no-compile"])
                .stdin("IO.puts(:in_iex)\n")
                .run();
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (Some(code), ""),
                "{name}, {ending}: {}",
                out.stderr
            );
            let stderr: String = out
                .stderr
                .lines()
                .filter(|l| !l.contains("warning: _build/dev is older than"))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(stderr, said, "{name}, {ending}");
            left_nothing(&sshd, &out);
        }
    }
}

#[test]
fn ctrl_c_twice_in_a_row_ends_a_session_whose_evaluation_does_not_stop() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let run = iex(&sshd, &project, &[]).spawn_in_pty();
    run.wait_for("iex(demo@127.0.0.1)1> ");
    // A node that cannot answer: IEx's own server is suspended, the evaluation goes on.
    run.send(":erlang.suspend_process(Process.whereis(:mix_remote_iex)); ");
    run.send("IO.puts(\"zz\" <> \"z\"); Process.sleep(:infinity)\r");
    run.wait_for("\nzzz");
    // The first Ctrl-C asks for an interruption (the node starts a line after the echoed ^C).
    let (row, _) = run.cursor();
    run.send("\x03");
    run.wait_until("a new line after ^C", |s| s.cursor_position().0 > row);
    run.send("\x03");
    let out = run.finish();
    assert_eq!(out.code, Some(130), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("mix-remote: error: interrupted: remote node stopped, connection closed"),
        "{}",
        out.stdout
    );
    left_nothing(&sshd, &out);
}

/// Types Ctrl-C once into `run` and waits for it to end, interrupted (exit 130); returns its
/// output, the screen's rows and the row of its error.
fn interrupt(run: PtyRun) -> (Output, Vec<String>, usize) {
    run.send("\x03");
    ended(run)
}

/// Waits for `run` to end, interrupted (exit 130); returns its output, the screen's rows and the
/// row of its error.
fn ended(run: PtyRun) -> (Output, Vec<String>, usize) {
    let interrupted = "mix-remote: error: interrupted: remote node stopped, connection closed";
    run.wait_for_row(interrupted);
    let rows = run.rows();
    let out = run.finish();
    assert_eq!(out.code, Some(130), "{}", out.stdout);
    let at = rows.iter().position(|r| r == interrupted);
    let at = at.unwrap_or_else(|| panic!("no error row: {rows:#?}"));
    (out, rows, at)
}

#[test]
fn ctrl_c_before_iex_runs_ends_the_session_at_once() {
    let sshd = Sshd::start();

    // While the node boots, its spinner drawn: the error follows the phases done, on the row the
    // spinner (and the terminal's echo of ^C) took.
    let gate = ElixirWrapper::gate();
    let elixir = gate.path().display().to_string();
    let project = testkit::compiled_fixture("demo");
    let run = iex(&sshd, &project, &["--elixir", &elixir]).spawn_in_pty();
    run.wait_for("booting remote node");
    let (out, rows, at) = interrupt(run);
    assert!(rows[at - 1].starts_with("✓ connected to"), "{rows:#?}");
    assert!(!has_spinner(&out.stdout), "{}", out.stdout);
    out.assert_local_clean();
    // The late node finds nobody to connect back to, and halts.
    gate.open();
    sshd.assert_no_session_processes();
    assert_eq!(sshd.run_dirs(), Vec::<PathBuf>::new());

    // While the application starts (nothing to interrupt yet), nothing drawn: the first Ctrl-C
    // ends the session, the error on the row after the echoed ^C.
    let project = testkit::compiled_fixture_in("otp_app", "prod");
    let config = tempfile::tempdir().unwrap();
    let yaml = config.path().join("mix-remote.yaml");
    std::fs::write(
        &yaml,
        "defaults:\n  remote_env:\n    OTP_APP_START_MS: \"60000\"\n",
    )
    .unwrap();
    let config = yaml.display().to_string();
    let run = iex(&sshd, &project, &["--env", "prod", "--config", &config]).spawn_in_pty();
    run.wait_for_row("starting for 60000 ms");
    let (out, rows, at) = interrupt(run);
    // What the start prints comes through the relay, as the session's output would.
    assert_eq!(rows[at - 2], "starting for 60000 ms", "{rows:#?}");
    assert_eq!(rows[at - 1], "^C", "{rows:#?}");
    left_nothing(&sshd, &out);
}

#[test]
fn sigterm_while_a_line_is_edited_or_read_ends_the_session_below_that_line() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let run = iex(&sshd, &project, &[]).spawn_in_pty();
    let edited = "iex(demo@127.0.0.1)1> Enum.co";
    run.wait_for("iex(demo@127.0.0.1)1> ");
    run.send("Enum.co");
    run.wait_for(edited);
    testkit::signal("TERM", &[run.id()]);
    // The line editor's bracketed paste mode does not outlive the session.
    run.wait_until("bracketed paste off", |s| !s.bracketed_paste());
    let (out, rows, at) = ended(run);
    assert_eq!(rows[at - 1], edited, "{rows:#?}");
    left_nothing(&sshd, &out);

    // Likewise while the evaluation reads without echo after a prompt of its own.
    let run = iex(&sshd, &project, &[]).spawn_in_pty();
    run.wait_for("iex(demo@127.0.0.1)1> ");
    run.send("IO.write(\"Pass\" <> \"word: \"); :io.get_password()\r");
    run.wait_for("\nPassword: ");
    testkit::signal("TERM", &[run.id()]);
    let (out, rows, at) = ended(run);
    assert_eq!(rows[at - 1], "Password:", "{rows:#?}");
    left_nothing(&sshd, &out);
}

#[test]
fn what_the_session_printed_last_without_a_newline_shows_when_it_ends_as_a_line_is_edited() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
    let run = iex(&sshd, &project, &[]).spawn_in_pty();
    run.wait_for("iex(demo@127.0.0.1)1> ");
    run.send(
        "spawn(fn -> Process.sleep(300); IO.write(\"last \" <> \"words\"); Process.sleep(300); \
         System.halt() end)\r",
    );
    run.wait_for("iex(demo@127.0.0.1)2> ");
    let out = run.finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("\nlast words"), "{}", out.stdout);
    left_nothing(&sshd, &out);
}

#[test]
fn iex_is_for_one_host() {
    let project = testkit::compiled_fixture("demo");
    let out = testkit::mix_remote(&project)
        .args(["iex", "--host", "a", "--host", "b"])
        .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "mix-remote: error: iex works on one host, and 2 are chosen: name one with --host (or a \
         group of one)\n"
    );
    out.assert_local_clean();
}

/// IEx reads its input differently since Elixir 1.15 (`get_until` with its own parser instead
/// of one `IO.gets` per line; 1.20 leaves the continuation prompt to the relay) and restarts
/// itself after an interruption: the same sessions, at a terminal and piped, on the chroots'
/// Elixir 1.18 (OTP 27) and 1.20 (OTP 29).
#[test]
fn sessions_on_newer_elixirs() {
    let project = testkit::compiled_fixture("demo");
    for release in ["trixie", "sid"] {
        let Some(chroot) = testkit::Chroot::open(release) else {
            return;
        };
        let sshd = Sshd::start();
        let elixir = chroot.elixir().display().to_string();
        session_at_a_terminal(&sshd, &["--elixir", &elixir]);
        let out = iex(&sshd, &project, &["--elixir", &elixir])
            .stdin("Demo.Worker.echo(1, 2, 3)\n[4,\n5]\nSystem.halt()\n")
            .run();
        assert_eq!(out.code, Some(0), "{release}: {}", out.stderr);
        let prompt = |n: u32| format!("iex(demo@127.0.0.1){n}> ");
        let shown: Vec<&str> = out.stdout.lines().skip(1).collect();
        assert_eq!(
            shown,
            [
                format!("{}{{1, 2, 3}}", prompt(1)),
                format!("{}...(demo@127.0.0.1)2> [4, 5]", prompt(2)),
                prompt(3),
            ],
            "{release}: {}",
            out.stdout
        );
        sshd.assert_no_session_processes();
        out.assert_local_clean();
    }
}
