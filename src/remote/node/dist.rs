//! The distribution connection: handshake, framing and the reader/writer loops.
//!
//! The handshake is ours (`handshake.rs`, one round trip shorter than erl_dist's) and so are the
//! framing and the loops (4-byte length, pass-through type byte 112, no atom cache, no
//! fragments), so that an unexpected or undecodable message is skipped instead of ending the
//! connection, and so ticks keep flowing; erl_dist does the message codecs.

use std::sync::Arc;
use std::time::Duration;

use erl_dist::DistributionFlags;
use erl_dist::message::Message;
use erl_dist::node::{Creation, LocalNode, NodeName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::handshake::{self, Refused};

/// Pass-through message type byte.
const PASS_THROUGH: u8 = 112;
/// The body of the frame the launcher writes on the connection once the node's VM has exited
/// (templates/boot.sh): the connection ends there, as at its end of file. The launcher holds
/// the connection after the VM, so that what the tool sends the dead node (acknowledgements,
/// ticks) is read rather than answered by a reset, which would drop what the node sent last and
/// the server had not read yet.
const EXITED: &[u8] = &[0];
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
    /// A handshake failed (wrong node, wrong cookie, protocol error, silence).
    #[error(transparent)]
    Handshake(#[from] Refused),
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

/// Performs the server side of the handshake on an incoming `stream`, naming the peer `peer`:
/// it accepts only the node that asks to be named on that host, and only with our cookie.
pub async fn accept(
    mut stream: UnixStream,
    local: LocalNode,
    cookie: &str,
    peer: &str,
) -> Result<UnixStream, DistError> {
    handshake::accept(&mut stream, &local, cookie, peer).await?;
    Ok(stream)
}

/// Keeps a connection whose handshake is done alive until `stop` (ticks one way, heard the
/// other), for a node that is to take it over ([`super::Node::over`]); returns it then, with what
/// was read of it past the last whole frame. A message the peer sends meanwhile is dropped (a
/// node waiting for its run sends none). Fails if the peer closes the connection or is silent
/// for too long.
pub async fn hold(
    mut stream: UnixStream,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<(UnixStream, Vec<u8>)> {
    let mut read = Vec::new();
    let mut heard = tokio::time::Instant::now();
    let mut tick = heard + TICK_INTERVAL;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return Ok((stream, read)),
            got = stream.read_buf(&mut read) => {
                if got? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                heard = tokio::time::Instant::now();
                // Whole frames (ticks) go; a partial one stays for the taker.
                while let Some(len) = whole_frame(&read)? {
                    read.drain(..len);
                }
            }
            () = tokio::time::sleep_until(tick) => {
                stream.write_all(&0u32.to_be_bytes()).await?;
                tick += TICK_INTERVAL;
            }
            () = tokio::time::sleep_until(heard + SILENCE_LIMIT) => {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
    }
}

/// Refuses an incoming connection with status `not_allowed`, before any cookie challenge:
/// a run has exactly one connection. Returns the name the peer gave, for the log.
pub async fn refuse(mut stream: UnixStream) -> Option<String> {
    handshake::refuse(&mut stream).await
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

/// The length (with its own 4 bytes) of the frame `buf` starts with, if all of it is there;
/// an error if it claims more than [`MAX_FRAME`].
fn whole_frame(buf: &[u8]) -> std::io::Result<Option<usize>> {
    let Some(&[a, b, c, d]) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    Ok((buf.len() >= 4 + len).then_some(4 + len))
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
/// or the peer has been silent (not even a tick, or nothing more of a frame) for too long. Ticks are consumed here; frames we
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
        // Grown as bytes arrive: a length alone, however large, allocates nothing. The peer
        // does not tick within a frame, but its bytes keep coming: silence as long as between
        // frames means it is gone.
        buf.clear();
        let mut body = (&mut reader).take(len as u64);
        loop {
            match tokio::time::timeout(SILENCE_LIMIT, body.read_buf(&mut buf)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return,
            }
        }
        if buf.len() != len {
            return;
        }
        match buf.split_first() {
            _ if buf == EXITED => return,
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

    #[tokio::test]
    async fn a_held_connection_is_given_back_with_the_frame_it_was_reading() {
        let (held, mut peer) = UnixStream::pair().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let holding = tokio::spawn(hold(held, stopped));
        // A tick, then the first 7 bytes of a 10-byte frame.
        peer.write_all(&[0, 0, 0, 0]).await.unwrap();
        peer.write_all(&[0, 0, 0, 10, PASS_THROUGH, 1, 2])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        let (mut stream, read) = holding.await.unwrap().unwrap();
        assert_eq!(read, [0, 0, 0, 10, PASS_THROUGH, 1, 2]);
        // The connection itself is handed back, open.
        peer.write_all(b"rest").await.unwrap();
        let mut rest = [0u8; 4];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"rest");
    }

    #[tokio::test]
    async fn a_held_connection_whose_frame_is_too_large_is_lost() {
        let (held, mut peer) = UnixStream::pair().unwrap();
        let (_stop, stopped) = tokio::sync::oneshot::channel();
        let too_large = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes();
        peer.write_all(&too_large).await.unwrap();
        let lost = hold(held, stopped).await.expect_err("lost");
        assert_eq!(lost.kind(), std::io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_held_connection_the_peer_closes_is_lost() {
        let (held, peer) = UnixStream::pair().unwrap();
        let (_stop, stopped) = tokio::sync::oneshot::channel();
        drop(peer);
        assert!(hold(held, stopped).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_silent_in_the_middle_of_a_frame_is_gone() {
        let (reader, mut peer) = UnixStream::pair().unwrap();
        // The first 7 bytes of a 10-byte frame, then nothing, the connection left open (a link
        // that died): the loop gives up after the silence limit (the paused clock jumps to it).
        peer.write_all(&[0, 0, 0, 10, PASS_THROUGH, 1, 2])
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let reading = read_loop(reader, |_| {}, |_| {});
        tokio::time::timeout(SILENCE_LIMIT * 2, reading)
            .await
            .expect("still waiting for the rest of the frame");
        assert!(started.elapsed() >= SILENCE_LIMIT);
        drop(peer);
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
    async fn the_launchers_word_that_the_vm_exited_ends_the_connection_after_what_came_before() {
        let to = erl_dist::term::Pid::new("r@localhost".to_owned(), 1, 0, 1);
        let mut good = vec![PASS_THROUGH];
        Message::send(to, erl_dist::term::Atom::from("last").into())
            .write_into(&mut good)
            .unwrap();
        // What the tool sends the dead node's socket is read by the launcher, which holds it
        // open: nothing after its frame is taken, and nothing waits for an end of file.
        let mut input = frame(&good);
        input.extend(frame(EXITED));
        input.extend(frame(&good));
        let (reader, mut peer) = tokio::io::duplex(1024);
        peer.write_all(&input).await.unwrap();
        let (mut delivered, mut skipped) = (Vec::new(), Vec::new());
        tokio::time::timeout(
            Duration::from_secs(5),
            read_loop(reader, |m| delivered.push(m), |s| skipped.push(s)),
        )
        .await
        .expect("still reading after the launcher's frame");
        assert_eq!((delivered.len(), skipped.len()), (1, 0), "{skipped:?}");
        drop(peer);
    }
}
