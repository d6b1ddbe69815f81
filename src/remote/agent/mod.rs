//! Warm sessions (`mix-remote up`): one detached agent process per host keeps what makes the
//! next run fast, the SSH master connection and one spare node booted ahead through it, and
//! hands the spare to a run that asks ([`client`]); every run still gets a fresh node of its own.
//!
//! The agent is the tool itself re-executed (`mix-remote __agent`, [`server`]); it lives in a
//! private session directory ([`dirs`]): a 0700 directory per host session holding its 0600
//! socket and ssh's control socket, removed by a guardian however the agent ends. Only the
//! agent's own user may talk to it: the directory's mode, and the peer's uid checked on every
//! connection.
//!
//! The protocol is lines of text on that socket, one request per connection:
//! `status` (answered with one JSON line, [`Status`]), `down` (answered `bye` once nothing is
//! left), `claim BUILD` (the run's [`build`]; answered `other BUILD`, the agent's, when they
//! differ: the spare node runs the agent's boot program and both ends speak its protocol, so a
//! run uses a session of its own build only, and an agent of a build older than this check hangs
//! up on the request; else `spare PATH REMOTE`, the Unix socket the spare node will connect to
//! and the node's name, a JSON line, the digests of what the node was given to load ahead
//! ([`preload`]) or `null`, and a line with what the node said of itself once ready
//! ([`preload::known`]) or `null`; the run binds the socket, then sends `go COOKIE LOCAL`, its
//! fresh cookie and node name, which the agent hands to the waiting node, and gets `ok`; it may
//! then send `preload LEN` and its batch, for the next spares). The run keeps the connection open
//! while it works: its end tells the agent that the node is done with. A spare whose connection
//! the agent made ahead ([`ahead`]) is offered as `held REMOTE LOCAL CREATION COOKIE READ`
//! instead (the node's name, then the names, creation and cookie its handshake was made with,
//! and the hex of what was read of the connection past its last frame, `-` for nothing), with
//! the same two lines; the run sends `fd` and receives the connection itself ([`fd`]), then goes
//! on as after `ok`. A claim that comes while the last spare has failed and the next is not
//! booted yet is answered `failed WHY` at once (the run connects as usual). `idle SECS` (from
//! `up` on a session already up) sets the idle limit anew, counted from then, and is answered
//! `ok`. A spare whose session ends while a run has it is told of as `ended STATUS`, the
//! session's exit status (`-` for a signal's end): a run that lost its node reads why. Once the
//! run has its node, the agent passes on what the node prints of its own on its session's stdout
//! and stderr (Logger's lines, `:user`'s; those printed before the claim first, with `log (N
//! lines ... dropped here ...)` where more came than the agent holds unread), as `log TEXT`
//! lines, its word that all of it is out as `done`, and which of the project's config files it
//! evaluates as `config config/NAME` (`config` alone once it is done with it: a node that ends
//! in between was halted by the file) (a cold run reads the same from its own session); the agent
//! says `ended` only after the last of them. From then on the node waits for the run to take what
//! it prints, as a cold node's output waits for its session. Lines of a run the agent does not
//! know are passed over.

pub mod ahead;
pub mod client;
mod connection;
pub mod dirs;
pub mod fd;
mod keeper;
pub mod preload;
pub mod server;
mod spare;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::HostSettings;

/// The request for the agent's state.
pub const STATUS: &str = "status";
/// The request that ends the agent.
pub const DOWN: &str = "down";
/// The agent's answer to [`DOWN`], once nothing is left.
pub const BYE: &str = "bye";
/// The request for the spare node: `claim BUILD`.
pub const CLAIM: &str = "claim ";
/// The answer to [`CLAIM`] from an agent of another build: `other BUILD`.
pub const OTHER: &str = "other ";
/// The answer to [`CLAIM`]: `spare PATH REMOTE`.
pub const SPARE: &str = "spare";
/// The answer to [`CLAIM`] for a spare whose connection is made: `held REMOTE LOCAL CREATION
/// COOKIE READ`.
pub const HELD: &str = "held";
/// The run's request for the connection of a [`HELD`] spare.
pub const FD: &str = "fd";
/// The run's cookie and node name for the claimed node: `go COOKIE LOCAL`.
pub const GO: &str = "go";
/// The answer to [`GO`].
pub const OK: &str = "ok";
/// A run's batch for the next spares: `preload LEN`, then LEN bytes.
pub const PRELOAD: &str = "preload ";
/// The agent's word to a run whose spare's session ended: `ended STATUS`.
pub const ENDED: &str = "ended";
/// A line the claimed node printed of its own: `log TEXT`.
pub const LOG: &str = "log ";
/// The project's config file the claimed node evaluates: `config config/NAME`, or `config`
/// alone once it is done with it (the node's [`crate::remote::boot::CONFIG`] markers).
pub const EVALUATING: &str = "config";
/// The agent's word that the claimed node has printed all its own output of the run's work.
pub const SETTLED: &str = "done";
/// The request that sets the idle limit anew: `idle SECS`.
pub const IDLE: &str = "idle ";
/// The agent's answer to [`CLAIM`] when its last spare failed: `failed WHY`.
pub const FAILED: &str = "failed";
/// What the agent prints on its stdout for `up` once its connection is made.
pub const CONNECTED: &str = "connected";
/// What the agent prints on its stdout for `up` once it serves (its first spare is ready).
pub const READY: &str = "ready";
/// What the agent prints on its stdout for `up` when it could not start serving: `error WHY`...
pub const UNABLE: &str = "error";
/// ... or, when a limit was reached first, `timeout WHY`.
pub const TIMED_OUT: &str = "timeout";

/// The idle limit of a session `up` starts without `--idle`.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// What the agent needs to know of its host, handed to it by `up` as one JSON line on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The host's name as the user gave it.
    pub name: String,
    /// The ssh destination.
    pub address: String,
    /// The remote `elixir`.
    pub elixir: String,
    /// `ssh -F`, absolute (the agent runs from `/`).
    pub ssh_config: Option<PathBuf>,
    /// `ssh -o`, in order.
    pub ssh_options: Vec<String>,
    /// What gave the destination, for the hint of one that does not resolve.
    pub origin: String,
    /// Seconds to wait for the SSH connection and login.
    pub connect_timeout: u64,
    /// Seconds to wait for the first spare node to boot.
    pub boot_timeout: u64,
    /// Seconds without a run after which the agent ends.
    pub idle_secs: u64,
}

impl Spec {
    /// The spec of a session for `host` that ends after `idle` without a run.
    pub fn of(host: &HostSettings, idle: Duration) -> Spec {
        Spec {
            name: host.name.clone(),
            address: host.address.clone(),
            elixir: host.elixir.clone(),
            ssh_config: absolute(host.ssh_config.as_ref()),
            ssh_options: host.ssh_options.clone(),
            origin: host.origin.clone(),
            connect_timeout: host.connect_timeout,
            boot_timeout: host.boot_timeout,
            idle_secs: idle.as_secs().max(1),
        }
    }

    /// The session's key: see [`key`].
    pub fn key(&self) -> String {
        key_parts(
            &self.address,
            &self.elixir,
            self.ssh_config.as_ref(),
            &self.ssh_options,
        )
    }
}

/// The key of a host's session: a digest of what decides how the host is reached and what runs
/// there (address, ssh config, ssh options, elixir). A run uses a session only if its settings
/// give the same key.
pub fn key(host: &HostSettings) -> String {
    key_parts(
        &host.address,
        &host.elixir,
        absolute(host.ssh_config.as_ref()).as_ref(),
        &host.ssh_options,
    )
}

fn key_parts(address: &str, elixir: &str, config: Option<&PathBuf>, options: &[String]) -> String {
    let mut text = format!("{address}\0{elixir}\0");
    if let Some(config) = config {
        text += &config.to_string_lossy();
    }
    for option in options {
        text += "\0";
        text += option;
    }
    let digest = md5::compute(text.as_bytes());
    crate::remote::boot::hex_of(&digest.0[..8])
}

/// `path` made absolute against the current directory, which the agent leaves; `none`, ssh's
/// word for no configuration file, kept as it is.
fn absolute(path: Option<&PathBuf>) -> Option<PathBuf> {
    path.map(|p| match p.as_os_str() == "none" {
        // ssh's word for no configuration file, not a file.
        true => p.clone(),
        false => std::path::absolute(p).unwrap_or_else(|_| p.clone()),
    })
}

/// What `status` shows of a session, as the agent reports it; `status --json` prints it as it
/// is, the contract in `schema/status.schema.json` (a field added here goes there too).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// The host's name.
    pub host: String,
    /// The ssh destination.
    pub address: String,
    /// When the session started (seconds since the Unix epoch).
    pub since: u64,
    /// Seconds left before the idle limit ends it (counted from the last run's end).
    pub idle_left: u64,
    /// Runs served.
    pub runs: u64,
    /// Runs being served now.
    pub active: u64,
    /// The spare node: `booting`, `loading` (a run's batch, ahead), `connecting` (ahead),
    /// `ready`, `failed: WHY` (until the next one boots), or `none` (the session ends).
    pub spare: String,
    /// The agent's process id.
    pub pid: u32,
    /// The remote `elixir` the session was made with (`None` from an agent older than this).
    #[serde(default)]
    pub elixir: Option<String>,
    /// Its `ssh -F`.
    #[serde(default)]
    pub ssh_config: Option<PathBuf>,
    /// Its `ssh -o`, in order: with `elixir` and `ssh_config`, what tells two sessions of one
    /// host apart.
    #[serde(default)]
    pub ssh_options: Vec<String>,
    /// The agent's [`build`] (`None` from one older than builds were told apart): a run uses
    /// the session only if it is its own.
    #[serde(default)]
    pub build: Option<String>,
}

/// This build of the tool: its version and the identity of its executable file (device, inode,
/// size, modification time), so that a binary rebuilt or reinstalled in place is another build.
/// The agent takes it as it starts, from the file it was started from.
pub fn build() -> &'static str {
    static BUILD: OnceLock<String> = OnceLock::new();
    BUILD.get_or_init(|| {
        let version = env!("CARGO_PKG_VERSION");
        match std::env::current_exe().and_then(std::fs::metadata) {
            Ok(m) => format!(
                "{version}-{:x}.{:x}.{:x}.{:x}.{:x}",
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            ),
            Err(_) => version.to_owned(),
        }
    })
}

/// The longest idle limit a session takes: a year.
const MAX_IDLE: Duration = Duration::from_secs(365 * 86_400);

/// Parses a humane duration: `90s`, `10m`, `1h`, `2d`, or whole seconds; a year at most.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let positive =
        || format!("`{text}`: use a positive whole number with s, m, h or d (90s, 10m, 1h)");
    if text.starts_with('-') {
        return Err(positive());
    }
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}`: use a number with s, m, h or d (90s, 10m, 1h)"
            ));
        }
    };
    let secs = match number.parse::<u64>() {
        Ok(0) => return Err(positive()),
        Ok(n) => n.checked_mul(scale),
        Err(_) if number.is_empty() => return Err(positive()),
        // More digits than a u64 holds.
        Err(_) => None,
    };
    match secs {
        Some(secs) if secs <= MAX_IDLE.as_secs() => Ok(Duration::from_secs(secs)),
        _ => Err(format!("`{text}`: at most a year (365d)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_humane() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(
            parse_duration("-5m"),
            Err("`-5m`: use a positive whole number with s, m, h or d (90s, 10m, 1h)".to_owned())
        );
        assert!(parse_duration("10 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(parse_duration("365d"), Ok(MAX_IDLE));
        for huge in ["366d", "9999999999999999999s", "99999999999999999999999h"] {
            assert_eq!(
                parse_duration(huge),
                Err(format!("`{huge}`: at most a year (365d)"))
            );
        }
    }

    #[test]
    fn an_ssh_config_is_made_absolute_but_none() {
        let none = PathBuf::from("none");
        assert_eq!(absolute(Some(&none)), Some(none));
        let relative = PathBuf::from("ssh/config");
        let made = absolute(Some(&relative)).unwrap();
        assert!(
            made.is_absolute() && made.ends_with("ssh/config"),
            "{made:?}"
        );
    }

    #[test]
    fn keys_tell_settings_apart() {
        let a = key_parts("h", "elixir", None, &[]);
        assert_eq!(a.len(), 16);
        assert_eq!(a, key_parts("h", "elixir", None, &[]));
        assert_ne!(a, key_parts("h2", "elixir", None, &[]));
        assert_ne!(a, key_parts("h", "/opt/elixir", None, &[]));
        assert_ne!(a, key_parts("h", "elixir", None, &["Port=2".into()]));
    }
}
