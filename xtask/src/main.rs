//! Project tasks as typed subcommands: `cargo xtask demo`, `cargo xtask scan-bench`,
//! `cargo xtask beam-vectors`.
//!
//! `demo` shows the tool working end to end on this machine: it compiles the bundled example
//! project, starts a throw-away sshd on loopback (the test harness's, with its own keys and
//! known_hosts, never touching ~/.ssh), and runs `mix-remote run` against it.

mod beam_vectors;
mod scan_bench;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("demo") => demo(),
        Some("scan-bench") => {
            let modules = std::env::args().nth(2).map(|n| n.parse::<usize>());
            match modules {
                None => report(scan_bench::run(&workspace_root(), 3000)),
                Some(Ok(n)) if n > 0 => report(scan_bench::run(&workspace_root(), n)),
                Some(_) => usage(),
            }
        }
        Some("beam-vectors") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            report(beam_vectors::run(&args).map_err(|e| e.to_string()))
        }
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask demo | scan-bench [MODULES] | beam-vectors [--chroots DIR]");
    eprintln!("  demo           run the bundled example against a throw-away local sshd");
    eprintln!("  scan-bench     time reading a generated _build of MODULES modules (default 3000)");
    eprintln!("  beam-vectors   compile the BEAM reader's test vectors with OTP 25, 27 and 29");
    ExitCode::from(2)
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
