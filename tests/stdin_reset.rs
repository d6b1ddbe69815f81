//! A node whose session's stdin is a socketpair that is reset, as an sshd built without
//! `USE_PIPES` (upstream OpenSSH's default; Debian's uses pipes) leaves it when it closes the
//! session with the node's output unread (a dead link: the channel's window full): the node's
//! reads then fail with ECONNRESET, which the port reading its stdin does not report (OTP 25 to
//! 29: no message, no exit), so its stdin never ends. sshd cannot be made to do it on cue: a
//! shell stands for its session process here, holding the other end, and goes as sshd does.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mix_remote::remote::boot;

/// How long the node may take to halt once its session is gone.
const LIMIT: Duration = Duration::from_secs(20);

/// The state letter of `pid` in `/proc/PID/stat` (`Z` for a zombie), `None` once it is gone.
fn state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 1..].trim_start().chars().next()
}

/// Whether `pid` runs (a zombie is dead, only not reaped).
fn alive(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// The children of `pid`, as `/proc` lists them.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills what it holds when dropped (a failing test leaves no node behind).
struct Killed(Vec<u32>);

impl Drop for Killed {
    fn drop(&mut self) {
        for pid in &self.0 {
            if alive(*pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The session: the launcher run as sshd runs it (`$SHELL -c COMMAND`, its stdin and stdout one
/// socket), by a shell of its own, which stays as sshd's session process does: the node's parent.
fn session(command: &str, socket: UnixStream, tmp: &Path) -> Child {
    let input = socket
        .try_clone()
        .expect("a second descriptor of the socket");
    Command::new("sh")
        // A background job's stdin is /dev/null unless it is given one from elsewhere.
        .args([
            "-c",
            "exec 3<&0; sh -c \"$1\" <&3 3<&- & wait",
            "session",
            command,
        ])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(input)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(socket)))
        .env("TMPDIR", tmp)
        .spawn()
        .expect("a shell for the session")
}

/// Reads `from` a byte at a time until `text` has come (what follows it stays unread).
fn read_until(from: &mut UnixStream, text: &str) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(text.as_bytes()) {
        match from.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            other => panic!(
                "{other:?} before {text:?}: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

/// How the node learns that its session is lost, its stdin reset.
enum Lost {
    /// Its parent, the session's process, goes (as sshd's goes with the connection).
    ParentGone,
    /// Not one byte more comes on its stdin (its parent stays: a multiplexed session's channel
    /// closed while the connection lives on, or a server without `/proc`).
    Silence,
}

/// Boots a node on a socketpair with `input`, waits until it has said what it is (and, with
/// `dir_made`, made its run's directory), then resets its stdin, which the node must not take for
/// its end, and loses its session as `lost` says: the node must halt, and leave nothing.
fn halts_once_its_session_is_gone(input: &[u8], forward_port: u16, dir_made: bool, lost: Lost) {
    let tmp = tempfile::tempdir().expect("a TMPDIR for the node");
    let (mut ours, theirs) = UnixStream::pair().expect("a socketpair");
    ours.set_read_timeout(Some(LIMIT)).expect("a read timeout");
    let command = boot::remote_command("elixir", forward_port).expect("the launcher");
    let mut shell = session(&command, theirs, tmp.path());
    let mut held = Killed(vec![shell.id()]);
    ours.write_all(input).expect("the boot input written");
    read_until(&mut ours, "\nmix-remote:info:");
    let deadline = Instant::now() + LIMIT;
    while dir_made && entries(tmp.path()).is_empty() {
        assert!(Instant::now() < deadline, "no run directory made");
        std::thread::sleep(Duration::from_millis(20));
    }
    let node = children(shell.id());
    assert_eq!(node.len(), 1, "{node:?}");
    let node = node[0];
    held.0.push(node);
    // Its erl_child_setup, and the shell that would remove its directory.
    for child in children(node) {
        held.0.push(child);
        held.0.extend(children(child));
    }
    // Closed with the rest of that line unread: a reset, not an end. The node does not see it.
    drop(ours);
    std::thread::sleep(Duration::from_secs(2));
    assert!(alive(node), "the node took the reset for its stdin's end");
    let limit = match lost {
        Lost::ParentGone => {
            // The session's process goes, as sshd's does once the connection is lost.
            shell.kill().expect("the session's shell killed");
            shell.wait().expect("the session's shell reaped");
            LIMIT
        }
        // The node's bound on silence (templates/boot.exs, `@quiet_limit_ms`), and then some.
        Lost::Silence => Duration::from_secs(45) + LIMIT,
    };
    let deadline = Instant::now() + limit;
    while held.0.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = held.0.iter().copied().filter(|&pid| alive(pid)).collect();
    assert_eq!(left, Vec::<u32>::new(), "still running");
    assert_eq!(entries(tmp.path()), Vec::<PathBuf>::new(), "left behind");
}

/// What is in `dir`.
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("the node's TMPDIR")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_spare_whose_stdin_is_reset_halts_once_its_session_is_gone_and_leaves_nothing() {
    // A spare's input: it boots, says what it is, and waits for a run's cookie.
    halts_once_its_session_is_gone(
        &boot::start_frames(1, false, ""),
        0,
        false,
        Lost::ParentGone,
    );
}

#[test]
fn a_spare_whose_stdin_is_reset_halts_once_it_has_heard_nothing_for_long_and_leaves_nothing() {
    halts_once_its_session_is_gone(&boot::start_frames(1, false, ""), 0, false, Lost::Silence);
}

#[test]
fn a_node_connecting_back_whose_stdin_is_reset_halts_once_its_session_is_gone_and_leaves_nothing() {
    // A cold run's node, connecting back to a listener that never answers (as a tool gone
    // quiet), stages an empty batch in its run's directory and waits for the load frame.
    let (_, input) = connecting_back();
    halts_once_its_session_is_gone(&input, 0, true, Lost::ParentGone);
}

#[test]
fn a_node_whose_launcher_opened_its_connection_halts_once_the_session_is_gone() {
    // bash opens the connection back and waits for the VM, its parent: the node watches bash's
    // parent, the session's process, instead of its own.
    let (port, input) = connecting_back();
    halts_once_its_session_is_gone(&input, port, true, Lost::ParentGone);
}

/// A listener that takes connections and never answers, and the input of a cold run's node
/// that connects back to it, with an empty batch.
fn connecting_back() -> (u16, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = listener.local_addr().expect("its port").port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let mut input = boot::stdin_input(port, true, "cookie", "mix_remote_tool@localhost");
    input.extend(boot::frame(
        &[b"batch:0:".as_slice(), &empty_batch()].concat(),
    ));
    (port, input)
}

/// `[closure, on_load, env, setup]` of a batch without modules, in the external term format:
/// `[[], [], #{}, #{config => []}]`.
fn empty_batch() -> Vec<u8> {
    let mut term = vec![131, 108, 0, 0, 0, 4, 106, 106, 116, 0, 0, 0, 0];
    term.extend([116, 0, 0, 0, 1, 119, 6]);
    term.extend(b"config");
    term.extend([106, 106]);
    term
}
