//! Faults injected for real into runs against a real sshd and a real remote BEAM: signals,
//! timeouts in each phase, a dropped SSH connection, a killed remote node, a downed link,
//! intruders, host key and server configuration problems. After each, nothing of the run may be
//! left on either side, and the tool must say what happened in one line with a hint.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{ElixirWrapper, Output, Sshd};

mod common;
use common::*;

/// The last line of stderr: the tool's error.
fn error_line(out: &Output) -> &str {
    out.stderr.lines().last().unwrap_or_default()
}

/// Panics unless `out` exited with `code` and its last stderr line is the tool's error holding
/// every one of `parts`.
fn assert_error(out: &Output, code: i32, parts: &[&str]) {
    assert_eq!(out.code, Some(code), "stderr: {}", out.stderr);
    let line = error_line(out);
    assert!(line.starts_with("mix-remote: error: "), "{}", out.stderr);
    for part in parts {
        assert!(line.contains(part), "{part:?} not in: {}", out.stderr);
    }
}

/// The remote processes of the run that are the node (not sshd serving the connection).
fn remote_node_processes(sshd: &Sshd) -> Vec<testkit::Proc> {
    sshd.session_processes()
        .into_iter()
        .filter(|p| !p.cmdline.starts_with("sshd"))
        .collect()
}

#[test]
fn sigterm_stops_the_remote_node_like_ctrl_c() {
    let sshd = Sshd::start();
    let child = start_sleeper(&sshd);
    child.signal("TERM");
    let out = child.finish();
    assert_eq!(out.code, Some(130), "stderr: {}", out.stderr);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_call_timeout_exits_4_naming_phase_host_and_flag_and_stops_the_node() {
    let sshd = Sshd::start();
    let started = Instant::now();
    let out = run(&sshd, &["--call-timeout", "1", "Demo.Worker.sleep_forever"]);
    assert_error(
        &out,
        4,
        &[&format!(
            "timed out calling Demo.Worker.sleep_forever on {} after 1 s (raise it with --call-timeout)",
            sshd.host()
        )],
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // The applications the node stops on its way out say nothing of it (demo's runs without
    // Logger, whose translation leaves their "exited: stopped" out).
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // Without the flag the call may run as long as it needs: the sleeper tests rely on it.
}

#[test]
fn a_push_timeout_names_its_flag_and_stops_the_node() {
    // Demo.SlowLoad's on_load takes 3 s.
    let sshd = Sshd::start();
    let out = run(&sshd, &["--push-timeout", "1", "Demo.SlowLoad.hello"]);
    assert_error(
        &out,
        4,
        &[&format!(
            "timed out pushing 1 application on {} after 1 s (raise it with --push-timeout)",
            sshd.host()
        )],
    );
    let out = run(&sshd, &["Demo.SlowLoad.hello"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), ":loaded\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_boot_timeout_names_its_flag_and_leaves_nothing() {
    let sshd = Sshd::start();
    let gate = ElixirWrapper::gate();
    let elixir = gate.path().display().to_string();
    let out = demo(
        &sshd,
        &[
            "--boot-timeout",
            "1",
            "--elixir",
            &elixir,
            ":demo_erl.add",
            "--",
            "1",
            "2",
        ],
    )
    .run();
    assert_error(
        &out,
        4,
        &[&format!(
            "timed out booting the remote node on {} after 1 s (raise it with --boot-timeout)",
            sshd.host()
        )],
    );
    out.assert_local_clean();
    // The late node finds nobody to connect back to, and halts.
    gate.open();
    sshd.assert_no_session_processes();
}

#[test]
fn a_connect_timeout_names_its_flag() {
    // A listener that accepts and never speaks: ssh waits for its banner.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind a silent listener");
    let port = silent.local_addr().expect("its address").port().to_string();
    let sshd = Sshd::start();
    let out = run(
        &sshd,
        &[
            "--connect-timeout",
            "1",
            "-o",
            &format!("Port={port}"),
            ":demo_erl.add",
            "--",
            "1",
            "2",
        ],
    );
    assert_error(
        &out,
        4,
        &[&format!(
            "timed out connecting on {} after 1 s (raise it with --connect-timeout)",
            sshd.host()
        )],
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_dropped_ssh_connection_ends_the_run_with_3_and_leaves_nothing() {
    let sshd = Sshd::start();
    let child = start_sleeper(&sshd);
    let connection: Vec<u32> = sshd.connection_processes().iter().map(|p| p.pid).collect();
    assert!(!connection.is_empty(), "no sshd serves the run");
    testkit::signal("KILL", &connection);
    let out = child.finish();
    assert_error(
        &out,
        3,
        &[&format!(
            "the remote node on {} went away while calling Demo.Worker.sleep_forever",
            sshd.host()
        )],
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_node_whose_connection_to_the_tool_goes_is_not_taken_for_its_own_halt() {
    // The node halts once the tool's connection is gone, the SSH session still up: its status is
    // not the code's (which `System.halt(0)` would make a success).
    let sshd = Sshd::start();
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    let code = "Enum.each(Node.list(:hidden), &Node.disconnect/1); Process.sleep(:infinity)";
    let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
    assert_error(&out, 3, &["went away while evaluating"]);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_killed_remote_node_ends_the_run_with_3_and_leaves_nothing() {
    let sshd = Sshd::start();
    let child = start_sleeper(&sshd);
    let beam: Vec<u32> = sshd.remote_vms().iter().map(|p| p.pid).collect();
    testkit::signal("KILL", &beam);
    let out = child.finish();
    assert_error(
        &out,
        3,
        &["went away while calling Demo.Worker.sleep_forever"],
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_tool_killed_while_the_node_boots_leaves_no_file() {
    // The private directory exists while the node boots; the gate holds the boot there.
    let sshd = Sshd::start();
    let gate = ElixirWrapper::gate();
    let elixir = gate.path().display().to_string();
    let mut run = demo(
        &sshd,
        &["-v", "--elixir", &elixir, ":demo_erl.add", "--", "1", "2"],
    )
    .spawn();
    run.stderr_until("tunnel:");
    let files = testkit::entries(run.tmp());
    let dir = files
        .iter()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no private directory in {files:?}"));
    assert_eq!(std::fs::metadata(dir).expect("stat").mode() & 0o777, 0o700);
    for socket in ["node.sock", "ctl"] {
        let mode = std::fs::metadata(dir.join(socket)).expect("stat").mode();
        assert_eq!(mode & 0o777, 0o600, "{socket}");
    }
    run.signal("KILL");
    let out = run.finish();
    assert_eq!(out.code, None);
    out.assert_local_clean();
    gate.open();
    sshd.assert_no_session_processes();
}

/// The run's tunnel as `-v` says it: the server's end, its port, our node's name and the one
/// expected to connect.
struct Tunnel {
    node_addr: String,
    port: String,
    ours: String,
    expected: String,
}

/// A run of `:demo_erl.add(40, 2)` with `-v` whose node a gate holds back (opened with the
/// gate), once its tunnel is known.
fn held_at_the_gate(sshd: &Sshd) -> (ElixirWrapper, testkit::Running, Tunnel) {
    let gate = ElixirWrapper::gate();
    let elixir = gate.path().display().to_string();
    let mut run = demo(
        sshd,
        &["-v", "--elixir", &elixir, ":demo_erl.add", "--", "40", "2"],
    )
    .spawn();
    run.stderr_until("tunnel:");
    let log = run.stderr_until("\n");
    let line = log.lines().last().unwrap_or_default().to_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |word: &str| {
        let i = words.iter().position(|w| *w == word).expect(word);
        words[i + 1].trim_end_matches([';', ',']).to_owned()
    };
    let node_addr = after("remote");
    let tunnel = Tunnel {
        port: node_addr.rsplit(':').next().expect("port").to_owned(),
        node_addr,
        ours: after("node"),
        expected: after("expecting"),
    };
    (gate, run, tunnel)
}

/// Opens `gate` for the run [`held_at_the_gate`] started and waits for it to end, as it should:
/// 42 on stdout.
fn released(gate: &ElixirWrapper, run: testkit::Running) -> Output {
    gate.open();
    let out = run.finish();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "42\n"),
        "{}",
        out.stderr
    );
    out
}

#[test]
fn intruders_while_the_node_boots_are_refused_logged_and_reach_nothing() {
    // While the gate holds the real node, local processes on the server try our node through the
    // run's own tunnel: one under another name, one under the expected name but without the
    // cookie, one that connects and stays silent (for as long as the node takes). They are
    // refused and logged with -v, and the run then completes normally.
    let sshd = Sshd::start();
    let (gate, run, tunnel) = held_at_the_gate(&sshd);
    let Tunnel {
        node_addr,
        port,
        ours,
        expected,
    } = tunnel;
    // A third one connects straight to the tunnel and says nothing for the whole run.
    let _silent = std::net::TcpStream::connect(&node_addr).expect("connect to the tunnel");
    for intruder in ["intruder@localhost", expected.as_str()] {
        let tried = Command::new("erl")
            .args(["-noshell", "-start_epmd", "false", "-dist_listen", "false"])
            // As the remote node reaches ours: that port, without any EPMD.
            .args(["-erl_epmd_port", &port])
            .args(["-sname", intruder, "-setcookie", "guessed"])
            // Its own handshake process may crash on the status ours writes before it reads a
            // name (`named:`, for the node that asks to be named; this one has a name), and log
            // that on stdout before it halts, or not: not what this test is about.
            .args(["-kernel", "logger_level", "none"])
            .args([
                "-eval",
                &format!("io:format(\"~p\", [net_kernel:connect_node('{ours}')]), halt()."),
            ])
            .output()
            .expect("run erl");
        assert_eq!(
            String::from_utf8_lossy(&tried.stdout),
            "false",
            "{intruder} got in: {}",
            String::from_utf8_lossy(&tried.stderr)
        );
    }
    let out = released(&gate, run);
    assert!(
        out.stderr.contains(
            "refused: distribution handshake with intruder@localhost failed: not the node this run booted"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "refused: distribution handshake with {expected} failed"
        )),
        "{}",
        out.stderr
    );
    // The silent one held nothing up, and is let go once the node is in.
    assert!(
        out.stderr.contains(
            "refused: 1 connection(s) whose handshake had not finished when the node connected"
        ),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_flood_of_connections_while_the_node_boots_takes_none_of_the_tools_descriptors() {
    // While the gate holds the real node, a local process on the server connects to the run's
    // tunnel a hundred times and holds every connection open, the tool being allowed far fewer
    // descriptors. Past the handshakes under way, each closes the oldest but the first (the
    // node's own connection, which the launcher opened first), and the node then gets in.
    let sshd = Sshd::start();
    let (
        gate,
        run,
        Tunnel {
            node_addr, port, ..
        },
    ) = held_at_the_gate(&sshd);
    // The launcher's connection is open: its channel comes before any of the flood's.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let filter = format!("( dport = :{port} )");
        let ss = Command::new("ss")
            .args(["-Htn", "state", "established", &filter])
            .output()
            .expect("run ss");
        if !ss.stdout.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the launcher did not connect");
        std::thread::sleep(Duration::from_millis(20));
    }
    let open = std::fs::read_dir(format!("/proc/{}/fd", run.id()))
        .expect("the tool's descriptors")
        .count();
    let limit = format!("--nofile={}", open + 24);
    let pid = run.id().to_string();
    let limited = Command::new("prlimit")
        .args(["--pid", &pid, &limit])
        .status()
        .expect("run prlimit");
    assert!(limited.success());
    let flood: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(&node_addr).expect("connect to the tunnel"))
        .collect();
    // Whether the tool has closed `stream` (what it wrote before read).
    let closed = |mut stream: &std::net::TcpStream| {
        stream.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0; 64];
        loop {
            match std::io::Read::read(&mut stream, &mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
            }
        }
    };
    // The launcher's connection and 15 of the flood's under way: the other 85 closed.
    while flood.iter().filter(|s| closed(s)).count() < flood.len() - 15 {
        assert!(
            Instant::now() < deadline,
            "the flood's connections are held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = released(&gate, run);
    assert!(
        out.stderr.contains(
            "refused: 85 connection(s) closed for later ones, 16 handshakes being under way"
        ),
        "{}",
        out.stderr
    );
    drop(flood);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn connection_failures_are_one_line_with_a_hint() {
    let sshd = Sshd::start();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let port = format!("Port={closed}");
    let out = run(&sshd, &["-o", &port, ":demo_erl.add", "--", "1", "2"]);
    assert_error(
        &out,
        3,
        &[
            &format!(
                "ssh to {} failed: connect to host 127.0.0.1 port {closed}: Connection refused",
                sshd.host()
            ),
            "(is the host up, and sshd listening",
        ],
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    sshd.revoke_user_key();
    let out = run(&sshd, &[":demo_erl.add", "--", "1", "2"]);
    assert_error(
        &out,
        3,
        &[
            "Permission denied",
            "(check the user name and that your key",
        ],
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // With -v, what ssh said is shown as it said it.
    let out = run(&sshd, &["-v", ":demo_erl.add", "--", "1", "2"]);
    assert!(
        out.stderr.contains("mix-remote: ssh said: "),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unresolvable_host_is_a_dns_error_with_a_hint() {
    // Resolving must fail without asking any name server: the tool runs in a network namespace
    // of its own with nothing but a loopback interface that is down.
    if !testkit::netns_available() {
        return;
    }
    let sshd = Sshd::start();
    let out = testkit::mix_remote(testkit::compiled_fixture("demo"))
        .wrapper(&["unshare", "--net", "--"])
        .args(["run", "--host", "nonexistent.invalid", "-F"])
        .arg(sshd.ssh_config())
        .args([":demo_erl.add", "--", "1", "2"])
        .run();
    assert_error(
        &out,
        3,
        &[
            "ssh to nonexistent.invalid failed: Could not resolve hostname nonexistent.invalid",
            "(check the host name given to --host",
        ],
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    out.assert_local_clean();
}

#[test]
fn an_unresolvable_host_gets_a_hint_naming_what_gave_it() {
    // As above: resolving fails without asking any name server.
    if !testkit::netns_available() {
        return;
    }
    let project = testkit::empty_mix_project();
    let config = project.path().join("mix-remote.yaml");
    std::fs::write(
        &config,
        "hosts:\n  db-1:\n    address: nohost-db.invalid\ngroups:\n  web: [nohost-1.invalid]\n",
    )
    .unwrap();
    let config = config.display();
    let group = format!("the host nohost-1.invalid of the group web in {config}");
    let by_variable =
        format!("the host nohost-1.invalid of the group web (MIX_REMOTE_GROUP) in {config}");
    for (args, variables, origin) in [
        (&["--group", "web"][..], &[][..], group.as_str()),
        (&[], &[("MIX_REMOTE_GROUP", "web")], &by_variable),
        (
            &[],
            &[("MIX_REMOTE_HOST", "nohost-2.invalid")],
            "the host name MIX_REMOTE_HOST gives",
        ),
        (
            &["--host", "nohost-2.invalid"],
            &[],
            "the host name given to --host",
        ),
        (
            &["--host", "db-1"],
            &[],
            &format!("the address of db-1 at {config}:3"),
        ),
    ] {
        let mut tool = testkit::mix_remote(project.path());
        tool.wrapper(&["unshare", "--net", "--"])
            .args(["check", "-F", "none"])
            .args(args);
        for (name, value) in variables {
            tool.env(name, value);
        }
        let out = tool.run();
        assert_eq!(out.code, Some(3), "{args:?} {variables:?}: {}", out.stderr);
        let hint = format!("(check {origin}, or its HostName in your ssh config)");
        assert!(
            out.stdout.contains(&hint),
            "{args:?} {variables:?}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn host_keys_are_checked_the_openssh_way_and_never_relaxed_by_the_tool() {
    let sshd = Sshd::start();
    // The tool adds no host key option of its own.
    let out = run(&sshd, &["-v", ":demo_erl.add", "--", "1", "2"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let command = out
        .stderr
        .lines()
        .find(|l| l.starts_with("mix-remote: ssh: ssh "))
        .expect("the ssh command in -v");
    assert!(
        !command.contains("HostKey") && !command.contains("KnownHosts"),
        "{command}"
    );

    sshd.forget_host_key();
    let out = run(&sshd, &[":demo_erl.add", "--", "1", "2"]);
    assert_error(
        &out,
        3,
        &["host key is known for", "StrictHostKeyChecking accept-new"],
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    sshd.change_host_key();
    let out = run(&sshd, &[":demo_erl.add", "--", "1", "2"]);
    assert_error(&out, 3, &["has changed", "ssh-keygen -R"]);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let logins = sshd.log().matches("Accepted").count();
    assert_eq!(logins, 1, "a login despite a bad host key: {}", sshd.log());

    // Opting in through configuration is the user's choice, and works.
    sshd.forget_host_key();
    let out = run(
        &sshd,
        &[
            "-o",
            "StrictHostKeyChecking=accept-new",
            ":demo_erl.add",
            "--",
            "1",
            "2",
        ],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "3\n"),
        "{}",
        out.stderr
    );
    let known = std::fs::read_to_string(sshd.known_hosts()).expect("known_hosts");
    assert!(known.contains("ssh-ed25519"), "not recorded: {known}");
}

#[test]
fn servers_that_refuse_forwarding_are_named_with_the_setting() {
    for setting in ["AllowTcpForwarding no", "PermitListen none"] {
        let sshd = Sshd::builder().config(setting).start();
        let out = run(&sshd, &[":demo_erl.add", "--", "1", "2"]);
        assert_error(
            &out,
            3,
            &[
                &format!("{} refused the run's reverse port forward", sshd.host()),
                "remote port forwarding failed for listen port 0",
                "AllowTcpForwarding yes",
            ],
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        // `check` asks for the forward on a running connection (`ssh -O forward`, whose words
        // differ from a refused master's): it says what the run says, and nothing of ssh's more.
        let said = error_line(&out).trim_start_matches("mix-remote: error: ");
        let row = check_row(&sshd, &[]);
        assert_eq!(row["forwarding"], "failed", "{row}");
        assert_eq!(row["problem"], said, "{setting}");
    }
}

#[test]
fn a_server_that_permits_one_listen_port_is_run_and_checked_through_forward_port() {
    // sshd lets the user listen on one port only: runs (and `check`) use it with `forward_port`;
    // without it, the port drawn at random is refused, then the one sshd would allocate.
    // Held until sshd starts, so that nothing else takes the port meanwhile.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let permitted = Sshd::builder().config(&format!("PermitListen 127.0.0.1:{port}"));
    drop(held);
    let sshd = permitted.start();
    let dir = tempfile::tempdir().unwrap();
    // A configuration whose forward_port is `forward_port`.
    let config = |forward_port: u16| {
        let file = dir.path().join(format!("{forward_port}.yaml"));
        std::fs::write(
            &file,
            format!("defaults:\n  forward_port: {forward_port}\n"),
        )
        .unwrap();
        file.to_str().expect("a temporary path is UTF-8").to_owned()
    };
    let add = |config: &[&str]| {
        run(
            &sshd,
            &[config, &[":demo_erl.add", "--", "1", "2"]].concat(),
        )
    };
    let permitted = config(port);
    let out = add(&["--config", &permitted]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "3\n"),
        "{}",
        out.stderr
    );
    let checked = check_row(&sshd, &[OsStr::new("--config"), OsStr::new(&permitted)]);
    assert_eq!(checked["forwarding"], "ok");
    assert_eq!(check_row(&sshd, &[])["forwarding"], "failed");
    assert_error(
        &add(&[]),
        3,
        &["refused the run's reverse port forward", "listen port 0"],
    );
    // Another forward_port is refused, and so is the allocated port tried then: the error names
    // the one the configuration set.
    let other = port.checked_add(1).unwrap_or(port - 1);
    assert_error(
        &add(&["--config", &config(other)]),
        3,
        &[&format!("listen port {other}"), "forward_port"],
    );
}

#[test]
fn a_server_without_a_writable_directory_is_not_ready_and_its_run_says_what_to_do() {
    // The server's elixir runs in a mount namespace of its own where /tmp, the sessions' TMPDIR
    // and its working directory (/tmp) are read-only: no directory a run looks at is writable.
    if !testkit::netns_available() {
        return;
    }
    let sshd = Sshd::start();
    let read_only = ElixirWrapper::new(
        "exec unshare --mount sh -c 'for d in /tmp \"$TMPDIR\" \"$XDG_RUNTIME_DIR\"; do\n\
           if [ -d \"$d\" ]; then mount -o bind,ro \"$d\" \"$d\" || exit 1; fi\n\
         done\n\
         cd /tmp && exec elixir \"$@\"' sh \"$@\"",
    );
    let dir = tempfile::tempdir().unwrap();
    // A configuration whose hosts run that elixir, with `more` settings.
    let config = |name: &str, more: &str| {
        let file = dir.path().join(name);
        let elixir = read_only.path();
        std::fs::write(
            &file,
            format!("defaults:\n  elixir: {}\n{more}", elixir.display()),
        )
        .unwrap();
        file.to_str().expect("a temporary path is UTF-8").to_owned()
    };
    let bare = config("bare.yaml", "");
    let row = check_row(&sshd, &[OsStr::new("--config"), OsStr::new(&bare)]);
    assert_eq!(
        (&row["elixir"], &row["temp_dir"], &row["ready"]),
        (&"ok".into(), &"failed".into(), &false.into()),
        "{row}"
    );
    let tried = format!("tried TMPDIR={}, /tmp", sshd.remote_tmp().display());
    let problem = row["problem"].as_str().unwrap_or_default();
    assert_eq!(
        problem,
        format!(
            "{} has no directory a run can write its files in ({tried}): give it one as TMPDIR \
             in the host's remote_env in mix-remote.yaml (a run uses TMPDIR, TEMP or TMP when it \
             is a writable directory, else XDG_RUNTIME_DIR, else /tmp, else the login directory)",
            sshd.host()
        )
    );
    // A run there fails as check said, naming the host and what to do.
    let out = run(&sshd, &["--config", &bare, ":demo_erl.add", "--", "1", "2"]);
    let said = problem.replace(&tried, "no writable temporary directory");
    assert_error(&out, 3, &[&said]);

    // Given a TMPDIR it can write in (outside /tmp), the server is ready and runs.
    let writable = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let set = config(
        "set.yaml",
        &format!("  remote_env: {{TMPDIR: {}}}\n", writable.path().display()),
    );
    let row = check_row(&sshd, &[OsStr::new("--config"), OsStr::new(&set)]);
    assert_eq!(
        (&row["temp_dir"], &row["stale_runs"], &row["ready"]),
        (&"ok".into(), &0.into(), &true.into()),
        "{row}"
    );
    let out = run(&sshd, &["--config", &set, ":demo_erl.add", "--", "1", "2"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "3\n"),
        "{}",
        out.stderr
    );
    assert!(
        testkit::entries(writable.path()).is_empty(),
        "the run's directory is gone"
    );
}

#[test]
fn a_node_that_crashes_while_booting_is_named_with_its_last_words() {
    // Too little address space for the BEAM's memory carrier: it dies before it can boot.
    let sshd = Sshd::start();
    let small = ElixirWrapper::new("ulimit -v 300000\nexec elixir \"$@\"");
    let elixir = small.path().display().to_string();
    let out = run(
        &sshd,
        &["--elixir", &elixir, ":demo_erl.add", "--", "1", "2"],
    );
    assert_error(
        &out,
        3,
        &[
            &format!(
                "the remote node on {} ended early: erts_mmap: Failed to create super carrier",
                sshd.host()
            ),
            "elixir --version",
        ],
    );
}

#[test]
fn a_limit_of_zero_is_bad_input() {
    let sshd = Sshd::start();
    for flag in [
        "--connect-timeout",
        "--boot-timeout",
        "--push-timeout",
        "--call-timeout",
    ] {
        let out = run(&sshd, &[flag, "0", ":demo_erl.add", "--", "1", "2"]);
        assert_eq!(out.code, Some(2), "{flag}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("invalid value '0' for '{flag} <SECS>'")),
            "{}",
            out.stderr
        );
    }
    assert!(!sshd.log().contains("Accepted"), "{}", sshd.log());
}

#[test]
fn a_build_without_beams_or_with_a_corrupt_one_is_bad_input() {
    let sshd = Sshd::start();
    let project = tempfile::tempdir().expect("a project directory");
    let ebin = project.path().join("_build/dev/lib/broken/ebin");
    std::fs::create_dir_all(&ebin).expect("create ebin");
    let attempt = || {
        let out = testkit::mix_remote(project.path())
            .run_on(&sshd)
            .args(["-o", "ProxyCommand=false", "Broken.run"])
            .run();
        out.assert_local_clean();
        out
    };
    let out = attempt();
    assert_error(
        &out,
        2,
        &[
            "no .beam files under",
            "run `MIX_ENV=dev mix compile` first",
        ],
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    std::fs::write(
        ebin.join("Elixir.Broken.beam"),
        b"FOR1\x00\x00\x00\x08BEAMjunk",
    )
    .expect("write");
    let out = attempt();
    assert_error(&out, 2, &["Elixir.Broken.beam", "mix compile --force"]);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_module_the_remote_loader_refuses_mid_batch_is_named_and_nothing_is_left() {
    // Many.M0's closure is 120 modules, shipped in parts of at least 50 and loaded a part at a
    // time as each is prepared. Many.M60 is spoilt where only the loader looks (the Code chunk's
    // label count): the tool reads it, and the remote refuses it with the part after those it
    // has loaded. The run fails naming it, and the node halts with its files removed.
    let sshd = Sshd::start();
    let project = testkit::staged_fixture("many", "dev");
    let beam = project
        .path()
        .join("_build/dev/lib/many/ebin/Elixir.Many.M60.beam");
    let mut bytes = std::fs::read(&beam).expect("read Many.M60's beam");
    // Where the Code chunk's data starts, as the tool's own reader splits the file.
    let code = mix_remote::build::beam::with_raw_chunks(&bytes, |chunks| {
        let (_, data) = chunks
            .iter()
            .find(|(id, _)| id == b"Code")
            .expect("a Code chunk");
        data.as_ptr() as usize - bytes.as_ptr() as usize
    })
    .expect("Many.M60's beam");
    bytes[code + 12..code + 16].copy_from_slice(&1u32.to_be_bytes());
    std::fs::write(&beam, bytes).expect("spoil Many.M60's beam");
    let out = testkit::mix_remote(project.path())
        .run_on(&sshd)
        .args(["--no-compile", "-v", "Many.M0.depth"])
        .run();
    assert_error(&out, 3, &["the remote refused to load Many.M60"]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    let left: Vec<_> = std::fs::read_dir(sshd.remote_tmp())
        .expect("the server's temp dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, Vec::<std::ffi::OsString>::new());
}

#[test]
fn a_link_that_goes_down_ends_the_run_on_both_sides() {
    // A pulled cable: no FIN, no RST, nothing. The tool's node stops hearing ticks, the remote
    // node stops hearing ours (its net_ticktime is short), and each side ends by itself.
    if !testkit::netns_available() {
        return;
    }
    let sshd = Sshd::start_in_netns();
    let child = start_sleeper(&sshd);
    let down = Instant::now();
    sshd.set_link(false);
    let out = child.finish();
    assert_error(
        &out,
        3,
        &[&format!(
            "the remote node on {} went away while calling Demo.Worker.sleep_forever",
            sshd.host()
        )],
    );
    // Silence limit (20 s) and teardown grace (5 s), with room for a loaded machine.
    assert!(
        down.elapsed() < Duration::from_secs(40),
        "{:?}",
        down.elapsed()
    );
    out.assert_local_clean();
    let deadline = down + Duration::from_secs(40);
    while !remote_node_processes(&sshd).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        remote_node_processes(&sshd),
        Vec::new(),
        "the remote node outlived the link"
    );
    // sshd itself still holds the dead connection (and its loopback forward, which leads
    // nowhere now) until it notices; the harness removes it with the namespace.
}

/// The faults the random loop injects.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    Interrupt,
    Terminate,
    Kill,
    KillNode,
    DropConnection,
    CallTimeout,
}

const FAULTS: [Fault; 7] = [
    Fault::None,
    Fault::Interrupt,
    Fault::Terminate,
    Fault::Kill,
    Fault::KillNode,
    Fault::DropConnection,
    Fault::CallTimeout,
];

/// SplitMix64: a tiny seeded generator, so that a failing sequence can be replayed.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// How many runs the random loop makes: each takes one to three seconds.
const RANDOM_RUNS: usize = 14;

#[test]
fn runs_with_faults_at_random_points_leave_nothing() {
    // Set MIX_REMOTE_FAULT_SEED to replay a failure; the seed is printed only then.
    let seed = std::env::var("MIX_REMOTE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let mut rng = SplitMix(seed);
    let sshd = Sshd::start();
    for i in 0..RANDOM_RUNS {
        let fault = FAULTS[rng.below(FAULTS.len() as u64) as usize];
        let delay = rng.below(2500);
        let nap = rng.below(1500);
        let context = format!(
            "MIX_REMOTE_FAULT_SEED={seed}, run {i}: {fault:?} after {delay} ms, nap {nap} ms"
        );
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            faulty_run(&sshd, fault, delay, nap)
        }));
        if let Err(panic) = attempt {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{context}: {message}");
        }
    }
}

/// One run of `Demo.Worker.nap(nap)` with `fault` injected `delay` ms after the start; panics
/// unless its exit fits the fault and nothing of it remains on either side.
fn faulty_run(sshd: &Sshd, fault: Fault, delay: u64, nap: u64) {
    let nap_arg = nap.to_string();
    let mut args = vec!["Demo.Worker.nap", "--", &nap_arg];
    if let Fault::CallTimeout = fault {
        args.splice(0..0, ["--call-timeout", "1"]);
    }
    let run = demo(sshd, &args).spawn();
    std::thread::sleep(Duration::from_millis(delay));
    match fault {
        Fault::None | Fault::CallTimeout => {}
        Fault::Interrupt => run.signal("INT"),
        Fault::Terminate => run.signal("TERM"),
        Fault::Kill => run.signal("KILL"),
        Fault::KillNode => {
            let beam: Vec<u32> = sshd.remote_vms().iter().map(|p| p.pid).collect();
            testkit::signal("KILL", &beam);
        }
        Fault::DropConnection => {
            let pids: Vec<u32> = sshd.connection_processes().iter().map(|p| p.pid).collect();
            testkit::signal("KILL", &pids);
        }
    }
    let out = run.finish();
    // A fault that came after the run had finished changes nothing. A signal that came before
    // the tool could install its handlers kills it as it would any program.
    let allowed: &[Option<i32>] = match fault {
        Fault::None => &[Some(0)],
        Fault::Interrupt | Fault::Terminate => &[Some(0), Some(130), None],
        Fault::Kill => &[Some(0), None],
        Fault::KillNode | Fault::DropConnection => &[Some(0), Some(3)],
        // Around the 1 s limit either may happen on a loaded machine.
        Fault::CallTimeout if nap < 500 => &[Some(0)],
        Fault::CallTimeout if nap > 1300 => &[Some(4)],
        Fault::CallTimeout => &[Some(0), Some(4)],
    };
    assert!(
        allowed.contains(&out.code),
        "exit {:?}: {}",
        out.code,
        out.stderr
    );
    if out.code == Some(0) {
        assert_eq!(out.stdout, "napping\n:rested\n", "{}", out.stderr);
    }
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    sshd.assert_no_client_processes();
}

#[test]
fn output_nested_a_hundred_thousand_levels_deep_arrives_intact() {
    // The tool decodes only terms of bounded depth; the boot program flattens output first.
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Worker.deep_output", "--", "100_000"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let expected = format!("{}{}\n:ok\n", "x".repeat(100_000), "y".repeat(100_000));
    assert!(
        out.stdout == expected,
        "{} bytes of output",
        out.stdout.len()
    );
}

#[test]
fn locally_the_run_listens_on_no_port_and_late_connections_lead_nowhere() {
    // While the call runs: no TCP or UDP listener of the tool or its ssh master, and the Unix
    // socket the tunnel ends in no longer has a path anyone could connect to.
    let sshd = Sshd::start();
    let mut child = start_sleeper_with(&sshd, &["-v"]);
    let ours: Vec<u32> = std::iter::once(child.id())
        .chain(sshd.client_processes().iter().map(|p| p.pid))
        .collect();
    let ss = Command::new("ss")
        .args(["-Hltunp"])
        .output()
        .expect("run ss");
    let listeners = String::from_utf8_lossy(&ss.stdout).into_owned();
    for pid in &ours {
        let tag = format!("pid={pid},");
        assert!(
            !listeners.lines().any(|l| l.contains(&tag)),
            "process {pid} of the run listens: {listeners}"
        );
    }
    assert_eq!(
        testkit::entries(child.tmp()),
        Vec::<std::path::PathBuf>::new()
    );
    // The tunnel still listens on the server, but leads nowhere now: a connection
    // through it is closed at once, and never reaches the tool.
    child.stderr_until("tunnel:");
    let line = child.stderr_until("\n");
    let node_addr = line
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .expect("the tunnel's address")
        .to_owned();
    let mut late = std::net::TcpStream::connect(&node_addr).expect("connect to the tunnel");
    late.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let mut byte = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut late, &mut byte).expect("closed, not timed out"),
        0
    );
    child.signal("INT");
    let out = child.finish();
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(!out.stderr.contains("refused"), "{}", out.stderr);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_missing_ssh_client_is_named_with_a_hint() {
    let empty = tempfile::tempdir().expect("an empty PATH directory");
    let config = empty.path().join("ssh_config");
    std::fs::write(&config, "").unwrap();
    let out = testkit::mix_remote(testkit::compiled_fixture("demo"))
        .args(["run", "--host", "nowhere", "-F"])
        .arg(&config)
        .args([":demo_erl.add", "--", "1", "2"])
        .env("PATH", empty.path())
        .run();
    assert_error(&out, 3, &["cannot run ssh", "install the OpenSSH client"]);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    out.assert_local_clean();
}
