//! Command-line input: an argument literal (`mix-remote run E -- <this>`) and an entry name. Any
//! text must give a term or an error, never a panic, a hang or a stack overflow.
#![no_main]

// Shared with the other targets and the corpus replay test; this target uses one function of it.
#[allow(dead_code)]
#[path = "../replay.rs"]
mod replay;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    replay::args(data);
});
