//! An in-process EPMD responder, reached by the remote node through a reverse SSH forward.
//!
//! The remote node is started with `ERL_EPMD_PORT` pointing at the forward and with no
//! distribution listener of its own, so it never registers anywhere and no epmd daemon runs on the
//! server. Its one EPMD request is the lookup of our node's name when it connects back to us: we
//! answer with the remote port of our node's reverse forward. Every other name is unknown.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;
/// Node type byte for a hidden node.
const HIDDEN_NODE: u8 = 72;
/// Longest request we read: a node name is at most 255 bytes.
const MAX_REQUEST: usize = 512;

/// What the responder answers for our own node: its name and its port as seen from the remote.
#[derive(Debug)]
pub struct OwnNode {
    /// Our short node name (the part before `@`).
    pub name: String,
    /// Remote port of the reverse forward to our node listener.
    pub port: u16,
}

/// Serves EPMD lookups on `listener` until the task is dropped.
pub async fn serve(listener: UnixListener, own: Arc<OwnNode>) {
    while let Ok((stream, _)) = listener.accept().await {
        let own = Arc::clone(&own);
        tokio::spawn(async move {
            // A malformed or dropped request only ends that one connection.
            let _ = handle(stream, &own).await;
        });
    }
}

async fn handle(mut stream: UnixStream, own: &OwnNode) -> std::io::Result<()> {
    let len = stream.read_u16().await? as usize;
    if len == 0 || len > MAX_REQUEST {
        return Ok(());
    }
    let mut req = vec![0; len];
    stream.read_exact(&mut req).await?;
    if req[0] != PORT_PLEASE2_REQ {
        return Ok(());
    }
    let asked = String::from_utf8_lossy(&req[1..]);
    stream.write_all(&port2_resp(&asked, own)).await
}

/// The PORT2_RESP for a lookup of `asked`: found only when it is our own node.
fn port2_resp(asked: &str, own: &OwnNode) -> Vec<u8> {
    if asked != own.name {
        return vec![PORT2_RESP, 1];
    }
    let mut resp = vec![PORT2_RESP, 0];
    resp.extend_from_slice(&own.port.to_be_bytes());
    resp.extend_from_slice(&[HIDDEN_NODE, 0]); // node type, protocol tcp/ipv4
    resp.extend_from_slice(&6u16.to_be_bytes()); // highest version
    resp.extend_from_slice(&5u16.to_be_bytes()); // lowest version
    resp.extend_from_slice(&(own.name.len() as u16).to_be_bytes());
    resp.extend_from_slice(own.name.as_bytes());
    resp.extend_from_slice(&0u16.to_be_bytes()); // no extra
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_port_please_only_for_our_node() {
        let own = OwnNode {
            name: "me".into(),
            port: 4000,
        };
        assert_eq!(port2_resp("other", &own), [PORT2_RESP, 1]);
        let found = port2_resp("me", &own);
        assert_eq!(&found[..4], &[PORT2_RESP, 0, 0x0f, 0xa0]);
        assert!(found.ends_with(b"\x00\x02me\x00\x00"));
    }

    #[tokio::test]
    async fn serves_a_lookup_as_otp_sends_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("epmd.sock");
        let own = Arc::new(OwnNode {
            name: "bar".into(),
            port: 4000,
        });
        tokio::spawn(serve(UnixListener::bind(&path).unwrap(), own));
        // Captured from OTP 25 looking up `bar`.
        let mut conn = UnixStream::connect(&path).await.unwrap();
        conn.write_all(b"\x00\x04zbar").await.unwrap();
        let mut resp = Vec::new();
        conn.read_to_end(&mut resp).await.unwrap();
        assert_eq!(&resp[..4], &[PORT2_RESP, 0, 0x0f, 0xa0]);
    }
}
