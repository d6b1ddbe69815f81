//! One file per subcommand, each with an `exec` that returns the process exit code (`iex` with its
//! line editor beside it); the fan-out over hosts that `run`, `eval` and `check` share, and the
//! compile before reading the build (`fresh`).

pub mod check;
pub mod completions;
pub mod down;
pub mod eval;
pub mod fanout;
pub mod fresh;
pub mod graph;
pub mod iex;
pub mod init;
pub mod plan;
pub mod run;
pub mod status;
pub mod up;
