//! The SSH login of a cold run: the master with its reverse forward to our node, and the run's
//! fresh names and secret. The forward's port on the server is one the tool draws (or the host's
//! `forward_port`), so that the launcher knows it before the VM starts and opens the connection
//! back then (templates/boot.sh); one the server refuses (taken, or not permitted) is given up
//! for a port it allocates ([`super::on_host`] logs in again). [`super::on_host`] starts it when
//! it needs it, or a command starts it ahead ([`Login::ahead`]) while it still reads the project:
//! the login, the longest step of a cold run, then overlaps the scan (200-250 ms for 2000
//! modules here). Nothing is written to the session before the run takes the login over, so one
//! dropped unused ends on both sides with nothing left: its master is killed (the node the
//! launcher started, still waiting for its first line, ends with the session) and its directory
//! removed.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{LocalEnd, SessionError, asks_on_terminal, private_dir, target, warm};
use crate::config::HostSettings;
use crate::remote::boot;
use crate::remote::console::Input;
use crate::remote::node::Identities;
use crate::remote::private_dir::PrivateDir;
use crate::remote::ssh::Master;
use crate::report::Reporter;

/// Where the tool draws a forward's port: below the ranges systems take the local ports of
/// outgoing connections from (Linux 32768-60999, the BSDs and macOS 49152-65535), since sshd
/// cannot listen on the port of a live or lately closed connection to 127.0.0.1 either, and
/// above most services' ports.
const DRAWN_PORTS: RangeInclusive<u16> = 10000..=32767;

/// An SSH master logging in to one host for a cold run, and what the node's connection back
/// will need.
pub struct Login {
    /// The host it logs in to (its name in the configuration).
    host: String,
    pub(super) ids: Identities,
    pub(super) dir: PrivateDir,
    pub(super) node_end: LocalEnd,
    pub(super) master: Master,
    /// When the login started.
    pub(super) started: Instant,
    /// Whether ssh may ask on the terminal (see [`asks_on_terminal`]).
    pub(super) interactive: bool,
    /// Set once the tool has refused the run on what the node said: the node's lines are then
    /// no longer shown.
    pub(super) refused: Arc<AtomicBool>,
    /// The server port of the reverse forward, if the tool chose it (0: the server allocates it).
    pub(super) forward_port: u16,
}

impl Login {
    /// Starts logging in to `host`, with the reverse forward from a port on the server: one the
    /// server allocates if `allocated`, else the host's `forward_port`, else one drawn from
    /// [`DRAWN_PORTS`] (but one the server allocates if ssh may ask for a password: a refused
    /// port would ask again). The lines the session prints go to `report`.
    pub(super) fn start(
        host: &HostSettings,
        report: &Arc<Reporter>,
        input: &Input,
        allocated: bool,
    ) -> Result<Login, SessionError> {
        let interactive = asks_on_terminal(host, report, input);
        let forward_port = match (allocated, host.forward_port) {
            (true, _) => 0,
            (false, Some(port)) => port,
            (false, None) if interactive => 0,
            (false, None) => rand::random_range(DRAWN_PORTS),
        };
        let remote_command = boot::remote_command(&host.elixir, forward_port)?;
        let ids = Identities::fresh();
        let dir = private_dir()?;
        let node_end = LocalEnd::bind(dir.path().join("node.sock"))?;
        let started = Instant::now();
        let lines = Arc::clone(report);
        // Once the tool has refused the run on what the node said (the preflight), what the node
        // says as it goes (its connection back failing) is not shown.
        let refused = Arc::new(AtomicBool::new(false));
        let quiet = Arc::clone(&refused);
        let notes = Arc::clone(report);
        let name = host.name.clone();
        let mut target = target(host);
        if interactive {
            // What was said so far is on the terminal before ssh may ask there.
            report.flush();
        }
        // ssh keeps the first value of an option: the user's own come first.
        target.options.push(if interactive {
            format!("ConnectTimeout={}", host.connect_timeout)
        } else {
            "BatchMode=yes".to_owned()
        });
        let master = Master::start(
            &target,
            &dir.path().join("ctl"),
            Some((&node_end.path, forward_port)),
            &remote_command,
            move |line| {
                if !quiet.load(Ordering::Relaxed) {
                    lines.remote_line(&name, line);
                }
            },
            move |note| notes.verbose(&note),
        )?;
        Ok(Login {
            host: host.name.clone(),
            ids,
            dir,
            node_end,
            master,
            started,
            interactive,
            refused,
            forward_port,
        })
    }

    /// The login of a command's only host, started now if nothing can make it wait on the user
    /// (ssh cannot ask on the terminal) and the run will not go through a warm session; `None`
    /// otherwise, or if it cannot start (the run then starts its own and says why).
    pub fn ahead(hosts: &[HostSettings], report: &Arc<Reporter>, input: &Input) -> Option<Login> {
        let [host] = hosts else { return None };
        if asks_on_terminal(host, report, input) || warm::exists(host, report) {
            return None;
        }
        Login::start(host, report, input, false).ok()
    }

    /// Whether this is the login to `host`.
    pub fn is_for(&self, host: &HostSettings) -> bool {
        self.host == host.name
    }
}
