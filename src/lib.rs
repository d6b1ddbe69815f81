//! mix-remote: run a function of a compiled Mix project on a server reached only by SSH.
//!
//! The binary (`src/main.rs`) is a thin shell over these modules, one per stage of the data flow;
//! they are a library so that benchmarks and fuzz targets can drive the same code.

pub mod app_config;
pub mod args;
pub mod beam;
pub mod boot;
pub mod check;
pub mod cli;
pub mod compat;
pub mod config;
pub mod events;
pub mod fleet;
pub mod graph;
pub mod graph_export;
pub mod init;
pub mod invoke;
pub mod node;
pub mod plan;
pub mod private_dir;
pub mod project;
pub mod push;
pub mod report;
pub mod run;
pub mod ssh;
pub mod wire;
