//! Replays the fuzz targets' kept corpora (`fuzz/corpus/<target>/`: `beam`, `args`, `dist`)
//! through the code the targets drive, so every input that once opened a new path stays covered
//! by `cargo test`, without cargo fuzz or a nightly compiler. See `fuzz/fuzz_targets/` for the
//! targets themselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "../fuzz/replay.rs"]
mod replay;

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
        replay::beam(&path, &bytes);
    }
}

#[test]
fn the_argument_corpus_parses_or_fails_with_an_error() {
    let parsed = corpus("args")
        .iter()
        .filter(|(_, bytes)| replay::args(bytes))
        .count();
    assert!(parsed > 0, "no input of the corpus is a literal");
}

#[tokio::test]
async fn the_distribution_corpus_ends_in_errors_or_skipped_frames() {
    for (path, bytes) in corpus("dist") {
        tokio::time::timeout(Duration::from_secs(10), replay::dist(&bytes))
            .await
            .unwrap_or_else(|_| panic!("{} hangs", path.display()));
    }
}
