//! Requests to a running SSH master through its control socket (`ssh -S SOCKET -O ...`): the
//! reverse forwards a run's master, `check` through a warm session's master, and a warm
//! session's spares ask of it, and withdraw. One place for them: the master finds a forward to
//! withdraw by what was asked for, not by the port the server allocated.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::{SshError, Target, add_target_options, forward_refusal};

/// A running master, reached through its control socket.
#[derive(Debug, Clone, Copy)]
pub struct Control<'a> {
    socket: &'a Path,
    target: &'a Target,
}

impl<'a> Control<'a> {
    /// The master listening on `socket`, connected to `target`.
    pub fn new(socket: &'a Path, target: &'a Target) -> Control<'a> {
        Control { socket, target }
    }

    /// Adds remote forwards `127.0.0.1:<port> -> local Unix socket` to the master (what `check`
    /// asks, to tell a refused forward from the rest, and a warm session's spare), one per socket
    /// and port (0: one the server allocates), and returns the ports they listen on, in the same
    /// order.
    pub async fn forward_remote(&self, forwards: &[(&Path, u16)]) -> Result<Vec<u16>, SshError> {
        let mut cmd = self.control_command("forward");
        for (socket, port) in forwards {
            cmd.arg("-R")
                .arg(format!("127.0.0.1:{port}:{}", socket.display()));
        }
        let out = self
            .run_control(cmd)
            .await
            .map_err(|said| SshError::Forward {
                host: self.target.host.clone(),
                said: forward_refusal(&said),
            })?;
        // ssh prints the port of each forward the server allocated, and nothing for the others.
        let mut allocated = out.split_whitespace().filter_map(|w| w.parse::<u16>().ok());
        let ports: Option<Vec<u16>> = forwards
            .iter()
            .map(|&(_, port)| {
                if port == 0 {
                    allocated.next()
                } else {
                    Some(port)
                }
            })
            .collect();
        match ports {
            Some(ports) if allocated.next().is_none() => Ok(ports),
            _ => Err(SshError::Forward {
                host: self.target.host.clone(),
                said: format!(
                    "expected {} allocated ports, got `{}`",
                    forwards.iter().filter(|&&(_, port)| port == 0).count(),
                    out.trim()
                ),
            }),
        }
    }

    /// Withdraws the remote forwards [`Control::forward_remote`] added, from a master that
    /// outlives this session (see `Master::through`); `forwards` as they were asked for (port
    /// 0 for one the server allocated: the master finds a forward by what was asked, and one
    /// named by its allocated port is not found, while ssh still exits 0); on failure, what ssh
    /// said, on one line.
    pub async fn cancel_remote(&self, forwards: &[(&Path, u16)]) -> Result<(), String> {
        let mut cmd = self.control_command("cancel");
        for (socket, port) in forwards {
            cmd.arg("-R")
                .arg(format!("127.0.0.1:{port}:{}", socket.display()));
        }
        self.run_control(cmd)
            .await
            .map(drop)
            .map_err(|said| said.join(" | "))
    }

    /// `ssh -S <socket> -O <op>` with the target's options.
    fn control_command(&self, op: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-S").arg(self.socket).args(["-O", op]);
        add_target_options(&mut cmd, self.target);
        cmd
    }

    /// Runs an `ssh -O` request; its stdout on success, what it said on failure (its lines
    /// apart: see [`said_lines`]).
    async fn run_control(&self, mut cmd: Command) -> Result<String, Vec<String>> {
        cmd.arg("--").arg(&self.target.host);
        let out = cmd
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| vec![format!("cannot run ssh: {e}")])?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(said_lines(&out.stderr))
        }
    }
}

/// The lines of what an `ssh -O` request printed on its stderr, trimmed, each once: ssh may
/// repeat itself over several (`mux_client_forward: forwarding request failed: ...` once per
/// forward, then `muxclient: master forward request failed`).
fn said_lines(stderr: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let text = String::from_utf8_lossy(stderr);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !lines.iter().any(|l| l == line) {
            lines.push(line.to_owned());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_forward_is_told_by_its_own_line_of_what_ssh_said() {
        // What `ssh -O forward` writes on its stderr when the server refuses (OpenSSH 9.2, two
        // forwards asked for): lines ended with "\r\n", the refusal once per forward.
        let stderr = b"mux_client_forward: forwarding request failed: remote port forwarding failed for listen port 0\r\n\
            mux_client_forward: forwarding request failed: remote port forwarding failed for listen port 0\r\n\
            muxclient: master forward request failed\r\n";
        let said = said_lines(stderr);
        assert_eq!(
            said,
            [
                "mux_client_forward: forwarding request failed: remote port forwarding failed for listen port 0",
                "muxclient: master forward request failed"
            ]
        );
        assert_eq!(
            forward_refusal(&said),
            "remote port forwarding failed for listen port 0"
        );
        assert!(said_lines(b"\r\n  \n").is_empty());
    }
}
