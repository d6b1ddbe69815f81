//! An in-process EPMD responder, reached by the remote node through a reverse SSH forward.
//!
//! The remote node is started with `ERL_EPMD_PORT` pointing at the forward, so it registers with
//! us instead of a real epmd: its ALIVE2_REQ tells us its name and its real distribution port,
//! which is the readiness signal (no polling), and no epmd daemon is ever left on the server.
//! Lookups of our own node name answer with the port of our node's reverse forward.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

const ALIVE2_REQ: u8 = 120;
const ALIVE2_X_RESP: u8 = 118;
const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;
const NAMES_REQ: u8 = 110;
/// Node type byte for a hidden node.
const HIDDEN_NODE: u8 = 72;

/// A node that registered with the responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The node's short name (the part before `@`).
    pub name: String,
    /// The port its distribution listener has on the remote host.
    pub port: u16,
}

/// What the responder answers for our own node: its name and its port as seen from the remote.
#[derive(Debug, Default)]
pub struct OwnNode {
    /// Our short node name.
    pub name: String,
    /// Remote port of the reverse forward to our node listener; 0 until known.
    pub port: u16,
}

/// Serves EPMD requests on `listener` until it is dropped; registrations are sent to `registered`.
/// A registration connection is held open, as epmd does: closing it would unregister the node.
pub async fn serve(
    listener: UnixListener,
    own: Arc<Mutex<OwnNode>>,
    registered: mpsc::UnboundedSender<Registration>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let own = Arc::clone(&own);
        let registered = registered.clone();
        tokio::spawn(async move {
            // A malformed or dropped request only ends that one connection.
            let _ = handle(stream, &own, &registered).await;
        });
    }
}

async fn handle(
    mut stream: UnixStream,
    own: &Mutex<OwnNode>,
    registered: &mpsc::UnboundedSender<Registration>,
) -> std::io::Result<()> {
    let len = stream.read_u16().await? as usize;
    let mut req = vec![0; len];
    stream.read_exact(&mut req).await?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed EPMD request");
    match req.first() {
        Some(&ALIVE2_REQ) => {
            let reg = parse_alive2(&req[1..]).ok_or_else(bad)?;
            // Creation: any non-zero value distinct per run; the low bits of the port will do.
            let creation = u32::from(reg.port) | 0x1000;
            let mut resp = vec![ALIVE2_X_RESP, 0];
            resp.extend_from_slice(&creation.to_be_bytes());
            // Queued before the node hears back, so it is known before the node reports ready.
            let _ = registered.send(reg.clone());
            stream.write_all(&resp).await?;
            // Keep the connection until the node goes away.
            let mut sink = [0u8; 64];
            while stream.read(&mut sink).await? > 0 {}
            Ok(())
        }
        Some(&PORT_PLEASE2_REQ) => {
            let asked = String::from_utf8_lossy(&req[1..]).into_owned();
            let (name, port) = {
                let own = own.lock().expect("own-node lock poisoned");
                (own.name.clone(), own.port)
            };
            stream.write_all(&port2_resp(&asked, &name, port)).await
        }
        Some(&NAMES_REQ) => {
            let mut resp = 4369u32.to_be_bytes().to_vec();
            {
                let own = own.lock().expect("own-node lock poisoned");
                if own.port != 0 {
                    resp.extend(format!("name {} at port {}\n", own.name, own.port).into_bytes());
                }
            }
            stream.write_all(&resp).await
        }
        _ => Err(bad()),
    }
}

/// Parses the body of an ALIVE2_REQ (after the request byte).
fn parse_alive2(body: &[u8]) -> Option<Registration> {
    let port = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    // node type, protocol, highest version (2), lowest version (2)
    let name_len = u16::from_be_bytes([*body.get(8)?, *body.get(9)?]) as usize;
    let name = body.get(10..10 + name_len)?;
    Some(Registration {
        name: std::str::from_utf8(name).ok()?.to_owned(),
        port,
    })
}

/// The PORT2_RESP for a lookup of `asked`: found only when it is our own, already-reachable node.
fn port2_resp(asked: &str, own_name: &str, own_port: u16) -> Vec<u8> {
    if asked != own_name || own_port == 0 {
        return vec![PORT2_RESP, 1];
    }
    let mut resp = vec![PORT2_RESP, 0];
    resp.extend_from_slice(&own_port.to_be_bytes());
    resp.extend_from_slice(&[HIDDEN_NODE, 0]); // node type, protocol tcp/ipv4
    resp.extend_from_slice(&6u16.to_be_bytes()); // highest version
    resp.extend_from_slice(&5u16.to_be_bytes()); // lowest version
    resp.extend_from_slice(&(own_name.len() as u16).to_be_bytes());
    resp.extend_from_slice(own_name.as_bytes());
    resp.extend_from_slice(&0u16.to_be_bytes()); // no extra
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alive2_as_otp_sends_it() {
        // Captured from OTP 25 registering `foo` with dist port 30901.
        let body = b"\x78\xb5\x4d\x00\x00\x06\x00\x05\x00\x03foo\x00\x00";
        assert_eq!(
            parse_alive2(body),
            Some(Registration {
                name: "foo".into(),
                port: 0x78b5
            })
        );
        assert_eq!(parse_alive2(&body[..9]), None);
        assert_eq!(
            parse_alive2(b"\x00\x01\x4d\x00\x00\x06\x00\x05\xff\xffab"),
            None
        );
    }

    #[test]
    fn answers_port_please_only_for_our_reachable_node() {
        assert_eq!(port2_resp("other", "me", 4000), [PORT2_RESP, 1]);
        assert_eq!(port2_resp("me", "me", 0), [PORT2_RESP, 1]);
        let found = port2_resp("me", "me", 4000);
        assert_eq!(&found[..4], &[PORT2_RESP, 0, 0x0f, 0xa0]);
        assert!(found.ends_with(b"\x00\x02me\x00\x00"));
    }
}
