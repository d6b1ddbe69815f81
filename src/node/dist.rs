//! The distribution connection: handshake, framing and the reader/writer loops.
//!
//! erl_dist does the handshake and the message codecs; the framing and the loop are ours (4-byte
//! length, pass-through type byte 112, no atom cache, no fragments), so that an unexpected or
//! undecodable message is skipped instead of ending the connection, and so ticks keep flowing.

use std::time::Duration;

use erl_dist::DistributionFlags;
use erl_dist::handshake::{ClientSideHandshake, HandshakeStatus, ServerSideHandshake};
use erl_dist::message::Message;
use erl_dist::node::{Creation, LocalNode, NodeName, PeerNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Pass-through message type byte.
const PASS_THROUGH: u8 = 112;
/// How often we tick an otherwise idle connection; OTP's default net_ticktime is 60 s.
const TICK_INTERVAL: Duration = Duration::from_secs(15);
/// Largest frame we accept: far above any term a run exchanges, small enough to refuse garbage.
const MAX_FRAME: usize = 1 << 30;

/// Why the distribution connection failed.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// The handshake with the remote node failed (wrong cookie, refused, protocol error).
    #[error("handshake with {node} failed: {reason}")]
    Handshake {
        /// The remote node.
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

/// Performs the client side of the handshake on `stream`.
pub async fn handshake(
    stream: UnixStream,
    local: LocalNode,
    cookie: &str,
    peer: &str,
) -> Result<(UnixStream, PeerNode), DistError> {
    let fail = |reason: String| DistError::Handshake {
        node: peer.to_owned(),
        reason,
    };
    let mut hs = ClientSideHandshake::new(stream.compat(), local, cookie);
    let status = hs
        .execute_send_name(6)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if status == HandshakeStatus::Alive {
        return Err(fail("a node with our name is already connected".into()));
    }
    let (stream, peer_node) = hs
        .execute_rest(false)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok((stream.into_inner(), peer_node))
}

/// Refuses an incoming connection with status `not_allowed`: our one connection is the one we make.
/// Returns the name the peer gave, for the log.
pub async fn refuse(stream: UnixStream, local: LocalNode) -> Option<String> {
    // The cookie is never reached: refusal happens before the challenge.
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

/// Reads frames and hands every decoded message to `deliver`; returns when the connection ends.
/// Ticks are consumed here; frames we cannot decode are skipped (reported through `skipped`).
pub async fn read_loop(
    mut reader: OwnedReadHalf,
    mut deliver: impl FnMut(Message),
    mut skipped: impl FnMut(String),
) {
    let mut buf = Vec::new();
    loop {
        let Ok(len) = reader.read_u32().await else {
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
