//! Project tasks as typed subcommands: `cargo xtask demo`, `cargo xtask bench`,
//! `cargo xtask bench-ecto`, `cargo xtask bench-fanout`, `cargo xtask bench-output`,
//! `cargo xtask scan-bench`, `cargo xtask beam-vectors`, `cargo xtask erl-beams`, `cargo xtask boot-beam`.
//!
//! `demo` shows the tool working end to end on this machine: it compiles the bundled example
//! project, starts a throw-away sshd on loopback (the test harness's, with its own keys and
//! known_hosts, never touching ~/.ssh), and runs `mix-remote run` against it. `bench` times cold
//! runs over a slowed link beside the floor (see bench.rs), `bench-ecto` the Ecto data fix beside
//! `mix run` on the server (bench_ecto.rs), `bench-fanout` the tool's own CPU and memory on many
//! hosts at once (bench_fanout.rs), `bench-output` what a function's output costs beside `ssh` and
//! `mix run` (bench_output.rs); `delay-proxy` is the slow link.

mod beam_vectors;
mod bench;
mod bench_ecto;
mod bench_fanout;
mod bench_output;
mod bench_warm;
mod project;
mod proxy;
mod scan_bench;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

/// mix-remote's project tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the bundled example against a throw-away local sshd.
    Demo,
    /// Time cold runs for closures of N modules at several round-trip times, beside the floor.
    Bench(bench::BenchArgs),
    /// Time the Ecto data fix cold at several round-trip times, beside `mix run` on the server
    /// and the floor.
    BenchEcto(bench_ecto::BenchEctoArgs),
    /// Measure the tool's own CPU and peak memory on 1, 8 and 32 hosts at once (aliases of one
    /// local sshd), quiet and with progress bars on a pseudo-terminal.
    BenchFanout(bench_fanout::BenchFanoutArgs),
    /// Time 1 and 100,000 lines of output at several round-trip times, beside ssh and mix run.
    BenchOutput(bench_output::BenchOutputArgs),
    /// Relay HOST PORT over stdin/stdout with a delay (the benchmark's ssh ProxyCommand).
    DelayProxy(proxy::ProxyArgs),
    /// Time reading a generated _build of MODULES modules.
    ScanBench {
        /// How many modules the generated build has.
        #[arg(default_value = "3000")]
        modules: NonZeroUsize,
    },
    /// Compile the BEAM reader's test vectors with OTP 25, 27 and 29 (as root).
    BeamVectors {
        /// Passed on: `--chroots DIR`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Rebuild templates/mix_remote_relay.beam and mix_remote_dist.beam from their sources (needs
    /// OTP 25's erlc).
    ErlBeams,
    /// Rebuild templates/mix_remote_boot*.beam from templates/boot.exs (needs OTP 25's elixir).
    BootBeam,
}

fn main() -> ExitCode {
    match Cli::parse().task {
        Task::Demo => demo(),
        Task::Bench(args) => report(bench::run(&args, &workspace_root())),
        Task::BenchEcto(args) => report(bench_ecto::run(&args, &workspace_root())),
        Task::BenchFanout(args) => report(bench_fanout::run(&args, &workspace_root())),
        Task::BenchOutput(args) => report(bench_output::run(&args, &workspace_root())),
        Task::DelayProxy(args) => report(proxy::run(&args)),
        Task::ScanBench { modules } => report(scan_bench::run(&workspace_root(), modules.get())),
        Task::BeamVectors { args } => report(beam_vectors::run(&args).map_err(|e| e.to_string())),
        Task::ErlBeams => report(erl_beams()),
        Task::BootBeam => report(boot_beam()),
    }
}

/// Rebuilds the committed beams of the Erlang sources (relay, carrier) with the host's erlc,
/// which must be OTP [`testkit::RELAY_OTP`]'s: another release writes other bytes (and a newer
/// one code that older servers cannot load).
fn erl_beams() -> Result<(), String> {
    testkit::builds_committed_beams("the Erlang beams")?;
    let beams = testkit::ERL_BEAMS
        .map(|m| testkit::build_erl_beam(m).map(|b| (testkit::erl_beam_path(m), b)));
    write_beams(beams.into_iter().collect::<Result<Vec<_>, _>>()?)
}

/// Rebuilds the committed boot program beams with the host's elixir, on OTP
/// [`testkit::RELAY_OTP`] as the relay: the oldest release that can compile code for OTP 24.
fn boot_beam() -> Result<(), String> {
    testkit::builds_committed_beams("the boot beams")?;
    write_beams(
        testkit::boot_beam_paths()
            .into_iter()
            .zip(testkit::build_boot_beams()?),
    )
}

/// Writes each beam to its path, and says so.
fn write_beams(beams: impl IntoIterator<Item = (PathBuf, Vec<u8>)>) -> Result<(), String> {
    for (path, beam) in beams {
        std::fs::write(&path, &beam).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {} ({} bytes)", path.display(), beam.len());
    }
    Ok(())
}

fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The binary a benchmark measures: `given` (`--binary`), or else the workspace's release binary,
/// built first; `task` names the benchmark in the progress line.
fn measured_binary(given: Option<&Path>, root: &Path, task: &str) -> Result<PathBuf, String> {
    match given {
        Some(path) => path
            .canonicalize()
            .map_err(|e| format!("--binary {}: {e}", path.display())),
        None => {
            eprintln!("{task}: building the release binary");
            release_binary(root)
        }
    }
}

/// Builds the release binary and returns its path.
fn release_binary(root: &Path) -> Result<PathBuf, String> {
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "-q", "-p", "mix-remote"])
        .current_dir(root)
        .status();
    match built {
        Ok(s) if s.success() => Ok(root.join("target/release/mix-remote")),
        _ => Err("building mix-remote failed".to_owned()),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn demo() -> ExitCode {
    let root = workspace_root();
    let binary = match release_binary(&root) {
        Ok(binary) => binary,
        Err(e) => return report(Err(e)),
    };
    let project = testkit::compiled_fixture("demo");
    let sshd = testkit::Sshd::start();
    let args = [
        "run",
        "Demo.Worker.process",
        "--host",
        &sshd.host(),
        "-F",
        &sshd.ssh_config().display().to_string(),
        "--",
        "42",
        "\"batch-7\"",
    ]
    .map(|a| a.to_string());
    eprintln!(
        "$ cd {} && mix-remote {}",
        project.display(),
        args.iter()
            .map(|a| if a.contains('"') {
                format!("'{a}'")
            } else {
                a.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = Command::new(&binary)
        .args(&args)
        .current_dir(&project)
        .status();
    drop(sshd);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1) as u8),
        Err(e) => {
            eprintln!("xtask: cannot run {}: {e}", binary.display());
            ExitCode::FAILURE
        }
    }
}
