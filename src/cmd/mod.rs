//! One file per subcommand, each with an `exec` that returns the process exit code (`iex` with its
//! line editor beside it), and the fan-out over hosts that `run` and `check` share.

pub mod check;
pub mod completions;
pub mod fanout;
pub mod graph;
pub mod iex;
pub mod init;
pub mod plan;
pub mod run;
