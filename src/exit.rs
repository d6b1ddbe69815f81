//! The process exit codes, and the one error that ends a command before its work is reported:
//! [`CliError`] carries the line to print and the code, and every error of the layers below
//! converts into it here, so the mapping from failure to exit code lives in one place.

use crate::build::apps::AppsError;
use crate::build::plan::PlanError;
use crate::build::project::ProjectError;
use crate::config::ConfigError;
use crate::remote::job::JobError;
use crate::remote::node::CallError;
use crate::remote::session::SessionError;

/// Success: the function returned (and met `--expect`), or every host is ready.
pub const OK: u8 = 0;
/// The function raised, threw or exited (or returned something `--expect` refuses).
pub const RAISED: u8 = 1;
/// Bad input: flags, configuration, entry, arguments, project.
pub const USAGE: u8 = 2;
/// Could not connect, boot or load (or, for `check`, some host is not ready).
pub const CANNOT_RUN: u8 = 3;
/// A phase took longer than allowed.
pub const TIMEOUT: u8 = 4;
/// Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// A failure that ends a command: one line for the user and the process exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What went wrong, in one line.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

impl CliError {
    /// A failure with its exit code.
    pub fn new(message: impl Into<String>, code: u8) -> CliError {
        CliError {
            message: message.into(),
            code,
        }
    }

    /// The tool's own output could not be written on stdout (exit 3): `why` is the OS's error.
    pub fn stdout(why: impl std::fmt::Display) -> CliError {
        CliError::new(format!("cannot write to stdout: {why}"), CANNOT_RUN)
    }

    /// Bad input of the user's (exit 2), said by `error`.
    pub fn usage(error: impl std::fmt::Display) -> CliError {
        CliError::new(error.to_string(), USAGE)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Bad input of the user's: exit 2.
macro_rules! usage_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> CliError {
                CliError::usage(e)
            }
        }
    )*};
}

usage_errors!(ConfigError, PlanError, ProjectError, AppsError, JobError);

impl From<SessionError> for CliError {
    fn from(e: SessionError) -> CliError {
        let code = match &e {
            SessionError::Boot(_) | SessionError::Wire(_) => USAGE,
            SessionError::Timeout { .. } | SessionError::Call(CallError::Timeout { .. }) => TIMEOUT,
            // The code ended the node itself: the function failed, as a raise would.
            SessionError::Halted { .. } | SessionError::ConfigHalted { .. } => RAISED,
            _ => CANNOT_RUN,
        };
        CliError::new(e.to_string(), code)
    }
}
