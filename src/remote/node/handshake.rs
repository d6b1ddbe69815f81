//! The server side of the distribution handshake, for the OTP 24+ node a run boots.
//!
//! That node starts distribution with a dynamic name (`undefined@localhost`, see
//! templates/boot_start.erl): it asks the first node it connects to, ours, to name it, and we give
//! it the name the run chose (status `named:`). A node started that way needs no creation of its
//! own, so OTP does not load crypto to draw one at random: 40-70 ms of a cold boot on OpenSSL 3.
//! Our status and challenge depend on nothing the peer says (it always sends the `N` send_name of
//! HANDSHAKE_23 and expects the `N` challenge), so both are written the moment the connection is
//! accepted, before the peer's send_name is read: one round trip less than the handshake as the
//! protocol draws it. Every message is a 2-byte length and a body; bodies are read only up to
//! `MAX_MESSAGE`, so a hostile peer cannot make us allocate much (the caller bounds the time).

use erl_dist::node::LocalNode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Flag bits the peer must have: those OTP 25 makes mandatory (DFLAG_MANDATORY_25 in OTP's
/// dist.hrl), each one a part of the term format or handshake our codecs rely on.
const MANDATORY_25: u64 = 0x04 // EXTENDED_REFERENCES
    | 0x10 // FUN_TAGS
    | 0x80 // NEW_FUN_TAGS
    | 0x100 // EXTENDED_PIDS_PORTS
    | 0x200 // EXPORT_PTR_TAG
    | 0x400 // BIT_BINARIES
    | 0x800 // NEW_FLOATS
    | 0x1_0000 // UTF8_ATOMS
    | 0x2_0000 // MAP_TAG
    | 0x4_0000 // BIG_CREATION
    | HANDSHAKE_23;
/// The peer speaks the handshake of OTP 23 and later (`N` messages).
const HANDSHAKE_23: u64 = 0x0100_0000;
/// Shorthand for all of [`MANDATORY_25`], which OTP 25 and later may send instead of them.
const MANDATORY_25_DIGEST: u64 = 0x0400_0000;
/// The peer asks us to name it, as the node a run boots does.
const NAME_ME: u64 = 0x02 << 32;
/// The lowest creation OTP gives a node: 0 to 3 are the 2-bit creations of old releases.
const MIN_CREATION: u32 = 4;

/// Longest handshake message we read: a send_name (tag, flags, creation, name length) with a
/// node name of 255 characters of up to 4 bytes each.
const MAX_MESSAGE: usize = 1 + 8 + 4 + 2 + 255 * 4;

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The connection failed or closed mid-handshake.
    #[error("the connection ended: {0}")]
    Io(#[from] std::io::Error),
    /// A length past anything the handshake sends.
    #[error("a handshake message of {len} bytes (the limit is {MAX_MESSAGE})")]
    TooLong {
        /// The length the peer announced.
        len: usize,
    },
    /// A message with another tag than the step expects.
    #[error("expected {expected}, got a message tagged {tag:#04x}")]
    Unexpected {
        /// The message the step expects.
        expected: &'static str,
        /// The tag byte that came instead.
        tag: u8,
    },
    /// A message too short for its fields, or a name that is not UTF-8.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The peer sent the `n` send_name of OTP 22 and older.
    #[error("it speaks the handshake of OTP 22 or older; the remote needs OTP 24 or newer")]
    OldProtocol,
    /// Another node than the run booted: it names itself, or asks to be named on another host.
    #[error("not the node this run booted")]
    NotBooted,
    /// The peer lacks distribution capabilities OTP 25 makes mandatory.
    #[error("it lacks mandatory distribution flags {missing:#x}; the remote needs OTP 24 or newer")]
    MissingFlags {
        /// The mandatory bits it did not set.
        missing: u64,
    },
    /// The challenge reply's digest is not of our cookie.
    #[error("wrong cookie")]
    WrongCookie,
}

/// A handshake that did not complete: who the peer said it was, if it got that far, and why.
#[derive(Debug, thiserror::Error)]
#[error("distribution handshake with {} failed: {reason}", peer.as_deref().unwrap_or("an unnamed peer"))]
pub struct Refused {
    /// The name in the peer's send_name (a host, for a peer that asks to be named).
    pub peer: Option<String>,
    /// What went wrong.
    pub reason: HandshakeError,
}

impl From<HandshakeError> for Refused {
    fn from(reason: HandshakeError) -> Self {
        Refused { peer: None, reason }
    }
}

/// Completes the server side of the handshake on `stream` as `us`: writes status `named:`,
/// naming the peer `peer` (`name@host`, with a fresh creation), and our challenge at once; then
/// accepts only a peer that asks to be named on that host, with the mandatory flags and a reply
/// proving it knows `cookie`. On success the stream is ready for distribution frames.
pub async fn accept(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    us: &LocalNode,
    cookie: &str,
    peer: &str,
) -> Result<(), Refused> {
    let challenge: u32 = rand::random();
    let creation = rand::random::<u32>().max(MIN_CREATION);
    let mut out = Vec::new();
    frame(&mut out, &named(peer, creation));
    frame(&mut out, &challenge_message(us, challenge));
    stream.write_all(&out).await.map_err(HandshakeError::from)?;

    let name = read_send_name(stream).await?;
    let host = peer.split_once('@').map_or(peer, |(_, host)| host);
    let rest = verify(stream, &name, challenge, cookie, host);
    rest.await.map_err(|reason| Refused {
        peer: Some(name.name),
        reason,
    })
}

/// The rest of [`accept`] once the peer has sent its send_name: a request to be named on `host`
/// and its flags, then its proof of the cookie, and our own proof in the challenge_ack.
async fn verify(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    name: &SendName,
    ours: u32,
    cookie: &str,
    host: &str,
) -> Result<(), HandshakeError> {
    if name.flags & NAME_ME == 0 || name.name != host {
        return Err(HandshakeError::NotBooted);
    }
    if name.flags & MANDATORY_25_DIGEST == 0 && name.flags & MANDATORY_25 != MANDATORY_25 {
        let missing = MANDATORY_25 & !name.flags;
        return Err(HandshakeError::MissingFlags { missing });
    }
    let (theirs, digest_of_ours) = challenge_reply(&read_message(stream).await?)?;
    if !same(&digest_of_ours, &digest(cookie, ours)) {
        return Err(HandshakeError::WrongCookie);
    }
    let mut ack = vec![b'a'];
    ack.extend_from_slice(&digest(cookie, theirs));
    let mut out = Vec::new();
    frame(&mut out, &ack);
    Ok(stream.write_all(&out).await?)
}

/// Refuses a connection with status `not_allowed`, written at once, before any challenge.
/// Returns the name the peer then gives, for the log.
pub async fn refuse(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> Option<String> {
    let mut out = Vec::new();
    frame(&mut out, b"snot_allowed");
    stream.write_all(&out).await.ok()?;
    read_send_name(stream).await.ok().map(|name| name.name)
}

/// What a send_name says.
struct SendName {
    flags: u64,
    /// The node's name, or only its host when it asks to be named.
    name: String,
}

/// Reads the peer's `N` send_name.
async fn read_send_name(stream: &mut (impl AsyncRead + Unpin)) -> Result<SendName, HandshakeError> {
    let message = read_message(stream).await?;
    match message.split_first() {
        Some((b'N', body)) => parse_send_name(body).ok_or(HandshakeError::Malformed("send_name")),
        Some((b'n', _)) => Err(HandshakeError::OldProtocol),
        Some((&tag, _)) => Err(HandshakeError::Unexpected {
            expected: "send_name",
            tag,
        }),
        None => Err(HandshakeError::Malformed("send_name")),
    }
}

/// The fields of an `N` send_name after its tag: flags (8), creation (4), name length (2), name.
/// Later fields, should OTP add any, are ignored.
fn parse_send_name(body: &[u8]) -> Option<SendName> {
    let (flags, rest) = body.split_first_chunk::<8>()?;
    let (_creation, rest) = rest.split_first_chunk::<4>()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let name = rest.get(..usize::from(u16::from_be_bytes(*len)))?;
    Some(SendName {
        flags: u64::from_be_bytes(*flags),
        name: std::str::from_utf8(name).ok()?.to_owned(),
    })
}

/// The peer's challenge and its digest of ours, from a challenge_reply.
fn challenge_reply(message: &[u8]) -> Result<(u32, [u8; 16]), HandshakeError> {
    let malformed = || HandshakeError::Malformed("challenge_reply");
    match message.split_first() {
        Some((b'r', body)) => {
            let (challenge, digest) = body.split_first_chunk::<4>().ok_or_else(malformed)?;
            let digest = <[u8; 16]>::try_from(digest).map_err(|_| malformed())?;
            Ok((u32::from_be_bytes(*challenge), digest))
        }
        Some((&tag, _)) => Err(HandshakeError::Unexpected {
            expected: "challenge_reply",
            tag,
        }),
        None => Err(malformed()),
    }
}

/// Status `named:`: the peer's name `name` (`name@host`) and its creation.
fn named(name: &str, creation: u32) -> Vec<u8> {
    let mut status = b"snamed:".to_vec();
    // A node name is at most 255 characters: its length fits.
    status.extend_from_slice(&(name.len() as u16).to_be_bytes());
    status.extend_from_slice(name.as_bytes());
    status.extend_from_slice(&creation.to_be_bytes());
    status
}

/// Our `N` challenge: flags, the challenge, creation, and our name. The flags have NAME_ME too:
/// a node that asked to be named refuses a challenge without it (OTP 25, found by trying).
fn challenge_message(us: &LocalNode, challenge: u32) -> Vec<u8> {
    let name = us.name.to_string();
    let mut message = vec![b'N'];
    message.extend_from_slice(&(us.flags.bits() | NAME_ME).to_be_bytes());
    message.extend_from_slice(&challenge.to_be_bytes());
    message.extend_from_slice(&us.creation.get().to_be_bytes());
    // A node name is at most 255 characters: its length fits.
    message.extend_from_slice(&(name.len() as u16).to_be_bytes());
    message.extend_from_slice(name.as_bytes());
    message
}

/// Appends `body` to `out` with its 2-byte length.
fn frame(out: &mut Vec<u8>, body: &[u8]) {
    // Our messages are a few dozen bytes.
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// Reads one handshake message, refusing a length past [`MAX_MESSAGE`] before reading its body.
/// An empty one is the end of the connection: no message is empty, and the frame the launcher
/// writes once the node's VM has exited (`dist::EXITED`) starts as one.
async fn read_message(stream: &mut (impl AsyncRead + Unpin)) -> Result<Vec<u8>, HandshakeError> {
    let len = usize::from(stream.read_u16().await?);
    if len == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    if len > MAX_MESSAGE {
        return Err(HandshakeError::TooLong { len });
    }
    let mut message = vec![0; len];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

/// The handshake digest: MD5 of the cookie followed by the challenge in decimal.
fn digest(cookie: &str, challenge: u32) -> [u8; 16] {
    md5::compute(format!("{cookie}{challenge}")).0
}

/// Compares two digests in time independent of where they differ.
fn same(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::node::dist::local_node;
    use erl_dist::DistributionFlags;
    use erl_dist::handshake::{ClientSideHandshake, HandshakeStatus};
    use tokio::net::UnixStream;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    fn node(name: &str) -> LocalNode {
        local_node(&name.parse().unwrap(), 7)
    }

    /// A node on `host` that asks to be named, as the one a run boots does.
    fn unnamed(host: &str) -> LocalNode {
        let mut node = node(&format!("undefined@{host}"));
        node.flags |= DistributionFlags::NAME_ME;
        node
    }

    /// Our side as a run has it: names the peer `remote@localhost`, with cookie `right`; the
    /// stream is dropped when the handshake ends, as a refused connection is.
    async fn serve(mut ours: UnixStream) -> Result<(), Refused> {
        accept(
            &mut ours,
            &node("us@localhost"),
            "right",
            "remote@localhost",
        )
        .await
    }

    /// Runs erl_dist's client handshake as `client` with `cookie` against [`serve`]: our
    /// outcome, and whether the client completed (as `remote@localhost`, if it asked to be named).
    async fn handshake(client: LocalNode, cookie: &str) -> (Result<(), Refused>, bool) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let peer = async {
            let mut hs = ClientSideHandshake::new(theirs.compat(), client, cookie);
            match hs.execute_send_name(6).await {
                Ok(HandshakeStatus::Named { name, creation }) => {
                    assert_eq!(name, "remote");
                    assert!(creation.get() >= MIN_CREATION);
                    hs.execute_rest(true).await.is_ok()
                }
                _ => false,
            }
        };
        tokio::join!(serve(ours), peer)
    }

    /// Feeds `input` to [`serve`] as a peer that then hangs up; our outcome.
    async fn fed(input: &[u8]) -> Result<(), Refused> {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(input).await.unwrap();
        theirs.shutdown().await.unwrap();
        serve(ours).await
    }

    /// An `N` send_name of `name` with `flags`.
    fn send_name(name: &[u8], flags: u64) -> Vec<u8> {
        let mut body = vec![b'N'];
        body.extend_from_slice(&flags.to_be_bytes());
        body.extend_from_slice(&9u32.to_be_bytes());
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name);
        let mut out = Vec::new();
        frame(&mut out, &body);
        out
    }

    #[tokio::test]
    async fn the_booted_node_with_the_run_cookie_gets_in() {
        let (server, client) = handshake(unnamed("localhost"), "right").await;
        assert!(server.is_ok(), "{server:?}");
        assert!(client);
    }

    #[tokio::test]
    async fn status_and_challenge_are_written_before_the_peer_says_anything() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let server = tokio::spawn(serve(ours));
        let status = read_message(&mut theirs).await.unwrap();
        let (named, creation) = status.split_last_chunk::<4>().unwrap();
        assert_eq!(named, b"snamed:\x00\x10remote@localhost");
        assert!(u32::from_be_bytes(*creation) >= MIN_CREATION);
        let challenge = read_message(&mut theirs).await.unwrap();
        let us = node("us@localhost");
        assert_eq!(challenge[0], b'N');
        assert_eq!(challenge[1..9], (us.flags.bits() | NAME_ME).to_be_bytes());
        assert_eq!(challenge[13..17], 7u32.to_be_bytes());
        assert_eq!(&challenge[17..], b"\x00\x0cus@localhost");
        drop(theirs);
        assert!(matches!(
            server.await.unwrap(),
            Err(Refused {
                peer: None,
                reason: HandshakeError::Io(_)
            })
        ));
    }

    #[tokio::test]
    async fn a_node_that_names_itself_or_is_on_another_host_is_refused() {
        let (server, client) = handshake(node("intruder@localhost"), "right").await;
        let refused = server.unwrap_err();
        assert!(matches!(refused.reason, HandshakeError::NotBooted));
        assert_eq!(
            refused.to_string(),
            "distribution handshake with intruder@localhost failed: not the node this run booted"
        );
        assert!(!client);

        let (server, client) = handshake(unnamed("elsewhere"), "right").await;
        let refused = server.unwrap_err();
        assert!(matches!(refused.reason, HandshakeError::NotBooted));
        assert_eq!(refused.peer.as_deref(), Some("elsewhere"));
        assert!(!client);
    }

    #[tokio::test]
    async fn a_wrong_cookie_is_refused() {
        let (server, client) = handshake(unnamed("localhost"), "wrong").await;
        let refused = server.unwrap_err();
        assert!(
            matches!(refused.reason, HandshakeError::WrongCookie),
            "{refused}"
        );
        assert_eq!(refused.peer.as_deref(), Some("localhost"));
        assert!(!client);
    }

    #[tokio::test]
    async fn the_mandatory_flags_are_needed_one_by_one_or_as_their_digest() {
        let mut client = unnamed("localhost");
        client.flags = DistributionFlags::from_bits_truncate((our_bits() | NAME_ME) & !0x1_0000);
        let (server, client) = handshake(client, "right").await;
        let refused = server.unwrap_err();
        assert!(
            matches!(
                refused.reason,
                HandshakeError::MissingFlags { missing: 0x1_0000 }
            ),
            "{refused}"
        );
        assert!(!client);

        let mut client = unnamed("localhost");
        client.flags =
            DistributionFlags::from_bits_truncate(HANDSHAKE_23 | MANDATORY_25_DIGEST | NAME_ME);
        let (server, client) = handshake(client, "right").await;
        assert!(server.is_ok(), "{server:?}");
        assert!(client);
    }

    fn our_bits() -> u64 {
        node("us@localhost").flags.bits()
    }

    /// Whether a refusal is the one a case expects.
    type Expected = fn(&HandshakeError) -> bool;

    #[tokio::test]
    async fn hostile_input_ends_in_an_error() {
        use HandshakeError as E;
        let name = send_name(b"localhost", our_bits() | NAME_ME);
        let after_name = |rest: &[u8]| [name.as_slice(), rest].concat();
        let mut too_long = ((MAX_MESSAGE + 1) as u16).to_be_bytes().to_vec();
        too_long.push(b'N');
        let mut wrong_digest = vec![0, 21, b'r', 0, 0, 0, 1];
        wrong_digest.extend_from_slice(&[0; 16]);
        let cases: Vec<(Vec<u8>, Expected)> = vec![
            (b"".to_vec(), |e| matches!(e, E::Io(_))),
            (b"\x00".to_vec(), |e| matches!(e, E::Io(_))),
            (b"\x00\x01N".to_vec(), |e| matches!(e, E::Malformed(_))),
            // An empty message: the start of the launcher's frame once the VM has exited.
            (b"\x00\x00".to_vec(), |e| matches!(e, E::Io(_))),
            (b"\xff\xffNNNN".to_vec(), |e| {
                matches!(e, E::TooLong { len: 65535 })
            }),
            (too_long, |e| matches!(e, E::TooLong { .. })),
            (b"\x00\x03xyz".to_vec(), |e| {
                matches!(e, E::Unexpected { tag: b'x', .. })
            }),
            // A name of 65535 bytes that is not there.
            (
                b"\x00\x0fN\x00\x00\x00\x00\x01\x07\x0f\x94\x00\x00\x00\x07\xff\xff".to_vec(),
                |e| matches!(e, E::Malformed(_)),
            ),
            // The `n` send_name of OTP 22 and older.
            (
                b"\x00\x12n\x00\x05\x00\x07\x0f\x94a@localhost".to_vec(),
                |e| matches!(e, E::OldProtocol),
            ),
            // A name that is not UTF-8.
            (send_name(b"\xffr@localhost", our_bits()), |e| {
                matches!(e, E::Malformed(_))
            }),
            (after_name(b""), |e| matches!(e, E::Io(_))),
            (after_name(b"\x00\x02r\x00"), |e| {
                matches!(e, E::Malformed(_))
            }),
            (after_name(b"\x00\x01a"), |e| {
                matches!(e, E::Unexpected { tag: b'a', .. })
            }),
            (after_name(b"\x08\x00"), |e| {
                matches!(e, E::TooLong { len: 2048 })
            }),
            (after_name(&wrong_digest), |e| matches!(e, E::WrongCookie)),
        ];
        for (input, expected) in cases {
            let refused = fed(&input).await.unwrap_err();
            assert!(expected(&refused.reason), "{input:?}: {refused}");
            let (mut ours, mut theirs) = UnixStream::pair().unwrap();
            theirs.write_all(&input).await.unwrap();
            theirs.shutdown().await.unwrap();
            refuse(&mut ours).await;
        }
    }

    #[tokio::test]
    async fn a_silent_peer_is_left_waiting_for_the_callers_limit() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let server = tokio::spawn(serve(ours));
        // It has our status and challenge, and says nothing: the handshake waits (the caller
        // bounds it) and ends when the peer goes.
        let status = read_message(&mut theirs).await.unwrap();
        assert!(status.starts_with(b"snamed:"));
        read_message(&mut theirs).await.unwrap();
        tokio::task::yield_now().await;
        assert!(!server.is_finished());
        drop(theirs);
        assert!(matches!(
            server.await.unwrap().unwrap_err().reason,
            HandshakeError::Io(_)
        ));
    }

    #[tokio::test]
    async fn a_late_connection_is_refused_before_any_challenge() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let peer = async {
            let mut hs = ClientSideHandshake::new(theirs.compat(), node("late@localhost"), "right");
            hs.execute_send_name(6).await.ok()
        };
        let (name, status) = tokio::join!(refuse(&mut ours), peer);
        assert_eq!(name.as_deref(), Some("late@localhost"));
        assert_eq!(status, Some(HandshakeStatus::NotAllowed));
    }
}
