//! Project tasks as typed subcommands: `cargo xtask demo`, `cargo xtask bench`.
//!
//! `demo` shows the tool working end to end on this machine: it compiles the bundled example
//! project, starts a throw-away sshd on loopback (the test harness's, with its own keys and
//! known_hosts, never touching ~/.ssh), and runs `mix-remote run` against it. `bench` times cold
//! runs over a slowed link beside the floor (see bench.rs); `delay-proxy` is the slow link.

mod bench;
mod project;
mod proxy;

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
    /// Relay HOST PORT over stdin/stdout with a delay (the benchmark's ssh ProxyCommand).
    DelayProxy(proxy::ProxyArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Demo => return demo(),
        Task::Bench(args) => bench::run(&args, &workspace_root()),
        Task::DelayProxy(args) => proxy::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
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
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "-q", "-p", "mix-remote"])
        .current_dir(&root)
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        eprintln!("xtask: building mix-remote failed");
        return ExitCode::FAILURE;
    }
    let project = testkit::compiled_fixture("demo");
    let sshd = testkit::Sshd::start();
    let binary = root.join("target/release/mix-remote");
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
