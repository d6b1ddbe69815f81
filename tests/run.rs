//! End-to-end tests of `mix-remote run`: a real sshd started by the harness, a real remote BEAM,
//! the fixture project compiled by a real `mix`.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::Sshd;

/// Generous: a cold run takes about a second here, but CI machines are shared.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long the remote may take to clean up after the tool has exited.
const CLEANUP_LIMIT: Duration = Duration::from_secs(5);

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn tool(sshd: &Sshd, project: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mix-remote"));
    cmd.arg("run")
        .arg("--host")
        .arg(sshd.host())
        .arg("-F")
        .arg(sshd.ssh_config())
        .args(args)
        .current_dir(project)
        .env_remove("MIX_ENV")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for `child` (killing it past `RUN_LIMIT`) and collects its output.
fn finish(mut child: Child) -> Output {
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mix-remote") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mix-remote did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: out.join().expect("stdout reader").expect("utf-8 stdout"),
        stderr: err.join().expect("stderr reader").expect("utf-8 stderr"),
    }
}

/// Reads a pipe to its end on a thread (empty if the caller already took it).
fn read_all(
    pipe: Option<impl Read + Send + 'static>,
) -> std::thread::JoinHandle<std::io::Result<String>> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_string(&mut s)?;
        }
        Ok(s)
    })
}

fn run(sshd: &Sshd, args: &[&str]) -> Output {
    let project = testkit::compiled_fixture("demo");
    let child = tool(sshd, &project, args)
        .spawn()
        .expect("spawn mix-remote");
    let out = finish(child);
    assert_remote_clean(sshd);
    out
}

fn assert_remote_clean(sshd: &Sshd) {
    if let Err(left) = sshd.wait_until_no_session_processes(CLEANUP_LIMIT) {
        panic!("processes of the run remain on the remote: {left:?}");
    }
}

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

    let out = run(&sshd, &["Demo.Worker.throw_it", "--", "{:oops, 1}"]);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("** (throw) {:oops, 1}"),
        "{}",
        out.stderr
    );
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
}

#[test]
fn pushes_exactly_the_closure_of_the_entry() {
    let sshd = Sshd::start();
    let out = run(
        &sshd,
        &[
            "Demo.Probe.loaded",
            "--",
            "[Demo.Probe, Demo.Worker, Demo.Money, Demo.Unused, :demo_erl]",
        ],
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
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
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("connection to the remote node was lost"),
        "{}",
        out.stderr
    );
    let after = std::fs::metadata(&dump).and_then(|m| m.modified()).ok();
    assert_eq!(before, after, "{} was written", dump.display());
}

#[test]
fn bad_entries_and_arguments_fail_before_connecting() {
    // The sshd's log shows whether anything connected: nothing may.
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("demo");
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
            &["Demo.Worker.process", "--env", "nope", "--", "1", "2"],
            "no compiled build at",
        ),
    ];
    for (args, expected) in cases {
        let args = [&["-o", "ProxyCommand=false"], *args].concat();
        let out = finish(
            tool(&sshd, &project, &args)
                .spawn()
                .expect("spawn mix-remote"),
        );
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    assert!(
        !sshd.log().contains("Accepted"),
        "a connection was made: {}",
        sshd.log()
    );
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
fn a_linked_crash_is_reported_like_a_raise() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Worker.linked_crash"]);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("** (exit)") && out.stderr.contains("** (RuntimeError) from a task"),
        "{}",
        out.stderr
    );
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

/// The `key=value` pairs of the `stats:` line `-v` prints at the end of a run.
fn stats(stderr: &str) -> std::collections::HashMap<String, u64> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("mix-remote: stats: "))
        .unwrap_or_else(|| panic!("no stats line in: {stderr}"));
    line.split_whitespace()
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_run_makes_three_requests_after_connect_whatever_the_closure_size() {
    // One learns what the remote has, one loads the whole closure (here with an -on_load module
    // among 4), one calls. Loading module by module would add a request per module.
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
    let (one, four) = (stats(&one.stderr), stats(&four.stderr));
    assert_eq!(one["pushed_modules"], 1);
    assert_eq!(four["pushed_modules"], 4);
    assert_eq!(one["requests"], 3);
    assert_eq!(four["requests"], 3);
}

/// Starts `Demo.Worker.sleep_forever` and returns once the call is running on the remote.
fn start_sleeper(sshd: &Sshd) -> Child {
    let project = testkit::compiled_fixture("demo");
    let mut child = tool(sshd, &project, &["Demo.Worker.sleep_forever"])
        .spawn()
        .expect("spawn mix-remote");
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"sleeping\n") {
        match stdout.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => panic!("mix-remote ended before the call started: {seen:?}"),
        }
    }
    assert!(
        sshd.session_processes()
            .iter()
            .any(|p| p.cmdline.contains("beam")),
        "no remote node while the call runs: {:?}",
        sshd.session_processes()
    );
    child
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
}

#[test]
fn ctrl_c_stops_the_remote_node() {
    let sshd = Sshd::start();
    let child = start_sleeper(&sshd);
    signal(&child, "-INT");
    let out = finish(child);
    assert_eq!(out.code, Some(130), "stderr: {}", out.stderr);
    assert_remote_clean(&sshd);
    assert_eq!(sshd.client_processes(), Vec::new());
}

#[test]
fn a_killed_tool_leaves_no_remote_node_and_no_ssh_master() {
    // SIGKILL gives the tool no chance to clean up: the remote node must still go, because the
    // master's stdin pipe closes with the process, and the master must exit with its session.
    let sshd = Sshd::start();
    let child = start_sleeper(&sshd);
    // The tool's private directory, named by the master's -S argument: SIGKILL leaves it behind.
    let private_dir = sshd
        .client_processes()
        .iter()
        .find_map(|p| {
            let ctl = p.cmdline.split(' ').skip_while(|&a| a != "-S").nth(1)?;
            Some(Path::new(ctl).parent()?.to_owned())
        })
        .expect("the ssh master names its control socket");
    signal(&child, "-KILL");
    let out = finish(child);
    assert_eq!(out.code, None, "not killed by the signal");
    assert_remote_clean(&sshd);
    if let Err(left) = sshd.wait_until_no_client_processes(CLEANUP_LIMIT) {
        panic!("local ssh processes of the run remain: {left:?}");
    }
    std::fs::remove_dir_all(&private_dir).expect("remove the killed run's directory");
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
    signal(&child, "-INT");
    assert_eq!(finish(child).code, Some(130));
    assert_remote_clean(&sshd);
    let sshd_addr = sshd.addr().ip().to_string();
    for line in listeners.lines() {
        let local = line.split_whitespace().nth(3).unwrap_or_default();
        assert!(
            local.starts_with("127.0.0.1:") || local.starts_with(&format!("{sshd_addr}:")),
            "listener beyond loopback: {line}"
        );
        assert!(!line.contains("beam"), "the remote node listens: {line}");
    }
    assert!(
        listeners.lines().count() >= 3,
        "expected sshd (two ports) and the tunnel: {listeners}"
    );
}
