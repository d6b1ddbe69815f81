//! Reading the project, with no network: compiling it first (`fresh`), the compiled modules of
//! `_build/<env>`, their dependency graph, the closure a run pushes, the applications it ships and
//! their native code, the version preflight, the application environment, and the user's words
//! for entries, modules, argument literals and the modules a piece of code names.

pub mod app_config;
pub mod app_spec;
pub mod apps;
pub mod beam;
pub mod compat;
pub mod entry;
pub mod fresh;
pub mod graph;
pub mod literal;
pub mod mix_exs;
pub mod names;
pub mod native;
pub mod parallel;
pub mod plan;
pub mod project;
