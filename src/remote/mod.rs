//! Talking to the server: the SSH connection and its private directory, the boot of the
//! throw-away node and the words of its protocol, our own hidden node, the wire form of the
//! closure, the push, the call, the console that writes what the call prints and answers its
//! reads, and the session that runs them in order on one host (or the probes `check` makes, or
//! the IEx session of `iex`).

pub mod agent;
pub mod boot;
pub mod console;
pub mod iex;
pub mod invoke;
pub mod job;
pub mod node;
pub mod private_dir;
pub mod probe;
pub mod push;
pub mod session;
pub mod ssh;
pub mod stdin;
pub mod wire;
