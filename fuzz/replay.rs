//! What each fuzz target does with one input, in one place: the targets in `fuzz_targets/` call
//! these, and `tests/fuzz_corpus.rs` replays the kept corpora through the same functions under
//! plain `cargo test` (both include this file with `#[path]`).

use std::path::Path;
use std::time::Duration;

use erl_dist::message::Message;
use mix_remote::build::entry::Entry;
use mix_remote::remote::node::{FromRelay, dist};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The BEAM reader: a module whose name is its first atom and whose exports are atoms, or an error;
/// such a module as it ships parses again.
pub fn beam(path: &Path, data: &[u8]) {
    if let Ok(beam) = mix_remote::build::beam::parse(path, data.to_vec()) {
        assert_eq!(beam.atoms.first(), Some(&beam.name), "{}", path.display());
        let exports_are_atoms = beam.exports.iter().all(|(f, _)| beam.atoms.contains(f));
        assert!(exports_are_atoms, "{}", path.display());
        // As it ships (its halts redirected, when it calls any): still a module of that name.
        if let Ok(shipped) = mix_remote::remote::wire::stripped(&beam) {
            let again =
                mix_remote::build::beam::parse(path, shipped).expect("a shipped module parses");
            assert_eq!(again.name, beam.name, "{}", path.display());
        }
    }
}

/// Command-line input: an argument literal and an entry name. Returns whether it was a literal;
/// whatever parses must also encode, as the call will.
pub fn args(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let parsed = match mix_remote::build::literal::parse(&text) {
        Ok(term) => {
            let mut buf = Vec::new();
            term.encode(&mut buf).expect("a parsed term encodes");
            true
        }
        Err(_) => false,
    };
    let _ = Entry::parse(&text);
    parsed
}

/// Bytes a peer sends to our node; the first byte chooses a handshake as the booted node would
/// start it, one the node refuses, or frames of messages once connected.
pub async fn dist(data: &[u8]) {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let name = "us@localhost".parse().expect("a node name");
    let local = dist::local_node(&name, 7);
    match mode % 3 {
        0 => {
            as_peer(input, |s| async move {
                let _ = dist::accept(s, local, "cookie", "remote@localhost").await;
            })
            .await
        }
        1 => {
            as_peer(input, |s| async move {
                let _ = dist::refuse(s).await;
            })
            .await
        }
        _ => {
            dist::read_loop(
                input,
                |msg| {
                    // What the node does with every message: look for the relay's words in it.
                    let payload = match msg {
                        Message::Send(m) => m.message,
                        Message::RegSend(m) => m.message,
                        _ => return,
                    };
                    let _ = FromRelay::from_term(&payload);
                },
                |_skipped| {},
            )
            .await
        }
    }
}

/// Feeds `input` to `serve` over a socket pair, as a peer that then hangs up.
async fn as_peer<F: Future>(input: &[u8], serve: impl FnOnce(UnixStream) -> F) {
    let (ours, mut theirs) = UnixStream::pair().expect("a socket pair");
    let (input, len) = (input.to_vec(), input.len());
    let peer = async move {
        let _ = theirs.write_all(&input).await;
        let _ = theirs.shutdown().await;
        // Keep reading what we are sent, so our side never blocks on a full buffer.
        let mut sink = Vec::new();
        let _ = theirs.read_to_end(&mut sink).await;
    };
    let serve = tokio::time::timeout(Duration::from_secs(5), serve(ours));
    let (_, served) = tokio::join!(peer, serve);
    assert!(served.is_ok(), "hung on {len} bytes of input");
}
