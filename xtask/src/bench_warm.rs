//! The warm rows of `cargo xtask bench --warm`: reruns through a warm session (`mix-remote up`)
//! on the same link as the cold runs, beside the same floor. `up` once per project; then, in
//! turn, a rerun of the same code and a rerun after one module changed (recompiled before the
//! timed run, outside it). Each rerun starts a second after the session's spare node is ready, as
//! it is when a person reruns after reading the previous result.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{Link, median, stats};
use crate::project;

/// How long a spare node may take to be ready.
const SPARE_LIMIT: Duration = Duration::from_secs(60);
/// The pause before a rerun once the spare is ready: the previous run's node, on this same
/// machine, has finished halting, as it has on a server of its own by the time a person reruns.
const PAUSE: Duration = Duration::from_secs(1);

/// Medians of the warm reruns of one project.
pub(crate) struct Warm {
    /// Wall time of a rerun of the same code.
    pub(crate) same: Duration,
    /// Wall time of a rerun after one module changed.
    pub(crate) changed: Duration,
    /// Bytes pushed by the same-code rerun, and by the changed one.
    pub(crate) pushed: (u64, u64),
}

/// Times `runs` warm reruns of each kind of the `n`-module project in `dir`.
pub(crate) fn measure(
    link: &Link,
    binary: &Path,
    dir: &Path,
    n: usize,
    runs: usize,
    env: &[(String, String)],
) -> Result<Warm, String> {
    let runtime = tempfile::Builder::new()
        .prefix("mix-remote-bench-xdg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let tool = |args: &[&str]| {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .current_dir(dir)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("MIX_ENV")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    };
    let host = link.host();
    session_up(&tool, &host, link)?;
    let result = (|| {
        let (mut same, mut changed) = (Vec::new(), Vec::new());
        let mut pushed = (Vec::new(), Vec::new());
        let mut phases = (Vec::new(), Vec::new());
        for round in 1..=runs {
            let (took, stats) = rerun(&tool, link, n)?;
            same.push(took);
            pushed
                .0
                .push(stats.get("pushed_bytes").copied().unwrap_or(0));
            phases.0.push(stats);
            change(dir, n, round)?;
            let (took, stats) = rerun(&tool, link, n)?;
            changed.push(took);
            pushed
                .1
                .push(stats.get("pushed_bytes").copied().unwrap_or(0));
            phases.1.push(stats);
        }
        let mid = |mut v: Vec<u64>| {
            v.sort_unstable();
            v[v.len() / 2]
        };
        for (kind, walls, stats) in [("same", &same, &phases.0), ("changed", &changed, &phases.1)] {
            let mut walls: Vec<u128> = walls.iter().map(Duration::as_millis).collect();
            walls.sort_unstable();
            let medians: Vec<String> = PHASES
                .iter()
                .map(|key| {
                    let values: Vec<u64> =
                        stats.iter().filter_map(|s| s.get(*key).copied()).collect();
                    match values.is_empty() {
                        true => format!("{key}=-"),
                        false => format!("{key}={}", mid(values)),
                    }
                })
                .collect();
            eprintln!(
                "bench: warm {kind} code, {n} modules: walls {walls:?} ms; median {}",
                medians.join(" ")
            );
        }
        Ok(Warm {
            same: median(same),
            changed: median(changed),
            pushed: (mid(pushed.0), mid(pushed.1)),
        })
    })();
    let _ = tool(&["down", "--all"]).output();
    result
}

/// The `stats:` keys shown per warm rerun kind on stderr (medians).
const PHASES: [&str; 9] = [
    "scan_ms",
    "wire_ms",
    "wire_wait_ms",
    "connect_ms",
    "boot_ms",
    "push_ms",
    "call_ms",
    "teardown_ms",
    "requests",
];

/// One warm rerun, once the spare is ready: its wall time and its `stats:` line.
fn rerun(
    tool: &dyn Fn(&[&str]) -> Command,
    link: &Link,
    n: usize,
) -> Result<(Duration, BTreeMap<String, u64>), String> {
    spare_ready(tool)?;
    let host = link.host();
    let started = Instant::now();
    let out = tool(&["-v", "run", "--no-compile", project::ENTRY, "--host", &host])
        .args(link.ssh_args())
        .output()
        .map_err(|e| format!("cannot run the tool: {e}"))?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        || stdout.trim() != n.to_string()
        || !stderr.contains("warm session of")
    {
        return Err(format!(
            "the warm rerun of {n} modules failed ({}): {stdout}{stderr}",
            out.status
        ));
    }
    Ok((wall, stats(&stderr)))
}

/// Starts the warm session of `host` over `link` with `tool` (`up`), which returns once its
/// first spare node is ready.
pub(crate) fn session_up(
    tool: &dyn Fn(&[&str]) -> Command,
    host: &str,
    link: &Link,
) -> Result<(), String> {
    let up = tool(&["up", "--host", host])
        .args(link.ssh_args())
        .output()
        .map_err(|e| format!("cannot run the tool: {e}"))?;
    match up.status.success() {
        true => Ok(()),
        false => Err(format!(
            "up failed: {}",
            String::from_utf8_lossy(&up.stderr)
        )),
    }
}

/// Returns once the session `tool` reaches has its spare node ready, and [`PAUSE`] more.
pub(crate) fn spare_ready(tool: &dyn Fn(&[&str]) -> Command) -> Result<(), String> {
    let deadline = Instant::now() + SPARE_LIMIT;
    loop {
        let out = tool(&["status", "--json"])
            .output()
            .map_err(|e| format!("cannot run status: {e}"))?;
        if String::from_utf8_lossy(&out.stdout).contains("\"spare\":\"ready\"") {
            break;
        }
        if Instant::now() > deadline {
            return Err("the session's spare node did not get ready".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(PAUSE);
    Ok(())
}

/// Changes the last module of the project (a function returning `round`) and recompiles it.
fn change(dir: &Path, n: usize, round: usize) -> Result<(), String> {
    let file = dir.join("lib").join(format!("m{}.ex", n - 1));
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let body = text
        .trim_end()
        .strip_suffix("end")
        .unwrap_or(&text)
        .trim_end();
    let body = body.split("\n  def bench_round").next().unwrap_or(body);
    let changed = format!("{body}\n  def bench_round, do: {round}\nend\n");
    std::fs::write(&file, changed).map_err(|e| format!("{}: {e}", file.display()))?;
    project::compile(dir, n)
}
