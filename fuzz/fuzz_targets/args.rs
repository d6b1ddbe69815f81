//! Command-line input: an argument literal (`mix-remote run E -- <this>`) and an entry name. Any
//! text must give a term or an error, never a panic, a hang or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_remote::{args, invoke::Entry};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(term) = args::parse(&text) {
        // Whatever parses must also encode, as the call will.
        let mut buf = Vec::new();
        let _ = term.encode(&mut buf);
    }
    let _ = Entry::parse(&text);
});
