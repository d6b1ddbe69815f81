//! Running a command to completion under a time limit, its output collected.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a finished command left: exit code (None if killed by a signal), stdout, stderr.
#[derive(Debug)]
pub struct Finished {
    /// The exit code.
    pub code: Option<i32>,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
}

/// Kills the child when dropped, so a panicking test cannot leave it running.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs `cmd` with stdin closed and stdout/stderr captured; panics (after killing it) if it runs
/// longer than `limit`.
pub fn run_within(mut cmd: Command, limit: Duration) -> Finished {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("testkit: cannot start {cmd:?}: {e}"));
    finish_within(child, limit)
}

/// Waits for a child the caller started (with whatever of stdout/stderr it has not taken still
/// piped) and collects its output; kills it and panics if it runs longer than `limit`, and kills
/// it if the caller panics meanwhile.
fn finish_within(mut child: Child, limit: Duration) -> Finished {
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let mut child = KillOnDrop(child);
    let what = format!("child {}", child.0.id());
    let status = wait_within(&mut child.0, limit, &what);
    let text = |pipe: JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&pipe.join().expect("pipe reader")).into_owned()
    };
    Finished {
        code: status.code(),
        stdout: text(out),
        stderr: text(err),
    }
}

/// Waits for `child`; past `limit`, kills and reaps it and panics naming it as `what`.
pub(crate) fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    wait_until(child, limit)
        .unwrap_or_else(|| panic!("testkit: {what} did not finish within {limit:?}"))
}

/// Waits for `child`; past `limit`, kills and reaps it and returns `None`.
pub(crate) fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("testkit: wait for child") {
            return Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a pipe to its end on a thread (nothing if there is no pipe).
pub(crate) fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
