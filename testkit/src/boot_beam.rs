//! The boot program's beam as this machine's `elixir` builds it from `templates/`: what `cargo
//! xtask boot-beam` commits, and what the test that guards the committed bytes rebuilds.

use std::path::PathBuf;
use std::process::Command;

/// What the host's `elixir` runs to build the beams (arguments: boot.exs, run_dirs.exs, the
/// output directory). boot.exs is the module `:mix_remote_boot` (the port mapper's functions
/// among its own), with run_dirs.exs put in place of its placeholder line, and it is compiled
/// twice: as OTP 25 compiles it, for OTP 25 and newer, and with `r24` (no instruction of a later
/// release; `@compile :r24` added on the `defmodule` line, so the lines stay where they are) for
/// OTP 24. One beam cannot serve both: OTP 29 no longer loads the binary construction
/// instructions `r24` makes. Each is stripped to the chunks the loader reads and gzipped, which
/// the loader reads as it is (`beam_lib:strip/1`, which leaves nothing that names this machine):
/// about 30 KB.
const BUILD: &str = r#"
[source, run_dirs, out] = System.argv()
[above, below] = String.split(File.read!(source), "\n@RUN_DIRS@\n")
source = above <> "\n" <> File.read!(run_dirs) <> "\n" <> below
module = "\ndefmodule :mix_remote_boot do\n"
[_header, _module] = String.split(source, module)
Code.compiler_options(ignore_module_conflict: true)

for {name, compile} <- [{"mix_remote_boot.beam", ""}, {"mix_remote_boot_otp24.beam", " @compile :r24"}] do
  text = String.replace(source, module, "\ndefmodule :mix_remote_boot do" <> compile <> "\n")
  [{:mix_remote_boot, beam}] = Code.compile_string(text, "boot.exs")
  {:ok, {:mix_remote_boot, stripped}} = :beam_lib.strip(beam)
  File.write!(Path.join(out, name), stripped)
end
"#;

/// The boot program's source, in the workspace.
pub fn boot_source() -> PathBuf {
    crate::fixture::repo_root().join("templates/boot.exs")
}

/// The committed beams, in the workspace: for OTP 25 and newer, and for OTP 24.
pub fn boot_beam_paths() -> [PathBuf; 2] {
    let templates = crate::fixture::repo_root().join("templates");
    [
        templates.join("mix_remote_boot.beam"),
        templates.join("mix_remote_boot_otp24.beam"),
    ]
}

/// Compiles the boot program with the host's `elixir` in a temporary directory; returns the
/// beams' bytes in the order of [`boot_beam_paths`], or what went wrong (a compiler warning too:
/// the program must compile cleanly).
pub fn build_boot_beams() -> Result<[Vec<u8>; 2], String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let out = Command::new("elixir")
        .arg("-e")
        .arg(BUILD)
        .arg(boot_source())
        .arg(crate::fixture::repo_root().join("templates/run_dirs.exs"))
        .arg(dir.path())
        .env("ERL_CRASH_DUMP_BYTES", "0")
        .output()
        .map_err(|e| format!("cannot run elixir: {e}"))?;
    if !out.status.success() || !out.stderr.is_empty() {
        return Err(format!(
            "compiling {} failed: {}{}",
            boot_source().display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let read = |path: PathBuf| {
        let beam = dir.path().join(path.file_name().expect("a file name"));
        std::fs::read(&beam).map_err(|e| format!("{}: {e}", beam.display()))
    };
    let [new, old] = boot_beam_paths();
    Ok([read(new)?, read(old)?])
}
