//! A private PostgreSQL server: `initdb` into a temporary directory, `postgres` on 127.0.0.1 and
//! a free port, as a non-root user, stopped and removed on drop.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::procs;
use crate::sshd::free_port;
use crate::stderr_log::{SharedLog, joined, read_lines};

/// Where Debian's `postgresql` packages put the server binaries: `<this>/<version>/bin`.
const PG_ROOT: &str = "/usr/lib/postgresql";
/// The system user the Debian package creates; the server runs as it when we are root.
const PG_SYSTEM_USER: &str = "postgres";
/// The superuser `initdb` creates.
const ADMIN: &str = "admin";
/// The role and database a test (and a fixture) uses; the role owns the database.
const APP: &str = "mix_remote";
/// How long the server may take to accept connections, and to shut down.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The line the server prints once it accepts connections.
const READY_LINE: &str = "database system is ready to accept connections";

/// A PostgreSQL server for one test, with a database [`Postgres::database`] owned by the
/// (non-superuser) role [`Postgres::user`], trusted on 127.0.0.1 without a password.
///
/// Dropping it (also while a test panics) shuts the server and all its processes down and
/// removes its directory.
pub struct Postgres {
    child: Child,
    bin: PathBuf,
    port: u16,
    log: SharedLog,
    /// The data directory's parent; removed after the server has stopped.
    dir: TempDir,
}

/// Who runs `initdb` and `postgres`: the `postgres` system user when we are root, else us.
#[derive(Clone, Copy)]
struct RunAs(Option<(u32, u32)>);

impl RunAs {
    fn find() -> Result<RunAs, String> {
        if !crate::is_root() {
            return Ok(RunAs(None));
        }
        let passwd = fs::read_to_string("/etc/passwd")
            .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
        passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == PG_SYSTEM_USER)
            .and_then(|f| Some(RunAs(Some((f[2].parse().ok()?, f[3].parse().ok()?)))))
            .ok_or_else(|| {
                format!(
                    "PostgreSQL refuses to run as root and there is no `{PG_SYSTEM_USER}` user \
                     (Debian: apt-get install postgresql)"
                )
            })
    }

    /// A command for `program` as this user (dropping root's groups too), in `dir`.
    fn command(self, program: &Path, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir)
            .env_remove("PGDATA")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.0 {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

impl Postgres {
    /// Starts a server, waits until it accepts connections and creates the test's role and
    /// database. Panics with the reason (and the server's log) if it cannot.
    pub fn start() -> Postgres {
        Postgres::try_start().unwrap_or_else(|e| panic!("testkit: cannot start PostgreSQL: {e}"))
    }

    /// Like [`Postgres::start`], with an error message instead of a panic.
    pub fn try_start() -> Result<Postgres, String> {
        let bin = server_bin()?;
        let run_as = RunAs::find()?;
        let dir = tempfile::Builder::new()
            .prefix("mix-remote-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        if let RunAs(Some((uid, gid))) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| {
                format!(
                    "cannot hand {} to {PG_SYSTEM_USER}: {e}",
                    dir.path().display()
                )
            })?;
        }
        let data = dir.path().join("data");
        let initdb = run_as
            .command(&bin.join("initdb"), dir.path())
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                ADMIN,
                "--auth=trust",
                "--no-sync",
                "--locale=C",
                "-E",
                "UTF8",
            ])
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb -D {} failed ({}):\n{}",
                data.display(),
                initdb.status,
                procs::output_text(&initdb)
            ));
        }

        let mut last_error = String::new();
        for _ in 0..20 {
            let port = free_port()?;
            match launch(&bin, run_as, dir.path(), &data, port) {
                Ok((child, log)) => {
                    let server = Postgres {
                        child,
                        bin,
                        port,
                        log,
                        dir,
                    };
                    // Two commands: CREATE DATABASE cannot run inside psql's implicit transaction.
                    for sql in [
                        format!("CREATE ROLE {APP} LOGIN"),
                        format!("CREATE DATABASE {APP} OWNER {APP}"),
                    ] {
                        server
                            .run_psql(ADMIN, "postgres", &sql)
                            .map_err(|e| format!("{sql}: {e}"))?;
                    }
                    return Ok(server);
                }
                // Someone took the port between our probe and the server's bind: another one.
                Err(Launch::PortTaken(e)) => last_error = e,
                Err(Launch::Failed(e)) => return Err(e),
            }
        }
        Err(format!("every port tried was taken; last: {last_error}"))
    }

    /// The address the server listens on.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test's database.
    pub fn database(&self) -> &str {
        APP
    }

    /// The role that owns [`Postgres::database`] (no password: trusted on 127.0.0.1).
    pub fn user(&self) -> &str {
        APP
    }

    /// libpq's variables naming the test's database (`PGHOST`, `PGPORT`, `PGDATABASE`,
    /// `PGUSER`): what `psql` and the `ecto_fix` fixture's `config/runtime.exs` read.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("PGHOST", self.host().to_owned()),
            ("PGPORT", self.port.to_string()),
            ("PGDATABASE", self.database().to_owned()),
            ("PGUSER", self.user().to_owned()),
        ]
    }

    /// Runs `sql` (one or more statements, stopping at the first error) with `psql` as
    /// [`Postgres::user`] on [`Postgres::database`]; returns what it printed, unaligned and
    /// without headers. Panics with psql's message if a statement fails.
    pub fn psql(&self, sql: &str) -> String {
        self.run_psql(APP, APP, sql)
            .unwrap_or_else(|e| panic!("testkit: psql {sql:?} failed: {e}"))
    }

    /// The rows `query` returns, each as its columns' text (NULL as an empty string).
    pub fn rows(&self, query: &str) -> Vec<Vec<String>> {
        self.psql(query)
            .lines()
            .map(|line| line.split('\x1f').map(str::to_owned).collect())
            .collect()
    }

    /// What the server printed on stderr so far.
    pub fn log(&self) -> String {
        joined(&self.log)
    }

    /// The server's (postmaster's) process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding the data directory, removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `psql` command (unaligned, tuples only, fields separated by U+001F, stopping at the
    /// first error) connected to [`Postgres::database`] as [`Postgres::user`] through the
    /// variables of [`Postgres::env`]: add `-c SQL`, or spawn it as a session of its own.
    pub fn psql_command(&self) -> Command {
        self.psql_as(APP, APP)
    }

    fn psql_as(&self, user: &str, database: &str) -> Command {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "\x1f",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .envs(self.env())
        .env("PGUSER", user)
        .env("PGDATABASE", database)
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null());
        cmd
    }

    fn run_psql(&self, user: &str, database: &str, sql: &str) -> Result<String, String> {
        let out = self
            .psql_as(user, database)
            .args(["-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(procs::output_text(&out))
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let pid = self.child.id();
        let children = procs::descendants(pid);
        // Immediate shutdown: the postmaster stops its processes, then exits; the data goes anyway.
        procs::signal("QUIT", &[pid]);
        let deadline = Instant::now() + READY_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        procs::signal("KILL", &children);
        // `dir` is dropped after this: the data directory goes once nothing uses it.
    }
}

/// Why a launch failed.
enum Launch {
    PortTaken(String),
    Failed(String),
}

/// Starts `postgres` on 127.0.0.1:`port` (TCP only) and waits for its "ready" line.
fn launch(
    bin: &Path,
    run_as: RunAs,
    dir: &Path,
    data: &Path,
    port: u16,
) -> Result<(Child, SharedLog), Launch> {
    let mut cmd = run_as.command(&bin.join("postgres"), dir);
    cmd.arg("-D")
        .arg(data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .args(["-c", "logging_collector=off"])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Launch::Failed(format!("cannot run {cmd:?}: {e}")))?;
    let (log, lines) = read_lines(
        child.stderr.take().expect("stderr is piped"),
        "testkit-postgres-stderr",
    );
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(READY_LINE) => return Ok((child, log)),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Launch::Failed(format!(
                    "postgres did not accept connections within {READY_TIMEOUT:?}; it printed:\n{}",
                    joined(&log)
                )));
            }
            Err(RecvTimeoutError::Disconnected) => {
                // stderr closed: the server has exited.
                let status = child.wait();
                let printed = joined(&log);
                let message =
                    format!("postgres exited ({status:?}) before starting; it printed:\n{printed}");
                return Err(if printed.contains("Address already in use") {
                    Launch::PortTaken(message)
                } else {
                    Launch::Failed(message)
                });
            }
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, `postgres` and `psql`.
fn server_bin() -> Result<PathBuf, String> {
    let missing = || {
        format!(
            "no PostgreSQL server in {PG_ROOT}/<version>/bin (Debian: apt-get install postgresql)"
        )
    };
    let entries = fs::read_dir(PG_ROOT).map_err(|_| missing())?;
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "postgres", "psql"]
                .iter()
                .all(|b| bin.join(b).is_file())
                .then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .ok_or_else(missing)
}
