//! How the ssh master is started: it dies with the tool, even when the tool is killed outright
//! (Linux's `PR_SET_PDEATHSIG`), and ignores the terminal's SIGINT (the tool decides what Ctrl-C
//! means). Both are set in the child before ssh runs. When this machine has util-linux's
//! `setpriv`, the child sets them itself (`setpriv --pdeathsig KILL`, then `sh`), so the tool
//! starts it with `posix_spawn` (a vfork), whatever its size; otherwise a `pre_exec` hook sets
//! them, and with one the standard library must fork, copying the page tables of the whole tool
//! for every host.

use std::ffi::OsString;
#[cfg(target_os = "linux")]
use std::sync::OnceLock;

use tokio::process::Command;

/// What `sh` runs between `setpriv` and ssh: SIGINT ignored (ssh keeps a SIGINT it inherits
/// ignored), then a check that the tool is still its parent (if it died before `setpriv` asked
/// for the signal, nobody would kill this master), then ssh itself. `$0` is the tool's pid.
#[cfg(target_os = "linux")]
const LAUNCH: &str = r#"trap '' INT; [ "$PPID" = "$0" ] || exit 125; exec "$@""#;

/// `program` with `args`, set up to die with the tool and to ignore SIGINT.
pub fn command(program: &str, args: &[OsString]) -> Command {
    #[cfg(target_os = "linux")]
    if has_setpriv() {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--", "/bin/sh", "-c", LAUNCH])
            .arg(std::process::id().to_string())
            .arg(program)
            .args(args);
        return cmd;
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    // A tool killed while the remote node is still booting leaves no master behind.
    crate::child::die_with_parent(&mut cmd);
    ignore_interrupts(&mut cmd);
    cmd
}

/// Whether `setpriv` is on the PATH and knows `--pdeathsig` (util-linux 2.33 and newer): tried
/// once per run.
#[cfg(target_os = "linux")]
fn has_setpriv() -> bool {
    static KNOWN: OnceLock<bool> = OnceLock::new();
    *KNOWN.get_or_init(|| {
        std::process::Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Has the master ignore SIGINT: a Ctrl-C on the terminal goes to the whole foreground process
/// group, and the tool decides what it means (`iex` interrupts the evaluation, `run` tears down).
/// OpenSSH keeps a SIGINT it inherits ignored, and stays in the foreground group, where it can
/// still ask the terminal for a passphrase or about a host key.
fn ignore_interrupts(cmd: &mut Command) {
    // SAFETY: between fork and exec the closure only makes the async-signal-safe call signal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::signal(libc::SIGINT, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn status_field(status: &str, name: &str) -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    #[test]
    fn the_child_ignores_sigint_and_is_ours() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = runtime
            .block_on(async {
                command("cat", &["/proc/self/status".into()])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
            })
            .unwrap();
        assert!(out.status.success());
        let status = String::from_utf8_lossy(&out.stdout);
        let ignored = u64::from_str_radix(&status_field(&status, "SigIgn"), 16).unwrap();
        assert_ne!(ignored & (1 << (libc::SIGINT - 1)), 0, "{status}");
        assert_eq!(
            status_field(&status, "PPid"),
            std::process::id().to_string()
        );
    }

    #[test]
    fn the_child_dies_with_the_thread_that_started_it() {
        let pid = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let child = runtime.block_on(async {
                command("sleep", &["60".into()])
                    .stdin(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            });
            let pid = child.id().unwrap();
            // Once `sleep` runs, the signal is asked for (with setpriv, it is asked for after
            // the spawn returns).
            let comm = format!("/proc/{pid}/comm");
            while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // Neither killed nor reaped here: the kernel must kill it once this thread ends.
            std::mem::forget(child);
            pid as libc::pid_t
        })
        .join()
        .unwrap();
        let mut status = 0;
        // SAFETY: waits for our own child by its pid, into a local.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFSIGNALED(status), "status {status}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    }
}
