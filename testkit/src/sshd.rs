//! The private OpenSSH server: keys, configuration, start-up, inspection and
//! teardown.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::netns::Netns;
use crate::procs::{self, Proc};
use crate::stderr_log::{SharedLog, joined, read_lines};

/// The server binary; an absolute path because sshd re-executes itself.
const SSHD: &str = "/usr/sbin/sshd";
/// The environment variable sshd sets in every session (`SetEnv`).
const TAG_VAR: &str = "MIX_REMOTE_TEST_TAG";
/// How long sshd may take to report that it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The port the namespace firewall lets through.
const OPEN_PORT: u16 = 22;
/// The second port sshd listens on in a namespace, which the firewall blocks.
const BLOCKED_PORT: u16 = 2222;
/// The sessions' `TMPDIR`, under the server's temporary directory.
const REMOTE_TMP: &str = "remote-tmp";
/// Counter making this process's tags unique.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// A private OpenSSH server for one test, started by [`Sshd::start`] or
/// [`Sshd::start_in_netns`], stopped with everything it started when dropped.
pub struct Sshd {
    child: Child,
    /// The namespace of a "remote host"; None on loopback.
    netns: Option<Netns>,
    addr: SocketAddr,
    user: String,
    tag: String,
    client_config: PathBuf,
    log: SharedLog,
    /// The sessions' `XDG_RUNTIME_DIR`, if they have one ([`Builder::login_runtime_dir`]).
    runtime: Option<TempDir>,
    /// Keys, configurations, known_hosts; removed last.
    dir: TempDir,
}

impl Sshd {
    /// A private sshd on 127.0.0.1:`<free high port>`, logging in as the
    /// current user (works as non-root too: absolute path /usr/sbin/sshd,
    /// `StrictModes no`, `UsePAM no`, pubkey only).
    ///
    /// Panics if the server cannot be started; see [`Sshd::try_start`].
    pub fn start() -> Sshd {
        Sshd::try_start().unwrap_or_else(|e| panic!("testkit: cannot start sshd: {e}"))
    }

    /// Root only: a "remote host" in a fresh network namespace reached over a
    /// veth pair; sshd listens on 169.254.X.2:22 and ALSO on
    /// 169.254.X.2:2222; an nftables ruleset inside the namespace drops all
    /// input except loopback, established/related, and TCP/22 — so port 2222
    /// is unreachable from outside, which tests use to prove the firewall
    /// works.
    ///
    /// Panics if it cannot be set up; see [`Sshd::try_start_in_netns`].
    pub fn start_in_netns() -> Sshd {
        Sshd::try_start_in_netns()
            .unwrap_or_else(|e| panic!("testkit: cannot start sshd in a network namespace: {e}"))
    }

    /// Like [`Sshd::start`], with an error message instead of a panic.
    pub fn try_start() -> Result<Sshd, String> {
        Sshd::builder().try_start()
    }

    /// Options for a loopback server that differs from [`Sshd::start`]'s.
    pub fn builder() -> Builder {
        Builder {
            tcp_forwarding: true,
            login_runtime_dir: false,
            extra: String::new(),
            env: Vec::new(),
        }
    }

    fn try_start_with(options: &Builder) -> Result<Sshd, String> {
        let mut setup = Setup::new(&options.extra)?;
        setup.tcp_forwarding = options.tcp_forwarding;
        setup.env.clone_from(&options.env);
        if options.login_runtime_dir {
            setup.runtime = Some(memory_dir()?);
        }
        let mut last_error = String::new();
        for _ in 0..20 {
            let port = free_port()?;
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            match setup.launch(addr, &[addr], None) {
                Ok((child, log)) => return Ok(setup.finish(child, log, addr, None)),
                // Someone took the port between our probe and sshd's bind: another one.
                Err(Failure::PortTaken(e)) => last_error = e,
                Err(Failure::Other(e)) => return Err(e),
            }
        }
        Err(format!("every port tried was taken; last: {last_error}"))
    }

    /// Like [`Sshd::start_in_netns`], with an error message instead of a panic.
    pub fn try_start_in_netns() -> Result<Sshd, String> {
        if !crate::is_root() {
            return Err("a network namespace needs root".into());
        }
        let setup = Setup::new("")?;
        let ns = Netns::create()?;
        let ip = IpAddr::V4(ns.addr());
        let addr = SocketAddr::new(ip, OPEN_PORT);
        let listen = [addr, SocketAddr::new(ip, BLOCKED_PORT)];
        match setup.launch(addr, &listen, Some(&ns)) {
            Ok((child, log)) => Ok(setup.finish(child, log, addr, Some(ns))),
            Err(Failure::PortTaken(e) | Failure::Other(e)) => Err(e),
        }
    }

    /// `user@address` to pass to ssh.
    pub fn host(&self) -> String {
        format!("{}@{}", self.user, self.addr.ip())
    }

    /// The address sshd accepts connections on (127.0.0.1:PORT or 169.254.X.2:22).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client ssh_config file: Port, IdentityFile (generated ed25519 user
    /// key), IdentitiesOnly yes, UserKnownHostsFile (pre-seeded with the
    /// generated host key for the exact host:port as ssh writes it, e.g.
    /// `[127.0.0.1]:PORT` or the bare IP for port 22), StrictHostKeyChecking
    /// yes, BatchMode yes, LogLevel ERROR, GlobalKnownHostsFile /dev/null.
    /// Use with `ssh -F <this> <host>`.
    pub fn ssh_config(&self) -> &Path {
        &self.client_config
    }

    /// For netns hosts: the address of the port the firewall must block
    /// (169.254.X.2:2222); None for loopback.
    pub fn blocked_addr(&self) -> Option<SocketAddr> {
        self.netns
            .as_ref()
            .map(|ns| SocketAddr::new(IpAddr::V4(ns.addr()), BLOCKED_PORT))
    }

    /// For netns hosts: the name of the network namespace (for `ip netns
    /// exec`, `ip -n`); None for loopback.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_ref().map(|ns| ns.name())
    }

    /// The unique value of `MIX_REMOTE_TEST_TAG` in this server's sessions.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The sessions' temporary directory: sshd sets `TMPDIR` to it in every
    /// session (but on a server started with [`Builder::login_runtime_dir`]), so
    /// whatever a run leaves in the server's temp dir is here (and removed with
    /// the server).
    pub fn remote_tmp(&self) -> PathBuf {
        self.dir.path().join(REMOTE_TMP)
    }

    /// The run directories (`mix-remote-run-*`) in the sessions' temp dir, where runs put them:
    /// the runtime dir on a server started with [`Builder::login_runtime_dir`], else
    /// [`Sshd::remote_tmp`].
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.runtime_dir().unwrap_or(&self.remote_tmp()))
            .expect("the sessions' temp dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("mix-remote-run-"))
            })
            .collect()
    }

    /// The sessions' `XDG_RUNTIME_DIR` on a server started with
    /// [`Builder::login_runtime_dir`] (whose sessions have no `TMPDIR`).
    pub fn runtime_dir(&self) -> Option<&Path> {
        self.runtime.as_ref().map(TempDir::path)
    }

    /// What sshd printed on stderr so far (its last lines), for diagnosing a
    /// failing test.
    pub fn log(&self) -> String {
        let lines = self.log.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Processes started through this sshd's sessions, right now: for
    /// loopback, every process whose /proc/PID/environ contains
    /// `MIX_REMOTE_TEST_TAG=<this sshd's unique tag>` (set with sshd_config
    /// `SetEnv`, so it survives re-parenting to init); for netns, every
    /// process in the namespace (`ip netns pids`) except the sshd listener
    /// itself. Each with pid and its command line (NUL -> space).
    pub fn session_processes(&self) -> Vec<Proc> {
        match &self.netns {
            None => procs::with_env_entry(&self.tag_entry()),
            Some(ns) => ns
                .pids()
                .into_iter()
                .filter(|&pid| pid != self.child.id())
                .filter_map(procs::proc_of)
                .collect(),
        }
    }

    /// The BEAM processes (`beam.smp`) among [`Sshd::session_processes`]: the remote nodes.
    pub fn remote_vms(&self) -> Vec<Proc> {
        self.session_processes()
            .into_iter()
            .filter(|p| p.cmdline.contains("beam.smp"))
            .collect()
    }

    /// Waits (polling every 50 ms) until [`Sshd::session_processes`] is empty
    /// or the timeout passes; Err with what remains.
    pub fn wait_until_no_session_processes(&self, timeout: Duration) -> Result<(), Vec<Proc>> {
        wait_until_none(timeout, || self.session_processes())
    }

    /// Panics unless, within [`crate::CLEANUP_LIMIT`], no process of its sessions is left: a
    /// run's remote side is gone.
    pub fn assert_no_session_processes(&self) {
        if let Err(left) = self.wait_until_no_session_processes(crate::CLEANUP_LIMIT) {
            panic!("processes of the run remain on the remote: {left:?}");
        }
    }

    /// Local ssh clients connected to this sshd, right now: living `ssh`
    /// processes whose command line names this sshd's [`Sshd::ssh_config`].
    pub fn client_processes(&self) -> Vec<Proc> {
        let config = self.ssh_config().display().to_string();
        procs::all_pids()
            .into_iter()
            .filter_map(procs::proc_of)
            .filter(|p| p.cmdline.starts_with("ssh ") && p.cmdline.contains(&config))
            .collect()
    }

    /// Waits (polling every 50 ms) until [`Sshd::client_processes`] is empty
    /// or the timeout passes; Err with what remains.
    pub fn wait_until_no_client_processes(&self, timeout: Duration) -> Result<(), Vec<Proc>> {
        wait_until_none(timeout, || self.client_processes())
    }

    /// Panics unless, within [`crate::CLEANUP_LIMIT`], no local ssh client of it is left: a
    /// run's ssh master and control commands are gone.
    pub fn assert_no_client_processes(&self) {
        if let Err(left) = self.wait_until_no_client_processes(crate::CLEANUP_LIMIT) {
            panic!("local ssh processes of the run remain: {left:?}");
        }
    }

    /// The client's known_hosts file (see [`Sshd::ssh_config`]).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Empties the client's known_hosts: the server's host key becomes unknown to ssh.
    pub fn forget_host_key(&self) {
        fs::write(self.known_hosts(), "")
            .unwrap_or_else(|e| panic!("testkit: cannot empty known_hosts: {e}"));
    }

    /// Puts a freshly generated key in the client's known_hosts in place of the server's: to ssh,
    /// the server's host key has changed (as it would under a man in the middle).
    pub fn change_host_key(&self) {
        let other = self.dir.path().join("other_host_key");
        let _ = fs::remove_file(&other);
        let _ = fs::remove_file(pub_path(&other));
        let blob = keygen(&other)
            .and_then(|()| key_type_and_blob(&other))
            .unwrap_or_else(|e| panic!("testkit: cannot generate a key: {e}"));
        fs::write(
            self.known_hosts(),
            format!("{} {blob}\n", known_hosts_pattern(self.addr)),
        )
        .unwrap_or_else(|e| panic!("testkit: cannot write known_hosts: {e}"));
    }

    /// Empties the server's authorized_keys: logging in fails with "Permission denied".
    pub fn revoke_user_key(&self) {
        fs::write(self.dir.path().join("authorized_keys"), "")
            .unwrap_or_else(|e| panic!("testkit: cannot empty authorized_keys: {e}"));
    }

    /// The sshd processes serving connections right now (each connection has a privileged
    /// monitor and a process running as the user), not the listener itself: killing them drops
    /// the connections as a crash of the server's sshd would.
    pub fn connection_processes(&self) -> Vec<Proc> {
        procs::descendants(self.child.id())
            .into_iter()
            .filter_map(procs::proc_of)
            .filter(|p| p.cmdline.starts_with("sshd:"))
            .collect()
    }

    /// For netns hosts: takes the host side of the veth link down (`up` false) or up again, as a
    /// pulled cable would; nothing is sent either way while it is down. Panics on loopback.
    pub fn set_link(&self, up: bool) {
        let ns = self
            .netns
            .as_ref()
            .expect("testkit: set_link needs a namespace host");
        ns.set_link(up)
            .unwrap_or_else(|e| panic!("testkit: cannot set the link state: {e}"));
    }

    fn tag_entry(&self) -> String {
        format!("{TAG_VAR}={}", self.tag)
    }
}

impl Drop for Sshd {
    /// Kills sshd, its connection processes and every remaining session
    /// process (SIGKILL), deletes the namespace (and so the veth pair); the
    /// temporary directory goes last.
    fn drop(&mut self) {
        let listener = self.child.id();
        // Frozen, the listener cannot fork while its descendants are collected.
        procs::signal("STOP", &[listener]);
        let descendants = procs::descendants(listener);
        let _ = self.child.kill();
        let _ = self.child.wait();
        procs::signal("KILL", &descendants);
        // Sessions may have detached (setsid, nohup, double fork): find them by tag.
        let entry = self.tag_entry();
        for _ in 0..200 {
            let left: Vec<u32> = procs::with_env_entry(&entry)
                .iter()
                .map(|p| p.pid)
                .collect();
            if left.is_empty() {
                break;
            }
            procs::signal("KILL", &left);
            thread::sleep(Duration::from_millis(10));
        }
        // Kills whatever is left in the namespace, then deletes it.
        drop(self.netns.take());
    }
}

/// A loopback server with options: `Sshd::builder().tcp_forwarding(false).start()`.
#[derive(Debug, Clone)]
pub struct Builder {
    tcp_forwarding: bool,
    login_runtime_dir: bool,
    /// sshd_config lines placed before the harness's own.
    extra: String,
    /// Variables every session gets, beside the harness's own.
    env: Vec<(String, String)>,
}

impl Builder {
    /// Sets `name` to `value` in every session (sshd's `SetEnv`), e.g. a `PATH` without some
    /// program ([`crate::PathWithout`]). Neither may hold a double quote.
    pub fn env(mut self, name: &str, value: &str) -> Builder {
        assert!(
            !name.contains('"') && !value.contains('"'),
            "testkit: a double quote in {name}={value}"
        );
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `AllowTcpForwarding yes` (the default) or `no`: a server that refuses port forwards.
    pub fn tcp_forwarding(mut self, allow: bool) -> Builder {
        self.tcp_forwarding = allow;
        self
    }

    /// Sessions as a systemd login has them: `XDG_RUNTIME_DIR` a fresh 0700 directory in memory
    /// (in /dev/shm where there is one; [`Sshd::runtime_dir`]) and no `TMPDIR`. The benchmarks'
    /// servers are such, as most servers are.
    pub fn login_runtime_dir(mut self) -> Builder {
        self.login_runtime_dir = true;
        self
    }

    /// Adds `line` to sshd_config before the harness's own settings, so it wins (sshd keeps the
    /// first value it reads): e.g. `"PermitListen none"` for a server that refuses forwards.
    pub fn config(mut self, line: &str) -> Builder {
        self.extra.push_str(line);
        self.extra.push('\n');
        self
    }

    /// Starts the server; panics if it cannot, like [`Sshd::start`].
    pub fn start(self) -> Sshd {
        self.try_start()
            .unwrap_or_else(|e| panic!("testkit: cannot start sshd: {e}"))
    }

    /// Starts the server, with an error message instead of a panic.
    pub fn try_start(self) -> Result<Sshd, String> {
        Sshd::try_start_with(&self)
    }
}

/// Why a start attempt failed.
enum Failure {
    /// The port was taken by the time sshd bound it: worth another port.
    PortTaken(String),
    Other(String),
}

/// The generated files shared by every start attempt of one server.
struct Setup {
    dir: TempDir,
    /// sshd_config lines placed before the harness's own.
    extra: String,
    user: String,
    tag: String,
    host_key_pub: String,
    /// `AllowTcpForwarding`.
    tcp_forwarding: bool,
    /// The sessions' `XDG_RUNTIME_DIR`, in place of their `TMPDIR`.
    runtime: Option<TempDir>,
    /// Variables set in every session, beside the harness's own (see [`Builder::env`]).
    env: Vec<(String, String)>,
}

impl Setup {
    fn new(extra: &str) -> Result<Setup, String> {
        let dir = tempfile::Builder::new()
            .prefix("mix-remote-sshd-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let user = current_user()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tag = format!(
            "mrt-{}-{}-{nanos:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );

        fs::create_dir(dir.path().join(REMOTE_TMP))
            .map_err(|e| format!("cannot create the sessions' TMPDIR: {e}"))?;
        let host_key = dir.path().join("ssh_host_ed25519_key");
        let user_key = dir.path().join("id_ed25519");
        keygen(&host_key)?;
        keygen(&user_key)?;
        let host_key_pub = key_type_and_blob(&host_key)?;
        fs::copy(pub_path(&user_key), dir.path().join("authorized_keys"))
            .map_err(|e| format!("cannot write authorized_keys: {e}"))?;
        if crate::is_root() {
            // sshd refuses to start as root without its privilege separation directory.
            let _ = fs::create_dir_all("/run/sshd");
        }
        Ok(Setup {
            dir,
            extra: extra.to_owned(),
            user,
            tag,
            host_key_pub,
            tcp_forwarding: true,
            runtime: None,
            env: Vec::new(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the configurations for `addr` and starts sshd listening on
    /// `listen`, waiting until it reports every listener.
    fn launch(
        &self,
        addr: SocketAddr,
        listen: &[SocketAddr],
        ns: Option<&Netns>,
    ) -> Result<(Child, SharedLog), Failure> {
        self.write_client_files(addr).map_err(Failure::Other)?;
        let config = self.path("sshd_config");
        fs::write(&config, self.server_config(listen))
            .map_err(|e| Failure::Other(format!("cannot write {}: {e}", config.display())))?;

        let mut cmd = match ns {
            Some(ns) => ns.command(SSHD),
            None => Command::new(SSHD),
        };
        cmd.arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Failure::Other(format!("cannot run {cmd:?}: {e}")))?;
        let (log, lines) = read_lines(
            child.stderr.take().expect("stderr is piped"),
            "testkit-sshd-stderr",
        );

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut listening = 0;
        while listening < listen.len() {
            let wait = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(wait) {
                Ok(line) if line.contains("Server listening on") => listening += 1,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failure::Other(format!(
                        "sshd did not report listening within {READY_TIMEOUT:?}; it printed:\n{}",
                        joined(&log)
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // stderr closed: sshd has exited.
                    let _ = child.kill();
                    let status = child.wait();
                    let printed = joined(&log);
                    let message = format!(
                        "sshd exited ({status:?}) before listening; it printed:\n{printed}"
                    );
                    return Err(if printed.contains("Address already in use") {
                        Failure::PortTaken(message)
                    } else {
                        Failure::Other(message)
                    });
                }
            }
        }
        Ok((child, log))
    }

    fn finish(self, child: Child, log: SharedLog, addr: SocketAddr, netns: Option<Netns>) -> Sshd {
        Sshd {
            child,
            netns,
            addr,
            client_config: self.path("ssh_config"),
            user: self.user,
            tag: self.tag,
            log,
            runtime: self.runtime,
            dir: self.dir,
        }
    }

    fn server_config(&self, listen: &[SocketAddr]) -> String {
        let mut c = String::from("# Written by testkit for one test; removed with it.\n");
        c += &self.extra;
        if !c.ends_with('\n') {
            c.push('\n');
        }
        for a in listen {
            c += &format!("ListenAddress {a}\n");
        }
        c += &format!("HostKey {}\n", quoted(&self.path("ssh_host_ed25519_key")));
        c += &format!(
            "AuthorizedKeysFile {}\n",
            quoted(&self.path("authorized_keys"))
        );
        c += "\
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowStreamLocalForwarding yes
StreamLocalBindUnlink yes
AllowAgentForwarding no
X11Forwarding no
PermitUserRC no
PermitUserEnvironment no
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
# OpenSSH's own default: 32 logins at once beside 32 booting nodes on two busy cores
# (cargo xtask bench-fanout) take more than 30 s.
LoginGraceTime 120
LogLevel INFO
";
        c += if self.tcp_forwarding {
            "AllowTcpForwarding yes\n"
        } else {
            "AllowTcpForwarding no\n"
        };
        if openssh_at_least(9, 8) {
            // Tests that fail logins on purpose must not get 127.0.0.1 penalised.
            c += "PerSourcePenalties no\n";
        }
        // sshd reads only the first SetEnv line: every variable goes on this one.
        let (var, dir) = match &self.runtime {
            Some(runtime) => ("XDG_RUNTIME_DIR", runtime.path().to_owned()),
            None => ("TMPDIR", self.path(REMOTE_TMP)),
        };
        c += &format!("SetEnv {TAG_VAR}={} \"{var}={}\"", self.tag, dir.display());
        for (name, value) in &self.env {
            c += &format!(" \"{name}={value}\"");
        }
        c.push('\n');
        c
    }

    /// The client's ssh_config and known_hosts, for a server at `addr`.
    fn write_client_files(&self, addr: SocketAddr) -> Result<(), String> {
        let known_hosts = self.path("known_hosts");
        fs::write(
            &known_hosts,
            format!("{} {}\n", known_hosts_pattern(addr), self.host_key_pub),
        )
        .map_err(|e| format!("cannot write {}: {e}", known_hosts.display()))?;
        let config = format!(
            "\
# Written by testkit for a private test sshd; use with `ssh -F <this file>`.
Port {port}
User {user}
IdentityFile {key}
IdentitiesOnly yes
IdentityAgent none
PreferredAuthentications publickey
UserKnownHostsFile {known_hosts}
GlobalKnownHostsFile /dev/null
StrictHostKeyChecking yes
UpdateHostKeys no
CheckHostIP no
BatchMode yes
ConnectTimeout 10
LogLevel ERROR
",
            port = addr.port(),
            user = self.user,
            key = quoted(&self.path("id_ed25519")),
            known_hosts = quoted(&known_hosts),
        );
        let path = self.path("ssh_config");
        fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// How ssh names `addr` in known_hosts: `[IP]:PORT`, or the bare IP for port 22.
fn known_hosts_pattern(addr: SocketAddr) -> String {
    if addr.port() == 22 {
        addr.ip().to_string()
    } else {
        format!("[{}]:{}", addr.ip(), addr.port())
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// A path as a double-quoted ssh(d)_config argument.
fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

/// Generates an ed25519 key pair without passphrase at `path` (+ `.pub`).
fn keygen(path: &Path) -> Result<(), String> {
    procs::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "testkit", "-f"])
            .arg(path),
    )
    .map(drop)
}

fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `ssh-ed25519 AAAA...` from the public half of `key`, without the comment.
fn key_type_and_blob(key: &Path) -> Result<String, String> {
    let path = pub_path(key);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let fields: Vec<&str> = text.split_whitespace().take(2).collect();
    if fields.len() != 2 {
        return Err(format!(
            "unexpected public key in {}: {text}",
            path.display()
        ));
    }
    Ok(fields.join(" "))
}

/// The name of the effective user (whom sshd lets log in).
fn current_user() -> Result<String, String> {
    static USER: OnceLock<Result<String, String>> = OnceLock::new();
    USER.get_or_init(|| {
        let out = procs::run(Command::new("id").arg("-un"))?;
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if name.is_empty() {
            Err("`id -un` printed no user name".into())
        } else {
            Ok(name)
        }
    })
    .clone()
}

/// True if the installed OpenSSH is at least `major.minor` (from `sshd -V`,
/// which prints e.g. `OpenSSH_9.2p1 Debian-2, OpenSSL ...`).
fn openssh_at_least(major: u32, minor: u32) -> bool {
    static VERSION: OnceLock<(u32, u32)> = OnceLock::new();
    let version = *VERSION.get_or_init(|| {
        let Ok(out) = procs::run_unchecked(Command::new(SSHD).arg("-V")) else {
            return (0, 0);
        };
        parse_openssh_version(&procs::output_text(&out)).unwrap_or((0, 0))
    });
    version >= (major, minor)
}

fn parse_openssh_version(text: &str) -> Option<(u32, u32)> {
    let rest = &text[text.find("OpenSSH_")? + "OpenSSH_".len()..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Polls `list` every 50 ms until it is empty (Ok) or `timeout` passes (Err with what remains).
pub(crate) fn wait_until_none(
    timeout: Duration,
    list: impl Fn() -> Vec<Proc>,
) -> Result<(), Vec<Proc>> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = list();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(left);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh 0700 directory in memory for a server's sessions, removed with the server: in /dev/shm,
/// or the system's temporary directory where that is missing or mounted noexec (as in some
/// containers), since a run would not use a runtime directory a NIF cannot be mapped from.
fn memory_dir() -> Result<TempDir, String> {
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("mix-remote-sshd-run-");
    let made = if shm.is_dir() && !mounted_noexec(shm) {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    };
    made.map_err(|e| format!("cannot create the sessions' runtime directory: {e}"))
}

/// Whether `dir` is on a filesystem mounted noexec (statvfs's `ST_NOEXEC`).
fn mounted_noexec(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by statvfs before it is
    // read, which happens only when the call succeeded.
    let done = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) } == 0;
    done && unsafe { stats.assume_init() }.f_flag & libc::ST_NOEXEC != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssh_versions() {
        assert_eq!(
            parse_openssh_version("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15"),
            Some((9, 2))
        );
        assert_eq!(
            parse_openssh_version("unknown option -- V\nOpenSSH_10.0p2, LibreSSL"),
            Some((10, 0))
        );
        assert_eq!(parse_openssh_version("usage: sshd"), None);
    }
}
