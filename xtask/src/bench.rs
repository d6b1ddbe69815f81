//! `cargo xtask bench`: cold runs over a slowed link, split by phase, beside the floor.
//!
//! For every size N it generates and compiles a Mix project whose entry closure is N modules,
//! starts the test harness's private sshd on loopback, and times cold `mix-remote run`s of the
//! release binary, directly and through the delay proxy (`cargo xtask delay-proxy`, as ssh's
//! ProxyCommand). The phases, the requests after connect and the bytes pushed come from the
//! `stats:` line the binary prints with `-v`. The floor is what any tool pays on the same link:
//! an SSH connection that runs a command (`ssh host true`) and the boot of a bare remote
//! `elixir -e nil` (measured as `ssh host 'elixir -e nil'` minus `ssh host true`), sampled in
//! turn with the cold runs so that the machine's load weighs on both alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bench_warm, project};

/// Flags of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Closure sizes (modules) to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 200, 2000])]
    pub sizes: Vec<usize>,
    /// Round-trip times (ms) to add to the SSH link; 0 connects directly.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 50])]
    pub rtts: Vec<u64>,
    /// Link bandwidth in megabits per second for the delayed runs (unlimited if absent).
    #[arg(long)]
    pub mbit: Option<f64>,
    /// Cold runs per cell; the table shows medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measure this mix-remote binary instead of building the workspace's release binary.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Also measure this mix-remote binary, side by side: each round runs both binaries, in turns
    /// (A then B, then B then A), beside the same floor samples. Rows are marked A (the measured
    /// binary) and B (this one), with the range (fastest-slowest run) of the wall and boot times.
    #[arg(long, value_name = "BINARY")]
    pub versus: Option<PathBuf>,
    /// Generate the projects in DIR and keep them (compiled again only if their source changed),
    /// instead of in a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub projects: Option<PathBuf>,
    /// Extra `ssh -o` option for every measured command, e.g. Compression=yes (repeatable).
    #[arg(long = "ssh-option", value_name = "OPTION")]
    pub ssh_options: Vec<String>,
    /// Extra environment for the measured runs, as NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub envs: Vec<String>,
    /// Also time warm reruns through `mix-remote up` (same code, one module changed).
    #[arg(long)]
    pub warm: bool,
}

/// The phases the binary reports, in order, as named in its `stats:` line. Beside them the table
/// shows `scan` (reading `_build` and planning, before connecting), `wire` (preparing the batch,
/// alongside the connection) and `w.wait`, how long the run waited for the batch after the
/// handshake: 0 when its preparation is off the critical path.
const PHASES: [&str; 6] = ["connect", "tunnels", "boot", "push", "call", "teardown"];

/// The benchmarks' server: a testkit sshd whose sessions are as a systemd login makes them on
/// most servers (`XDG_RUNTIME_DIR` in memory, no `TMPDIR`), not as the tests' (a `TMPDIR` on
/// disk, to find what a run leaves).
pub fn server() -> testkit::Sshd {
    testkit::Sshd::builder().login_runtime_dir().start()
}

/// Runs the benchmark and prints the table on stdout (progress on stderr).
pub fn run(args: &BenchArgs, root: &Path) -> Result<(), String> {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let binary = crate::measured_binary(args.binary.as_deref(), root, "bench")?;
    let mut binaries = vec![("A", binary.clone())];
    if let Some(versus) = &args.versus {
        let versus = versus
            .canonicalize()
            .map_err(|e| format!("--versus {}: {e}", versus.display()))?;
        binaries.push(("B", versus));
    }
    let env = parse_envs(&args.envs)?;
    let work = tempfile::Builder::new()
        .prefix("mix-remote-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let dir = args.projects.as_deref().unwrap_or(work.path());
    let mut projects = Vec::new();
    for &n in &args.sizes {
        eprintln!("bench: generating and compiling the {n}-module project");
        projects.push((n, project::generate(dir, n)?));
    }
    let sshd = server();
    let proxy = std::env::current_exe().map_err(|e| format!("cannot find xtask itself: {e}"))?;
    let mut rows = Vec::new();
    let mut warm_rows = Vec::new();
    for &rtt in &args.rtts {
        let mut link = Link::new(&sshd, &proxy, rtt, args.mbit);
        link.options.extend(args.ssh_options.iter().cloned());
        // Floor samples and cold runs alternate, so that a change in the machine's load weighs
        // on both alike.
        let (mut ssh_true, mut ssh_elixir) = (Vec::new(), Vec::new());
        let cells = binaries.len() * projects.len();
        let mut samples: Vec<Vec<Sample>> = (0..cells).map(|_| Vec::new()).collect();
        for run in 1..=args.runs {
            eprintln!("bench: {rtt} ms, round {run} of {}", args.runs);
            ssh_true.push(link.time_ssh("true")?);
            ssh_elixir.push(link.time_ssh("elixir -e nil")?);
            let mut turns: Vec<usize> = (0..binaries.len()).collect();
            if run % 2 == 0 {
                turns.reverse();
            }
            for b in turns {
                for (p, (n, dir)) in projects.iter().enumerate() {
                    let sample = link.cold_run(&binaries[b].1, dir, *n, &env)?;
                    samples[b * projects.len() + p].push(sample);
                }
            }
        }
        let ssh_true = median(ssh_true);
        let floor = Floor {
            ssh: ssh_true,
            boot: median(ssh_elixir.clone()).saturating_sub(ssh_true),
        };
        let mut samples = samples.into_iter();
        for (bin, _) in &binaries {
            for (n, _) in &projects {
                let cell = samples.next().expect("a cell per binary and project");
                let walls: Vec<Duration> = cell.iter().map(|s| s.wall).collect();
                let paired = Paired::of(&walls, &ssh_elixir);
                rows.push(Row::median_of(bin, *n, rtt, floor, paired, cell));
            }
        }
        if args.warm {
            for (n, dir) in &projects {
                eprintln!("bench: {rtt} ms, warm reruns of {n} modules");
                let warm = bench_warm::measure(&link, &binary, dir, *n, args.runs, &env)?;
                warm_rows.push((*n, rtt, floor, warm));
            }
        }
    }
    print_table(&rows, args);
    if args.warm {
        print_warm_table(&warm_rows, args);
    }
    Ok(())
}

fn print_warm_table(rows: &[(usize, u64, Floor, bench_warm::Warm)], args: &BenchArgs) {
    println!(
        "\nmix-remote warm reruns (after `mix-remote up`, spare node ready), median of {} (ms)",
        args.runs
    );
    println!(
        "{:>5} {:>4} {:>6} {:>6} {:>9} {:>8} {:>9} {:>6} {:>6} {:>6}",
        "N", "RTT", "same", "x", "pushed B", "changed", "pushed B", "x", "floor", "ssh"
    );
    for (n, rtt, floor, warm) in rows {
        let ratio = |d: Duration| d.as_secs_f64() / floor.total().as_secs_f64();
        println!(
            "{:>5} {:>4} {:>6} {:>6.2} {:>9} {:>8} {:>9} {:>6.2} {:>6} {:>6}",
            n,
            rtt,
            warm.same.as_millis(),
            ratio(warm.same),
            warm.pushed.0,
            warm.changed.as_millis(),
            warm.pushed.1,
            ratio(warm.changed),
            floor.total().as_millis(),
            floor.ssh.as_millis()
        );
    }
}

/// `--env NAME=VALUE` flags as pairs.
pub(crate) fn parse_envs(envs: &[String]) -> Result<Vec<(String, String)>, String> {
    envs.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(format!("--env {kv}: expected NAME=VALUE")),
        })
        .collect()
}

/// How the measured commands reach the sshd: directly, or through the delay proxy.
pub(crate) struct Link<'a> {
    pub(crate) sshd: &'a testkit::Sshd,
    options: Vec<String>,
}

impl<'a> Link<'a> {
    /// The link to `sshd` with `rtt` ms added (and a bandwidth) by the delay proxy `proxy`.
    pub(crate) fn new(
        sshd: &'a testkit::Sshd,
        proxy: &Path,
        rtt: u64,
        mbit: Option<f64>,
    ) -> Link<'a> {
        let mut options = Vec::new();
        if rtt > 0 || mbit.is_some() {
            let rate = mbit.map(|m| format!(" --mbit {m}")).unwrap_or_default();
            options.push(format!(
                "ProxyCommand={} delay-proxy --rtt-ms {rtt}{rate} %h %p",
                proxy.display()
            ));
        }
        Link { sshd, options }
    }

    /// The ssh destination.
    pub(crate) fn host(&self) -> String {
        self.sshd.host()
    }

    /// `-F config -o option...`, for ssh and for mix-remote alike.
    pub(crate) fn ssh_args(&self) -> Vec<String> {
        let mut args = vec![
            "-F".to_owned(),
            self.sshd.ssh_config().display().to_string(),
        ];
        for option in &self.options {
            args.push("-o".into());
            args.push(option.clone());
        }
        args
    }

    /// Wall time of `ssh host command`.
    pub(crate) fn time_ssh(&self, command: &str) -> Result<Duration, String> {
        let started = Instant::now();
        let out = Command::new("ssh")
            .args(self.ssh_args())
            .arg(self.sshd.host())
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        let took = started.elapsed();
        if !out.status.success() {
            return Err(format!(
                "ssh {command} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(took)
    }

    /// One cold run of the entry of the `n`-module project in `dir`.
    fn cold_run(
        &self,
        binary: &Path,
        dir: &Path,
        n: usize,
        env: &[(String, String)],
    ) -> Result<Sample, String> {
        let started = Instant::now();
        let out = Command::new(binary)
            // The project is compiled once, before the runs: a run times the run alone.
            .args(["-v", "run", "--no-compile", project::ENTRY])
            .args(["--host", &self.sshd.host()])
            .args(self.ssh_args())
            .current_dir(dir)
            .env_remove("MIX_ENV")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let wall = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stdout.trim() != n.to_string() {
            return Err(format!(
                "the run of {n} modules failed ({}): {stdout}{stderr}",
                out.status
            ));
        }
        Ok(Sample {
            wall,
            stats: stats(&stderr),
        })
    }
}

/// The `key=value` pairs of the binary's `stats:` line (empty for a binary without one).
pub(crate) fn stats(stderr: &str) -> BTreeMap<String, u64> {
    stderr
        .lines()
        .filter_map(|line| line.split_once("stats: ").map(|(_, rest)| rest))
        .flat_map(|rest| rest.split_whitespace())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// What `ssh host true` and a bare remote `elixir -e nil` cost on a link.
#[derive(Clone, Copy)]
pub(crate) struct Floor {
    ssh: Duration,
    boot: Duration,
}

impl Floor {
    fn total(&self) -> Duration {
        self.ssh + self.boot
    }
}

/// One cold run.
struct Sample {
    wall: Duration,
    stats: BTreeMap<String, u64>,
}

/// One line of the table: medians over the runs of a cell.
struct Row {
    /// Which binary (`A`, or `B` for `--versus`).
    bin: &'static str,
    n: usize,
    rtt: u64,
    floor: Floor,
    wall: Duration,
    /// Each round's run against that round's floor.
    paired: Paired,
    stats: BTreeMap<String, u64>,
    /// The fastest and slowest run's wall time, and boot phase (ms).
    spread: [(u64, u64); 2],
}

impl Row {
    fn median_of(
        bin: &'static str,
        n: usize,
        rtt: u64,
        floor: Floor,
        paired: Paired,
        mut samples: Vec<Sample>,
    ) -> Row {
        samples.sort_by_key(|s| s.wall);
        let wall = samples[samples.len() / 2].wall;
        let ms = |s: &Sample| s.wall.as_millis() as u64;
        let boots: Vec<u64> = samples
            .iter()
            .filter_map(|s| s.stats.get("boot_ms").copied())
            .collect();
        let spread = [
            (ms(&samples[0]), ms(&samples[samples.len() - 1])),
            (
                boots.iter().copied().min().unwrap_or(0),
                boots.iter().copied().max().unwrap_or(0),
            ),
        ];
        let keys: Vec<String> = samples
            .iter()
            .flat_map(|s| s.stats.keys().cloned())
            .collect();
        let stats = keys
            .into_iter()
            .map(|key| {
                let mut values: Vec<u64> = samples
                    .iter()
                    .filter_map(|s| s.stats.get(&key).copied())
                    .collect();
                values.sort_unstable();
                let median = values[values.len() / 2];
                (key, median)
            })
            .collect();
        Row {
            bin,
            n,
            rtt,
            floor,
            wall,
            paired,
            stats,
            spread,
        }
    }
}

/// Each round's run set against what was sampled beside it in the same round (the floor, `mix
/// run`): the median and quartiles of those ratios. A change in the machine's speed from round
/// to round weighs on both sides of each ratio alike, where a ratio of medians can pair a fast
/// round's run with a slow round's floor.
#[derive(Clone, Copy)]
pub(crate) struct Paired {
    pub(crate) q1: f64,
    pub(crate) median: f64,
    pub(crate) q3: f64,
}

impl Paired {
    /// The ratios `runs[i] / beside[i]` over the rounds (both in round order, not empty).
    pub(crate) fn of(runs: &[Duration], beside: &[Duration]) -> Paired {
        let mut ratios: Vec<f64> = runs
            .iter()
            .zip(beside)
            .map(|(run, base)| run.as_secs_f64() / base.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let at = |q: usize| ratios[(ratios.len() - 1) * q / 4];
        Paired {
            q1: at(1),
            median: at(2),
            q3: at(3),
        }
    }

    /// `median (q1-q3)`, as the tables show it.
    pub(crate) fn shown(&self) -> String {
        format!("{:.2} ({:.2}-{:.2})", self.median, self.q1, self.q3)
    }
}

/// The median of `samples` (not empty).
pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn print_table(rows: &[Row], args: &BenchArgs) {
    let link = match args.mbit {
        Some(m) => format!("{m} Mbit/s"),
        None => "unlimited bandwidth".into(),
    };
    println!(
        "mix-remote cold runs, median of {} (ms; loopback sshd; delayed links: {link})",
        args.runs
    );
    let side_by_side = args.versus.is_some();
    if side_by_side {
        println!(
            "A: {}",
            args.binary
                .as_deref()
                .map_or("the workspace's release binary".into(), |b| b
                    .display()
                    .to_string())
        );
        println!(
            "B: {}",
            args.versus
                .as_deref()
                .map(|b| b.display().to_string())
                .unwrap_or_default()
        );
    }
    let bin = |label: &str| {
        if side_by_side {
            format!("{label:>3} ")
        } else {
            String::new()
        }
    };
    let mut header = format!("{}{:>5} {:>4} {:>6}", bin("bin"), "N", "RTT", "wall");
    for phase in PHASES {
        header += &format!(" {phase:>8}");
    }
    header += &format!(
        " {:>6} {:>6} {:>6} {:>5} {:>9} {:>6} {:>6} {:>6} {:>6}",
        "scan", "wire", "w.wait", "reqs", "pushed B", "ssh", "elixir", "floor", "x"
    );
    header += &format!(" {:>17}", "x rounds (IQR)");
    if side_by_side {
        header += &format!(" {:>11} {:>11}", "wall range", "boot range");
    }
    println!("{header}");
    let ms = |d: Duration| d.as_millis();
    for row in rows {
        let mut line = format!(
            "{}{:>5} {:>4} {:>6}",
            bin(row.bin),
            row.n,
            row.rtt,
            ms(row.wall)
        );
        for phase in PHASES {
            line += &format!(" {:>8}", shown(row.stats.get(&format!("{phase}_ms"))));
        }
        line += &format!(
            " {:>6} {:>6} {:>6} {:>5} {:>9} {:>6} {:>6} {:>6} {:>6.2}",
            shown(row.stats.get("scan_ms")),
            shown(row.stats.get("wire_ms")),
            shown(row.stats.get("wire_wait_ms")),
            shown(row.stats.get("requests")),
            shown(row.stats.get("pushed_bytes")),
            ms(row.floor.ssh),
            ms(row.floor.boot),
            ms(row.floor.total()),
            row.wall.as_secs_f64() / row.floor.total().as_secs_f64()
        );
        line += &format!(" {:>17}", row.paired.shown());
        if side_by_side {
            for (low, high) in row.spread {
                line += &format!(" {:>11}", format!("{low}-{high}"));
            }
        }
        println!("{line}");
    }
}

fn shown(value: Option<&u64>) -> String {
    value.map_or_else(|| "-".into(), u64::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_is_set_against_its_own_floor() {
        let ms = Duration::from_millis;
        // Rounds 2 and 4 ran on a machine twice as slow: their floors say so too.
        let runs = [ms(1100), ms(2300), ms(1150), ms(2250), ms(1120)];
        let floors = [ms(1000), ms(2000), ms(1000), ms(2000), ms(1000)];
        let paired = Paired::of(&runs, &floors);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(paired.q1, 1.12), "{}", paired.shown());
        assert!(close(paired.median, 1.125), "{}", paired.shown());
        assert!(close(paired.q3, 1.15), "{}", paired.shown());
        assert_eq!(paired.shown(), "1.12 (1.12-1.15)");
        // The ratio of the medians pairs a fast round's run with a slow round's floor.
        let apart = median(runs.to_vec()).as_secs_f64() / median(floors.to_vec()).as_secs_f64();
        assert!(close(apart, 1.15));
    }
}
