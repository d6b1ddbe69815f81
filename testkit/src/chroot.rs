//! Other OTP and Elixir releases for cross-version tests: Debian chroots (trixie: OTP 27,
//! Elixir 1.18; sid: OTP 29, Elixir 1.20) that `.ci/run` creates under [`Chroot::DIR`].
//!
//! A chroot serves two ways. As the remote host's `elixir`: [`Chroot::elixir`] is a wrapper to
//! pass as `--elixir`, which runs the chroot's `elixir` with the same arguments, environment and
//! stdin; the chroot shares the host's network namespace, so the reverse tunnels on 127.0.0.1
//! work. And as a build machine: [`Chroot::compiled_fixture`] compiles a fixture with the
//! chroot's `mix`. Everything a test writes (the wrapper, an inetrc, project copies) lives in
//! temporary directories removed on drop; the chroot itself is never modified.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::fixture::{copy_sources, fixture_source};

/// A chroot of one Debian release, usable as another OTP and Elixir.
pub struct Chroot {
    root: PathBuf,
    otp_release: String,
    /// Holds the `elixir` wrapper.
    wrapper_dir: TempDir,
    /// Inside the chroot: the inetrc the wrapper points the remote node to.
    _inside: TempDir,
}

/// A fixture compiled inside a chroot, removed with its build on drop.
pub struct ChrootProject {
    dir: TempDir,
}

impl ChrootProject {
    /// The project directory, as the host sees it.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Chroot {
    /// Where `.ci/run` creates the chroots, one directory per Debian release.
    pub const DIR: &str = "/var/cache/mix-remote/chroots";

    /// The chroot of Debian `release` (`trixie`, `sid`). When it is absent or we are not root
    /// (chroot needs root), prints why on stderr and returns None so the test can return early;
    /// under CI (`CI` set) it panics instead: there, `.ci/run` must have created it.
    pub fn open(release: &str) -> Option<Chroot> {
        let root = Path::new(Chroot::DIR).join(release);
        let missing = if !crate::is_root() {
            Some("chroot needs root".to_owned())
        } else if !root.join("usr/bin/elixir").is_file() {
            Some(format!("{} has no usr/bin/elixir", root.display()))
        } else {
            None
        };
        if let Some(why) = missing {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!(
                    "testkit: the {release} chroot is required in CI ({why}); .ci/run creates it"
                );
            }
            eprintln!("testkit: skipping a test that needs the {release} chroot: {why}");
            return None;
        }
        Some(Chroot::set_up(root).unwrap_or_else(|e| panic!("testkit: chroot {release}: {e}")))
    }

    fn set_up(root: PathBuf) -> Result<Chroot, String> {
        let otp = Command::new("chroot")
            .arg(&root)
            .args(["erl", "-noshell", "-eval"])
            .arg("io:put_chars(erlang:system_info(otp_release)), halt().")
            .env("ERL_CRASH_DUMP_BYTES", "0")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run chroot: {e}"))?;
        if !otp.status.success() {
            return Err(format!(
                "erl failed inside: {}",
                String::from_utf8_lossy(&otp.stderr)
            ));
        }
        let otp_release = String::from_utf8_lossy(&otp.stdout).trim().to_owned();
        // A minbase chroot has no /etc/hosts, so the node could not resolve `localhost`, the host
        // part of both node names: an inetrc names it instead, without touching the chroot.
        let inside = tempfile::Builder::new()
            .prefix("mix-remote-chroot-")
            .tempdir_in(root.join("tmp"))
            .map_err(|e| format!("cannot create a directory in its /tmp: {e}"))?;
        fs::write(
            inside.path().join("inetrc"),
            "{host, {127,0,0,1}, [\"localhost\"]}.\n{lookup, [file, native]}.\n",
        )
        .map_err(|e| format!("cannot write its inetrc: {e}"))?;
        let inetrc = Path::new("/").join(inside.path().strip_prefix(&root).expect("inside root"));
        let wrapper_dir = tempfile::Builder::new()
            .prefix("mix-remote-chroot-")
            .tempdir()
            .map_err(|e| format!("cannot create the wrapper directory: {e}"))?;
        let wrapper = wrapper_dir.path().join("elixir");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec chroot {} /usr/bin/env LANG=C.UTF-8 ERL_INETRC={} elixir \"$@\"\n",
                root.display(),
                inetrc.join("inetrc").display()
            ),
        )
        .map_err(|e| format!("cannot write the wrapper: {e}"))?;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make the wrapper executable: {e}"))?;
        Ok(Chroot {
            root,
            otp_release,
            wrapper_dir,
            _inside: inside,
        })
    }

    /// The chroot's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The chroot's OTP release (`"27"`), as its `erl` reports it.
    pub fn otp_release(&self) -> &str {
        &self.otp_release
    }

    /// An executable that runs the chroot's `elixir` with the same arguments, environment and
    /// stdin: pass it as `--elixir` to make the chroot the remote host's Elixir.
    pub fn elixir(&self) -> PathBuf {
        self.wrapper_dir.path().join("elixir")
    }

    /// A command that runs `program` inside the chroot (as `chroot ROOT program`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.root)
            .args(["/usr/bin/env", "LANG=C.UTF-8", "HOME=/tmp", program])
            .env("ERL_CRASH_DUMP_BYTES", "0");
        cmd
    }

    /// Copies the Mix project `fixtures/<name>` into the chroot's /tmp and compiles it there with
    /// the chroot's `mix` (MIX_ENV=dev); panics with the compiler's output if that fails.
    pub fn compiled_fixture(&self, name: &str) -> ChrootProject {
        let source = fixture_source(name);
        let dir = tempfile::Builder::new()
            .prefix("mix-remote-fixture-")
            .tempdir_in(self.root.join("tmp"))
            .unwrap_or_else(|e| panic!("testkit: cannot create a project dir in the chroot: {e}"));
        copy_sources(&source, dir.path())
            .unwrap_or_else(|e| panic!("testkit: cannot copy fixture {name:?}: {e}"));
        let inside = Path::new("/").join(dir.path().strip_prefix(&self.root).expect("in root"));
        let out = self
            .command("sh")
            .arg("-c")
            // Mix's lock and pub/sub directories go to TMPDIR: inside the project, removed with it.
            .arg(format!(
                "cd {0} && mkdir .tmp && TMPDIR={0}/.tmp MIX_ENV=dev mix compile",
                inside.display()
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("testkit: cannot run chroot: {e}"));
        if !out.status.success() {
            panic!(
                "testkit: `mix compile` of fixture {name:?} in {} failed ({}):\n{}{}",
                self.root.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ChrootProject { dir }
    }
}
