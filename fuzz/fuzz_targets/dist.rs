//! Bytes a peer sends to our node: a distribution handshake (as the booted node, an intruder or a
//! late comer would start it) or, once connected, frames of messages. The first byte chooses which;
//! any input must end in an error or a skipped frame, never a panic or an unbounded allocation.
#![no_main]

use std::sync::OnceLock;

use tokio::runtime::Runtime;

// Shared with the other targets and the corpus replay test; this target uses one function of it.
#[allow(dead_code)]
#[path = "../replay.rs"]
mod replay;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    runtime().block_on(replay::dist(data));
});
