//! Replays the fuzz targets' kept corpora (`fuzz/corpus/<target>/`: `beam`, `args`, `dist`)
//! through the code the targets drive, so every input that once opened a new path stays covered
//! by `cargo test`, without cargo fuzz or a nightly compiler. See `fuzz/fuzz_targets/` for the
//! targets themselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use erl_dist::message::Message;
use mix_remote::invoke::Entry;
use mix_remote::node::{IoRequest, dist};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "the {target} corpus is nearly empty");
    inputs
}

#[test]
fn the_beam_corpus_gives_a_module_or_an_error() {
    let inputs = corpus("beam");
    assert!(inputs.len() > 100, "only {} beam inputs", inputs.len());
    for (path, bytes) in inputs {
        if let Ok(beam) = mix_remote::beam::parse(&path, bytes) {
            assert_eq!(beam.atoms.first(), Some(&beam.name), "{}", path.display());
            assert!(
                beam.exports.iter().all(|(f, _)| beam.atoms.contains(f)),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn the_argument_corpus_parses_or_fails_with_an_error() {
    let mut parsed = 0;
    for (_path, bytes) in corpus("args") {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(term) = mix_remote::args::parse(&text) {
            let mut buf = Vec::new();
            term.encode(&mut buf).expect("a parsed term encodes");
            parsed += 1;
        }
        let _ = Entry::parse(&text);
    }
    assert!(parsed > 0, "no input of the corpus is a literal");
}

/// Feeds `input` to `serve` over a socket pair, as a peer that then hangs up.
async fn as_peer<F: Future>(input: &[u8], serve: impl FnOnce(UnixStream) -> F) {
    let (ours, mut theirs) = UnixStream::pair().expect("a socket pair");
    let input = input.to_vec();
    let peer = async move {
        let _ = theirs.write_all(&input).await;
        let _ = theirs.shutdown().await;
        let mut sink = Vec::new();
        let _ = theirs.read_to_end(&mut sink).await;
    };
    let serve = tokio::time::timeout(Duration::from_secs(5), serve(ours));
    let (_, served) = tokio::join!(peer, serve);
    assert!(served.is_ok(), "hung");
}

#[tokio::test]
async fn the_distribution_corpus_ends_in_errors_or_skipped_frames() {
    let name = "us@localhost".parse().expect("a node name");
    for (path, bytes) in corpus("dist") {
        let Some((&mode, input)) = bytes.split_first() else {
            continue;
        };
        let local = dist::local_node(&name, 7);
        let replay = async {
            match mode % 3 {
                0 => {
                    as_peer(input, |s| async move {
                        let _ = dist::accept(s, local, "cookie", "remote@localhost").await;
                    })
                    .await
                }
                1 => {
                    as_peer(input, |s| async move {
                        let _ = dist::refuse(s, local).await;
                    })
                    .await
                }
                _ => {
                    dist::read_loop(
                        input,
                        |msg| {
                            let payload = match msg {
                                Message::Send(m) => m.message,
                                Message::RegSend(m) => m.message,
                                _ => return,
                            };
                            let _ = IoRequest::from_term(&payload);
                        },
                        |_skipped| {},
                    )
                    .await
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), replay)
            .await
            .unwrap_or_else(|_| panic!("{} hangs", path.display()));
    }
}
