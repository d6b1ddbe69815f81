//! Every setting of one host, resolved from its layers, and what gave its ssh destination: what
//! may differ between the hosts of a run, apart from the build they share.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::section::layers;
use super::{
    Config, DEFAULT_BOOT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ELIXIR, DEFAULT_PUSH_TIMEOUT,
    Section, Selected,
};

/// Every setting of one host, resolved: what may differ between the hosts of a run (the build
/// they share is a [`Build`](super::Build)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// The name shown in output and in the summary.
    pub name: String,
    /// The ssh destination, `[user@]host` or an ssh_config alias.
    pub address: String,
    /// What gave the destination, for the hint of one that does not resolve: see [`origin`].
    pub origin: String,
    /// The remote `elixir`.
    pub elixir: String,
    /// `ssh -F`.
    pub ssh_config: Option<PathBuf>,
    /// `ssh -o`, most important first (ssh keeps the first value of an option).
    pub ssh_options: Vec<String>,
    /// Set in the remote node before the call.
    pub remote_env: BTreeMap<String, String>,
    /// Seconds to wait for the SSH connection and login.
    pub connect_timeout: u64,
    /// Seconds to wait for the remote node to boot and connect back.
    pub boot_timeout: u64,
    /// Seconds to wait for the closure to load.
    pub push_timeout: u64,
    /// Seconds the function may run; `None`: as long as it needs.
    pub call_timeout: Option<u64>,
    /// The server port of a cold run's reverse forward: 0 for one the server allocates, `None`
    /// for one the tool draws at random.
    pub forward_port: Option<u16>,
}

/// Resolves every setting of `host`: `flags` (flags and environment), then the host's section,
/// its group's, `defaults`, and the built-in defaults.
pub fn resolve(config: Option<&Config>, host: &Selected, flags: &Section) -> HostSettings {
    let layers = layers(config, Some(host), flags);
    let first = |pick: &dyn Fn(&Section) -> Option<String>| layers.iter().find_map(|s| pick(s));
    let mut remote_env = BTreeMap::new();
    // Least important first, so that more important layers overwrite.
    for layer in layers.iter().rev() {
        if let Some(env) = &layer.remote_env {
            remote_env.extend(env.value.clone());
        }
    }
    HostSettings {
        name: host.name.clone(),
        address: first(&|s| s.address.as_ref().map(|a| a.value.clone()))
            .unwrap_or_else(|| host.name.clone()),
        origin: origin(config, host, false),
        elixir: first(&|s| s.elixir.clone()).unwrap_or_else(|| DEFAULT_ELIXIR.into()),
        ssh_config: layers.iter().find_map(|s| s.ssh_config.clone()),
        ssh_options: layers
            .iter()
            .flat_map(|s| s.ssh_options.iter().flatten().cloned())
            .collect(),
        remote_env,
        connect_timeout: layers
            .iter()
            .find_map(|s| s.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        boot_timeout: layers
            .iter()
            .find_map(|s| s.boot_timeout)
            .unwrap_or(DEFAULT_BOOT_TIMEOUT),
        push_timeout: layers
            .iter()
            .find_map(|s| s.push_timeout)
            .unwrap_or(DEFAULT_PUSH_TIMEOUT),
        call_timeout: layers.iter().find_map(|s| s.call_timeout),
        forward_port: layers.iter().find_map(|s| s.forward_port),
    }
}

/// What gave the ssh destination of `host`, as a hint names it ("check ORIGIN"): its `address`
/// in mix-remote.yaml, else its name in the group that chose it, else `--host` (the group's
/// `MIX_REMOTE_GROUP`, or `MIX_REMOTE_HOST`, when `from_variables`, as
/// [`ConfigError::from_variables`](super::ConfigError::from_variables) names them).
pub fn origin(config: Option<&Config>, host: &Selected, from_variables: bool) -> String {
    let name = &host.name;
    if let Some(config) = config {
        let path = config.path.display();
        if let Some(address) = config.file.hosts.get(name).and_then(|h| h.address.as_ref()) {
            return format!(
                "the address of {name} at {path}:{}",
                address.referenced.line()
            );
        }
        if let Some(group) = host.groups.first() {
            let by = if from_variables {
                " (MIX_REMOTE_GROUP)"
            } else {
                ""
            };
            return format!("the host {name} of the group {group}{by} in {path}");
        }
    }
    match from_variables {
        true => "the host name MIX_REMOTE_HOST gives".to_owned(),
        false => "the host name given to --host".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{FLEET, host, parse};
    use crate::config::{DEFAULT_MIX_ENV, build};

    #[test]
    fn flags_beat_host_beat_group_beat_defaults_beat_built_ins() {
        let config = parse(FLEET).unwrap();
        let none = Section::default();
        let db = resolve(Some(&config), &host("db-1", Some("db")), &none);
        assert_eq!(db.elixir, "/db/elixir", "host over group");
        assert_eq!((db.boot_timeout, db.call_timeout), (5, Some(10)));
        assert_eq!(db.forward_port, Some(0), "0: the server allocates");
        assert_eq!(db.connect_timeout, 20, "defaults over built-ins");
        assert_eq!(db.push_timeout, 300);
        let db_build = build(Some(&config), None, &none, &[host("db-1", Some("db"))]).unwrap();
        assert_eq!(db_build.mix_env, "prod");
        assert_eq!(
            db.remote_env,
            BTreeMap::from([
                ("LOG".into(), "debug".into()),
                ("REGION".into(), "eu".into())
            ]),
            "group over defaults, per variable"
        );
        let flags = Section {
            elixir: Some("/flag/elixir".into()),
            connect_timeout: Some(3),
            call_timeout: Some(7),
            ssh_options: Some(vec!["Port=22".into()]),
            ..Section::default()
        };
        let db = resolve(Some(&config), &host("db-1", Some("db")), &flags);
        assert_eq!(
            (db.elixir.as_str(), db.connect_timeout, db.call_timeout),
            ("/flag/elixir", 3, Some(7))
        );

        let web = resolve(Some(&config), &host("web-1", Some("web")), &flags);
        assert_eq!(web.address, "deploy@10.0.0.5");
        assert_eq!(web.ssh_config, Some(PathBuf::from("/p/ssh/web.conf")));
        // ssh keeps the first value it sees of each option: the flags' come first.
        assert_eq!(
            web.ssh_options,
            ["Port=22", "Port=2222", "ServerAliveInterval=10"]
        );
        let other = resolve(Some(&config), &host("deploy@web-2", Some("web")), &none);
        assert_eq!(other.address, "deploy@web-2");
        assert_eq!(other.elixir, "/usr/bin/elixir");

        let bare = resolve(None, &host("h", None), &none);
        let bare_build = build(None, None, &none, &[host("h", None)]).unwrap();
        assert_eq!(
            (bare_build.mix_env.as_str(), bare.elixir.as_str()),
            (DEFAULT_MIX_ENV, DEFAULT_ELIXIR)
        );
        assert_eq!(
            (
                bare.connect_timeout,
                bare.boot_timeout,
                bare.push_timeout,
                bare.call_timeout
            ),
            (
                DEFAULT_CONNECT_TIMEOUT,
                DEFAULT_BOOT_TIMEOUT,
                DEFAULT_PUSH_TIMEOUT,
                None
            )
        );
        assert_eq!(bare.forward_port, None, "drawn at random");
    }

    #[test]
    fn group_settings_apply_only_through_the_group() {
        let config = parse(FLEET).unwrap();
        let direct = resolve(Some(&config), &host("db-1", None), &Section::default());
        assert_eq!(
            direct.remote_env.get("LOG").map(String::as_str),
            Some("info")
        );
    }
}
