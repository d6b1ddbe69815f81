//! The one way tests launch mix-remote: [`mix_remote`] builds a run in a project directory, with
//! none of the caller's mix-remote or Mix settings, a `TMPDIR` of its own and the shared limits.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::command::{KillOnDrop, read_all, wait_until};
use crate::{CLEANUP_LIMIT, RUN_LIMIT, Sshd, VENDOR_VAR, vendor_dir};

/// Variables of the caller's environment the binary never sees: besides every `MIX_REMOTE_*`,
/// those that would choose another Mix build than the test means.
const CLEARED: [&str; 3] = ["MIX_ENV", "MIX_BUILD_PATH", "MIX_BUILD_ROOT"];

/// mix-remote to be run in the project directory `dir`; see [`MixRemote`].
pub fn mix_remote(dir: impl AsRef<Path>) -> MixRemote {
    MixRemote::new(exe(), dir.as_ref(), std::env::vars_os())
}

/// True for the variables of the caller's environment that the run must not inherit.
fn cleared(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("MIX_REMOTE_") || CLEARED.contains(&n))
}

/// The binary: where `cargo test` says it is (`CARGO_BIN_EXE_mix-remote`, set at run time by
/// cargo 1.94 and later), else beside the test executable (`target/<profile>/deps/<test>-<hash>`
/// next to `target/<profile>/mix-remote`), which is where cargo builds it for integration tests.
fn exe() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_mix-remote") {
        return PathBuf::from(path);
    }
    let test = std::env::current_exe().expect("testkit: the test executable's path");
    let mut dir = test.parent().expect("a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("mix-remote");
    assert!(
        path.is_file(),
        "testkit: no mix-remote binary at {} (CARGO_BIN_EXE_mix-remote is unset): run the tests \
         of the mix-remote package with `cargo test`, which builds it",
        path.display()
    );
    path
}

/// A run of mix-remote being set up, in the spirit of `std::process::Command`: arguments,
/// environment, stdin, a wrapper command. Each [`MixRemote::spawn`] starts the binary in the
/// project directory with stdout and stderr piped, stdin closed unless [`MixRemote::stdin`] gave
/// it something, no `MIX_REMOTE_*`, `MIX_ENV`, `MIX_BUILD_PATH` or `MIX_BUILD_ROOT` from the
/// caller's environment (only what [`MixRemote::env`] sets), `TMPDIR` a fresh directory that
/// the run and its output own, and [`VENDOR_VAR`] as testkit compiled the fixtures with (the run
/// compiles them again, which then changes nothing).
#[derive(Debug)]
pub struct MixRemote {
    exe: PathBuf,
    dir: PathBuf,
    inherited: Vec<(OsString, OsString)>,
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
}

impl MixRemote {
    /// `exe` in `dir`, inheriting what the run may of `caller_env`.
    fn new(
        exe: PathBuf,
        dir: &Path,
        caller_env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> MixRemote {
        MixRemote {
            exe,
            dir: dir.to_owned(),
            inherited: caller_env
                .into_iter()
                .filter(|(name, _)| !cleared(name))
                .collect(),
            wrapper: Vec::new(),
            args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut MixRemote {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I>(&mut self, args: I) -> &mut MixRemote
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds `run --host <sshd> -F <its ssh config>`: the entry and its flags come next.
    pub fn run_on(&mut self, sshd: &Sshd) -> &mut MixRemote {
        self.args(["run", "--host", &sshd.host(), "-F"])
            .arg(sshd.ssh_config())
    }

    /// Adds `eval <code> --host <sshd> -F <its ssh config>`: its flags come next.
    pub fn eval_on(&mut self, sshd: &Sshd, code: &str) -> &mut MixRemote {
        self.args(["eval", code, "--host", &sshd.host(), "-F"])
            .arg(sshd.ssh_config())
    }

    /// Sets an environment variable of the run (also one of those cleared by default).
    pub fn env(&mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut MixRemote {
        self.envs
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Gives the run `bytes` on stdin, then end-of-file.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut MixRemote {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs the binary through `command`, given the binary's path and arguments after its own
    /// (e.g. `["unshare", "--net", "--"]`); the environment and directory are the run's.
    pub fn wrapper(&mut self, command: &[&str]) -> &mut MixRemote {
        self.wrapper = command.iter().map(OsString::from).collect();
        self
    }

    /// Runs a copy of the binary, made in `dir` (once): the same code in another file, which is
    /// another build to a warm session.
    pub fn copied_binary(&mut self, dir: &Path) -> &mut MixRemote {
        let copy = dir.join("mix-remote");
        if !copy.exists() {
            std::fs::copy(&self.exe, &copy).expect("testkit: a copy of the binary");
        }
        self.exe = copy;
        self
    }

    /// The program to start and its arguments: the binary's, or the wrapper's followed by them.
    pub(crate) fn command_line(&self) -> (OsString, Vec<OsString>) {
        let mut line: Vec<OsString> = self.wrapper.clone();
        line.push(self.exe.clone().into_os_string());
        line.extend(self.args.iter().cloned());
        let program = line.remove(0);
        (program, line)
    }

    /// The project directory the run starts in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run's environment but `TMPDIR`, as [`MixRemote::spawn`] gives it: what it inherits,
    /// [`VENDOR_VAR`], then what [`MixRemote::env`] set.
    pub(crate) fn environment(&self) -> Vec<(OsString, OsString)> {
        let vendor = (OsString::from(VENDOR_VAR), vendor_dir().into_os_string());
        self.inherited
            .iter()
            .filter(|(k, _)| k != "TMPDIR")
            .cloned()
            .chain([vendor])
            .chain(self.envs.iter().cloned())
            .collect()
    }

    /// Starts the run; the returned handle kills it if dropped unfinished (a test panicked).
    pub fn spawn(&self) -> Running {
        let tmp = tempfile::Builder::new()
            .prefix("mix-remote-test-")
            .tempdir()
            .expect("testkit: a TMPDIR for the run");
        let (program, args) = self.command_line();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.inherited.iter().map(|(k, v)| (k, v)))
            .env("TMPDIR", tmp.path())
            // For the fixtures' mix.exs when the run compiles them, as testkit did.
            .env(VENDOR_VAR, vendor_dir())
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("testkit: cannot start {cmd:?}: {e}"));
        let feeder = self.stdin.clone().map(|bytes| {
            let mut pipe = child.stdin.take().expect("piped stdin");
            // A run that exits without reading it all closes the pipe: not an error here.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            })
        });
        Running {
            child: KillOnDrop(child),
            tmp,
            feeder,
            seen_stdout: Vec::new(),
            seen_stderr: Vec::new(),
        }
    }

    /// Runs to the end (killing it past [`RUN_LIMIT`]) and returns its output.
    pub fn run(&self) -> Output {
        self.spawn().finish()
    }
}

/// A started run; killed and reaped if dropped unfinished (a test panicked).
#[must_use = "dropping the run kills it"]
pub struct Running {
    child: KillOnDrop,
    tmp: TempDir,
    feeder: Option<JoinHandle<()>>,
    seen_stdout: Vec<u8>,
    seen_stderr: Vec<u8>,
}

impl Running {
    /// The pid of the process started (the wrapper's, if any).
    pub fn id(&self) -> u32 {
        self.child.0.id()
    }

    /// The run's `TMPDIR`.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// Reads stdout until it has printed `pattern`; returns all stdout read so far. Panics if
    /// stdout ends first.
    pub fn stdout_until(&mut self, pattern: &str) -> String {
        let pipe = self.child.0.stdout.as_mut();
        read_until(pipe, &mut self.seen_stdout, pattern, "stdout")
    }

    /// Reads stderr until it has printed `pattern`; returns all stderr read so far. Panics if
    /// stderr ends first.
    pub fn stderr_until(&mut self, pattern: &str) -> String {
        let pipe = self.child.0.stderr.as_mut();
        read_until(pipe, &mut self.seen_stderr, pattern, "stderr")
    }

    /// The next line of stdout, without its newline; None once stdout has ended.
    pub fn stdout_line(&mut self) -> Option<String> {
        let pipe = self.child.0.stdout.as_mut()?;
        let start = self.seen_stdout.len();
        let mut byte = [0u8; 1];
        while !self.seen_stdout[start..].ends_with(b"\n") {
            match pipe.read(&mut byte) {
                Ok(1) => self.seen_stdout.push(byte[0]),
                _ if self.seen_stdout.len() == start => return None,
                _ => break,
            }
        }
        let line = &self.seen_stdout[start..];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        Some(String::from_utf8_lossy(line).into_owned())
    }

    /// Sends `signal` (`INT`, `TERM`, `KILL`, ...) to the process started; panics unless `kill`
    /// could send it.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.id().to_string())
            .status()
            .expect("testkit: run kill");
        assert!(
            sent.success(),
            "testkit: kill -{signal} {} failed",
            self.id()
        );
    }

    /// Waits for the run to end (killing it and panicking past [`RUN_LIMIT`]) and collects its
    /// output.
    pub fn finish(mut self) -> Output {
        let child = &mut self.child.0;
        let out = read_all(child.stdout.take());
        let err = read_all(child.stderr.take());
        let status = wait_until(child, RUN_LIMIT);
        if let Some(feeder) = self.feeder.take() {
            feeder.join().expect("stdin writer");
        }
        let mut stdout = std::mem::take(&mut self.seen_stdout);
        stdout.extend(out.join().expect("stdout reader"));
        let mut stderr = std::mem::take(&mut self.seen_stderr);
        stderr.extend(err.join().expect("stderr reader"));
        // What it said before it hung is what tells why.
        let Some(status) = status else {
            panic!(
                "testkit: mix-remote did not finish within {RUN_LIMIT:?}; its stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        };
        Output {
            code: status.code(),
            stdout: utf8(stdout, "stdout"),
            stderr: utf8(stderr, "stderr"),
            tmp: self.tmp,
        }
    }
}

/// `bytes` as text; panics (naming `stream`) unless they are UTF-8, as everything mix-remote
/// prints is.
fn utf8(bytes: Vec<u8>, stream: &str) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("mix-remote wrote non-UTF-8 on {stream}: {e}"))
}

/// Reads `pipe` into `seen` until `seen` ends with `pattern`; returns it as text.
fn read_until(
    pipe: Option<&mut (impl Read + ?Sized)>,
    seen: &mut Vec<u8>,
    pattern: &str,
    name: &str,
) -> String {
    let pipe = pipe.unwrap_or_else(|| panic!("{name} is not piped"));
    let mut byte = [0u8; 1];
    while !seen.ends_with(pattern.as_bytes()) {
        match pipe.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => panic!(
                "mix-remote closed {name} before printing {pattern:?}: {}",
                String::from_utf8_lossy(seen)
            ),
        }
    }
    String::from_utf8_lossy(seen).into_owned()
}

/// A finished run.
#[derive(Debug)]
pub struct Output {
    /// Exit code; None if a signal ended the run.
    pub code: Option<i32>,
    /// Everything it wrote on stdout, including what [`Running::stdout_until`] and
    /// [`Running::stdout_line`] read.
    pub stdout: String,
    /// Everything it wrote on stderr, including what [`Running::stderr_until`] read.
    pub stderr: String,
    /// The run's `TMPDIR`, removed when the output is dropped.
    tmp: TempDir,
}

impl Output {
    /// A finished run's output.
    pub(crate) fn new(code: Option<i32>, stdout: String, stderr: String, tmp: TempDir) -> Output {
        Output {
            code,
            stdout,
            stderr,
            tmp,
        }
    }

    /// The value of `key` in the `stats:` line a run given `-v` prints on stderr at its end;
    /// panics without that line or key.
    pub fn stat(&self, key: &str) -> u64 {
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("mix-remote: stats: "))
            .unwrap_or_else(|| panic!("no stats line in {}", self.stderr));
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    }

    /// Panics unless, within [`CLEANUP_LIMIT`], no local process names the run's `TMPDIR` (its
    /// ssh master and control commands, its directory's guardian) and nothing is left in it.
    pub fn assert_local_clean(&self) {
        assert_clean(self.tmp.path());
    }
}

/// Panics unless, within [`CLEANUP_LIMIT`], no local process names `tmp` (a run's `TMPDIR`) and
/// nothing is left in it.
pub(crate) fn assert_clean(tmp: &Path) {
    if let Err(left) =
        crate::wait_until_no_processes_mentioning(&tmp.display().to_string(), CLEANUP_LIMIT)
    {
        panic!("local processes of the run remain: {left:?}");
    }
    let deadline = Instant::now() + CLEANUP_LIMIT;
    loop {
        let left = entries(tmp);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("the run left files in its TMPDIR: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every path under `dir` (none if it cannot be read).
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The launcher around `sh -c script` in `/`, with `caller_env` (and PATH) as the caller's
    /// environment, so that what the child gets can be printed.
    fn shell_with(script: &str, caller_env: &[(&str, &str)]) -> MixRemote {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let env = caller_env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .chain([("PATH".into(), path)]);
        let mut sh = MixRemote::new(PathBuf::from("/bin/sh"), Path::new("/"), env);
        sh.args(["-c", script]);
        sh
    }

    fn shell(script: &str) -> MixRemote {
        shell_with(script, &[])
    }

    #[test]
    fn the_child_gets_none_of_the_callers_settings_and_a_tmpdir_of_its_own() {
        let caller = [
            ("MIX_REMOTE_HOST", "from-the-caller"),
            ("MIX_REMOTE_SSH_CONFIG", "/from/the/caller"),
            ("MIX_ENV", "prod"),
            ("MIX_BUILD_PATH", "/elsewhere"),
            ("MIX_BUILD_ROOT", "/elsewhere"),
            ("TMPDIR", "/shared"),
            ("KEPT", "yes"),
        ];
        let out = shell_with("env; pwd", &caller)
            .env("MIX_REMOTE_SSH_CONFIG", "/set/by/the/test")
            .run();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let mut vars: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(vars.pop(), Some("/"), "the project directory");
        vars.retain(|v| {
            !v.starts_with("PATH=") && !v.starts_with("PWD=") && !v.starts_with("SHLVL=")
        });
        vars.sort_unstable();
        let tmpdir = format!("TMPDIR={}", out.tmp.path().display());
        let vendor = format!("{VENDOR_VAR}={}", vendor_dir().display());
        assert_eq!(
            vars,
            [
                "KEPT=yes",
                "MIX_REMOTE_SSH_CONFIG=/set/by/the/test",
                vendor.as_str(),
                tmpdir.as_str()
            ],
            "testkit's own {VENDOR_VAR}, for the fixtures the run compiles"
        );
        out.assert_local_clean();
    }

    #[test]
    fn stdin_arrives_and_output_keeps_what_was_read_early() {
        let mut run = shell("cat; echo done >&2").stdin("one\ntwo").spawn();
        assert_eq!(run.stdout_line().as_deref(), Some("one"));
        assert_eq!(run.stdout_line().as_deref(), Some("two"));
        assert_eq!(run.stdout_line(), None);
        assert_eq!(run.stderr_until("done\n"), "done\n");
        let out = run.finish();
        assert_eq!((out.code, out.stdout.as_str()), (Some(0), "one\ntwo"));
        assert_eq!(out.stderr, "done\n");
    }

    #[test]
    fn a_wrapper_runs_the_binary_and_a_signal_ends_it() {
        let mut run = shell("echo ready; exec sleep 60");
        run.wrapper(&["env", "WRAPPED=yes"]);
        let mut run = run.spawn();
        run.stdout_until("ready\n");
        run.signal("KILL");
        assert_eq!(run.finish().code, None);
        let out = shell("echo $WRAPPED")
            .wrapper(&["env", "WRAPPED=yes"])
            .run();
        assert_eq!(out.stdout, "yes\n");
    }

    #[test]
    fn a_run_dropped_unfinished_is_killed() {
        let run = shell("exec sleep 60").spawn();
        let pid = run.id();
        drop(run);
        assert!(!crate::procs::is_alive(pid), "{pid} outlived its handle");
    }
}
