//! What the tests of the configuration's files share: a file parsed as if at one path, the
//! line, key and message of its error, a fleet of hosts and groups, a host chosen.

use std::path::Path;

use super::{Config, ConfigError, Selected};

/// Where the tests' files are, as their errors name it.
pub(super) const PATH: &str = "/p/mix-remote.yaml";

/// `text` parsed as the file at [`PATH`].
pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(PATH))
}

/// The line, key and message of the error `text` gives (a panic if it gives none).
pub(super) fn invalid(text: &str) -> (u64, String, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            line, key, message, ..
        }) => (line, key, message),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

/// A fleet: defaults, a group in each form, hosts with settings of their own.
pub(super) const FLEET: &str = "\
defaults:
  mix_env: prod
  elixir: /usr/bin/elixir
  ssh_options: [ServerAliveInterval=10]
  remote_env: {REGION: eu, LOG: info}
  connect_timeout: 20
  push_timeout: 300
groups:
  web: [web-1, deploy@web-2]
  db:
    hosts: [db-1]
    elixir: /opt/elixir/bin/elixir
    remote_env: {LOG: debug}
hosts:
  web-1:
    address: deploy@10.0.0.5
    ssh_config: ssh/web.conf
    ssh_options: [Port=2222]
  db-1:
    boot_timeout: 5
    call_timeout: 10
    elixir: /db/elixir
    forward_port: 0
";

/// The host `name`, chosen through `group` (none: by `--host`).
pub(super) fn host(name: &str, group: Option<&str>) -> Selected {
    Selected {
        name: name.into(),
        groups: group.into_iter().map(Into::into).collect(),
    }
}
