//! Test harness for mix-remote: real OpenSSH servers to run it against, the
//! compiled Mix projects it runs, and a real PostgreSQL for their jobs.
//!
//! - [`Sshd::start`] starts a private `/usr/sbin/sshd` on 127.0.0.1 and a free
//!   high port, with its own host key, user key, `authorized_keys`,
//!   `known_hosts` and client `ssh_config`, all in a temporary directory.
//!   Any user can run it; it logs in as the current user.
//! - [`Sshd::start_in_netns`] (root only) starts the same server as a
//!   "remote host" in a fresh network namespace joined to the host by a veth
//!   pair (169.254.X.1/30 host side, 169.254.X.2/30 namespace side), with an
//!   nftables firewall that only lets TCP/22 in; the server also listens on
//!   2222, which the firewall blocks ([`Sshd::blocked_addr`]).
//! - [`Sshd::builder`] starts a loopback server with options, e.g.
//!   `AllowTcpForwarding no` or any extra `sshd_config` line
//!   ([`Builder::config`]) for tests of a server that refuses forwards.
//! - [`Sshd::session_processes`] lists what the sessions started, and
//!   [`Sshd::remote_tmp`] is their `TMPDIR`, so tests can prove that nothing
//!   is left behind on the "remote" side;
//!   [`processes_mentioning`] finds the local processes of a run by a path
//!   they name (its `TMPDIR`).
//! - Faults to inject: [`Sshd::builder`] (a server that refuses forwards),
//!   [`Sshd::connection_processes`] (kill them to
//!   drop a connection), [`Sshd::set_link`] (take a namespace host's link
//!   down), [`Sshd::forget_host_key`], [`Sshd::change_host_key`],
//!   [`Sshd::revoke_user_key`], and [`signal`] to send any signal; [`Builder::env`] with a
//!   [`PathWithout`] for a server that lacks a program (bash); an [`ElixirWrapper`] as the
//!   server's `elixir` (`--elixir`), e.g. a gate that holds the node's boot.
//! - [`compiled_fixture`] compiles a Mix project of `fixtures/` once
//!   ([`compiled_fixture_in`] for another `MIX_ENV`, [`staged_fixture`] for a
//!   private copy a test may change); fixtures find third-party
//!   libraries in [`vendor_dir`] (`$MIX_REMOTE_VENDOR`, else `../shared/vendor`),
//!   and tests that need them ask [`vendor_available`] first.
//! - [`Postgres::start`] starts a private PostgreSQL (`initdb` into a temporary
//!   directory, `postgres` on 127.0.0.1 and a free port, as the `postgres`
//!   system user when we are root) with a database for the test;
//!   [`Postgres::env`] names it for libpq and the `ecto_fix` fixture,
//!   [`Postgres::psql`] and [`Postgres::rows`] run SQL.
//! - [`Chroot`] (root only) brings another OTP and Elixir: a Debian chroot as
//!   the remote host's `elixir` (through `--elixir`), or as the machine that
//!   compiled a fixture.
//! - [`mix_remote`] is the one way tests launch mix-remote: a builder ([`MixRemote`]) that runs
//!   the binary in a project directory without the caller's `MIX_REMOTE_*` or Mix settings, with
//!   a private `TMPDIR`, within [`RUN_LIMIT`], killed if the test panics; [`Output`] then checks
//!   that the run left nothing locally.
//! - [`MixRemote::spawn_in_pty`] runs it in a pseudo-terminal instead, as a person runs it:
//!   [`PtyRun`] types keys and reads the screen a terminal emulator renders of what the run
//!   printed (answering a line editor's cursor position queries).
//! - [`run_within`] runs any other command under a time limit and kills it if the test panics.
//! - [`build_erl_beam`] compiles an Erlang source of `templates/` (the relay, the carrier) as the
//!   committed beam is built, with the host's `erlc` ([`host_otp_release`] tells which OTP);
//!   [`build_boot_beams`] likewise the boot program (`templates/boot.exs`), with its `elixir`.
//!
//! Readiness is awaited by events (sshd's "Server listening on" lines,
//! postgres's "ready to accept connections"), never by sleeping. Nothing uses a fixed port or name, so tests may run in
//! parallel, in several threads and several processes, and again right
//! after. Dropping an [`Sshd`] (also while a test panics) kills sshd and every
//! process its sessions left, deletes the namespace with its veth pair, and
//! removes the temporary directory; dropping a [`Postgres`] shuts the server
//! down and removes its data directory. Nothing is printed on success, and the
//! user's `~/.ssh` and `/etc/ssh` are never read or written: use the client
//! with `ssh -F <Sshd::ssh_config()> <Sshd::host()>`.
//!
//! ```no_run
//! let sshd = testkit::Sshd::start();
//! let out = std::process::Command::new("ssh")
//!     .arg("-F").arg(sshd.ssh_config())
//!     .arg(sshd.host())
//!     .arg("echo hello")
//!     .output()
//!     .unwrap();
//! assert_eq!(out.stdout, b"hello\n");
//! ```

mod boot_beam;
mod chroot;
mod command;
mod elixir_wrapper;
mod erl_beams;
mod fixture;
mod launcher;
mod netns;
mod path_without;
mod postgres;
mod procs;
mod pty;
mod sshd;
mod stderr_log;

pub use boot_beam::{boot_beam_paths, boot_source, build_boot_beams};
pub use chroot::{Chroot, ChrootProject};
pub use command::{Finished, run_within};
pub use elixir_wrapper::ElixirWrapper;
pub use erl_beams::{
    ERL_BEAMS, OTP24_MAX_OPCODE, RELAY_OTP, build_erl_beam, builds_committed_beams,
    checks_committed_beams, erl_beam_path, erl_source, host_otp_release, max_opcode,
};
pub use fixture::{
    StagedFixture, VENDOR_VAR, compiled_fixture, compiled_fixture_in, empty_mix_project, mix_run,
    mix_run_file, staged_fixture, top_level_fn_script, vendor_available, vendor_dir,
};
pub use launcher::{MixRemote, Output, Running, entries, mix_remote};
pub use path_without::PathWithout;
pub use postgres::Postgres;
pub use procs::Proc;
pub use pty::{PTY_COLS, PTY_ROWS, PtyRun, has_spinner};
pub use sshd::{Builder, Sshd};

/// How long a run may take: a cold one takes about two seconds here, but CI machines are shared.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long either side may take to clean up after a run has exited.
pub const CLEANUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Living processes whose command line contains `text`, this process excepted: with `text` a
/// run's private path (its `TMPDIR`), every local process of that run.
pub fn processes_mentioning(text: &str) -> Vec<Proc> {
    let me = std::process::id();
    procs::all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter_map(procs::proc_of)
        .filter(|p| p.cmdline.contains(text))
        .collect()
}

/// Waits (polling every 50 ms) until [`processes_mentioning`] `text` is empty or `timeout`
/// passes; Err with what remains.
pub fn wait_until_no_processes_mentioning(
    text: &str,
    timeout: std::time::Duration,
) -> Result<(), Vec<Proc>> {
    sshd::wait_until_none(timeout, || processes_mentioning(text))
}

/// Sends `signal` (`KILL`, `TERM`, `INT`, ...) to each of `pids`; those already gone are skipped.
pub fn signal(signal: &str, pids: &[u32]) {
    procs::signal(signal, pids);
}

/// True when running as root (netns tests possible).
pub fn is_root() -> bool {
    // The effective uid is the second number of the "Uid:" line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// For tests that need the netns host: true if they can run; if not root and
/// env CI is set, panics ("the namespace test must run in CI: run as root");
/// else false (the test returns early, silently).
pub fn netns_available() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("the namespace test must run in CI: run as root");
    }
    false
}
