//! `cargo xtask bench-fanout`: what one run on many hosts at once costs the tool itself.
//!
//! The hosts are aliases of one test sshd: an ssh_config with `Host h1 ... hN` and `HostName
//! 127.0.0.1` in front of the harness's own client configuration. For each generated project
//! (bench.rs's) and host count, the release binary runs `run Bench.M0.run --host h1,...,hN`,
//! with `-q` and on a pseudo-terminal with its progress bars drawn. Per run: the wall time; the
//! tool's own CPU (utime+stime of its process, all threads, read from `/proc/PID/stat` while it
//! is a zombie, after `waitid(WNOWAIT)` and before it is reaped, so that its ssh children's CPU
//! stays apart); the CPU of the children it reaped; its peak RSS as the VmHWM of
//! `/proc/PID/status` sampled every 5 ms while it runs (the tool alone), and beside it wait4's
//! ru_maxrss (exact, but the largest of the tool and each of its children); its threads.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::project;

/// Flags of `cargo xtask bench-fanout`.
#[derive(Debug, clap::Args)]
pub struct BenchFanoutArgs {
    /// Closure sizes (modules) to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [200, 2000])]
    pub sizes: Vec<usize>,
    /// Host counts to measure, each a run on that many hosts at once.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
    pub hosts: Vec<usize>,
    /// Runs per cell; the table shows medians and [min-max].
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Only the `-q` runs, none on a pseudo-terminal.
    #[arg(long)]
    pub no_pty: bool,
    /// Measure this mix-remote binary instead of building the workspace's release binary.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Generate the projects in DIR and keep them (compiled again only if their source changed),
    /// instead of in a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub projects: Option<PathBuf>,
    /// Extra environment for the measured runs, as NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub envs: Vec<String>,
}

/// The targets for 32 hosts at once: the tool's CPU per host, its peak RSS in all.
const TARGET_CPU_PER_HOST_MS: f64 = 50.0;
const TARGET_RSS_MB: f64 = 100.0;
/// The host count the targets are stated for.
const TARGET_HOSTS: usize = 32;
/// How often the tool's VmHWM is read while it runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// How the tool's stderr is attached.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `-q`, stderr a file: no progress at all.
    Quiet,
    /// stderr a pseudo-terminal: a progress bar per host, drawn.
    Pty,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Quiet => "-q",
            Mode::Pty => "pty",
        }
    }
}

/// Runs the benchmark and prints the table on stdout (progress on stderr).
pub fn run(args: &BenchFanoutArgs, root: &Path) -> Result<(), String> {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let Some(&most) = args.hosts.iter().max() else {
        return Err("--hosts needs at least one count".into());
    };
    if args.hosts.contains(&0) {
        return Err("--hosts: every count must be at least 1".into());
    }
    let env = crate::bench::parse_envs(&args.envs)?;
    let binary = crate::measured_binary(args.binary.as_deref(), root, "bench-fanout")?;
    let work = tempfile::Builder::new()
        .prefix("mix-remote-bench-fanout-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let dir = args.projects.as_deref().unwrap_or(work.path());
    let mut projects = Vec::new();
    for &n in &args.sizes {
        eprintln!("bench-fanout: generating and compiling the {n}-module project");
        projects.push((n, project::generate(dir, n)?));
    }
    let sshd = crate::bench::server();
    let config = alias_config(&sshd, most, work.path())?;
    let modes: &[Mode] = if args.no_pty {
        &[Mode::Quiet]
    } else {
        &[Mode::Quiet, Mode::Pty]
    };
    let cells: Vec<(usize, &Path, usize, Mode)> = projects
        .iter()
        .flat_map(|(n, dir)| {
            args.hosts.iter().flat_map(move |&hosts| {
                modes
                    .iter()
                    .map(move |&mode| (*n, dir.as_path(), hosts, mode))
            })
        })
        .collect();
    let run = Run {
        binary: &binary,
        sshd: &sshd,
        config: &config,
        env: &env,
    };
    // Rounds go over every cell in turn, so that a change in the machine's load weighs on all.
    let mut samples: Vec<Vec<Sample>> = cells.iter().map(|_| Vec::new()).collect();
    for round in 1..=args.runs {
        eprintln!("bench-fanout: round {round} of {}", args.runs);
        for (&(n, dir, hosts, mode), samples) in cells.iter().zip(&mut samples) {
            samples.push(run.measure(dir, n, hosts, mode)?);
        }
    }
    print_table(&cells, &samples, args.runs);
    Ok(())
}

/// Writes an ssh_config in `dir` naming `count` hosts `h1` to `hN`, every one the harness's
/// sshd, and returns its path.
fn alias_config(sshd: &testkit::Sshd, count: usize, dir: &Path) -> Result<PathBuf, String> {
    let base = std::fs::read_to_string(sshd.ssh_config())
        .map_err(|e| format!("cannot read {}: {e}", sshd.ssh_config().display()))?;
    let names: Vec<String> = (1..=count).map(|i| format!("h{i}")).collect();
    let text = format!(
        "Host {}\n  HostName {}\n\nHost *\n{base}",
        names.join(" "),
        sshd.addr().ip()
    );
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// One run, measured.
struct Sample {
    wall: Duration,
    /// The tool's own CPU, ms.
    cpu: u64,
    /// The CPU of the children it reaped, ms.
    children: u64,
    /// The largest VmHWM read while it ran, KiB.
    hwm: u64,
    /// wait4's ru_maxrss, KiB.
    maxrss: u64,
    /// The most threads seen at once.
    threads: u64,
}

/// What every measured run shares: the binary, the sshd and the ssh_config of its aliases, the
/// environment.
struct Run<'a> {
    binary: &'a Path,
    sshd: &'a testkit::Sshd,
    config: &'a Path,
    env: &'a [(String, String)],
}

impl Run<'_> {
    /// Runs the entry of the `n`-module project in `dir` on hosts `h1` to `h<hosts>` and measures it.
    fn measure(&self, dir: &Path, n: usize, hosts: usize, mode: Mode) -> Result<Sample, String> {
        let (binary, config) = (self.binary, self.config);
        // The servers share this machine: a run starts once the last one's nodes and sessions
        // are gone, not while 32 of them still end.
        if let Err(left) = self
            .sshd
            .wait_until_no_session_processes(Duration::from_secs(120))
        {
            let shown: Vec<String> = left.iter().take(5).map(ToString::to_string).collect();
            return Err(format!(
                "{} processes of the last run were still on the servers after 120 s: {}",
                left.len(),
                shown.join("; ")
            ));
        }
        let names: Vec<String> = (1..=hosts).map(|i| format!("h{i}")).collect();
        let mut stdout = tempfile::tempfile().map_err(|e| format!("cannot create a file: {e}"))?;
        let mut stderr = tempfile::tempfile().map_err(|e| format!("cannot create a file: {e}"))?;
        let mut cmd = Command::new(binary);
        let mut drawn = None;
        match mode {
            Mode::Quiet => {
                cmd.arg("-q").stderr(clone(&stderr)?);
            }
            Mode::Pty => {
                let (master, slave) = open_pty()?;
                cmd.env("TERM", "xterm-256color").stderr(slave);
                drawn = Some(drain(master));
            }
        }
        cmd.args([
            "run",
            "--no-compile",
            project::ENTRY,
            "--host",
            &names.join(","),
        ])
        .arg("-F")
        .arg(config)
        .current_dir(dir)
        .env_remove("MIX_ENV")
        .envs(self.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(clone(&stdout)?);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        // Our end of the pseudo-terminal's slave side goes, so that the drain sees its end.
        drop(cmd);
        let pid = child.id() as libc::pid_t;
        let sampler = Sampler::start(pid);
        wait_exited(pid)?;
        let wall = started.elapsed();
        let (cpu, children) = cpu_of(pid)?;
        let (hwm, threads) = sampler.stop();
        let (status, maxrss) = reap(pid)?;
        let drawn = drawn.and_then(|rx| rx.recv_timeout(Duration::from_secs(5)).ok());

        let mut out = String::new();
        stdout
            .rewind()
            .and_then(|()| stdout.read_to_string(&mut out))
            .map_err(|e| e.to_string())?;
        let mut err = String::new();
        stderr
            .rewind()
            .and_then(|()| stderr.read_to_string(&mut err))
            .map_err(|e| e.to_string())?;
        if let Some(drawn) = &drawn {
            err += &String::from_utf8_lossy(&drawn.tail);
        }
        let results = out.lines().filter(|line| answers(line, n)).count();
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 || results != hosts {
            return Err(format!(
                "the run of {n} modules on {hosts} hosts ({}) failed (wait status {status}):\n{out}{err}",
                mode.name()
            ));
        }
        if mode == Mode::Pty && drawn.is_none_or(|d| d.bytes == 0) {
            return Err(format!(
                "the run on {hosts} hosts drew nothing on the pseudo-terminal"
            ));
        }
        Ok(Sample {
            wall,
            cpu,
            children,
            hwm,
            maxrss,
            threads,
        })
    }
}

/// Whether a line of the tool's stdout is a host's result `n`: `n`, or `[hK] n` with several.
fn answers(line: &str, n: usize) -> bool {
    line.rsplit(' ').next() == Some(n.to_string().as_str())
}

fn clone(file: &File) -> Result<File, String> {
    file.try_clone()
        .map_err(|e| format!("cannot duplicate a file: {e}"))
}

/// A pseudo-terminal of 120x40: (master, slave).
fn open_pty() -> Result<(File, File), String> {
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors; no name buffer, no termios.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot open a pseudo-terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: both descriptors were just opened for us and are owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    Ok((File::from(master), File::from(slave)))
}

/// What a run wrote on the pseudo-terminal: how many bytes, and the last [`TAIL`] of them.
struct Drawn {
    bytes: u64,
    tail: Vec<u8>,
}

/// How much of the pseudo-terminal's output a failed run shows.
const TAIL: usize = 4096;

/// Reads the pseudo-terminal's output until every writer is gone, then sends what it read.
fn drain(mut master: File) -> mpsc::Receiver<Drawn> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 16384];
        let mut drawn = Drawn {
            bytes: 0,
            tail: Vec::new(),
        };
        // The read fails with EIO once the last slave descriptor is closed.
        while let Ok(read @ 1..) = master.read(&mut buf) {
            drawn.bytes += read as u64;
            drawn.tail.extend_from_slice(&buf[..read]);
            let excess = drawn.tail.len().saturating_sub(TAIL);
            drawn.tail.drain(..excess);
        }
        let _ = tx.send(drawn);
    });
    rx
}

/// Reads the VmHWM and thread count of a running process every [`SAMPLE_EVERY`].
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(u64, u64)>,
}

impl Sampler {
    fn start(pid: libc::pid_t) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            let (mut hwm, mut threads) = (0, 0);
            while !stopped.load(Ordering::Relaxed) {
                // A zombie's status has no VmHWM any more: the last reading before stands.
                if let Ok(text) = std::fs::read_to_string(&path) {
                    hwm = hwm.max(field(&text, "VmHWM:"));
                    threads = threads.max(field(&text, "Threads:"));
                }
                thread::sleep(SAMPLE_EVERY);
            }
            (hwm, threads)
        });
        Sampler { stop, handle }
    }

    /// The largest VmHWM (KiB) and thread count read.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the sampler does not panic")
    }
}

/// The number after `name` in a `/proc/PID/status` text (0 if absent).
fn field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// Waits until child `pid` has exited, leaving it a zombie (`WNOWAIT`).
fn wait_exited(pid: libc::pid_t) -> Result<(), String> {
    // SAFETY: an all-zero siginfo_t is a valid value; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not reaped yet.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitid: {e}"));
        }
    }
}

/// The CPU (ms) of zombie `pid` itself (all its threads) and of the children it reaped.
fn cpu_of(pid: libc::pid_t) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    // After the command's name in parentheses: state is field 3, utime field 14 ... cstime 17.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let [utime, stime, cutime, cstime] = fields[..] else {
        return Err(format!("{path}: unexpected format: {stat}"));
    };
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ms = |ticks: u64| ticks * 1000 / tick;
    Ok((ms(utime + stime), ms(cutime + cstime)))
}

/// Reaps zombie `pid`: its wait status and ru_maxrss (KiB).
fn reap(pid: libc::pid_t) -> Result<(i32, u64), String> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, exited and not reaped yet.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    Ok((status, usage.ru_maxrss.max(0) as u64))
}

/// `median [min-max]` of `values` (not empty), or the value alone for one run.
fn spread(mut values: Vec<f64>, decimals: usize) -> String {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let (min, max) = (values[0], values[values.len() - 1]);
    if values.len() == 1 {
        format!("{median:.decimals$}")
    } else {
        format!("{median:.decimals$} [{min:.decimals$}-{max:.decimals$}]")
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print_table(cells: &[(usize, &Path, usize, Mode)], samples: &[Vec<Sample>], runs: usize) {
    println!(
        "mix-remote on many hosts at once (aliases of one loopback sshd): the tool's own cost, \
         median [min-max] of {runs}"
    );
    println!(
        "targets at {TARGET_HOSTS} hosts: tool CPU <= {TARGET_CPU_PER_HOST_MS} ms per host, \
         peak RSS <= {TARGET_RSS_MB} MB in all; CPU in 10 ms ticks"
    );
    println!(
        "{:>5} {:>5} {:>4} {:>20} {:>17} {:>8} {:>20} {:>20} {:>9} {:>7} {:>6}",
        "N",
        "hosts",
        "mode",
        "wall ms",
        "tool CPU ms",
        "CPU/host",
        "children CPU ms",
        "tool RSS MB (HWM)",
        "maxrss MB",
        "threads",
        "target"
    );
    let mb = |kib: u64| kib as f64 / 1024.0;
    for (&(n, _, hosts, mode), samples) in cells.iter().zip(samples) {
        let of = |get: &dyn Fn(&Sample) -> f64| samples.iter().map(get).collect::<Vec<f64>>();
        let cpu_per_host = median(of(&|s| s.cpu as f64)) / hosts as f64;
        let rss = median(of(&|s| mb(s.hwm)));
        let target = if hosts < TARGET_HOSTS {
            "-".to_owned()
        } else {
            let mut missed = Vec::new();
            if cpu_per_host > TARGET_CPU_PER_HOST_MS {
                missed.push("CPU");
            }
            if rss > TARGET_RSS_MB {
                missed.push("RSS");
            }
            if missed.is_empty() {
                "met".to_owned()
            } else {
                missed.join("+")
            }
        };
        println!(
            "{n:>5} {hosts:>5} {:>4} {:>20} {:>17} {cpu_per_host:>8.1} {:>20} {:>20} {:>9} {:>7} {target:>6}",
            mode.name(),
            spread(of(&|s| s.wall.as_millis() as f64), 0),
            spread(of(&|s| s.cpu as f64), 0),
            spread(of(&|s| s.children as f64), 0),
            spread(of(&|s| mb(s.hwm)), 1),
            format!("{:.1}", median(of(&|s| mb(s.maxrss)))),
            samples.iter().map(|s| s.threads).max().unwrap_or(0),
        );
    }
}
