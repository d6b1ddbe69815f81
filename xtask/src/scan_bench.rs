//! `cargo xtask scan-bench`: how fast the tool reads a large `_build` and builds its graph.
//!
//! Generates (once, cached under `target/scan-bench/`) a Mix project of N modules that call each
//! other, hold module lists in literals and implement a protocol, compiles it with `mix`, then
//! times `mix-remote graph` (every module read and every edge built) and `mix-remote plan` from a
//! cold page cache (dropped when run as root) and a warm one, reporting files/s and peak RSS.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the benchmark for `modules` modules; prints a table on stdout.
pub fn run(root: &Path, modules: usize) -> Result<(), String> {
    let project = root.join(format!("target/scan-bench/n{modules}"));
    generate(&project, modules)?;
    compile(&project, modules)?;
    let binary = crate::release_binary(root)?;
    let ebin = project.join("_build/dev/lib/scanbench/ebin");
    let (files, bytes) = beam_files(&ebin)?;
    println!(
        "scan benchmark: {files} .beam files, {:.1} MiB, in {}",
        bytes as f64 / 1048576.0,
        ebin.display()
    );
    println!(
        "{:<28} {:>10} {:>12} {:>12}",
        "command", "wall", "files/s", "peak RSS"
    );
    let commands: [(&str, Vec<&str>); 2] = [
        ("graph --format json", vec!["graph", "--format", "json"]),
        (
            "plan Scanbench.M0.f --json",
            vec!["plan", "Scanbench.M0.f", "--json"],
        ),
    ];
    for (label, args) in commands {
        for cache in ["cold", "warm"] {
            if cache == "cold" && !drop_page_cache() {
                println!("{:<28} (cold cache needs root: skipped)", label);
                continue;
            }
            let (wall, rss_kib) = measure(&binary, &project, &args)?;
            println!(
                "{:<28} {:>8.0}ms {:>12.0} {:>9.1} MiB  ({cache})",
                label,
                wall.as_secs_f64() * 1000.0,
                files as f64 / wall.as_secs_f64(),
                rss_kib as f64 / 1024.0
            );
        }
    }
    Ok(())
}

/// Writes the project's sources unless they are already there for this N.
fn generate(project: &Path, n: usize) -> Result<(), String> {
    let lib = project.join("lib");
    if lib.join(format!("m{}.ex", n - 1)).is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(&lib).map_err(|e| format!("create {}: {e}", lib.display()))?;
    let mix = "defmodule Scanbench.MixProject do\n  use Mix.Project\n  def project, do: [app: :scanbench, version: \"0.1.0\", deps: []]\nend\n";
    write(&project.join("mix.exs"), mix)?;
    write(
        &lib.join("proto.ex"),
        "defprotocol Scanbench.P do\n  def size(x)\nend\n",
    )?;
    for i in 0..n {
        let (a, b, c) = ((i * 7 + 1) % n, (i * 13 + 5) % n, (i * 31 + 11) % n);
        let mut src = format!("defmodule Scanbench.M{i} do\n");
        if i % 10 == 0 {
            let _ = writeln!(src, "  defstruct v: {i}");
        }
        let _ = writeln!(src, "  @peers [Scanbench.M{b}, Scanbench.M{c}]");
        let _ = writeln!(src, "  def f(x) when x > 0, do: Scanbench.M{a}.g(x - 1)");
        let _ = writeln!(src, "  def f(_), do: length(@peers)");
        let _ = writeln!(src, "  def g(x), do: x + {i}\nend");
        if i % 10 == 0 {
            let _ = writeln!(
                src,
                "defimpl Scanbench.P, for: Scanbench.M{i} do\n  def size(s), do: s.v\nend"
            );
        }
        write(&lib.join(format!("m{i}.ex")), &src)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

fn compile(project: &Path, n: usize) -> Result<(), String> {
    let ebin = project.join("_build/dev/lib/scanbench/ebin");
    if beam_files(&ebin).is_ok_and(|(files, _)| files >= n) {
        return Ok(());
    }
    eprintln!(
        "xtask: compiling {n} modules with mix (once; cached in {})",
        project.display()
    );
    let status = Command::new("mix")
        .arg("compile")
        .current_dir(project)
        .env("MIX_ENV", "dev")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run mix: {e}"))?;
    if !status.success() {
        return Err(format!("mix compile failed in {}", project.display()));
    }
    Ok(())
}

fn beam_files(ebin: &Path) -> Result<(usize, u64), String> {
    let entries = std::fs::read_dir(ebin).map_err(|e| format!("{}: {e}", ebin.display()))?;
    let mut files = 0;
    let mut bytes = 0;
    for entry in entries.flatten() {
        if entry.path().extension() == Some("beam".as_ref()) {
            files += 1;
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok((files, bytes))
}

/// Drops the kernel's page cache so the next scan reads from disk; false unless root.
fn drop_page_cache() -> bool {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

/// Runs the tool once and returns its wall time and peak resident set (KiB, from wait4).
fn measure(binary: &PathBuf, project: &Path, args: &[&str]) -> Result<(Duration, i64), String> {
    let started = Instant::now();
    let child = Command::new(binary)
        .args(args)
        .current_dir(project)
        .env_remove("MIX_ENV")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child's pid with valid pointers to locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if pid < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "mix-remote {} failed (status {status})",
            args.join(" ")
        ));
    }
    Ok((wall, usage.ru_maxrss))
}
