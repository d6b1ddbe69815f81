//! Fuzz target for the BEAM reader: any bytes, plain or gzip-compressed, must give a module or an
//! error, never a panic, a hang or an allocation out of proportion to the input.
#![no_main]

// Shared with the other targets and the corpus replay test; this target uses one function of it.
#[allow(dead_code)]
#[path = "../replay.rs"]
mod replay;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    replay::beam(std::path::Path::new("fuzz.beam"), data);
});
