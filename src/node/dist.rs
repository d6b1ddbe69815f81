//! The distribution connection: handshake, framing and the reader/writer loops.
//!
//! erl_dist does the handshake and the message codecs; the framing and the loop are ours (4-byte
//! length, pass-through type byte 112, no atom cache, no fragments), so that an unexpected or
//! undecodable message is skipped instead of ending the connection, and so ticks keep flowing.

use std::time::Duration;

use erl_dist::DistributionFlags;
use erl_dist::handshake::{HandshakeStatus, ServerSideHandshake};
use erl_dist::message::Message;
use erl_dist::node::{Creation, LocalNode, NodeName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Pass-through message type byte.
const PASS_THROUGH: u8 = 112;
/// The remote node's net_ticktime in seconds (set at its boot): it ticks every quarter of it and
/// halts when we have been silent for that long, so a dead link ends the run on both sides fast.
pub const NET_TICKTIME: u64 = 15;
/// How often we tick an otherwise idle connection: well within a quarter of [`NET_TICKTIME`].
const TICK_INTERVAL: Duration = Duration::from_secs(3);
/// A peer silent this long is gone: it ticks every quarter of [`NET_TICKTIME`].
const SILENCE_LIMIT: Duration = Duration::from_secs(NET_TICKTIME + 5);
/// Largest frame we accept: far above any term a run exchanges, small enough to refuse garbage.
const MAX_FRAME: usize = 1 << 30;

/// Why the distribution connection failed.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A handshake failed (wrong node, wrong cookie, protocol error).
    #[error("distribution handshake with {node} failed: {reason}")]
    Handshake {
        /// The peer, as it named itself.
        node: String,
        /// What erl_dist reported.
        reason: String,
    },
    /// The connection dropped or the remote node went away.
    #[error("connection to the remote node was lost")]
    Lost,
}

/// The flags we advertise: exactly what our codecs implement, and no PUBLISHED (a hidden node).
fn our_flags() -> DistributionFlags {
    DistributionFlags::EXTENDED_REFERENCES
        | DistributionFlags::FUN_TAGS
        | DistributionFlags::NEW_FUN_TAGS
        | DistributionFlags::EXTENDED_PIDS_PORTS
        | DistributionFlags::EXPORT_PTR_TAG
        | DistributionFlags::BIT_BINARIES
        | DistributionFlags::NEW_FLOATS
        | DistributionFlags::UTF8_ATOMS
        | DistributionFlags::MAP_TAGS
        | DistributionFlags::BIG_CREATION
        | DistributionFlags::HANDSHAKE_23
        | DistributionFlags::UNLINK_ID
        | DistributionFlags::V4_NC
}

/// Our node's identity for handshakes.
pub fn local_node(name: &NodeName, creation: u32) -> LocalNode {
    let mut node = LocalNode::new(name.clone(), Creation::new(creation));
    node.flags = our_flags();
    node
}

/// Performs the server side of the handshake on an incoming `stream`, accepting only the node
/// named `expected` and only with our cookie (erl_dist checks the challenge digest).
pub async fn accept(
    stream: UnixStream,
    local: LocalNode,
    cookie: &str,
    expected: &str,
) -> Result<UnixStream, DistError> {
    let fail = |node: String, reason: String| DistError::Handshake { node, reason };
    let mut hs = ServerSideHandshake::new(stream.compat(), local, cookie);
    let peer = hs
        .execute_recv_name()
        .await
        .map_err(|e| fail("an unnamed peer".into(), e.to_string()))?
        .map(|name| name.to_string())
        .unwrap_or_else(|| "a peer asking for a dynamic name".into());
    if peer != expected {
        let _ = hs.execute_rest(HandshakeStatus::NotAllowed).await;
        return Err(fail(peer, "not the node this run booted".into()));
    }
    let (stream, _peer_node) = hs
        .execute_rest(HandshakeStatus::Ok)
        .await
        .map_err(|e| fail(peer, e.to_string()))?;
    Ok(stream.into_inner())
}

/// Refuses an incoming connection with status `not_allowed`, before any cookie challenge:
/// a run has exactly one connection. Returns the name the peer gave, for the log.
pub async fn refuse(stream: UnixStream, local: LocalNode) -> Option<String> {
    let mut hs = ServerSideHandshake::new(stream.compat(), local, "");
    let name = hs.execute_recv_name().await.ok().flatten()?.to_string();
    let _ = hs.execute_rest(HandshakeStatus::NotAllowed).await;
    Some(name)
}

/// Writes queued messages as frames, and a tick whenever the connection has been idle.
pub async fn write_loop(mut writer: OwnedWriteHalf, mut queue: mpsc::UnboundedReceiver<Message>) {
    let mut buf = Vec::new();
    loop {
        let next = tokio::time::timeout(TICK_INTERVAL, queue.recv()).await;
        buf.clear();
        match next {
            Err(_idle) => buf.extend_from_slice(&0u32.to_be_bytes()),
            Ok(None) => return,
            Ok(Some(msg)) => {
                buf.extend_from_slice(&[0, 0, 0, 0, PASS_THROUGH]);
                if msg.write_into(&mut buf).is_err() {
                    continue;
                }
                let len = (buf.len() - 4) as u32;
                buf[..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        if writer.write_all(&buf).await.is_err() {
            return;
        }
    }
}

/// Reads frames and hands every decoded message to `deliver`; returns when the connection ends
/// or the peer has been silent (not even a tick) for too long. Ticks are consumed here; frames we
/// cannot decode are skipped (reported through `skipped`).
pub async fn read_loop(
    mut reader: impl AsyncRead + Unpin,
    mut deliver: impl FnMut(Message),
    mut skipped: impl FnMut(String),
) {
    let mut buf = Vec::new();
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(SILENCE_LIMIT, reader.read_u32()).await else {
            return;
        };
        let len = len as usize;
        if len == 0 {
            continue;
        }
        if len > MAX_FRAME {
            skipped(format!("frame of {len} bytes is too large"));
            return;
        }
        buf.resize(len, 0);
        if reader.read_exact(&mut buf).await.is_err() {
            return;
        }
        match buf.split_first() {
            Some((&PASS_THROUGH, mut body)) => match Message::read_from(&mut body) {
                Ok(msg) => deliver(msg),
                Err(e) => skipped(format!("undecodable message: {e}")),
            },
            _ => skipped(format!("frame with unknown type byte {}", buf[0])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::handshake::ClientSideHandshake;

    fn node(name: &str) -> LocalNode {
        local_node(&name.parse().unwrap(), 7)
    }

    /// Runs erl_dist's client handshake as `client` with `cookie` against our `accept`, which
    /// expects `remote@localhost` with cookie `right`.
    async fn handshake(client: &str, cookie: &str) -> (Result<(), DistError>, bool) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = accept(ours, node("us@localhost"), "right", "remote@localhost");
        let peer = async {
            let mut hs = ClientSideHandshake::new(theirs.compat(), node(client), cookie);
            match hs.execute_send_name(6).await {
                Ok(HandshakeStatus::Ok) => hs.execute_rest(true).await.is_ok(),
                _ => false,
            }
        };
        let (server, client_ok) = tokio::join!(server, peer);
        (server.map(drop), client_ok)
    }

    #[tokio::test]
    async fn accepts_only_the_booted_node_with_the_run_cookie() {
        let (server, client) = handshake("remote@localhost", "right").await;
        assert!(server.is_ok() && client);

        let (server, client) = handshake("intruder@localhost", "right").await;
        assert!(
            matches!(server, Err(DistError::Handshake { node, .. }) if node == "intruder@localhost")
        );
        assert!(!client);

        let (server, client) = handshake("remote@localhost", "wrong").await;
        assert!(matches!(server, Err(DistError::Handshake { .. })));
        assert!(!client);
    }

    #[tokio::test]
    async fn refuses_late_connections_before_any_challenge() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let peer = async {
            let mut hs = ClientSideHandshake::new(theirs.compat(), node("late@localhost"), "right");
            hs.execute_send_name(6).await.ok()
        };
        let (name, status) = tokio::join!(refuse(ours, node("us@localhost")), peer);
        assert_eq!(name.as_deref(), Some("late@localhost"));
        assert_eq!(status, Some(HandshakeStatus::NotAllowed));
    }
}
