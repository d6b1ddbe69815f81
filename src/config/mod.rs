//! `mix-remote.yaml`: the hosts and groups a team works with and their settings, found by walking
//! up from the current directory, and the resolution of every setting for one host.
//!
//! Precedence, most important first: command-line flags, `MIX_REMOTE_*` environment variables
//! (clap merges these two into the override layer), the config file (the host's own section, then
//! its group's, then `defaults`), the built-in defaults.
//!
//! Each job has its file: the file read with the place of each key (`file.rs`), the checks
//! serde cannot make as it reads (`checks.rs`), what each setting's value must be (`values.rs`),
//! `ssh_config` paths as ssh finds them (`ssh_config.rs`), one layer of settings and the order of
//! the layers (`section.rs`), the hosts chosen (`select.rs`), the settings of one host
//! (`host.rs`), what the hosts of a command share (`build.rs`), and why a configuration cannot
//! be used (`error.rs`).

mod build;
mod checks;
mod error;
mod file;
mod host;
mod section;
mod select;
mod ssh_config;
#[cfg(test)]
mod testing;
mod values;

pub use build::{Build, Key, build, project_dir};
pub use error::ConfigError;
pub use file::Config;
pub use host::{HostSettings, origin, resolve};
pub use section::Section;
pub use select::{Selected, select};
pub use values::{include_ok, mix_env_ok, ssh_option_ok};

/// The file looked for in the current directory and its parents.
pub const FILE_NAME: &str = "mix-remote.yaml";

/// Built-in default of `mix_env`.
pub const DEFAULT_MIX_ENV: &str = "dev";
/// Built-in default of `elixir`: found on the remote login PATH.
pub const DEFAULT_ELIXIR: &str = "elixir";
/// Built-in default of `connect_timeout`, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 30;
/// Built-in default of `boot_timeout`, in seconds.
pub const DEFAULT_BOOT_TIMEOUT: u64 = 60;
/// Built-in default of `push_timeout`, in seconds: loading runs every module's `-on_load`.
pub const DEFAULT_PUSH_TIMEOUT: u64 = 120;
