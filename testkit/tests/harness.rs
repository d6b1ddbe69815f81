//! Tests of the harness itself, against the real sshd.

use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::Sshd;

/// Runs `script` through `ssh -F <config> <host>`; panics unless it succeeds.
fn ssh(sshd: &Sshd, script: &str) -> Output {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(sshd.ssh_config())
        .arg(sshd.host())
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run ssh");
    assert!(
        out.status.success(),
        "ssh {script:?} failed ({}): {}{}\nsshd log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    out
}

/// Living processes (not zombies) whose environment holds `entry`, from /proc.
fn living_with_env(entry: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie && env.split(|&b| b == 0).any(|v| v == entry.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

fn is_living(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn loopback_sessions_carry_the_tag_and_are_killed_on_drop() {
    let sshd = Sshd::start();
    assert!(sshd.host().ends_with("@127.0.0.1"), "{}", sshd.host());
    assert_eq!(sshd.blocked_addr(), None);

    let out = ssh(&sshd, "echo $MIX_REMOTE_TEST_TAG");
    let tag = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(tag, sshd.tag());

    // The session ended with ssh: nothing of it is left.
    sshd.wait_until_no_session_processes(Duration::from_secs(5))
        .unwrap_or_else(|left| panic!("left behind: {left:?}"));

    ssh(&sshd, "setsid nohup sleep 30 </dev/null >/dev/null 2>&1 &");
    let sleeper = wait_for_sleeper(&sshd);
    assert!(
        sshd.wait_until_no_session_processes(Duration::from_millis(200))
            .is_err(),
        "the detached sleep must count as a session process"
    );

    let entry = format!("MIX_REMOTE_TEST_TAG={tag}");
    drop(sshd);
    assert!(!is_living(sleeper.pid), "{sleeper:?} survived the drop");
    assert_eq!(living_with_env(&entry), Vec::<u32>::new());
}

#[test]
fn several_loopback_servers_at_once() {
    let servers: Vec<Sshd> = (0..3).map(|_| Sshd::start()).collect();
    let threads: Vec<_> = servers
        .iter()
        .map(|s| {
            let config = s.ssh_config().to_path_buf();
            let host = s.host();
            std::thread::spawn(move || {
                Command::new("ssh")
                    .arg("-F")
                    .arg(config)
                    .arg(host)
                    .arg("echo $MIX_REMOTE_TEST_TAG")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for (server, thread) in servers.iter().zip(threads) {
        let out = thread.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), server.tag());
    }
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let mut tag = String::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let sshd = Sshd::start();
        tag = sshd.tag().to_string();
        ssh(&sshd, "nohup sleep 30 </dev/null >/dev/null 2>&1 &");
        panic!("test failure");
    }));
    assert!(result.is_err());
    assert_eq!(
        living_with_env(&format!("MIX_REMOTE_TEST_TAG={tag}")),
        Vec::<u32>::new()
    );
}

#[test]
fn netns_host_is_reachable_on_22_only() {
    if !testkit::netns_available() {
        return;
    }
    let sshd = Sshd::start_in_netns();
    let blocked = sshd
        .blocked_addr()
        .expect("a netns host has a blocked port");
    assert_eq!(blocked.ip(), sshd.addr().ip());
    assert_eq!(blocked.port(), 2222);
    assert!(sshd.host().ends_with(&format!("@{}", sshd.addr().ip())));

    let out = ssh(&sshd, "echo $MIX_REMOTE_TEST_TAG");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), sshd.tag());

    TcpStream::connect_timeout(&sshd.addr(), Duration::from_secs(5)).expect("port 22 is open");
    let started = Instant::now();
    let err = TcpStream::connect_timeout(&blocked, Duration::from_secs(1))
        .expect_err("the firewall must drop connections to 2222");
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");

    ssh(&sshd, "setsid nohup sleep 30 </dev/null >/dev/null 2>&1 &");
    let sleeper = wait_for_sleeper(&sshd);

    let ns = sshd
        .netns()
        .expect("a netns host has a namespace")
        .to_string();
    assert!(namespaces().contains(&ns), "{ns} not in `ip netns list`");
    let links = String::from_utf8(
        Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let host_if = links
        .lines()
        .find(|l| l.contains(&format!("link-netns {ns}")))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|name| name.split('@').next())
        .unwrap_or_else(|| panic!("no veth into {ns} in:\n{links}"))
        .to_string();
    drop(sshd);

    assert!(!is_living(sleeper.pid), "{sleeper:?} survived the drop");
    let after = namespaces();
    assert!(
        !after.contains(&ns),
        "{ns} still in `ip netns list`: {after:?}"
    );
    let gone = Command::new("ip")
        .args(["link", "show", &host_if])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "{host_if} still exists after the drop"
    );
}

#[test]
fn two_netns_hosts_at_once_are_separate() {
    if !testkit::netns_available() {
        return;
    }
    let a = Sshd::start_in_netns();
    let b = Sshd::start_in_netns();
    assert_ne!(a.addr(), b.addr());
    for s in [&a, &b] {
        let out = ssh(s, "echo $MIX_REMOTE_TEST_TAG");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), s.tag());
    }
}

/// The detached `sleep 30` among the session processes (ssh may return
/// before `setsid` and `nohup` have exec'd it).
fn wait_for_sleeper(sshd: &Sshd) -> testkit::Proc {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = sshd.session_processes();
        if let Some(p) = procs.iter().find(|p| p.cmdline == "sleep 30") {
            return p.clone();
        }
        assert!(Instant::now() < deadline, "no `sleep 30` among {procs:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Names in `ip netns list`.
fn namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}
