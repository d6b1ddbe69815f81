//! Bytes a peer sends to our node: a distribution handshake (as the booted node, an intruder or a
//! late comer would start it) or, once connected, frames of messages. The first byte chooses which;
//! any input must end in an error or a skipped frame, never a panic or an unbounded allocation.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mix_remote::node::{IoRequest, dist};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// Feeds `input` to `serve` over a socket pair and drops the connection after it.
async fn as_peer<F: Future>(input: &[u8], serve: impl FnOnce(UnixStream) -> F) {
    let (ours, mut theirs) = UnixStream::pair().expect("a socket pair");
    let peer = async move {
        let _ = theirs.write_all(input).await;
        let _ = theirs.shutdown().await;
        // Keep reading what we are sent, so our side never blocks on a full buffer.
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut sink).await;
    };
    let serve = tokio::time::timeout(Duration::from_secs(5), serve(ours));
    let (_, served) = tokio::join!(peer, serve);
    assert!(served.is_ok(), "hung on {} bytes of input", input.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let name = "us@localhost".parse().expect("a node name");
    let local = dist::local_node(&name, 7);
    runtime().block_on(async {
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
                        // What the node does with every message: look for an IO request in it.
                        let payload = match msg {
                            erl_dist::message::Message::Send(m) => m.message,
                            erl_dist::message::Message::RegSend(m) => m.message,
                            _ => return,
                        };
                        let _ = IoRequest::from_term(&payload);
                    },
                    |_skipped| {},
                )
                .await
            }
        }
    });
});
