//! The harness the end-to-end test binaries share: the tool run against a testkit sshd, each run
//! with a `TMPDIR` of its own so that whatever it leaves locally (files, sockets, processes naming
//! them) can be seen, and killed if a test panics while it runs.

use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use testkit::Sshd;

/// Generous: a cold run takes about a second here, but CI machines are shared.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long either side may take to clean up after the tool has exited.
pub const CLEANUP_LIMIT: Duration = Duration::from_secs(5);

/// A finished run.
pub struct Output {
    /// Exit code; None if a signal ended the tool.
    pub code: Option<i32>,
    /// Everything it wrote on stdout (what [`Running::stdout_until`] consumed excepted).
    pub stdout: String,
    /// Everything it wrote on stderr, including what [`Running::stderr_until`] read.
    pub stderr: String,
    /// The run's own TMPDIR, removed when the output is dropped.
    tmp: TempDir,
}

impl Output {
    /// Panics unless, within [`CLEANUP_LIMIT`], no local process names the run's TMPDIR (its ssh
    /// master and control commands, its directory's guardian) and nothing is left in it.
    pub fn assert_local_clean(&self) {
        let tmp = self.tmp.path();
        if let Err(left) =
            testkit::wait_until_no_processes_mentioning(&tmp.display().to_string(), CLEANUP_LIMIT)
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
}

/// Every path under `dir`.
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

/// `mix-remote run --host <sshd> -F <its config> ARGS` in `project`, with a TMPDIR of its own.
pub struct Tool {
    cmd: Command,
    tmp: TempDir,
}

impl Deref for Tool {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.cmd
    }
}

impl DerefMut for Tool {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }
}

impl Tool {
    /// Starts the tool; it is killed if the returned guard is dropped before [`finish`].
    pub fn spawn(mut self) -> std::io::Result<Running> {
        let child = self.cmd.spawn()?;
        Ok(Running {
            child: Some(child),
            tmp: Some(self.tmp),
            seen_stdout: Vec::new(),
            seen_stderr: Vec::new(),
        })
    }

    /// The run's TMPDIR.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }
}

/// The tool for `sshd`, in `project`, with `args` after `run --host H -F CONFIG`.
pub fn tool(sshd: &Sshd, project: &Path, args: &[&str]) -> Tool {
    tool_for(&sshd.host(), sshd.ssh_config(), project, args)
}

/// The tool for any `host` with the ssh config `config`.
pub fn tool_for(host: &str, config: &Path, project: &Path, args: &[&str]) -> Tool {
    tool_under(&[], host, config, project, args)
}

/// The tool run by the command `wrapper` (e.g. `["unshare", "--net", "--"]`), for `host`.
pub fn tool_under(
    wrapper: &[&str],
    host: &str,
    config: &Path,
    project: &Path,
    args: &[&str],
) -> Tool {
    let tmp = tempfile::Builder::new()
        .prefix("mix-remote-test-")
        .tempdir()
        .expect("a TMPDIR for the run");
    let binary = env!("CARGO_BIN_EXE_mix-remote");
    let mut cmd = match wrapper {
        [] => Command::new(binary),
        [program, rest @ ..] => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(binary);
            cmd
        }
    };
    // Settings only from the arguments: none from the caller's environment.
    for (name, _) in std::env::vars() {
        if name.starts_with("MIX_REMOTE_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("run")
        .arg("--host")
        .arg(host)
        .arg("-F")
        .arg(config)
        .args(args)
        .current_dir(project)
        .env_remove("MIX_ENV")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Tool { cmd, tmp }
}

/// A running tool, killed and reaped if dropped unfinished (a test panicked).
pub struct Running {
    child: Option<Child>,
    tmp: Option<TempDir>,
    seen_stdout: Vec<u8>,
    seen_stderr: Vec<u8>,
}

impl Running {
    /// The tool's pid.
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The run's TMPDIR.
    pub fn tmp(&self) -> &Path {
        self.tmp.as_ref().expect("running").path()
    }

    /// Reads stdout until it has printed `pattern`; panics if it ends first. What was read is
    /// not part of [`Output::stdout`].
    pub fn stdout_until(&mut self, pattern: &str) -> String {
        let pipe = self.child.as_mut().and_then(|c| c.stdout.as_mut());
        read_until(pipe, &mut self.seen_stdout, pattern, "stdout")
    }

    /// Reads stderr until it has printed `pattern`; panics if it ends first. What was read is
    /// kept in [`Output::stderr`].
    pub fn stderr_until(&mut self, pattern: &str) -> String {
        let pipe = self.child.as_mut().and_then(|c| c.stderr.as_mut());
        read_until(pipe, &mut self.seen_stderr, pattern, "stderr")
    }

    /// Sends `signal` (e.g. `-INT`) to the tool.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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

/// Waits for the run (killing it past [`RUN_LIMIT`]) and collects its output.
pub fn finish(mut run: Running) -> Output {
    let mut child = run.child.take().expect("running");
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mix-remote") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mix-remote did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::from_utf8_lossy(&run.seen_stderr).into_owned();
    stderr.push_str(&err.join().expect("stderr reader").expect("utf-8 stderr"));
    Output {
        code: status.code(),
        stdout: out.join().expect("stdout reader").expect("utf-8 stdout"),
        stderr,
        tmp: run.tmp.take().expect("running"),
    }
}

/// Reads a pipe to its end on a thread (empty if the caller already took it).
fn read_all(
    pipe: Option<impl Read + Send + 'static>,
) -> std::thread::JoinHandle<std::io::Result<String>> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_string(&mut s)?;
        }
        Ok(s)
    })
}

/// Runs the tool with `args` on the demo fixture and checks that it left nothing on either side.
pub fn run(sshd: &Sshd, args: &[&str]) -> Output {
    let project = testkit::compiled_fixture("demo");
    let out = finish(
        tool(sshd, &project, args)
            .spawn()
            .expect("spawn mix-remote"),
    );
    assert_remote_clean(sshd);
    out.assert_local_clean();
    out
}

/// Panics unless, within [`CLEANUP_LIMIT`], no process of the run's sessions is left on the remote.
pub fn assert_remote_clean(sshd: &Sshd) {
    if let Err(left) = sshd.wait_until_no_session_processes(CLEANUP_LIMIT) {
        panic!("processes of the run remain on the remote: {left:?}");
    }
}

/// Starts `Demo.Worker.sleep_forever` (with `extra` flags) and returns once the call is running on
/// the remote.
pub fn start_sleeper_with(sshd: &Sshd, extra: &[&str]) -> Running {
    let project = testkit::compiled_fixture("demo");
    let args = [extra, &["Demo.Worker.sleep_forever"]].concat();
    let mut run = tool(sshd, &project, &args)
        .spawn()
        .expect("spawn mix-remote");
    run.stdout_until("sleeping\n");
    assert!(
        sshd.session_processes()
            .iter()
            .any(|p| p.cmdline.contains("beam")),
        "no remote node while the call runs: {:?}",
        sshd.session_processes()
    );
    run
}

/// Starts `Demo.Worker.sleep_forever` and returns once the call is running on the remote.
pub fn start_sleeper(sshd: &Sshd) -> Running {
    start_sleeper_with(sshd, &[])
}

/// A stand-in for `elixir` on the remote (the test host is this machine): a script that runs
/// `body`, typically ending in `exec elixir "$@"`.
pub struct Wrapper {
    dir: TempDir,
}

impl Wrapper {
    /// A wrapper script running `body`.
    pub fn new(body: &str) -> Wrapper {
        let dir = tempfile::Builder::new()
            .prefix("mix-remote-elixir-")
            .tempdir()
            .expect("a directory for the wrapper");
        let path = dir.path().join("elixir");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the wrapper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the wrapper executable");
        Wrapper { dir }
    }

    /// A gate: the real elixir starts only once [`Wrapper::open`] is called, so a test can act
    /// while the remote node is booting (the tunnel exists, nothing has connected back).
    pub fn gate() -> Wrapper {
        let wrapper = Wrapper::new("");
        let open = wrapper.dir.path().join("open");
        std::fs::write(
            wrapper.path(),
            format!(
                "#!/bin/sh\nwhile [ ! -e '{}' ]; do sleep 0.05; done\nexec elixir \"$@\"\n",
                open.display()
            ),
        )
        .expect("write the gate");
        wrapper
    }

    /// The script, for `--elixir`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("elixir")
    }

    /// Opens the gate.
    pub fn open(&self) {
        std::fs::write(self.dir.path().join("open"), b"").expect("open the gate");
    }
}
