//! Project tasks as typed subcommands: `cargo xtask demo`, `cargo xtask beam-vectors`.
//!
//! `demo` shows the tool working end to end on this machine: it compiles the bundled example
//! project, starts a throw-away sshd on loopback (the test harness's, with its own keys and
//! known_hosts, never touching ~/.ssh), and runs `mix-remote run` against it.

mod beam_vectors;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("beam-vectors") => match beam_vectors::run(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask demo | beam-vectors [--chroots DIR]");
            eprintln!("  demo           run the bundled example against a throw-away local sshd");
            eprintln!(
                "  beam-vectors   compile the BEAM reader's test vectors with OTP 25, 27, 29"
            );
            ExitCode::from(2)
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
