//! Reading the project, with no network: the compiled modules of `_build/<env>`, their
//! dependency graph, the closure a run pushes, the applications it ships and their native code,
//! the version preflight, the application environment, and the user's words for entries, modules
//! and argument literals.

pub mod app_config;
pub mod app_spec;
pub mod apps;
pub mod beam;
pub mod compat;
pub mod entry;
pub mod graph;
pub mod literal;
pub mod native;
pub mod plan;
pub mod project;
