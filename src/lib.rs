//! mix-remote: run a function of a compiled Mix project on a server reached only by SSH.
//!
//! The binary (`src/main.rs`) is a thin shell over these modules, one per stage of the data flow;
//! they are a library so that benchmarks and fuzz targets can drive the same code.

pub mod args;
pub mod beam;
pub mod boot;
pub mod cli;
pub mod graph;
pub mod invoke;
pub mod node;
pub mod project;
pub mod push;
pub mod report;
pub mod run;
pub mod ssh;
pub mod wire;
