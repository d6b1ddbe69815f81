//! `cargo xtask bench-ecto`: the Ecto data fix of `fixtures/ecto_fix` (prod build, a private
//! PostgreSQL with 250 rows to fix), cold, through the harness's sshd directly and through the
//! delay proxy, beside the same job run with `mix run` on the server itself (over ssh, the
//! project compiled there from source) and the floor (`ssh host true` plus a bare remote
//! `elixir -e nil`). Every sample starts from the same rows: they are reset before each job.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{Link, Paired, median, stats};

/// Flags of `cargo xtask bench-ecto`.
#[derive(Debug, clap::Args)]
pub struct BenchEctoArgs {
    /// Round-trip times (ms) to add to the SSH link; 0 connects directly.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 50])]
    pub rtts: Vec<u64>,
    /// Samples of each kind per RTT; the table shows medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measure this mix-remote binary instead of building the workspace's release binary.
    #[arg(long)]
    pub binary: Option<std::path::PathBuf>,
    /// Also measure this mix-remote binary, side by side: each round runs both, in turns (A then
    /// B, then B then A), beside the same `mix run` and floor samples; rows A and B.
    #[arg(long, value_name = "BINARY")]
    pub versus: Option<std::path::PathBuf>,
    /// Also time warm reruns of the job through `mix-remote up`, each binary in turn after the
    /// cold rounds (the rows reset before each run, each once the session's spare is ready).
    #[arg(long)]
    pub warm: bool,
}

/// The job, as `mix run -e` evaluates it and as mix-remote calls it.
const JOB: &str = "IO.inspect(EctoFix.Jobs.Backfill.run(100))";
/// The last line both print.
const RESULT: &str = "%{batches: 3, remaining: 0, updated: 250}";
/// Puts the rows back as they were before the fix.
const RESET: &str = "UPDATE accounts SET email_normalized = NULL";

/// Runs the benchmark and prints the table on stdout (progress on stderr).
pub fn run(args: &BenchEctoArgs, root: &std::path::Path) -> Result<(), String> {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if !testkit::vendor_dir().is_dir() {
        return Err(format!(
            "the Ecto fixture needs the vendored libraries at {} (set {})",
            testkit::vendor_dir().display(),
            testkit::VENDOR_VAR
        ));
    }
    let mut binaries = vec![(
        "A",
        crate::measured_binary(args.binary.as_deref(), root, "bench-ecto")?,
    )];
    if let Some(versus) = &args.versus {
        let versus = versus
            .canonicalize()
            .map_err(|e| format!("--versus {}: {e}", versus.display()))?;
        binaries.push(("B", versus));
    }
    eprintln!("bench-ecto: compiling fixtures/ecto_fix (prod), starting PostgreSQL and sshd");
    let project = testkit::compiled_fixture_in("ecto_fix", "prod");
    let pg = testkit::Postgres::start();
    let mut vars: Vec<(String, String)> = pg
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.push((
        testkit::VENDOR_VAR.into(),
        testkit::vendor_dir().display().to_string(),
    ));
    let seed = Command::new("mix")
        .args(["run", "--no-compile", "--no-start", "-e"])
        .arg("EctoFix.Release.migrate(); EctoFix.Release.seed(250)")
        .current_dir(&project)
        .env("MIX_ENV", "prod")
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run mix: {e}"))?;
    if !seed.status.success() {
        return Err(format!(
            "seeding the database failed: {}",
            String::from_utf8_lossy(&seed.stderr)
        ));
    }
    let work = tempfile::tempdir().map_err(|e| format!("cannot create a directory: {e}"))?;
    let config = work.path().join("mix-remote.yaml");
    let mut yaml = String::from("defaults:\n  mix_env: prod\n  remote_env:\n");
    for (k, v) in &vars {
        yaml += &format!("    {k}: '{v}'\n");
    }
    std::fs::write(&config, yaml).map_err(|e| format!("cannot write the config: {e}"))?;

    let sshd = crate::bench::server();
    let proxy = std::env::current_exe().map_err(|e| format!("cannot find xtask itself: {e}"))?;
    println!(
        "Ecto data fix (250 rows in 3 transactions), cold, median of {} (ms; loopback sshd)",
        args.runs
    );
    println!(
        "{:>3} {:>4} {:>6} {:>6} {:>6} {:>6} {:>5} {:>7} {:>5} {:>9} {:>8} {:>6} {:>6} {:>6} {:>7} {:>7} {:>11} {:>17}",
        "bin",
        "RTT",
        "wall",
        "boot",
        "push",
        "call",
        "apps",
        "modules",
        "eager",
        "pushed B",
        "mix run",
        "ssh",
        "elixir",
        "floor",
        "x floor",
        "x mix",
        "wall range",
        "x mix rounds (IQR)"
    );
    for &rtt in &args.rtts {
        let link = Link::new(&sshd, &proxy, rtt, None);
        let mut samples = vec![Vec::new(); binaries.len()];
        let (mut mix, mut ssh_true, mut ssh_elixir) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=args.runs {
            eprintln!("bench-ecto: {rtt} ms, round {round} of {}", args.runs);
            ssh_true.push(link.time_ssh("true")?);
            ssh_elixir.push(link.time_ssh("elixir -e nil")?);
            let mut order: Vec<usize> = (0..binaries.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for i in order {
                pg.psql(RESET);
                samples[i].push(cold_run(&link, &binaries[i].1, &project, &config)?);
            }
            pg.psql(RESET);
            mix.push(mix_run_there(&link, &project, &vars)?);
        }
        let ssh = median(ssh_true);
        let base = Baseline {
            rtt,
            mix: median(mix.clone()),
            ssh,
            elixir: median(ssh_elixir).saturating_sub(ssh),
        };
        for ((name, _), samples) in binaries.iter().zip(samples) {
            let walls: Vec<Duration> = samples.iter().map(|(wall, _)| *wall).collect();
            let paired = Paired::of(&walls, &mix);
            let ((wall, stats), range) = middle(samples);
            row(name, &base, wall, &stats, &range, paired);
        }
        if args.warm {
            for (name, binary) in &binaries {
                let runs = warm_runs(&link, binary, &project, &config, &pg, args.runs)?;
                let ((wall, stats), range) = middle(runs);
                let get = |key: &str| stats.get(key).map_or_else(|| "-".into(), u64::to_string);
                println!(
                    "{name:>3} {rtt:>4} warm rerun: wall {} ms (range {range}), boot {}, push {}, call {}; {:.2}x of `mix run`, {:.2}x of the floor",
                    wall.as_millis(),
                    get("boot_ms"),
                    get("push_ms"),
                    get("call_ms"),
                    wall.as_secs_f64() / base.mix.as_secs_f64(),
                    wall.as_secs_f64() / (base.ssh + base.elixir).as_secs_f64(),
                );
            }
        }
    }
    Ok(())
}

/// `runs` warm reruns of the job by `binary`, through a session it starts with `up` and ends
/// with `down`: each run's wall time and `stats:` line.
fn warm_runs(
    link: &Link,
    binary: &std::path::Path,
    project: &std::path::Path,
    config: &std::path::Path,
    pg: &testkit::Postgres,
    runs: usize,
) -> Result<Vec<Sample>, String> {
    let runtime = tempfile::Builder::new()
        .prefix("mix-remote-bench-xdg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let host = link.sshd.host();
    let tool = |args: &[&str]| {
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(config)
            .args(args)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("MIX_ENV")
            .stdin(Stdio::null());
        cmd
    };
    crate::bench_warm::session_up(&tool, &host, link)?;
    let result = (|| {
        let mut samples = Vec::new();
        for _ in 0..runs {
            pg.psql(RESET);
            crate::bench_warm::spare_ready(&tool)?;
            let started = Instant::now();
            let out = tool(&["-v", "run", "--no-compile", "EctoFix.Jobs.Backfill.run"])
                .args(["--host", &host])
                .args(link.ssh_args())
                .arg("--project")
                .arg(project)
                .args(["--", "100"])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
            let wall = started.elapsed();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success()
                || stdout.trim_end().lines().last() != Some(RESULT)
                || !stderr.contains("warm session of")
            {
                return Err(format!(
                    "the warm rerun failed ({}): {stdout}{stderr}",
                    out.status
                ));
            }
            samples.push((wall, stats(&stderr)));
        }
        Ok(samples)
    })();
    let _ = tool(&["down", "--all"]).output();
    result
}

/// The medians every binary's row is set beside, at one RTT.
struct Baseline {
    rtt: u64,
    /// `mix run` on the server.
    mix: Duration,
    /// `ssh host true`.
    ssh: Duration,
    /// A remote `elixir -e nil` beyond `ssh host true`.
    elixir: Duration,
}

/// One row of the table: binary `name`'s median `wall` and `stats` beside `base`, the range of
/// its wall times, and each round's run against that round's `mix run` (`paired`).
fn row(
    name: &str,
    base: &Baseline,
    wall: Duration,
    stats: &std::collections::BTreeMap<String, u64>,
    range: &str,
    paired: Paired,
) {
    let Baseline {
        rtt,
        mix,
        ssh,
        elixir,
    } = *base;
    let get = |key: &str| stats.get(key).map_or_else(|| "-".into(), u64::to_string);
    let ratio = |of: Duration| wall.as_secs_f64() / of.as_secs_f64();
    println!(
        "{name:>3} {rtt:>4} {:>6} {:>6} {:>6} {:>6} {:>5} {:>7} {:>5} {:>9} {:>8} {:>6} {:>6} {:>6} {:>7.2} {:>7.2} {range:>11} {:>17}",
        wall.as_millis(),
        get("boot_ms"),
        get("push_ms"),
        get("call_ms"),
        get("shipped_apps"),
        get("shipped_modules"),
        get("pushed_modules"),
        get("pushed_bytes"),
        mix.as_millis(),
        ssh.as_millis(),
        elixir.as_millis(),
        (ssh + elixir).as_millis(),
        ratio(ssh + elixir),
        ratio(mix),
        paired.shown()
    );
}

/// A run's wall time and its `stats:` line.
type Sample = (Duration, std::collections::BTreeMap<String, u64>);

/// The median of `samples` (by wall time) and the range of their wall times, `fastest-slowest`.
fn middle(mut samples: Vec<Sample>) -> (Sample, String) {
    samples.sort_by_key(|(wall, _)| *wall);
    let range = format!(
        "{}-{}",
        samples[0].0.as_millis(),
        samples[samples.len() - 1].0.as_millis()
    );
    (samples.swap_remove(samples.len() / 2), range)
}

/// One cold run of the job with mix-remote: its wall time and `stats:` line.
fn cold_run(
    link: &Link,
    binary: &std::path::Path,
    project: &std::path::Path,
    config: &std::path::Path,
) -> Result<Sample, String> {
    let started = Instant::now();
    let out = Command::new(binary)
        .arg("-v")
        .arg("--config")
        .arg(config)
        .args([
            "run",
            "--no-compile",
            "EctoFix.Jobs.Backfill.run",
            "--host",
            &link.sshd.host(),
        ])
        .args(link.ssh_args())
        .arg("--project")
        .arg(project)
        .args(["--", "100"])
        .env_remove("MIX_ENV")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stdout.trim_end().lines().last() != Some(RESULT) {
        return Err(format!("the run failed ({}): {stdout}{stderr}", out.status));
    }
    Ok((wall, stats(&stderr)))
}

/// The same job with `mix run` on the server, over the same link: `ssh host 'cd DIR && ... mix
/// run -e JOB'`, as one would run it where the project is deployed from source.
fn mix_run_there(
    link: &Link,
    project: &std::path::Path,
    vars: &[(String, String)],
) -> Result<Duration, String> {
    let assignments: Vec<String> = vars.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
    let command = format!(
        "cd '{}' && env MIX_ENV=prod {} mix run -e '{JOB}'",
        project.display(),
        assignments.join(" ")
    );
    let started = Instant::now();
    let out = Command::new("ssh")
        .args(link.ssh_args())
        .arg(link.sshd.host())
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || stdout.trim_end().lines().last() != Some(RESULT) {
        return Err(format!(
            "mix run on the server failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(took)
}
