//! Fuzz target for the BEAM reader: any bytes, plain or gzip-compressed, must give a module or an
//! error, never a panic, a hang or an allocation out of proportion to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(beam) = mix_remote::beam::parse(Path::new("fuzz.beam"), data.to_vec()) {
        assert_eq!(beam.atoms.first(), Some(&beam.name));
        assert!(beam.exports.iter().all(|(f, _)| beam.atoms.contains(f)));
    }
});
