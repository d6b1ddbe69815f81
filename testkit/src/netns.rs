//! A network namespace joined to the host by a veth pair, with a firewall.
//!
//! Names and addresses are chosen so that many test threads and many test
//! processes can each hold namespaces at once:
//! - the namespace is `mrt-<pid>-<n>` and the interfaces `mrt<pid>h<n>`
//!   (host side) and `mrt<pid>p<n>` (namespace side), `n` counting up in the
//!   process, retried on "File exists";
//! - the link uses 169.254.X.1/30 (host) and 169.254.X.2/30 (namespace); X is
//!   reserved by holding an exclusive lock on
//!   `$TMPDIR/mix-remote-netns-169.254.X.lock` for the namespace's lifetime
//!   (removed when the namespace is; should the process die first, the
//!   kernel drops the lock), and skipped if the host already has an address
//!   or route in 169.254.X.0/24 for any other reason.
//!
//! Namespaces named after a process that no longer exists (one killed before
//! it could clean up) are deleted the first time a process creates one.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::procs;

/// The ruleset loaded in the namespace: input is dropped except loopback,
/// replies to established connections, and new TCP connections to port 22.
const RULESET: &str = "\
table inet mix_remote_test {
    chain input {
        type filter hook input priority filter; policy drop;
        iif \"lo\" accept
        ct state established,related accept
        tcp dport 22 accept
    }
}
";

/// Counter making the names of this process's namespaces and links unique.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a veth link to the host; deleted on drop.
pub(crate) struct Netns {
    name: String,
    host_if: String,
    x: u8,
    /// Held for the lifetime of the namespace: reserves 169.254.X.0/30.
    subnet_lock: SubnetLock,
}

impl Netns {
    /// Creates the namespace, the link, the addresses and the firewall.
    pub(crate) fn create() -> Result<Netns, String> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale);

        let (x, subnet_lock) = reserve_subnet()?;
        let pid = std::process::id();

        // The namespace; from here on, dropping `ns` removes whatever exists.
        let mut ns = loop {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let name = format!("mrt-{pid}-{n}");
            let out = procs::run_unchecked(Command::new("ip").args(["netns", "add", &name]))?;
            if out.status.success() {
                break Netns {
                    name,
                    host_if: String::new(),
                    x,
                    subnet_lock,
                };
            }
            let text = procs::output_text(&out);
            if !text.contains("File exists") {
                return Err(format!("ip netns add {name} failed: {text}"));
            }
        };

        // The veth pair, its namespace end created right inside the namespace.
        let peer_if = loop {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let host_if = if_name(pid, 'h', n);
            let peer_if = if_name(pid, 'p', n);
            let out = procs::run_unchecked(Command::new("ip").args([
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if, "netns",
                &ns.name,
            ]))?;
            if out.status.success() {
                ns.host_if = host_if;
                break peer_if;
            }
            let text = procs::output_text(&out);
            if !text.contains("File exists") {
                return Err(format!("ip link add {host_if} (veth) failed: {text}"));
            }
        };

        let host_cidr = format!("{}/30", ns.host_addr());
        let ns_cidr = format!("{}/30", ns.addr());
        procs::run(Command::new("ip").args(["addr", "add", &host_cidr, "dev", &ns.host_if]))?;
        procs::run(Command::new("ip").args(["link", "set", &ns.host_if, "up"]))?;
        procs::run(
            Command::new("ip").args(["-n", &ns.name, "addr", "add", &ns_cidr, "dev", &peer_if]),
        )?;
        procs::run(Command::new("ip").args(["-n", &ns.name, "link", "set", &peer_if, "up"]))?;
        procs::run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]))?;
        ns.load_firewall()?;
        Ok(ns)
    }

    /// The namespace side address, 169.254.X.2.
    pub(crate) fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, self.x, 2)
    }

    /// The namespace's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The host side address, 169.254.X.1.
    pub(crate) fn host_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, self.x, 1)
    }

    /// `ip netns exec <name> <program>`: runs `program` inside the namespace
    /// (`ip` execs it, so the child's pid is the program's).
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Living processes inside the namespace.
    pub(crate) fn pids(&self) -> Vec<u32> {
        pids_of(&self.name)
    }

    /// Sets the host end of the veth link down or up.
    pub(crate) fn set_link(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        procs::run(Command::new("ip").args(["link", "set", &self.host_if, state])).map(drop)
    }

    fn load_firewall(&self) -> Result<(), String> {
        let mut cmd = self.command("nft");
        cmd.args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        let written = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(RULESET.as_bytes());
        let out = child
            .wait_with_output()
            .map_err(|e| format!("{cmd:?}: {e}"))?;
        if !out.status.success() || written.is_err() {
            return Err(format!(
                "loading the nftables ruleset into {} failed ({}): {}",
                self.name,
                out.status,
                procs::output_text(&out)
            ));
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_everything_in(&self.name);
        // Deleting one end deletes the pair, at once; deleting the namespace
        // alone would leave the host end until the kernel gets round to it.
        if !self.host_if.is_empty() {
            let _ = procs::run_unchecked(Command::new("ip").args(["link", "del", &self.host_if]));
        }
        let _ = procs::run_unchecked(Command::new("ip").args(["netns", "del", &self.name]));
        self.subnet_lock.release();
    }
}

/// An exclusive lock on the file reserving 169.254.X.0/30.
struct SubnetLock {
    file: File,
    path: PathBuf,
}

impl SubnetLock {
    /// Removes the lock file, then unlocks it by closing it. Whoever opened
    /// the file before it was removed sees, once they hold the lock, that the
    /// path no longer names their file, and tries again (see [`reserve_subnet`]).
    fn release(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// An interface name of at most 15 bytes (the kernel's limit).
fn if_name(pid: u32, side: char, n: u32) -> String {
    let name = format!("mrt{pid}{side}{n}");
    if name.len() <= 15 {
        name
    } else {
        format!("mrt{}{side}{}", pid % 100_000, n % 1_000_000)
    }
}

/// Picks X in 1..=254 for 169.254.X.0/30: locked by nobody else and unused on the host.
fn reserve_subnet() -> Result<(u8, SubnetLock), String> {
    let start = (std::process::id() as usize)
        .wrapping_mul(31)
        .wrapping_add(SEQ.load(Ordering::Relaxed) as usize * 7);
    for i in 0..254 {
        let x = 1 + ((start + i) % 254) as u8;
        let path = std::env::temp_dir().join(format!("mix-remote-netns-169.254.{x}.lock"));
        let Some(file) = try_lock_file(&path)? else {
            continue;
        };
        let lock = SubnetLock { file, path };
        if !subnet_in_use(x)? {
            return Ok((x, lock));
        }
        // Leave the file for whoever uses the subnet (it may be a namespace of ours).
        drop(lock.file);
    }
    Err("no free 169.254.X.0/30 subnet for a test namespace (all 254 in use)".into())
}

/// Creates or opens `path` and takes an exclusive lock on it without
/// waiting; None if someone else holds it. The lock only counts if `path`
/// still names the locked file afterwards: its holder removes it before
/// unlocking.
fn try_lock_file(path: &Path) -> Result<Option<File>, String> {
    for _ in 0..100 {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        let locked = file
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        match fs::metadata(path) {
            Ok(named) if named.dev() == locked.dev() && named.ino() == locked.ino() => {
                return Ok(Some(file));
            }
            // Removed (and maybe created anew) after we opened it: again.
            _ => continue,
        }
    }
    Ok(None)
}

/// True if the host has an address or a route inside 169.254.X.0/24.
fn subnet_in_use(x: u8) -> Result<bool, String> {
    let prefix = format!("169.254.{x}.");
    let addrs = procs::run(Command::new("ip").args(["-4", "-o", "addr", "show"]))?;
    let routes = procs::run(Command::new("ip").args(["-4", "route", "show", "table", "all"]))?;
    let mentions = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|word| word.starts_with(&prefix))
    };
    Ok(mentions(&addrs) || mentions(&routes))
}

/// Living processes in the named namespace.
fn pids_of(name: &str) -> Vec<u32> {
    let Ok(out) = procs::run_unchecked(Command::new("ip").args(["netns", "pids", name])) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| procs::is_alive(p))
        .collect()
}

/// SIGKILLs every process in the namespace until none is left (bounded).
fn kill_everything_in(name: &str) {
    for _ in 0..200 {
        let pids = pids_of(name);
        if pids.is_empty() {
            return;
        }
        procs::signal("KILL", &pids);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Removes namespaces `mrt-<pid>-<n>` left behind by test processes that no
/// longer exist (killed before they could clean up). Deleting such a
/// namespace also removes its veth pair.
fn sweep_stale() {
    let Ok(out) = procs::run_unchecked(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(owner) = name
            .strip_prefix("mrt-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner != std::process::id() && !std::path::Path::new(&format!("/proc/{owner}")).exists()
        {
            kill_everything_in(name);
            let _ = procs::run_unchecked(Command::new("ip").args(["netns", "del", name]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        assert_eq!(if_name(1234, 'h', 7), "mrt1234h7");
        assert!(if_name(4_194_303, 'p', 4_000_000_000).len() <= 15);
        assert!(if_name(99_999, 'h', 99_999).len() <= 15);
    }
}
