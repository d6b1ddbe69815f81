//! One layer of settings (`defaults`, a group, a host, or the flags and environment) and the
//! order in which a host's layers are read, which every resolved setting follows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::values::{elixir_path, entry, include, mix_env, port, remote_env, seconds, ssh_options};
use super::{Config, Selected};

/// One layer of settings: `defaults`, a group, a host, or the flags and environment.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Under `hosts` only: the ssh destination when it differs from the host's name.
    pub address: Option<Spanned<String>>,
    /// Under `groups` only (long form): the group's members, each where it is written.
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    /// Which `_build/<ENV>` to read.
    #[serde(default, deserialize_with = "mix_env")]
    pub mix_env: Option<String>,
    /// The entry function when `run` names none.
    #[serde(default, deserialize_with = "entry")]
    pub entry: Option<String>,
    /// Modules pushed with the entry's closure (and their own closures).
    #[serde(default, deserialize_with = "include")]
    pub include: Option<Vec<String>>,
    /// Start the project's applications before the call, as `mix run` does (false: only load
    /// them, like a release's `eval`).
    pub start: Option<bool>,
    /// The `elixir` executable on the server.
    #[serde(default, deserialize_with = "elixir_path")]
    pub elixir: Option<String>,
    /// ssh_config file (`ssh -F`); relative to the config file's directory.
    pub ssh_config: Option<PathBuf>,
    /// `ssh -o` options.
    #[serde(default, deserialize_with = "ssh_options")]
    pub ssh_options: Option<Vec<String>>,
    /// Environment variables set in the remote node before the call.
    #[serde(default, deserialize_with = "remote_env")]
    pub remote_env: Option<Spanned<BTreeMap<String, String>>>,
    /// Seconds to wait for the SSH connection and login.
    #[serde(default, deserialize_with = "seconds")]
    pub connect_timeout: Option<u64>,
    /// Seconds to wait for the remote node to boot and connect back.
    #[serde(default, deserialize_with = "seconds")]
    pub boot_timeout: Option<u64>,
    /// Seconds to wait for the closure to load on the remote node.
    #[serde(default, deserialize_with = "seconds")]
    pub push_timeout: Option<u64>,
    /// Seconds the function may run (no limit when no layer sets one).
    #[serde(default, deserialize_with = "seconds")]
    pub call_timeout: Option<u64>,
    /// The server port of a cold run's reverse forward (0: one the server allocates; none: one
    /// the tool draws at random).
    #[serde(default, deserialize_with = "port")]
    pub forward_port: Option<u16>,
    /// Under `defaults` only: whether `run` and `plan` compile the project first.
    pub compile: Option<Spanned<bool>>,
    /// Under `defaults` only: whether warnings are shown.
    pub warnings: Option<Spanned<bool>>,
}

/// The layers of settings for `host` (none: the flags and `defaults` only), most important
/// first: `flags`, the host's own section, its group's (when chosen through it), `defaults`.
pub(super) fn layers<'c>(
    config: Option<&'c Config>,
    host: Option<&Selected>,
    flags: &'c Section,
) -> Vec<&'c Section> {
    let mut layers: Vec<&Section> = vec![flags];
    if let Some(config) = config {
        if let Some(host) = host {
            layers.extend(config.file.hosts.get(&host.name));
            for group in &host.groups {
                layers.extend(config.file.groups.get(group).map(|g| &g.value.0));
            }
        }
        layers.push(&config.file.defaults);
    }
    layers
}
