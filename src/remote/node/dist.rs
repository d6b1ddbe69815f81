//! The distribution connection: handshake, framing and the reader/writer loops.
//!
//! erl_dist does the handshake and the message codecs; the framing and the loop are ours (4-byte
//! length, pass-through type byte 112, no atom cache, no fragments), so that an unexpected or
//! undecodable message is skipped instead of ending the connection, and so ticks keep flowing.

use std::sync::Arc;
use std::time::Duration;

use erl_dist::DistributionFlags;
use erl_dist::handshake::{HandshakeStatus, ServerSideHandshake};
use erl_dist::message::Message;
use erl_dist::node::{Creation, LocalNode, NodeName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
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

/// A message for the writer, with at most one large binary written from a shared buffer.
pub struct Outgoing {
    /// The message; where it holds the binary [`ATTACHED`], [`Outgoing::attached`] is written.
    pub message: Message,
    /// Bytes written in place of the binary [`ATTACHED`], as they are: a batch encoded once for
    /// every host is neither copied into a term nor into the frame.
    pub attached: Option<Arc<[u8]>>,
}

/// The binary standing for [`Outgoing::attached`] in a message: 16 bytes no term a run builds
/// holds otherwise.
pub const ATTACHED: &[u8; 16] = b"\0mix-remote:att\0";

/// A binary's tag in the external term format, before its 32-bit length.
const BINARY_EXT: u8 = 109;

/// Writes queued messages as frames, and a tick whenever the connection has been idle.
pub async fn write_loop(
    mut writer: impl AsyncWrite + Unpin,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut buf = Vec::new();
    loop {
        let next = tokio::time::timeout(TICK_INTERVAL, queue.recv()).await;
        buf.clear();
        let mut attached = None;
        match next {
            Err(_idle) => buf.extend_from_slice(&0u32.to_be_bytes()),
            Ok(None) => return,
            Ok(Some(out)) => {
                buf.extend_from_slice(&[0, 0, 0, 0, PASS_THROUGH]);
                if out.message.write_into(&mut buf).is_err() {
                    continue;
                }
                attached = out
                    .attached
                    .and_then(|bytes| Some((splice_at(&buf)?, bytes)));
                // The frame holds the stand-in, which the attached bytes replace.
                let len = match &attached {
                    None => buf.len() - 4,
                    Some((_, bytes)) => buf.len() - 4 - ATTACHED.len() + bytes.len(),
                };
                let Ok(len) = u32::try_from(len) else {
                    continue;
                };
                buf[..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        let written = match &attached {
            None => writer.write_all(&buf).await,
            Some((at, bytes)) => write_spliced(&mut writer, &buf, *at, bytes).await,
        };
        if written.is_err() {
            return;
        }
    }
}

/// Where the binary [`ATTACHED`] starts in an encoded frame (at its tag), if it is there and
/// `bytes` can take its place.
fn splice_at(frame: &[u8]) -> Option<usize> {
    let mut placeholder = vec![BINARY_EXT];
    placeholder.extend_from_slice(&(ATTACHED.len() as u32).to_be_bytes());
    placeholder.extend_from_slice(ATTACHED);
    frame
        .windows(placeholder.len())
        .position(|w| w == placeholder.as_slice())
}

/// Writes `frame` with `bytes` as the binary at `at` instead of [`ATTACHED`].
async fn write_spliced(
    writer: &mut (impl AsyncWrite + Unpin),
    frame: &[u8],
    at: usize,
    bytes: &[u8],
) -> std::io::Result<()> {
    let Ok(len) = u32::try_from(bytes.len()) else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    let mut header = vec![BINARY_EXT];
    header.extend_from_slice(&len.to_be_bytes());
    writer.write_all(&frame[..at]).await?;
    writer.write_all(&header).await?;
    writer.write_all(bytes).await?;
    writer
        .write_all(&frame[at + 1 + 4 + ATTACHED.len()..])
        .await
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
        // Grown as bytes arrive: a length alone, however large, allocates nothing.
        buf.clear();
        match (&mut reader).take(len as u64).read_to_end(&mut buf).await {
            Ok(n) if n == len => {}
            _ => return,
        }
        match buf.split_first() {
            Some((&PASS_THROUGH, mut body)) => match super::bounds::check_message(body) {
                Err(e) => skipped(format!("refused message: {e}")),
                Ok(()) => match Message::read_from(&mut body) {
                    Ok(msg) => deliver(msg),
                    Err(e) => skipped(format!("undecodable message: {e}")),
                },
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

    /// Runs `read_loop` over `input`; the messages delivered and the notes on skipped frames.
    async fn frames(input: &[u8]) -> (Vec<Message>, Vec<String>) {
        let (mut delivered, mut skipped) = (Vec::new(), Vec::new());
        read_loop(input, |m| delivered.push(m), |s| skipped.push(s)).await;
        (delivered, skipped)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[tokio::test]
    async fn an_attached_binary_is_written_in_place_of_its_stand_in() {
        use erl_dist::term::{Binary, Pid, Term, Tuple};
        let batch: Arc<[u8]> = (0..=255u8)
            .cycle()
            .take(100_000)
            .collect::<Vec<u8>>()
            .into();
        let to = Pid::new("remote@localhost", 1, 0, 7);
        let message = |first: &[u8]| {
            let body: Term = Tuple::from(vec![
                Binary::from(first).into(),
                Binary::from(&b"kept"[..]).into(),
            ])
            .into();
            Message::send(to.clone(), body)
        };
        let (tx, queue) = mpsc::unbounded_channel();
        tx.send(Outgoing {
            message: message(&ATTACHED[..]),
            attached: Some(Arc::clone(&batch)),
        })
        .unwrap();
        tx.send(Outgoing {
            message: message(b"plain"),
            attached: None,
        })
        .unwrap();
        tx.send(Outgoing {
            message: message(&ATTACHED[..]),
            attached: Some(Arc::from(&b"tiny"[..])),
        })
        .unwrap();
        drop(tx);
        let mut written = Vec::new();
        write_loop(&mut written, queue).await;
        let (delivered, skipped) = frames(&written).await;
        assert!(skipped.is_empty(), "{skipped:?}");
        let expected = [
            message_term(&message(&batch)),
            message_term(&message(b"plain")),
            message_term(&message(b"tiny")),
        ];
        let got: Vec<String> = delivered.iter().map(message_term).collect();
        assert_eq!(got, expected);
    }

    /// The message a frame carries, as text.
    fn message_term(message: &Message) -> String {
        match message {
            Message::Send(m) => m.message.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn hostile_frames_are_skipped_or_end_the_connection_without_panic() {
        let to = erl_dist::term::Pid::new("r@localhost".to_owned(), 1, 0, 1);
        let mut good = vec![PASS_THROUGH];
        Message::send(to, erl_dist::term::Atom::from("hi").into())
            .write_into(&mut good)
            .unwrap();

        // Garbage, an unknown type byte and an empty pass-through frame are skipped; the good
        // message after them still arrives, and ticks are consumed.
        let mut input = frame(b"\x70\x83\xff\xff");
        input.extend(frame(b"\x01junk"));
        input.extend(frame(&[PASS_THROUGH]));
        input.extend(0u32.to_be_bytes());
        input.extend(frame(&good));
        let (delivered, skipped) = frames(&input).await;
        assert_eq!(delivered.len(), 1, "{skipped:?}");
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(skipped[1].contains("unknown type byte 1"), "{skipped:?}");

        // A length of 1 GiB followed by three bytes: the connection ends, nothing is allocated
        // for the bytes that never come.
        let mut huge = (1u32 << 30).to_be_bytes().to_vec();
        huge.extend_from_slice(b"abc");
        assert_eq!(frames(&huge).await.0.len(), 0);
        // Beyond the limit: refused outright.
        let (_, skipped) = frames(&u32::MAX.to_be_bytes()).await;
        assert!(skipped[0].contains("too large"), "{skipped:?}");
        // Truncated length and truncated body.
        assert!(frames(&[0, 0]).await.0.is_empty());
        assert!(frames(&[0, 0, 0, 9, PASS_THROUGH, 131]).await.0.is_empty());
    }

    #[tokio::test]
    async fn hostile_handshakes_fail_cleanly() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"\x00",
            b"\x00\x01N",
            b"\xff\xffNNNN",
            // A version 6 name claiming a 65535-byte name it does not send.
            b"\x00\x0fN\x00\x00\x00\x00\x01\x07\x0f\x94\x00\x00\x00\x07\xff\xff",
            b"\x00\x03xyz",
        ];
        for input in inputs {
            let (ours, mut theirs) = UnixStream::pair().unwrap();
            theirs.write_all(input).await.unwrap();
            theirs.shutdown().await.unwrap();
            let result = tokio::time::timeout(
                Duration::from_secs(5),
                accept(ours, node("us@localhost"), "right", "remote@localhost"),
            )
            .await
            .expect("the handshake hangs");
            assert!(result.is_err(), "{input:?} accepted");
            let (ours, mut theirs) = UnixStream::pair().unwrap();
            theirs.write_all(input).await.unwrap();
            theirs.shutdown().await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), refuse(ours, node("us@localhost")))
                .await
                .expect("the refusal hangs");
        }
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
