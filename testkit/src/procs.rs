//! Looking at and ending processes through `/proc` and the `kill` command,
//! plus a helper to run a command quietly.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::{Command, Output, Stdio};

/// One process seen by the harness: its pid and its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// `/proc/PID/cmdline` with the NUL separators turned into spaces.
    pub cmdline: String,
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.pid, self.cmdline)
    }
}

/// Every pid currently listed in `/proc`.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The command line of `pid`, NUL separators as spaces (empty for zombies
/// and kernel threads), or None if the process is gone.
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    Some(text.trim_end().to_string())
}

/// `(state, ppid)` of `pid` from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may contain anything: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True if `pid` exists and is not a zombie (a zombie is dead, only not yet reaped).
pub(crate) fn is_alive(pid: u32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// A [`Proc`] for `pid` if it is alive.
pub(crate) fn proc_of(pid: u32) -> Option<Proc> {
    if !is_alive(pid) {
        return None;
    }
    Some(Proc {
        pid,
        cmdline: cmdline(pid)?,
    })
}

/// Living processes whose environment holds exactly `entry` (`NAME=value`).
pub(crate) fn with_env_entry(entry: &str) -> Vec<Proc> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|e| e == entry.as_bytes()))
                .unwrap_or(false)
        })
        .filter_map(proc_of)
        .collect()
}

/// All descendants of `root` (children, grandchildren, ...), not `root` itself.
pub(crate) fn descendants(root: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for pid in all_pids() {
        if let Some((_, ppid)) = stat(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c) {
                todo.push(c);
            }
        }
    }
    seen.into_iter().collect()
}

/// Sends `signal` (e.g. `KILL`, `STOP`) to every pid; errors (already gone) are ignored.
pub(crate) fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `cmd` with its output captured; Err (naming `cmd` and quoting its
/// output) unless it exits successfully.
pub(crate) fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = run_unchecked(cmd)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            output_text(&out)
        ))
    }
}

/// Runs `cmd` with its output captured, whatever its exit status; Err only if
/// it could not be started.
pub(crate) fn run_unchecked(cmd: &mut Command) -> Result<Output, String> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))
}

/// stdout and stderr of a finished command as one trimmed text.
pub(crate) fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.trim().to_string()
}
