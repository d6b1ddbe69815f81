//! Why a run on a host could not complete ([`SessionError`]), and the limit every phase runs
//! within.

use std::sync::Arc;
use std::time::Duration;

use crate::build::beam::BeamError;
use crate::build::compat;
use crate::build::native;
use crate::events::Stage;
use crate::remote::boot::BootError;
use crate::remote::invoke::Outcome;
use crate::remote::node::{CallError, DistError};
use crate::remote::push::PushError;
use crate::remote::ssh::{InConfig, SshError};

/// Why a run on a host could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The boot command could not be built.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// SSH failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The distribution connection failed.
    #[error(transparent)]
    Dist(#[from] DistError),
    /// A remote call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Loading the closure failed.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The remote's loader would refuse the closure (found before anything is loaded).
    #[error(transparent)]
    Compat(#[from] compat::Refusal),
    /// Native code of a shipped `priv/` is built for another kind of machine (found before
    /// anything is loaded).
    #[error(transparent)]
    Native(#[from] native::Mismatch),
    /// The server lacks an application that a shipped one needs (found before anything is
    /// loaded).
    #[error(
        "{by} needs the application {app}, which {host} does not have: install it there with its Erlang/OTP and Elixir (Debian and Ubuntu ship parts of OTP as packages of their own, e.g. erlang-{app})"
    )]
    MissingApp {
        /// The application the server lacks.
        app: String,
        /// A shipped application that needs it.
        by: String,
        /// The host.
        host: String,
    },
    /// The server has no directory a run can write its files in (no `TMPDIR`, `/tmp` or other
    /// that `templates/run_dirs.exs` looks at is writable), as the node found when it loaded or
    /// `check` found: what it said, or which it tried.
    #[error("{host} has no directory a run can write its files in ({said}): {NO_RUN_DIR_HINT}")]
    NoRunDir {
        /// The host.
        host: String,
        /// What the node said, or which directories `check` tried.
        said: String,
    },
    /// The node failed to load the code: it raised, threw or exited (what it said).
    #[error("the remote node on {host} failed to load the code: {said}")]
    LoadFailed {
        /// The host.
        host: String,
        /// What the node said.
        said: String,
    },
    /// A module of the closure could not be prepared for the wire.
    #[error(transparent)]
    Wire(#[from] Arc<BeamError>),
    /// A local socket could not be created.
    #[error("cannot create local socket {path}: {error} (is $TMPDIR writable?)")]
    Socket {
        /// The socket path.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// A phase took too long.
    #[error("timed out {phase} on {host} after {secs} s (raise it with {flag})")]
    Timeout {
        /// What was going on, e.g. `booting the remote node`.
        phase: String,
        /// The host.
        host: String,
        /// The limit.
        secs: u64,
        /// The flag that raises it.
        flag: &'static str,
    },
    /// The remote node or the connection to it went away in the middle of a phase.
    #[error(
        "the remote node on {host} went away while {phase} (it crashed or was killed, or the SSH connection dropped; the server's messages, if any, are above)"
    )]
    Lost {
        /// What was going on.
        phase: String,
        /// Which stage that was.
        stage: Stage,
        /// The host.
        host: String,
    },
    /// The remote node halted with an exit status in the middle of a phase: the code called
    /// `System.halt/1` or `System.stop/1` (or the VM gave up on a fatal error).
    #[error(
        "the remote node on {host} halted with status {status} while {phase} (System.halt/1 or System.stop/1 in the code, or the VM's exit on a fatal error; the server's messages, if any, are above)"
    )]
    Halted {
        /// What was going on.
        phase: String,
        /// Which stage that was.
        stage: Stage,
        /// The host.
        host: String,
        /// The node's exit status.
        status: u8,
    },
    /// The remote node halted while it evaluated one of the project's config files: the file
    /// called `System.halt/1`, which ends `mix run` with its status before the code runs. The
    /// run ends as an `exit({:shutdown, status})` there ends it (see [`Outcome::ConfigFailed`]).
    #[error("{file} stopped the run with status {status} on {host}")]
    ConfigHalted {
        /// The file, as the project names it (`config/runtime.exs`).
        file: String,
        /// The host.
        host: String,
        /// The node's exit status.
        status: u8,
        /// What the file printed before, held on the node as it evaluated config.exs ahead: the
        /// run has not shown it ([`SessionError::printed_ahead`]).
        printed: Vec<u8>,
    },
}

/// What to do about a server without a directory a run can write its files in, and where runs
/// look for one (`templates/run_dirs.exs`, `tmp_dir`).
pub const NO_RUN_DIR_HINT: &str = "give it one as TMPDIR in the host's remote_env in \
    mix-remote.yaml (a run uses TMPDIR, TEMP or TMP when it is a writable directory, else \
    XDG_RUNTIME_DIR, else /tmp, else the login directory)";

impl SessionError {
    /// The server `host` lacks `app`, which the applications of `from_server` ((needed, by), as
    /// [`crate::build::apps::Apps`] has them) need: named with the first that does.
    pub fn missing_app(app: &str, from_server: &[(String, String)], host: &str) -> SessionError {
        let by = from_server
            .iter()
            .find(|(needed, _)| needed == app)
            .map_or_else(String::new, |(_, by)| by.clone());
        SessionError::MissingApp {
            app: app.to_owned(),
            by,
            host: host.to_owned(),
        }
    }

    /// Names `host` in the node's account of a load that failed.
    pub(super) fn on_host(self, host: &str) -> SessionError {
        match self {
            SessionError::Push(PushError::NoRunDir(said)) => SessionError::NoRunDir {
                host: host.to_owned(),
                said,
            },
            SessionError::Push(PushError::Failed(said)) => SessionError::LoadFailed {
                host: host.to_owned(),
                said,
            },
            other => other,
        }
    }

    /// The tool's own refusal on what the node said of itself (the preflight), or the node's on
    /// what it lacks: the run ends with nothing loaded.
    pub(super) fn is_preflight_refusal(&self) -> bool {
        matches!(
            self,
            SessionError::Compat(_) | SessionError::Native(_) | SessionError::MissingApp { .. }
        )
    }

    /// The function halted the node with status 0 (`System.halt(0)`, `System.stop(0)`): it ended
    /// as a script ends itself, which `mix run` takes for a success.
    pub fn is_clean_halt(&self) -> bool {
        matches!(
            self,
            SessionError::Halted {
                stage: Stage::Call,
                status: 0,
                ..
            }
        )
    }

    /// The SSH session ended before the step waiting on it was done (the node's words, if any,
    /// were its last).
    pub(super) fn is_session_end(&self) -> bool {
        matches!(self, SessionError::Ssh(SshError::Ended { .. }))
    }

    /// Names the phase, host and flag in a call that timed out.
    pub(super) fn in_phase(
        self,
        phase: &str,
        host: &str,
        limit: Duration,
        flag: &'static str,
    ) -> SessionError {
        match self {
            SessionError::Call(CallError::Timeout { .. })
            | SessionError::Push(PushError::Call(CallError::Timeout { .. })) => {
                SessionError::Timeout {
                    phase: phase.to_owned(),
                    host: host.to_owned(),
                    secs: limit.as_secs(),
                    flag,
                }
            }
            other => other,
        }
    }

    /// A lost node, told by the SSH session's exit `status` to have halted by itself: a status
    /// of 0 to 125 is the node's own (ssh gives 255 for its own failures and a signal's end, the
    /// boot program 126 when the tool's connection went away).
    pub(super) fn halted_with(self, status: Option<i32>) -> SessionError {
        match (self, status.and_then(|s| u8::try_from(s).ok())) {
            (SessionError::Lost { phase, stage, host }, Some(status)) if status <= 125 => {
                SessionError::Halted {
                    phase,
                    stage,
                    host,
                    status,
                }
            }
            (other, _) => other,
        }
    }

    /// A halt ([`SessionError::Halted`]) while the node evaluated the config file `evaluating`
    /// is that file's: [`SessionError::ConfigHalted`].
    pub(super) fn halted_in(self, evaluating: Option<InConfig>) -> SessionError {
        match (self, evaluating) {
            (SessionError::Halted { host, status, .. }, Some(InConfig { file, printed })) => {
                SessionError::ConfigHalted {
                    file,
                    host,
                    status,
                    printed,
                }
            }
            (other, _) => other,
        }
    }

    /// What a config file that halted the node printed before, which the run has not shown (it
    /// was held on the node as config.exs was evaluated ahead): the run's output, ahead of its
    /// end. Empty for another error.
    pub fn printed_ahead(&self) -> &[u8] {
        match self {
            SessionError::ConfigHalted { printed, .. } => printed,
            _ => &[],
        }
    }

    /// A config file's halt as the end it makes of the run: the file's
    /// [`Outcome::ConfigFailed`] with no text, as its `exit({:shutdown, status})` makes; another
    /// error as it is.
    pub fn config_halt(self) -> Result<Outcome, SessionError> {
        match self {
            SessionError::ConfigHalted { file, status, .. } => Ok(Outcome::ConfigFailed {
                file,
                text: String::new(),
                status,
            }),
            other => Err(other),
        }
    }

    /// Names the phase (of `stage`) and host in a connection that was lost.
    pub fn lost_in(self, stage: Stage, phase: &str, host: &str) -> SessionError {
        match self {
            SessionError::Dist(DistError::Lost)
            | SessionError::Call(CallError::Dist(DistError::Lost))
            | SessionError::Push(PushError::Call(CallError::Dist(DistError::Lost))) => {
                SessionError::Lost {
                    phase: phase.to_owned(),
                    stage,
                    host: host.to_owned(),
                }
            }
            other => other,
        }
    }
}

/// Runs `work` within `limit`; past it, a [`SessionError::Timeout`] that names `phase`, `host`
/// and the `flag` that raises the limit.
pub(super) async fn timeout<T, E: Into<SessionError>>(
    limit: Duration,
    work: impl Future<Output = Result<T, E>>,
    phase: &str,
    host: &str,
    flag: &'static str,
) -> Result<T, SessionError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(SessionError::Timeout {
            phase: phase.to_owned(),
            host: host.to_owned(),
            secs: limit.as_secs(),
            flag,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_load_names_the_host_and_a_missing_run_directory_what_to_do() {
        let none = SessionError::from(PushError::NoRunDir(
            "no writable temporary directory".into(),
        ));
        assert_eq!(
            none.on_host("deploy@web-1").to_string(),
            "deploy@web-1 has no directory a run can write its files in (no writable temporary \
             directory): give it one as TMPDIR in the host's remote_env in mix-remote.yaml (a \
             run uses TMPDIR, TEMP or TMP when it is a writable directory, else XDG_RUNTIME_DIR, \
             else /tmp, else the login directory)"
        );
        let failed = SessionError::from(PushError::Failed("(ArgumentError) boom".into()));
        assert_eq!(
            failed.on_host("web-1").to_string(),
            "the remote node on web-1 failed to load the code: (ArgumentError) boom"
        );
        let refused = SessionError::from(PushError::Refused("M".into()));
        assert!(matches!(
            refused.on_host("web-1"),
            SessionError::Push(PushError::Refused(_))
        ));
    }
}
