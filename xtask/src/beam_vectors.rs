//! `cargo xtask beam-vectors`: compiles the test vectors of the BEAM reader with each Debian
//! release's own Erlang/OTP and Elixir, and writes beside each `.beam` what that release's
//! `beam_lib` says of it (`.facts`), so the reader is checked against real compiler output.
//!
//! bookworm is the host when the host's OTP is bookworm's; every other release runs in a minimal
//! chroot under `--chroots DIR` (default `/var/cache/mix-remote/chroots`), made with `debootstrap`
//! when absent, from the Debian mirror of the machine's apt sources (`.ci/debian-mirror`). Only a
//! work directory under the root's `/tmp` is written, and removed afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian releases compiled, oldest first, with the OTP release each ships.
const RELEASES: [(&str, &str); 3] = [("bookworm", "25"), ("trixie", "27"), ("sid", "29")];

/// Where chroots live unless `--chroots` says otherwise.
const DEFAULT_CHROOTS: &str = "/var/cache/mix-remote/chroots";

/// The work directory, the same path in every root so that paths recorded in the compiled files
/// (CInf, Dbgi) do not change from one regeneration to the next.
const WORK: &str = "tmp/mix-remote-beam-vectors";

/// The sources compiled, kept in `tests/vectors/src`.
const SOURCES: [&str; 3] = ["vec_on_load.erl", "vec_literals.erl", "vec_elixir.ex"];

/// Files copied and stripped with `beam_lib:strip_files`: one Erlang, one Elixir module.
const STRIPPED: [&str; 2] = ["vec_literals.beam", "Elixir.VecElixir.MemoryStore.beam"];

/// Writes the facts of a list of `.beam` files; runs inside each release.
const FACTS_SCRIPT: &str = include_str!("beam_facts.escript");

/// Why the vectors could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VectorsError {
    /// The command line is wrong.
    #[error("{0}\nusage: cargo xtask beam-vectors [--chroots DIR]")]
    Usage(String),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A tool could not be started or exited with a failure.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command as run.
        command: String,
        /// Its exit status and error output, or why it could not start.
        detail: String,
    },
    /// A release's root gave an OTP release other than the one its Debian release ships.
    #[error("{suite} at {root} has OTP {found}, expected {expected}")]
    WrongRelease {
        /// The Debian release.
        suite: &'static str,
        /// Its root directory.
        root: PathBuf,
        /// What `erl` reported.
        found: String,
        /// What the release ships.
        expected: &'static str,
    },
    /// The fixed work directory is in use (another run, or one that was killed).
    #[error("{0} exists: another run is going on, or remove it")]
    Busy(PathBuf),
}

/// Runs the task with the arguments after `beam-vectors`.
pub fn run(args: &[String]) -> Result<(), VectorsError> {
    let chroots = match args {
        [] => PathBuf::from(DEFAULT_CHROOTS),
        [flag, dir] if flag == "--chroots" => PathBuf::from(dir),
        _ => {
            return Err(VectorsError::Usage(format!(
                "unexpected arguments {args:?}"
            )));
        }
    };
    let root = super::workspace_root();
    let vectors = root.join("tests/vectors");
    for (suite, otp) in RELEASES {
        let release = Root::find(suite, otp, &chroots)?;
        let out = vectors.join(format!("otp{otp}"));
        release.compile(&vectors.join("src"), &out)?;
        report(suite, &out)?;
    }
    Ok(())
}

/// Where a release's tools run: the host itself (`/`) or a chroot.
struct Root {
    path: PathBuf,
    chroot: bool,
}

impl Root {
    /// Picks the host if its OTP is the release's, else the chroot, made if absent.
    fn find(suite: &'static str, otp: &'static str, chroots: &Path) -> Result<Root, VectorsError> {
        let host = Root {
            path: PathBuf::from("/"),
            chroot: false,
        };
        if host.otp_release().as_deref().ok() == Some(otp) {
            return Ok(host);
        }
        let path = chroots.join(suite);
        if !path.join("usr/bin/erlc").exists() {
            eprintln!("xtask: creating a {suite} chroot at {}", path.display());
            let mirror = succeed(&mut Command::new(
                super::workspace_root().join(".ci/debian-mirror"),
            ))?;
            let mut debootstrap = Command::new("debootstrap");
            debootstrap
                .args([
                    "--variant=minbase",
                    "--include=erlang-nox,erlang-dev,elixir",
                    suite,
                ])
                .arg(&path)
                .arg(mirror.trim());
            succeed(&mut debootstrap)?;
        }
        let root = Root { path, chroot: true };
        let found = root.otp_release()?;
        if found != otp {
            return Err(VectorsError::WrongRelease {
                suite,
                root: root.path,
                found,
                expected: otp,
            });
        }
        Ok(root)
    }

    /// The OTP release the root's `erl` reports.
    fn otp_release(&self) -> Result<String, VectorsError> {
        let mut erl = self.command("/", "erl");
        erl.args([
            "-noshell",
            "-eval",
            "io:put_chars(erlang:system_info(otp_release)), halt().",
        ]);
        succeed(&mut erl)
    }

    /// A command run in this root with `dir` (a path inside the root) as working directory.
    fn command(&self, dir: &str, program: &str) -> Command {
        let mut command = if self.chroot {
            let mut c = Command::new("chroot");
            c.arg(&self.path).args(["env", "-C", dir, program]);
            c
        } else {
            let mut c = Command::new(program);
            c.current_dir(dir);
            c
        };
        // elixirc warns and mangles non-ASCII output without a UTF-8 locale; minbase has C.UTF-8.
        command.env("LANG", "C.UTF-8");
        command
    }

    /// Compiles the sources in `src` and replaces `out` with the `.beam` and `.facts` files.
    fn compile(&self, src: &Path, out: &Path) -> Result<(), VectorsError> {
        let inside = format!("/{WORK}");
        let work = WorkDir::create(self.path.join(WORK))?;
        for name in SOURCES {
            copy(&src.join(name), &work.0.join(name))?;
        }
        write(&work.0.join("beam_facts.escript"), FACTS_SCRIPT)?;
        for sub in ["compressed", "stripped"] {
            create_dir(&work.0.join(sub))?;
        }

        succeed(
            self.command(&inside, "erlc")
                .args(["vec_on_load.erl", "vec_literals.erl"]),
        )?;
        succeed(self.command(&inside, "erlc").args([
            "+compressed",
            "-o",
            "compressed",
            "vec_literals.erl",
        ]))?;
        succeed(
            self.command(&inside, "elixirc")
                .args(["-o", ".", "vec_elixir.ex"]),
        )?;
        for name in STRIPPED {
            copy(&work.0.join(name), &work.0.join("stripped").join(name))?;
        }
        let list = STRIPPED.map(|n| format!("\"stripped/{n}\"")).join(", ");
        let strip = format!("{{ok, _}} = beam_lib:strip_files([{list}]), halt().");
        succeed(
            self.command(&inside, "erl")
                .args(["-noshell", "-eval", &strip]),
        )?;

        let beams = beams(&work.0)?;
        let relative: Vec<String> = beams
            .iter()
            .map(|b| b.strip_prefix(&work.0).unwrap_or(b).display().to_string())
            .collect();
        succeed(
            self.command(&inside, "escript")
                .arg("beam_facts.escript")
                .args(&relative),
        )?;

        if out.exists() {
            fs::remove_dir_all(out).map_err(io("remove", out))?;
        }
        for (beam, rel) in beams.iter().zip(&relative) {
            let target = out.join(rel);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io("create", parent))?;
            }
            copy(beam, &target)?;
            copy(
                &beam.with_extension("facts"),
                &target.with_extension("facts"),
            )?;
        }
        Ok(())
    }
}

/// The fixed work directory, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(path: PathBuf) -> Result<WorkDir, VectorsError> {
        match fs::create_dir(&path) {
            Ok(()) => Ok(WorkDir(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(VectorsError::Busy(path))
            }
            Err(e) => Err(io("create", &path)(e)),
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every `.beam` under `dir` (one level of subdirectories), sorted.
fn beams(dir: &Path) -> Result<Vec<PathBuf>, VectorsError> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    for sub in ["compressed", "stripped"] {
        dirs.push(dir.join(sub));
    }
    for d in dirs {
        for entry in fs::read_dir(&d).map_err(io("list", &d))? {
            let path = entry.map_err(io("list", &d))?.path();
            if path.extension().is_some_and(|e| e == "beam") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Prints the files written and their sizes.
fn report(suite: &str, out: &Path) -> Result<(), VectorsError> {
    let mut total = 0;
    for beam in beams(out)? {
        let size = fs::metadata(&beam).map_err(io("stat", &beam))?.len();
        total += size;
        eprintln!("{size:>7}  {}", beam.display());
    }
    eprintln!(
        "{total:>7}  bytes of .beam from {suite} in {}",
        out.display()
    );
    Ok(())
}

/// Runs a command to completion; its standard output on success, its error output otherwise.
fn succeed(command: &mut Command) -> Result<String, VectorsError> {
    let shown = format!("{command:?}");
    let fail = |detail| VectorsError::Command {
        command: shown.clone(),
        detail,
    };
    let output = command.output().map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        return Err(fail(format!("{}\n{stderr}{stdout}", output.status)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VectorsError {
    let path = path.to_owned();
    move |source| VectorsError::Io { what, path, source }
}

fn copy(from: &Path, to: &Path) -> Result<(), VectorsError> {
    fs::copy(from, to).map(drop).map_err(io("copy", from))
}

fn write(path: &Path, text: &str) -> Result<(), VectorsError> {
    fs::write(path, text).map_err(io("write", path))
}

fn create_dir(path: &Path) -> Result<(), VectorsError> {
    fs::create_dir(path).map_err(io("create", path))
}
