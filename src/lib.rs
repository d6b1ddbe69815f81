//! mix-remote: run a function of a compiled Mix project on a server reached only by SSH.
//!
//! The binary (`src/main.rs`) parses the command line and hands it to one of [`cmd`]; the rest is
//! a library, so that benchmarks and fuzz targets drive the same code. Dependencies point one
//! way: [`cmd`] -> [`remote`] -> [`build`]; [`config`], [`report`] (with [`screen`]),
//! [`events`], [`suggest`] and [`child`] are leaves that any of them may use, and [`cli`] is known to [`cmd`]
//! alone.

pub mod build;
pub mod child;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod events;
pub mod exit;
pub mod remote;
pub mod report;
pub mod screen;
pub mod suggest;
