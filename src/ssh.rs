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

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How many lines of the session's stderr are kept to explain a failure.
const STDERR_TAIL: usize = 8;
/// How ssh reports the port the server allocated for a `-R 127.0.0.1:0:...` forward.
const ALLOCATED: &str = "Allocated port ";
/// How long an ended session's last stderr lines may take to be read, after ssh has exited.
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
}

/// Why the SSH side failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The `ssh` program could not be started.
    #[error("cannot run ssh: {0}")]
    Spawn(std::io::Error),
    /// The connection or login failed; the text is what ssh said.
    #[error("ssh to {host} failed: {said}")]
    Connect {
        /// The host at fault.
        host: String,
        /// ssh's own explanation (its last stderr line).
        said: String,
    },
    /// The session ended before it reached the expected point.
    #[error("{what} on {host} ended early{}", explain(.said))]
    Ended {
        /// What was running (e.g. "the remote node").
        what: &'static str,
        /// The host.
        host: String,
        /// The session's last stderr lines, if any.
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
    /// `ssh -O forward` was refused.
    #[error(
        "port forwarding to {host} was refused ({said}): the server needs AllowTcpForwarding yes"
    )]
    Forward {
        /// The host.
        host: String,
        /// What ssh said.
        said: String,
    },
    /// Writing to the session failed.
    #[error("the SSH session to {0} closed")]
    Closed(String),
}

fn explain(said: &str) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    }
}

/// The running master connection and its boot session.
pub struct Master {
    child: Child,
    stdin: Option<ChildStdin>,
    control: PathBuf,
    target: Target,
    markers: mpsc::UnboundedReceiver<String>,
    allocated: mpsc::UnboundedReceiver<u16>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// The task reading stderr: ssh's explanation may still be in the pipe when ssh has exited.
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
}

/// Lines the boot session prints for us start with this; everything else is the node's output.
pub const MARKER: &str = "mix-remote:";

impl Master {
    /// Connects to `target`, running `remote_command` as the master's session, with a reverse
    /// forward, if `forward` names a local Unix socket, from a port the server allocates on its
    /// 127.0.0.1 to that socket ([`Master::forwarded_port`] tells which): requested with the
    /// connection, it costs no round trip of its own. Lines the session prints that are not ours
    /// (the node's own stdout and stderr) go to `output`.
    pub fn start(
        target: &Target,
        control: &Path,
        forward: Option<&Path>,
        remote_command: &str,
        output: impl Fn(&str) + Send + Sync + 'static,
        log: impl Fn(String),
    ) -> Result<Master, SshError> {
        let mut cmd = Command::new("ssh");
        cmd.args(["-M", "-S"])
            .arg(control)
            .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no"])
            .args(["-o", "ExitOnForwardFailure=yes", "-T"]);
        if let Some(socket) = forward {
            cmd.arg("-R")
                .arg(format!("127.0.0.1:0:{}", socket.display()));
            // ssh keeps the first value it is given: ours, unless the user asked for more detail.
            if !verbose_log_level(&target.options) {
                cmd.args(["-o", "LogLevel=INFO"]);
            }
        }
        add_target_options(&mut cmd, target);
        cmd.arg("--").arg(&target.host).arg(remote_command);
        log(format!("ssh: {}", describe(&cmd)));
        let mut child = cmd
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
        let (port_tx, allocated) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            let output = Arc::clone(&output);
            tokio::spawn(each_line(stdout, move |line| {
                match line.strip_prefix(MARKER) {
                    Some(marker) => drop(tx.send(marker.to_owned())),
                    None => output(&line),
                }
            }));
        }
        let mut stderr_reader = None;
        if let Some(err) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            stderr_reader = Some(tokio::spawn(each_line(err, move |line| {
                if let Some(port) = allocated_port(&line) {
                    let _ = port_tx.send(port);
                    return;
                }
                output(&line);
                let mut tail = tail.lock().expect("stderr lock poisoned");
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            })));
        }
        Ok(Master {
            child,
            stdin,
            control: control.to_owned(),
            target: target.clone(),
            markers,
            allocated,
            stderr,
            stderr_reader,
        })
    }

    /// The server port of the reverse forward, once the server has allocated it; if the
    /// connection fails first, the error says why.
    pub async fn forwarded_port(&mut self) -> Result<u16, SshError> {
        match self.allocated.recv().await {
            Some(port) => Ok(port),
            None => Err(self.ended("the SSH connection").await),
        }
    }

    /// Waits until the boot session prints `mix-remote:<marker>`; if the session ends first, the
    /// error says why.
    pub async fn wait_for(&mut self, marker: &str, what: &'static str) -> Result<(), SshError> {
        while let Some(line) = self.markers.recv().await {
            if line == marker {
                return Ok(());
            }
            if let Some(elixir) = line.strip_prefix("no-elixir ") {
                return Err(SshError::NoElixir {
                    host: self.target.host.clone(),
                    elixir: elixir.to_owned(),
                });
            }
        }
        Err(self.ended(what).await)
    }

    /// Resolves when the session ends (it should not, while a run is going on), with the reason
    /// taken from ssh's exit status and the session's stderr. `what` names what was running.
    pub async fn failure(&mut self, what: &'static str) -> SshError {
        while self.markers.recv().await.is_some() {}
        self.ended(what).await
    }

    async fn ended(&mut self, what: &'static str) -> SshError {
        let status = self.child.wait().await.ok().and_then(|s| s.code());
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(STDERR_DRAIN, reader).await;
        }
        let tail = self.stderr.lock().expect("stderr lock poisoned").clone();
        let host = self.target.host.clone();
        if status == Some(255) {
            let said = tail
                .back()
                .cloned()
                .unwrap_or_else(|| "no explanation".into());
            if said.contains("remote port forwarding failed") {
                return SshError::Forward { host, said };
            }
            SshError::Connect { host, said }
        } else {
            let said = tail.into_iter().collect::<Vec<_>>().join(" | ");
            SshError::Ended { what, host, said }
        }
    }

    /// Adds remote forwards `127.0.0.1:<allocated> -> local Unix socket` to a running master
    /// (what `check` asks, to tell a refused forward from the rest), one per path, and
    /// returns the ports the server allocated, in the same order.
    pub async fn forward_remote(&self, sockets: &[&Path]) -> Result<Vec<u16>, SshError> {
        let mut cmd = self.control_command("forward");
        for socket in sockets {
            cmd.arg("-R")
                .arg(format!("127.0.0.1:0:{}", socket.display()));
        }
        let out = self
            .run_control(cmd)
            .await
            .map_err(|said| SshError::Forward {
                host: self.target.host.clone(),
                said,
            })?;
        let ports: Vec<u16> = out
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if ports.len() != sockets.len() {
            return Err(SshError::Forward {
                host: self.target.host.clone(),
                said: format!(
                    "expected {} allocated ports, got `{}`",
                    sockets.len(),
                    out.trim()
                ),
            });
        }
        Ok(ports)
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
    /// ends the session and so the master. If that takes longer than `grace`, the master is told
    /// to exit, and killed as a last resort.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stdin.take();
        if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
            return;
        }
        let _ = self.run_control(self.control_command("exit")).await;
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    fn control_command(&self, op: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-S").arg(&self.control).args(["-O", op]);
        add_target_options(&mut cmd, &self.target);
        cmd
    }

    /// Runs an `ssh -O` request; its stdout on success, what it said on failure.
    async fn run_control(&self, mut cmd: Command) -> Result<String, String> {
        cmd.arg("--").arg(&self.target.host);
        let out = cmd
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            // One line: ssh may repeat itself over several.
            let mut lines: Vec<&str> = Vec::new();
            let text = String::from_utf8_lossy(&out.stderr);
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if !lines.contains(&line) {
                    lines.push(line);
                }
            }
            Err(lines.join(" | "))
        }
    }
}

/// Calls `each` with every line of `pipe`, decoding bytes that are not UTF-8 lossily: a stray
/// Latin-1 byte from a login script or a remote program must not stop the reading.
async fn each_line(pipe: impl AsyncRead + Unpin, mut each: impl FnMut(String)) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                each(text.trim_end_matches(['\n', '\r']).to_owned());
            }
        }
    }
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

fn add_target_options(cmd: &mut Command, target: &Target) {
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
}
