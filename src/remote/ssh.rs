//! One OpenSSH connection per run, driven through the system `ssh` client so that the user's
//! `~/.ssh/config`, agent, ProxyJump and known_hosts all apply, and host keys are checked the
//! OpenSSH way (we never relax `StrictHostKeyChecking`).
//!
//! The master connection's own session runs the remote boot command with its stdin piped from
//! us: when the tool exits for any reason (even SIGKILL) that pipe closes, the remote node halts,
//! the session ends, and a master without ControlPersist exits with it. The run's one reverse
//! forward is requested on the command line, so OpenSSH asks for it while it opens the session,
//! without a round trip of its own; ssh reports the port the server allocated on stderr
//! ("Allocated port N for remote forward to ...", at LogLevel INFO, which we make sure of).

mod control;
pub(crate) mod spawn;

pub use control::Control;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::build::compat::MIN_REMOTE_OTP;
use crate::remote::boot::{self, CONFIG, CONNECTED, DONE, HELD, INFO, MARKER, NO_ELIXIR, OLD_OTP};

/// How many lines of the session's stderr are kept to explain a failure.
const STDERR_TAIL: usize = 8;
/// How ssh reports the port the server allocated for a `-R 127.0.0.1:0:...` forward.
const ALLOCATED: &str = "Allocated port ";
/// How long to wait, once ssh has exited, for the rest of what it printed (a process ssh
/// started, such as a ProxyCommand, may hold the pipe open).
const STDERR_DRAIN: Duration = Duration::from_secs(2);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `[user@]host` as given to ssh.
    pub host: String,
    /// `-F FILE`: an ssh_config to use instead of the user's.
    pub config: Option<PathBuf>,
    /// `-o OPTION` pass-through, in order.
    pub options: Vec<String>,
    /// What gave `host`, named by the hint when it does not resolve (see
    /// [`crate::config::origin`]).
    pub origin: String,
}

/// Why the SSH side failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The `ssh` program could not be started.
    #[error("cannot run ssh: {0} (install the OpenSSH client, or put `ssh` on the PATH)")]
    Spawn(std::io::Error),
    /// The connection or login failed; `said` is the line of ssh's that tells why.
    #[error("ssh to {host} failed: {said} ({hint})")]
    Connect {
        /// The host at fault.
        host: String,
        /// ssh's own explanation.
        said: String,
        /// What to check or do about it.
        hint: String,
    },
    /// The session ended before it reached the expected point.
    #[error(
        "{what} on {host} ended early: {said} (the server's messages are above; `ssh {host} elixir --version` checks its Elixir)"
    )]
    Ended {
        /// What was running (e.g. "the remote node").
        what: &'static str,
        /// The host.
        host: String,
        /// The session's last stderr line, or its exit status.
        said: String,
    },
    /// `elixir` was not found by the remote shell.
    #[error(
        "elixir not found on {host} (looked for `{elixir}` on the remote login PATH): install Elixir there or pass --elixir /path/to/elixir"
    )]
    NoElixir {
        /// The host.
        host: String,
        /// The command or path that was looked for.
        elixir: String,
    },
    /// The server refused a reverse port forward (the run's, or the one `check` asks for).
    #[error(
        "{host} refused the run's reverse port forward: {said} (its sshd must allow it: AllowTcpForwarding yes or remote, and PermitListen allowing 127.0.0.1 on any port or on the host's forward_port)"
    )]
    Forward {
        /// The host.
        host: String,
        /// What ssh said.
        said: String,
    },
    /// The server's OTP is older than the oldest mix-remote runs on.
    #[error(
        "{host} runs OTP {otp}: mix-remote needs OTP {MIN_REMOTE_OTP} or newer on the server (upgrade Erlang/OTP there, or pass --elixir naming an Elixir that runs on a newer OTP)"
    )]
    OldOtp {
        /// The host.
        host: String,
        /// The OTP release it runs.
        otp: String,
    },
    /// Writing to the session failed.
    #[error("the SSH session to {0} closed while the run was starting (rerun with -v to see why)")]
    Closed(String),
}

/// The hint for a host key that differs from the one in known_hosts.
const CHANGED_KEY: &str = "the server's host key is not the one in known_hosts: if the change is expected, remove the old key with `ssh-keygen -R`; otherwise the connection may be intercepted";
/// The hint for a host key that is not in known_hosts.
const UNKNOWN_KEY: &str = "the server's host key is not in known_hosts: check its fingerprint and add it (`ssh` to it once), or let ssh trust new hosts with StrictHostKeyChecking accept-new in your ssh config";
/// The hint when ssh only says that it could not verify the host key (in BatchMode, an unknown
/// key where it would have asked).
const UNVERIFIED_KEY: &str = "the server's host key is not in known_hosts, or not the one there: `ssh` to it once to check its fingerprint and accept it, or let ssh trust new hosts with StrictHostKeyChecking accept-new in your ssh config";

impl SshError {
    /// Whether OpenSSH refused the server's host key (unknown or changed): a decision left to
    /// the user, which `check` reports as such.
    pub fn is_host_key(&self) -> bool {
        matches!(self, SshError::Connect { hint, .. }
            if [CHANGED_KEY, UNKNOWN_KEY, UNVERIFIED_KEY].contains(&hint.as_str()))
    }
}

/// Why ssh could not connect, from the lines it printed (`tail`, oldest first): the line that tells
/// and a hint for the user. Host key problems are left to the user to decide, never worked around.
/// A name that does not resolve is named with what gave it (`origin`, see [`Target::origin`]).
fn connect_error(host: String, origin: &str, tail: &[String]) -> SshError {
    const UNRESOLVED: &str = "Could not resolve hostname";
    if let Some(line) = tail.iter().rev().find(|l| l.contains(UNRESOLVED)) {
        return SshError::Connect {
            host,
            said: said(line),
            hint: format!("check {origin}, or its HostName in your ssh config"),
        };
    }
    const KNOWN: &[(&str, &str)] = &[
        (
            "has changed and you have requested strict checking",
            CHANGED_KEY,
        ),
        ("REMOTE HOST IDENTIFICATION HAS CHANGED", CHANGED_KEY),
        ("host key is known for", UNKNOWN_KEY),
        ("authenticity of host", UNKNOWN_KEY),
        ("Host key verification failed", UNVERIFIED_KEY),
        (
            "Permission denied",
            "check the user name and that your key or agent lets `ssh` log in there without a prompt",
        ),
        (
            "Connection refused",
            "is the host up, and sshd listening on the port your ssh config or -o Port names?",
        ),
        (
            "No route to host",
            "is the host up and reachable from here (VPN, ProxyJump in your ssh config)?",
        ),
        (
            "Network is unreachable",
            "is the host up and reachable from here (VPN, ProxyJump in your ssh config)?",
        ),
        (
            "timed out",
            "is the host up and reachable from here (VPN, ProxyJump in your ssh config)?",
        ),
    ];
    for (pattern, hint) in KNOWN {
        if let Some(line) = tail.iter().rev().find(|l| l.contains(pattern)) {
            return SshError::Connect {
                host,
                said: said(line),
                hint: (*hint).to_owned(),
            };
        }
    }
    SshError::Connect {
        host,
        said: tail
            .last()
            .map(|l| said(l))
            .unwrap_or_else(|| "it exited without saying why".into()),
        hint: "rerun with -v to see everything ssh said, or try `ssh` to the host yourself".into(),
    }
}

/// How ssh says that the server refused a reverse forward.
const FORWARD_FAILED: &str = "remote port forwarding failed";

/// The gist of what ssh printed when the server refused a forward, one line of it each in
/// `said`: the line that says so, `remote port forwarding failed for listen port 0`, rather
/// than its `Error: ` or multiplexer prefixes, nor the lines around it (`muxclient: master
/// forward request failed`); else the first line.
fn forward_refusal<S: AsRef<str>>(said: &[S]) -> String {
    let lines = || said.iter().map(AsRef::as_ref);
    let Some(line) = lines()
        .find(|l| l.contains(FORWARD_FAILED))
        .or_else(|| lines().next())
    else {
        return "no reason given".to_owned();
    };
    line.rsplit_once("failed: ")
        .map_or(line, |(_, why)| why)
        .trim()
        .trim_start_matches("Error: ")
        .to_owned()
}

/// Whether a stderr line of the master is ssh's own (its connection multiplexer's) rather than the
/// session's: `mux_confirm_remote_forward: ...`.
pub(crate) fn is_ssh_own(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(f, _)| {
        f.starts_with("mux_") && f.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    })
}

/// One line of ssh's, without its `ssh: ` prefix.
fn said(line: &str) -> String {
    line.trim().trim_start_matches("ssh: ").to_owned()
}

/// How long teardown waits for ssh's last lines once it has exited.
const LAST_WORDS: Duration = Duration::from_millis(500);

/// The running master connection and its boot session.
pub struct Master {
    child: Child,
    stdin: Option<ChildStdin>,
    control: PathBuf,
    target: Target,
    markers: mpsc::UnboundedReceiver<String>,
    /// Markers taken off `markers` while waiting for another, in order, for whoever wants them.
    pending: VecDeque<String>,
    allocated: mpsc::UnboundedReceiver<u16>,
    /// The port of the reverse forward, when we chose it rather than the server.
    chosen_port: Option<u16>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// The task reading stderr into `stderr`: done once ssh's last words are in.
    stderr_read: Option<tokio::task::JoinHandle<()>>,
    /// The task reading stdout: done once the node's last markers are in.
    stdout_read: Option<tokio::task::JoinHandle<()>>,
    /// The project's config file the node is evaluating (`config/runtime.exs`), if it is
    /// evaluating one ([`CONFIG`]), and what it printed ahead ([`HELD`]).
    evaluating: Arc<Mutex<Evaluating>>,
}

/// The project's config file a node was evaluating as its session ended (a `System.halt/1`
/// reached in it ended the node), and what it printed before, if the node held that ([`HELD`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InConfig {
    /// The file, as the project names it (`config/runtime.exs`).
    pub file: String,
    /// What it printed as it was evaluated ahead (config.exs), held on the node: the run never
    /// showed it.
    pub printed: Vec<u8>,
}

/// What a node's markers say of the config file it evaluates ([`CONFIG`], [`HELD`]).
#[derive(Debug, Default)]
struct Evaluating {
    file: Option<String>,
    printed: Vec<u8>,
}

impl Evaluating {
    /// Takes in a marker of the node's (without [`MARKER`]): a file begun or done with, or
    /// bytes it printed (a line not as the protocol has it is passed over).
    fn said(&mut self, marker: &str) {
        if let Some(file) = marker.strip_prefix(CONFIG) {
            self.file = (!file.is_empty()).then(|| file.to_owned());
            self.printed.clear();
        } else if let Some(hex) = marker.strip_prefix(HELD)
            && self.file.is_some()
            && let Some(bytes) = boot::bytes_of_hex(hex)
        {
            self.printed.extend_from_slice(&bytes);
        }
    }

    /// The file under way, if one is.
    fn under_way(self) -> Option<InConfig> {
        let printed = self.printed;
        self.file.map(|file| InConfig { file, printed })
    }
}

impl Master {
    /// Connects to `target`, running `remote_command` as the master's session, with a reverse
    /// forward, if `forward` names a local Unix socket and a port, from that port on the server's
    /// 127.0.0.1 (or, for port 0, from one the server allocates) to that socket
    /// ([`Master::forwarded_port`] tells which): requested with the connection, it costs no round
    /// trip of its own, and the server has it before it runs the session's command. A port the
    /// server cannot give ends the connection ([`SshError::Forward`]). Lines the session
    /// prints that are not ours (the node's own stdout and stderr) go to `output`; what ssh
    /// itself says before the session starts goes to `log` (for `-v`), its gist into the error.
    pub fn start(
        target: &Target,
        control: &Path,
        forward: Option<(&Path, u16)>,
        remote_command: &str,
        output: impl Fn(&str) + Send + Sync + 'static,
        log: impl Fn(String) + Send + Sync + 'static,
    ) -> Result<Master, SshError> {
        let mut cmd = Command::new("ssh");
        cmd.args(["-M", "-S"])
            .arg(control)
            .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no"])
            .args(["-o", "ExitOnForwardFailure=yes", "-T"]);
        if let Some((socket, port)) = forward {
            cmd.arg("-R")
                .arg(format!("127.0.0.1:{port}:{}", socket.display()));
            // ssh keeps the first value it is given: ours, unless the user asked for more detail.
            if !verbose_log_level(&target.options) {
                cmd.args(["-o", "LogLevel=INFO"]);
            }
        }
        let mut master = Master::launch(cmd, target, control, remote_command, output, log)?;
        master.chosen_port = forward.map(|(_, port)| port).filter(|&port| port != 0);
        Ok(master)
    }

    /// [`Master::start`] without a connection of its own or a forward: the session runs through
    /// the running master whose control socket is `control` (a warm session's), which stays up
    /// when this one ends. Nothing logs in again.
    pub fn through(
        target: &Target,
        control: &Path,
        remote_command: &str,
        output: impl Fn(&str) + Send + Sync + 'static,
        log: impl Fn(String) + Send + Sync + 'static,
    ) -> Result<Master, SshError> {
        let mut cmd = Command::new("ssh");
        cmd.arg("-S")
            .arg(control)
            .args(["-o", "ControlMaster=no", "-T"]);
        Master::launch(cmd, target, control, remote_command, output, log)
    }

    fn launch(
        mut cmd: Command,
        target: &Target,
        control: &Path,
        remote_command: &str,
        output: impl Fn(&str) + Send + Sync + 'static,
        log: impl Fn(String) + Send + Sync + 'static,
    ) -> Result<Master, SshError> {
        add_target_options(&mut cmd, target);
        cmd.arg("--").arg(&target.host).arg(remote_command);
        log(format!("ssh: {}", describe(&cmd)));
        let args: Vec<OsString> = cmd.as_std().get_args().map(ToOwned::to_owned).collect();
        let mut child = spawn::command("ssh", &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(SshError::Spawn)?;
        let stdin = child.stdin.take();
        let output = Arc::new(output);
        let (tx, markers) = mpsc::unbounded_channel();
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        // Until the session says it started, stderr is ssh's own (host keys, login): for -v only.
        // The launcher then waits for our input, so later lines are the session's.
        let started = Arc::new(AtomicBool::new(false));
        let (port_tx, allocated) = mpsc::unbounded_channel();
        let evaluating = Arc::new(Mutex::new(Evaluating::default()));
        let stdout_read = child.stdout.take().map(|stdout| {
            let output = Arc::clone(&output);
            let started = Arc::clone(&started);
            let evaluating = Arc::clone(&evaluating);
            tokio::spawn(each_line(stdout, move |line, continued| {
                match line.strip_prefix(MARKER).filter(|_| !continued) {
                    Some(marker) if marker.starts_with(CONFIG) || marker.starts_with(HELD) => {
                        evaluating
                            .lock()
                            .expect("config lock poisoned")
                            .said(marker);
                    }
                    Some(marker) => {
                        if marker == CONNECTED {
                            started.store(true, Ordering::SeqCst);
                        }
                        drop(tx.send(marker.to_owned()))
                    }
                    None => output(&line),
                }
            }))
        });
        let stderr_read = child.stderr.take().map(|err| {
            let tail = Arc::clone(&stderr);
            tokio::spawn(each_line(err, move |line, _| {
                if let Some(port) = allocated_port(&line) {
                    log(format!("ssh said: {line}"));
                    let _ = port_tx.send(port);
                    return;
                }
                if started.load(Ordering::SeqCst)
                    && !is_ssh_own(&line)
                    && !line.contains(FORWARD_FAILED)
                {
                    output(&line);
                } else {
                    log(format!("ssh said: {line}"));
                }
                let mut tail = tail.lock().expect("stderr lock poisoned");
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }))
        });
        Ok(Master {
            child,
            stdin,
            control: control.to_owned(),
            target: target.clone(),
            markers,
            pending: VecDeque::new(),
            allocated,
            chosen_port: None,
            stderr,
            stderr_read,
            stdout_read,
            evaluating,
        })
    }

    /// The server port of the reverse forward: the one we chose at once, else once the server
    /// has allocated it; if the connection fails first, the error says why.
    pub async fn forwarded_port(&mut self) -> Result<u16, SshError> {
        if let Some(port) = self.chosen_port {
            return Ok(port);
        }
        match self.allocated.recv().await {
            Some(port) => Ok(port),
            None => Err(self.ended("the SSH connection").await),
        }
    }

    /// Waits until the boot session prints `mix-remote:<marker>`; if the session ends first, the
    /// error says why.
    pub async fn wait_for(&mut self, marker: &str, what: &'static str) -> Result<(), SshError> {
        let found = self
            .find(|line| line == marker || line.starts_with(NO_ELIXIR))
            .await;
        match found {
            Some(line) => match line.strip_prefix(NO_ELIXIR) {
                Some(elixir) => Err(SshError::NoElixir {
                    host: self.target.host.clone(),
                    elixir: elixir.to_owned(),
                }),
                None => Ok(()),
            },
            None => Err(self.ended(what).await),
        }
    }

    /// Resolves when the session ends (it should not, while a run is going on), with the reason
    /// taken from ssh's exit status and the session's stderr. `what` names what was running.
    pub async fn failure(&mut self, what: &'static str) -> SshError {
        match self.find(|line| line.starts_with(OLD_OTP)).await {
            Some(line) => self.old_otp(&line),
            None => self.ended(what).await,
        }
    }

    /// Waits until the boot session prints a marker `mix-remote:<prefix>...` and returns the
    /// rest; if the session ends first (or the node says its OTP is too old), the error says why.
    pub async fn marked(&mut self, prefix: &str, what: &'static str) -> Result<String, SshError> {
        let found = self
            .find(|line| line.starts_with(prefix) || line.starts_with(OLD_OTP))
            .await;
        match found {
            Some(line) => match line.strip_prefix(prefix) {
                Some(rest) => Ok(rest.to_owned()),
                None => Err(self.old_otp(&line)),
            },
            None => Err(self.ended(what).await),
        }
    }

    /// What the node last said of itself (`mix-remote:info:HEX`, the HEX), if it has by now.
    pub fn info(&mut self) -> Option<String> {
        while let Ok(line) = self.markers.try_recv() {
            self.pending.push_back(line);
        }
        let mut last = None;
        self.pending.retain(|line| match line.strip_prefix(INFO) {
            Some(hex) => {
                last = Some(hex.to_owned());
                false
            }
            None => true,
        });
        last
    }

    /// Waits at most `limit` for the node to say its work is answered and its own output all out
    /// ([`DONE`]); false if it has not (or the session ended).
    pub async fn settled(&mut self, limit: Duration) -> bool {
        let done = self.find(|line| line == DONE);
        matches!(tokio::time::timeout(limit, done).await, Ok(Some(_)))
    }

    /// Ends the connection at once, without waiting for the session to end by itself: for a run
    /// whose node has settled ([`Master::settled`]). The node halts when its stdin closes, as the
    /// server ends the session, and removes its files; nothing else of the run is left there.
    pub fn abandon(mut self) {
        self.stdin.take();
        let _ = self.child.start_kill();
    }

    /// The first marker `wanted` takes, of those kept and then those to come (the others are kept
    /// for later, in order); `None` once the session has ended without one.
    async fn find(&mut self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(at) = self.pending.iter().position(|line| wanted(line)) {
            return self.pending.remove(at);
        }
        while let Some(line) = self.markers.recv().await {
            if wanted(&line) {
                return Some(line);
            }
            self.pending.push_back(line);
        }
        None
    }

    fn old_otp(&self, line: &str) -> SshError {
        SshError::OldOtp {
            host: self.target.host.clone(),
            otp: line.trim_start_matches(OLD_OTP).to_owned(),
        }
    }

    async fn ended(&mut self, what: &'static str) -> SshError {
        let status = self.child.wait().await.ok().and_then(|s| s.code());
        if let Some(reading) = self.stderr_read.take() {
            // A process ssh started (a ProxyCommand) may hold the pipe open: do not wait forever.
            let _ = tokio::time::timeout(STDERR_DRAIN, reading).await;
        }
        let tail: Vec<String> = self
            .stderr
            .lock()
            .expect("stderr lock poisoned")
            .iter()
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .collect();
        let host = self.target.host.clone();
        if status == Some(255) {
            // With ExitOnForwardFailure, a refused forward ends the connection.
            if tail.iter().any(|l| l.contains(FORWARD_FAILED)) {
                return SshError::Forward {
                    host,
                    said: forward_refusal(&tail),
                };
            }
            return connect_error(host, &self.target.origin, &tail);
        }
        let said = match tail.last() {
            Some(line) => line.clone(),
            None => match status {
                Some(code) => format!("exit status {code}, nothing printed"),
                None => "killed by a signal, nothing printed".into(),
            },
        };
        SshError::Ended { what, host, said }
    }

    /// Requests to this master through its control socket (see [`Control`]).
    pub fn control(&self) -> Control<'_> {
        Control::new(&self.control, &self.target)
    }

    /// Takes the boot session's stdin, to write to it alongside (see [`Master::give_stdin`]);
    /// `None` if it was closed or taken.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Gives back the stdin [`Master::take_stdin`] took: closing it ends the run on the remote.
    pub fn give_stdin(&mut self, stdin: ChildStdin) {
        self.stdin = Some(stdin);
    }

    /// Writes `bytes` to the boot session's stdin.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), SshError> {
        let host = self.target.host.clone();
        let stdin = self.stdin.as_mut().ok_or(SshError::Closed(host.clone()))?;
        stdin
            .write_all(bytes)
            .await
            .map_err(|_| SshError::Closed(host.clone()))?;
        stdin.flush().await.map_err(|_| SshError::Closed(host))
    }

    /// Ends the run on the remote and closes the connection: closing stdin halts the node, which
    /// ends the session and so the master. If that takes longer than `grace` (a hung server, a
    /// dead link), the master is killed, which closes the connection. Returns ssh's exit status,
    /// the session's (the node's: the launcher `exec`s it, or ends with its status) unless ssh
    /// failed (255).
    pub async fn shutdown(self, grace: Duration) -> Option<i32> {
        self.end(grace).await.0
    }

    /// [`Master::shutdown`], with the project's config file the node was evaluating as its
    /// session ended, if it was (a `System.halt/1` in it ended the node).
    pub async fn end(mut self, grace: Duration) -> (Option<i32>, Option<InConfig>) {
        self.stdin.take();
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(ended) => ended.ok().and_then(|s| s.code()),
            Err(_) => {
                let _ = self.child.kill().await;
                None
            }
        };
        // ssh's last words ("Connection ... closed") are shown before whatever the run reports
        // next; the pipe ends with ssh, but a ProxyCommand could hold it: wait a moment at most.
        if let Some(reader) = self.stderr_read.take() {
            let _ = tokio::time::timeout(LAST_WORDS, reader).await;
        }
        // The node's last markers: which config file it was in, if it halted there.
        if let Some(reader) = self.stdout_read.take().filter(|_| status.is_some()) {
            let _ = tokio::time::timeout(LAST_WORDS, reader).await;
        }
        let evaluating =
            std::mem::take(&mut *self.evaluating.lock().expect("config lock poisoned"));
        (status, evaluating.under_way())
    }
}

/// Calls `each` with every line of `pipe` ([`PipeLines`]), and whether it continues the one
/// before.
pub(crate) async fn each_line(pipe: impl AsyncRead + Unpin, mut each: impl FnMut(String, bool)) {
    let mut lines = PipeLines::new(pipe);
    while let Some((line, continued)) = lines.next().await {
        each(line, continued);
    }
}

/// The lines of a pipe, decoding bytes that are not UTF-8 lossily: a stray Latin-1 byte from a
/// login script or a remote program must not stop the reading. A line is held at most
/// [`LINE_CAP`] bytes (one of ours, [`MARKER`], [`MARKER_CAP`]), then handed out in pieces of
/// that size: a program that rewrites its line with `\r` and never ends it costs no more memory
/// than that. With each piece, whether it continues the one before: only a line's start can be
/// one of ours.
pub(crate) struct PipeLines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    continued: bool,
    ended: bool,
}

impl<R: AsyncRead + Unpin> PipeLines<R> {
    /// The lines of `pipe`.
    pub(crate) fn new(pipe: R) -> PipeLines<R> {
        PipeLines {
            reader: BufReader::new(pipe),
            line: Vec::new(),
            continued: false,
            ended: false,
        }
    }

    /// The next line (without its newline) or piece of one, and whether it continues the one
    /// before; `None` once the pipe has ended (or failed) and all it held is out.
    pub(crate) async fn next(&mut self) -> Option<(String, bool)> {
        while !self.ended {
            let buffered = match self.reader.fill_buf().await {
                Ok([]) | Err(_) => {
                    self.ended = true;
                    break;
                }
                Ok(buffered) => buffered,
            };
            let cap = cap_of(&self.line, self.continued);
            let room = cap - self.line.len();
            let window = &buffered[..buffered.len().min(room)];
            let used = window
                .iter()
                .position(|&b| b == b'\n')
                .map_or(window.len(), |at| at + 1);
            self.line.extend_from_slice(&window[..used]);
            self.reader.consume(used);
            let continued = self.continued;
            if self.line.ends_with(b"\n") {
                let text = String::from_utf8_lossy(&self.line);
                let text = text.trim_end_matches(['\n', '\r']).to_owned();
                self.line.clear();
                self.continued = false;
                return Some((text, continued));
            } else if self.line.len() >= cap {
                // A character cut by the cap goes whole with the next piece.
                let rest = self
                    .line
                    .split_off(self.line.len() - unfinished(&self.line));
                let piece = std::mem::replace(&mut self.line, rest);
                self.continued = true;
                return Some((String::from_utf8_lossy(&piece).into_owned(), continued));
            }
        }
        if self.line.is_empty() {
            return None;
        }
        let last = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&last);
        Some((text.trim_end_matches('\r').to_owned(), self.continued))
    }
}

/// The most of a line [`each_line`] holds: the node's own lines are short...
const LINE_CAP: usize = 64 * 1024;
/// ... but ours may not be: `mix-remote:info:` spells the MD5 of every module the node has
/// loaded, hundreds of KiB once a large project's batch is loaded ahead.
const MARKER_CAP: usize = 16 * 1024 * 1024;

/// How much of a line `line` (its beginning, or a piece that `continued` one) may grow to
/// before it is handed out in pieces.
fn cap_of(line: &[u8], continued: bool) -> usize {
    if !continued && line.starts_with(MARKER.as_bytes()) {
        MARKER_CAP
    } else {
        LINE_CAP
    }
}

/// How many of the last bytes of `bytes` begin a UTF-8 character that bytes yet to come would
/// finish (0 to 3).
fn unfinished(bytes: &[u8]) -> usize {
    (1..=bytes.len().min(3))
        .find(|&n| {
            matches!(std::str::from_utf8(&bytes[bytes.len() - n..]),
                Err(e) if e.valid_up_to() == 0 && e.error_len().is_none())
        })
        .unwrap_or(0)
}

/// The port of an "Allocated port N for remote forward to ..." line of ssh.
fn allocated_port(line: &str) -> Option<u16> {
    let rest = line.strip_prefix(ALLOCATED)?;
    let (port, what) = rest.split_once(' ')?;
    if !what.starts_with("for remote forward") {
        return None;
    }
    port.parse().ok()
}

/// Whether the user's `-o` options set ssh's LogLevel to VERBOSE or a DEBUG level, which also
/// show the allocated port.
fn verbose_log_level(options: &[String]) -> bool {
    options.iter().any(|option| {
        let option = option.to_ascii_lowercase();
        let Some(value) = option.strip_prefix("loglevel") else {
            return false;
        };
        let value = value.trim_start_matches([' ', '\t', '=']);
        value.starts_with("verbose") || value.starts_with("debug")
    })
}

pub(crate) fn add_target_options(cmd: &mut Command, target: &Target) {
    if let Some(config) = &target.config {
        cmd.arg("-F").arg(config);
    }
    for option in &target.options {
        cmd.arg("-o").arg(option);
    }
}

/// The command line, for `-v`. It never holds a secret: the cookie travels on stdin.
fn describe(cmd: &Command) -> String {
    let std = cmd.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn hint_of(tail: &str) -> (String, String) {
        match connect_error("h".into(), "the host name given to --host", &lines(tail)) {
            SshError::Connect { said, hint, .. } => (said, hint),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connection_failures_get_the_telling_line_and_a_hint() {
        // As OpenSSH 9.2 words them.
        let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
            @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
            Offending ED25519 key in /k:1\n\
            Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\n\
            Host key verification failed.";
        let (said, hint) = hint_of(changed);
        assert!(said.starts_with("Host key for [127.0.0.1]:2222 has changed"));
        assert!(hint.contains("ssh-keygen -R"));
        let (said, hint) = hint_of(
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n\
             Host key verification failed.",
        );
        assert!(said.starts_with("No ED25519 host key is known"));
        assert!(hint.contains("accept-new"));
        let (said, hint) =
            hint_of("ssh: Could not resolve hostname nope.invalid: Name or service not known");
        assert_eq!(
            said,
            "Could not resolve hostname nope.invalid: Name or service not known"
        );
        assert!(hint.contains("--host"));
        assert!(
            hint_of("root@h: Permission denied (publickey).")
                .1
                .contains("key or agent")
        );
        assert!(
            hint_of("ssh: connect to host h port 1: Connection refused")
                .1
                .contains("sshd listening")
        );
        let (said, hint) = hint_of("");
        assert_eq!(said, "it exited without saying why");
        assert!(hint.contains("-v"));
    }

    #[test]
    fn host_key_refusals_are_told_from_other_failures() {
        let error = |tail: &str| connect_error("h".into(), "--host", &lines(tail));
        assert!(error("Host key verification failed.").is_host_key());
        assert!(error("No ED25519 host key is known for h and you have requested strict checking.\nHost key verification failed.").is_host_key());
        assert!(!error("root@h: Permission denied (publickey).").is_host_key());
        assert!(!error("").is_host_key());
    }

    #[test]
    fn forward_refusals_and_ssh_own_lines_are_recognised() {
        // What a master ended by ExitOnForwardFailure says; `ssh -O forward`'s lines are in
        // ssh/control.rs's tests.
        assert_eq!(
            forward_refusal(&["Error: remote port forwarding failed for listen port 0"]),
            "remote port forwarding failed for listen port 0"
        );
        assert_eq!(
            forward_refusal(&["muxclient: master forward request failed"]),
            "muxclient: master forward request failed",
            "no refusal among the lines: the first"
        );
        assert_eq!(forward_refusal::<&str>(&[]), "no reason given");
        assert!(is_ssh_own(
            "mux_confirm_remote_forward: remote port forwarding failed for listen port 0"
        ));
        assert!(!is_ssh_own("** (RuntimeError) mux_x: boom"));
        assert!(!is_ssh_own("erts_mmap: Failed to create super carrier"));
    }

    /// What [`each_line`] hands out of `bytes`.
    fn lines_of(bytes: &[u8]) -> Vec<String> {
        pieces_of(bytes).into_iter().map(|(line, _)| line).collect()
    }

    /// What [`each_line`] hands out of `bytes`, with whether each continues the one before.
    fn pieces_of(bytes: &[u8]) -> Vec<(String, bool)> {
        let mut pieces = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(each_line(bytes, |line, continued| {
            pieces.push((line, continued))
        }));
        pieces
    }

    #[test]
    fn a_line_is_held_up_to_its_cap_then_handed_out_in_pieces() {
        // A progress meter that never ends its line, then one of ours.
        let progress = "12%\r".repeat(50_000);
        let mut bytes = format!("{progress}\nmix-remote:done\n").into_bytes();
        let lines = lines_of(&bytes);
        assert_eq!(
            lines.len(),
            5,
            "{:?}",
            lines.iter().map(String::len).collect::<Vec<_>>()
        );
        assert!(lines[..3].iter().all(|piece| piece.len() == LINE_CAP));
        assert_eq!(lines[..4].concat() + "\r", progress);
        assert_eq!(lines[4], "mix-remote:done");
        // Ours may be longer, and are kept whole.
        let info = format!("{MARKER}{INFO}{}", "ab".repeat(200_000));
        assert_eq!(lines_of(format!("{info}\r\n").as_bytes()), [info]);
        // A character the cap cuts goes whole with the next piece; bytes that are not UTF-8 are
        // read lossily, and a last line without its newline is read too.
        bytes = vec![b'a'; LINE_CAP - 1];
        bytes.extend_from_slice(b"\xc3\xa9\n\xffend");
        let lines = lines_of(&bytes);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "a".repeat(LINE_CAP - 1));
        assert_eq!(lines[1], "é");
        assert_eq!(lines[2], "\u{fffd}end");
        // A piece that continues a long line is no line of ours, whatever it starts with.
        let long = format!("{}{MARKER}done\n{MARKER}done\n", "x".repeat(LINE_CAP));
        let continued: Vec<bool> = pieces_of(long.as_bytes()).iter().map(|p| p.1).collect();
        assert_eq!(continued, [false, true, false]);
    }

    #[test]
    fn reads_the_allocated_port_and_nothing_else() {
        // As OpenSSH 9 prints it for a forward to a Unix socket, and as older ones did.
        let line = "Allocated port 40959 for remote forward to /tmp/mix-remote-x/node.sock";
        assert_eq!(allocated_port(line), Some(40959));
        assert_eq!(
            allocated_port("Allocated port 2222 for remote forward to (null):0"),
            Some(2222)
        );
        assert_eq!(
            allocated_port("Allocated port 99999 for remote forward to x"),
            None
        );
        assert_eq!(
            allocated_port("[host] Allocated port 1 for remote forward"),
            None
        );
        assert_eq!(allocated_port("Allocated port 5 for something else"), None);
    }

    #[test]
    fn keeps_a_more_verbose_log_level_of_the_user() {
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(verbose_log_level(&opts(&["Port=22", "LogLevel=DEBUG3"])));
        assert!(verbose_log_level(&opts(&["loglevel verbose"])));
        assert!(!verbose_log_level(&opts(&["LogLevel=QUIET"])));
        assert!(!verbose_log_level(&opts(&["LogLevel=ERROR", "Port=22"])));
        assert!(!verbose_log_level(&[]));
    }

    #[test]
    fn what_a_config_file_printed_ahead_is_kept_while_it_is_under_way() {
        let mut evaluating = Evaluating::default();
        // Held bytes of no file under way, or not hex, are passed over.
        evaluating.said("held:6869");
        evaluating.said("config:config/config.exs");
        evaluating.said("held:6265");
        evaluating.said("held:not hex");
        evaluating.said("held:666f72650a");
        let under_way = std::mem::take(&mut evaluating).under_way();
        assert_eq!(
            under_way,
            Some(InConfig {
                file: "config/config.exs".to_owned(),
                printed: b"before\n".to_vec(),
            })
        );
        // A file done with leaves nothing; the next starts afresh.
        for marker in [
            "config:config/config.exs",
            "held:6869",
            "config:",
            "config:config/runtime.exs",
        ] {
            evaluating.said(marker);
        }
        assert_eq!(
            evaluating.under_way(),
            Some(InConfig {
                file: "config/runtime.exs".to_owned(),
                printed: Vec::new(),
            })
        );
    }
}
