//! `cargo xtask bench-output`: what output costs a run, beside what it costs without mix-remote.
//!
//! The demo fixture's `Demo.Ux.lines(N)` prints N numbered lines (about 50 bytes each). For every
//! round-trip time, cold `mix-remote run`s of it for each N are timed against the test harness's
//! private sshd, directly or through the delay proxy (as `cargo xtask bench` does), with stdout
//! to a file whose lines are checked. Beside them, on the same link, `ssh host 'elixir -e ...'`
//! printing the same lines (the link's own speed), and locally `mix run -e 'Demo.Ux.lines(N)'`
//! (no network at all). The samples of a round alternate so that the machine's load weighs on
//! all alike; the table shows medians, and the targets, where the cost of N lines is what they add
//! to the run's wall time, or to its call where that is more: at 50 ms RTT at most 2 s; at 0 ms at
//! most 1.5 times what they add to `mix run`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::Link;

/// Flags of `cargo xtask bench-output`.
#[derive(Debug, clap::Args)]
pub struct BenchOutputArgs {
    /// Line counts to measure (the smallest is the baseline of the added cost).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100_000])]
    pub lines: Vec<usize>,
    /// Round-trip times (ms) to add to the SSH link; 0 connects directly.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 50])]
    pub rtts: Vec<u64>,
    /// Cold runs per cell; the table shows medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measure this mix-remote binary instead of building the workspace's release binary.
    #[arg(long)]
    pub binary: Option<std::path::PathBuf>,
}

/// What is measured, each printing the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    /// A cold `mix-remote run`.
    MixRemote,
    /// `ssh host 'elixir -e ...'` on the same link.
    Ssh,
    /// `mix run -e` locally.
    MixRun,
}

/// Runs the benchmark and prints the table on stdout (progress on stderr).
pub fn run(args: &BenchOutputArgs, root: &Path) -> Result<(), String> {
    if args.runs == 0 || args.lines.is_empty() {
        return Err("--runs and --lines need at least one".into());
    }
    let binary = crate::measured_binary(args.binary.as_deref(), root, "bench-output")?;
    let project = testkit::compiled_fixture("demo");
    let out = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let sink = out.path().join("stdout");
    let sshd = crate::bench::server();
    let proxy = std::env::current_exe().map_err(|e| format!("cannot find xtask itself: {e}"))?;
    let mut cells: BTreeMap<(u64, Way, usize), Vec<Sample>> = BTreeMap::new();
    for &rtt in &args.rtts {
        let link = Link::new(&sshd, &proxy, rtt, None);
        for round in 1..=args.runs {
            eprintln!("bench-output: {rtt} ms, round {round} of {}", args.runs);
            for &n in &args.lines {
                let runs = [
                    (Way::MixRemote, mix_remote(&binary, &project, &link, n)),
                    (Way::Ssh, ssh(&link, n)),
                    (Way::MixRun, mix_run(&project, n)),
                ];
                for (way, mut command) in runs {
                    if way == Way::MixRun && rtt != args.rtts[0] {
                        continue;
                    }
                    let sample = timed(&mut command, &sink, n, way)?;
                    cells.entry((rtt, way, n)).or_default().push(sample);
                }
            }
        }
    }
    print_table(args, &cells);
    Ok(())
}

/// A cold `mix-remote -v run Demo.Ux.lines -- n` over `link`.
fn mix_remote(binary: &Path, project: &Path, link: &Link, n: usize) -> Command {
    let mut cmd = Command::new(binary);
    // The fixture is compiled once, by the harness: a run times the run alone.
    cmd.args([
        "-v",
        "run",
        "--no-compile",
        "Demo.Ux.lines",
        "--host",
        &link.host(),
    ])
    .args(link.ssh_args())
    .args(["--", &n.to_string()])
    .current_dir(project)
    .env_remove("MIX_ENV");
    cmd
}

/// `ssh host 'elixir -e ...'` printing the lines `Demo.Ux.lines(n)` prints, and `:ok`.
fn ssh(link: &Link, n: usize) -> Command {
    let code = format!(
        "for i <- 1..{n}, do: IO.puts(\"line #{{i}} of {n} ...........................\"); IO.puts(\":ok\")"
    );
    let mut cmd = Command::new("ssh");
    cmd.args(link.ssh_args())
        .arg(link.host())
        .arg(format!("elixir -e '{code}'"));
    cmd
}

/// `mix run -e` in the project, printing the lines and `:ok`.
fn mix_run(project: &Path, n: usize) -> Command {
    let mut cmd = Command::new("mix");
    cmd.args(["run", "-e", &format!("IO.inspect(Demo.Ux.lines({n}))")])
        .current_dir(project)
        .env_remove("MIX_ENV");
    cmd
}

/// One timed run.
struct Sample {
    wall: Duration,
    /// The `stats:` of mix-remote's `-v`: `call_ms`, `output_bytes`, `output_pieces`.
    stats: BTreeMap<String, u64>,
}

/// Runs `command` with stdout to `sink`; checks that it printed the `n` lines and `:ok`.
fn timed(command: &mut Command, sink: &Path, n: usize, way: Way) -> Result<Sample, String> {
    let file = std::fs::File::create(sink).map_err(|e| format!("{}: {e}", sink.display()))?;
    let started = Instant::now();
    let out = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let printed = std::fs::read_to_string(sink).map_err(|e| format!("{}: {e}", sink.display()))?;
    let lines: Vec<&str> = printed.lines().collect();
    let complete = lines.len() == n + 1
        && lines.last() == Some(&":ok")
        && lines[n - 1] == format!("line {n} of {n} ...........................");
    if !out.status.success() || !complete {
        return Err(format!(
            "{way:?} of {n} lines failed ({}, {} lines): {stderr}",
            out.status,
            lines.len()
        ));
    }
    Ok(Sample {
        wall,
        stats: crate::bench::stats(&stderr),
    })
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn print_table(args: &BenchOutputArgs, cells: &BTreeMap<(u64, Way, usize), Vec<Sample>>) {
    let wall = |rtt: u64, way: Way, n: usize| -> Option<u64> {
        let samples = cells.get(&(rtt, way, n))?;
        Some(median(
            samples.iter().map(|s| s.wall.as_millis() as u64).collect(),
        ))
    };
    let stat = |rtt: u64, n: usize, key: &str| -> String {
        cells
            .get(&(rtt, Way::MixRemote, n))
            .map(|s| median(s.iter().filter_map(|s| s.stats.get(key).copied()).collect()))
            .map_or_else(|| "-".into(), |v| v.to_string())
    };
    let base = args.lines.iter().copied().min().unwrap_or(1);
    let local = args.rtts[0];
    println!(
        "output of Demo.Ux.lines(N), median of {} runs (ms; loopback sshd; stdout to a file)",
        args.runs
    );
    println!(
        "{:>4} {:>7} {:>7} {:>7} {:>9} {:>6} {:>7} {:>7} {:>7} {:>8} {:>6}  target",
        "RTT", "N", "wall", "call", "out B", "pieces", "+wall", "ssh", "+ssh", "mix run", "+run"
    );
    for &rtt in &args.rtts {
        for &n in &args.lines {
            let Some(w) = wall(rtt, Way::MixRemote, n) else {
                continue;
            };
            let added = w.saturating_sub(wall(rtt, Way::MixRemote, base).unwrap_or(w));
            let ssh = wall(rtt, Way::Ssh, n).unwrap_or(0);
            let ssh_added = ssh.saturating_sub(wall(rtt, Way::Ssh, base).unwrap_or(ssh));
            let run = wall(local, Way::MixRun, n).unwrap_or(0);
            let run_added = run.saturating_sub(wall(local, Way::MixRun, base).unwrap_or(run));
            // What the lines cost: the added wall time, or the call's own added time where that
            // is more (the walls of cold runs vary by more than the lines cost).
            let call = |n| stat(rtt, n, "call_ms").parse::<u64>().unwrap_or(0);
            let cost = added.max(call(n).saturating_sub(call(base)));
            let target = if n == base {
                String::new()
            } else if rtt >= 50 {
                verdict(cost <= 2000, format!("cost {cost} <= 2000"))
            } else if rtt == 0 {
                let ratio = cost as f64 / run_added.max(1) as f64;
                verdict(ratio <= 1.5, format!("cost/+run {ratio:.2} <= 1.5"))
            } else {
                String::new()
            };
            println!(
                "{rtt:>4} {n:>7} {w:>7} {:>7} {:>9} {:>6} {added:>7} {ssh:>7} {ssh_added:>7} {run:>8} {run_added:>6}  {target}",
                stat(rtt, n, "call_ms"),
                stat(rtt, n, "output_bytes"),
                stat(rtt, n, "output_pieces"),
            );
        }
    }
    println!(
        "+wall, +ssh, +run: what N lines add to the same command printing {base}; mix run is local (no network)"
    );
}

fn verdict(met: bool, text: String) -> String {
    format!("{} {text}", if met { "met:" } else { "MISSED:" })
}
