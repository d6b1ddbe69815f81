//! Reading the project, with no network: the compiled modules of `_build/<env>`, their
//! dependency graph, the closure a run pushes, the version preflight, the application
//! environment, and the user's words for entries, modules, argument literals and the modules a
//! piece of code names.

pub mod app_config;
pub mod beam;
pub mod compat;
pub mod entry;
pub mod graph;
pub mod literal;
pub mod names;
pub mod plan;
pub mod project;
