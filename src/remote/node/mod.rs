//! The tool's own hidden Erlang node: distribution connection, requests to the boot program,
//! rex calls and the words of the output relay, so the local side needs no BEAM at all.

pub mod bounds;
pub mod dist;
pub mod handshake;
pub mod relay;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erl_dist::message::Message;
use erl_dist::node::{LocalNode, NodeName};
use erl_dist::term::{Atom, List, Pid, Reference, Term, Tuple};
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};

pub use dist::DistError;
pub use relay::FromRelay;

/// How long a connection that comes after the run's node may take to say who it is before it is
/// refused. While the node boots there is no such limit: handshakes run side by side, so a silent
/// peer holds nothing up, and the caller's boot limit bounds them all (a node loading a large
/// batch on a busy server may take tens of seconds to finish its own).
const REFUSAL_LIMIT: Duration = Duration::from_secs(30);

/// How many handshakes may be under way at once while the node is awaited; a connection past
/// them closes the oldest but the first (the node's own when the launcher opened it, before
/// the VM started). Another user of the server, connecting to the forward's port again and
/// again, can then neither take all of the tool's descriptors nor keep a node that connects
/// after it out.
pub const HANDSHAKES_AT_ONCE: usize = 16;

/// Replies awaited by rex calls, keyed by the reference's id words; `None` once the link is gone.
/// Each reply comes with how many of the relay's messages arrived before it.
type Pending = Mutex<Option<Waiting>>;

/// The requests awaiting their replies (by reference), and whether one has been answered (or
/// given up) since the last request went: the next request then waited for it, a round trip of
/// its own.
struct Waiting {
    replies: HashMap<Vec<u32>, oneshot::Sender<(Term, u64)>>,
    answered: bool,
}

/// The names and secret of one run, all fresh.
pub struct Identities {
    /// Our node's name.
    pub local: NodeName,
    /// The name our node gives the remote node as it connects.
    pub remote: NodeName,
    /// The cookie both use.
    pub cookie: String,
    /// Our node's creation.
    pub creation: u32,
}

impl Identities {
    /// New names, cookie and creation, drawn at random.
    pub fn fresh() -> Identities {
        // 192 random bits, hex: a valid atom, never reused, never shown.
        let cookie: String = (0..3)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect();
        // Independent names: knowing one tells nothing about the other.
        let name = |prefix: &str| {
            NodeName::new(
                &format!("{prefix}_{:016x}", rand::random::<u64>()),
                crate::remote::boot::NODE_HOST,
            )
            .expect("valid node name")
        };
        Identities {
            local: name("mix_remote_cli"),
            remote: name("mix_remote"),
            cookie,
            creation: rand::random::<u32>() | 1,
        }
    }
}

/// A connected hidden node: sends messages, makes requests and rex calls, receives what the
/// remote's relay sends.
pub struct Node {
    pid: Pid,
    creation: u32,
    outgoing: Mutex<Option<mpsc::UnboundedSender<dist::Outgoing>>>,
    pending: Arc<Pending>,
    next_ref: AtomicU32,
    requests: AtomicU32,
    round_trips: AtomicU32,
    /// How many of the relay's messages the [`Inbox`]'s reader has handled.
    handled: watch::Receiver<u64>,
    /// How many of the relay's messages have arrived (and gone to the [`Inbox`]).
    relayed: Arc<AtomicU64>,
}

/// What the remote's relay sends (output, reads), in order. The relay does not wait for the
/// output to be written before the reply that follows it goes: a request returns its reply only
/// once the reader has handled every message that came before that reply.
pub struct Inbox {
    messages: mpsc::UnboundedReceiver<FromRelay>,
    handled: watch::Sender<u64>,
}

impl Inbox {
    /// The next message, waiting for it (not in async code); `None` once the connection is gone.
    pub fn blocking_next(&mut self) -> Option<FromRelay> {
        self.messages.blocking_recv()
    }

    /// The last message is handled: its output written, its read handed on.
    pub fn handled(&self) {
        self.handled.send_modify(|n| *n += 1);
    }
}

/// Why a remote call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connection is gone.
    #[error(transparent)]
    Dist(#[from] DistError),
    /// The call failed remotely (`{badrpc, Reason}`).
    #[error("remote call {mfa} failed: {reason}")]
    BadRpc {
        /// What was called: `module:function/arity` or the boot program's request.
        mfa: String,
        /// The reason term, as text.
        reason: String,
    },
    /// No reply within the allowed time.
    #[error("remote call {mfa} did not answer within {secs} s")]
    Timeout {
        /// What was called: `module:function/arity` or the boot program's request.
        mfa: String,
        /// The limit that passed.
        secs: u64,
    },
}

impl Node {
    /// Waits on `listener` for the booted node to connect with our cookie, naming it `peer` (it
    /// asks to be named: see `handshake`), then starts the connection loops. A run has exactly
    /// one connection: anyone else, before or after, is refused and logged; the caller bounds the
    /// wait. The relay's messages (output, reads) arrive in the returned inbox; `log` receives
    /// notes for `-v`.
    pub async fn accept(
        listener: UnixListener,
        name: &NodeName,
        creation: u32,
        cookie: &str,
        peer: &str,
        log: impl Fn(String) + Send + Sync + 'static,
    ) -> Result<(Arc<Node>, Inbox), DistError> {
        let local = dist::local_node(name, creation);
        let stream = accept_first(&listener, &local, cookie, peer, &log).await?;
        Ok(Node::start(
            stream,
            Vec::new(),
            name,
            creation,
            Some(listener),
            log,
        ))
    }

    /// Takes over `stream`, a connection whose handshake was made under `name` and `creation`
    /// (a warm session's agent made it ahead, see `agent::ahead`), `read` being what was read of
    /// it past the last whole frame; as [`Node::accept`] once the node has connected.
    pub fn over(
        stream: UnixStream,
        read: Vec<u8>,
        name: &NodeName,
        creation: u32,
        log: impl Fn(String) + Send + Sync + 'static,
    ) -> (Arc<Node>, Inbox) {
        Node::start(stream, read, name, creation, None, log)
    }

    /// Starts the loops on a connected `stream` (`read`: its bytes already read), refusing
    /// every further connection on `listener` meanwhile.
    fn start(
        stream: UnixStream,
        read: Vec<u8>,
        name: &NodeName,
        creation: u32,
        listener: Option<UnixListener>,
        log: impl Fn(String) + Send + Sync + 'static,
    ) -> (Arc<Node>, Inbox) {
        let (reader, writer) = stream.into_split();
        let reader = std::io::Cursor::new(read).chain(reader);
        let (outgoing, queue) = mpsc::unbounded_channel();
        let (relay_tx, relay_rx) = mpsc::unbounded_channel();
        let (handled_tx, handled_rx) = watch::channel(0);
        let pending: Arc<Pending> = Arc::new(Mutex::new(Some(Waiting {
            replies: HashMap::new(),
            answered: true,
        })));
        // Our side ends with the node's (its end of file, or the launcher's word that it is
        // gone, `dist::EXITED`): the launcher, which holds the connection after the node, reads
        // it until then (templates/boot.sh).
        let (read_ended, write_ends) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                () = dist::write_loop(writer, queue) => {}
                _ = write_ends => {}
            }
        });
        let relayed = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&relayed);
        let node = Arc::new(Node {
            pid: Pid::new(name.to_string(), 1, 0, creation),
            creation,
            outgoing: Mutex::new(Some(outgoing)),
            pending: Arc::clone(&pending),
            next_ref: AtomicU32::new(1),
            requests: AtomicU32::new(0),
            round_trips: AtomicU32::new(0),
            handled: handled_rx,
            relayed,
        });
        tokio::spawn(async move {
            let relay = (&relay_tx, &*counted);
            let read = dist::read_loop(reader, |msg| deliver(msg, &pending, relay, &log), &log);
            let refusing = async {
                match &listener {
                    Some(listener) => refuse_all(listener, &log).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = read => {}
                () = refusing => {}
            }
            // Dropping the waiting senders wakes every caller with "connection lost".
            pending.lock().expect("pending lock poisoned").take();
            drop(read_ended);
        });
        let inbox = Inbox {
            messages: relay_rx,
            handled: handled_tx,
        };
        (node, inbox)
    }

    /// How many requests this node has sent.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    /// How many round trips its requests took: a request sent before any reply came since the
    /// last one went (the call a warm run sends right after its load) shares that one's.
    pub fn round_trips(&self) -> u32 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Sends `message` to the remote process `to`.
    pub fn send(&self, to: Pid, message: Term) -> Result<(), DistError> {
        self.queue(Message::send(to, message))
    }

    /// Sends `message` to the process registered as `name` on the remote node.
    pub fn send_named(&self, name: &str, message: Term) -> Result<(), DistError> {
        self.queue(Message::reg_send(
            self.pid.clone(),
            Atom::from(name),
            message,
        ))
    }

    /// Asks the process registered as `server` to run its operation `op` with `args` (as the
    /// boot program's server does, templates/boot.exs). `timeout` of
    /// `None` waits as long as the connection lives.
    pub async fn request(
        &self,
        server: &str,
        op: &str,
        args: Vec<Term>,
        timeout: Option<Duration>,
    ) -> Result<Term, CallError> {
        let request = tuple(vec![atom(op), List::from(args).into()]);
        self.gen_call(server, request, op.to_owned(), timeout, None, true)
            .await
    }

    /// Like [`Node::request`], for the push's requests: the reply is taken as it comes, not held
    /// until the output the relay sent before it is handled (the console writes output only
    /// once the push is over, which would wait for this reply). With `attached`, it is sent
    /// where `args` hold the binary [`dist::ATTACHED`]: a large binary shared by every host is
    /// written to the connection as it is, without a copy per host.
    pub async fn request_before_output(
        &self,
        server: &str,
        op: &str,
        args: Vec<Term>,
        attached: Option<Arc<[u8]>>,
        timeout: Option<Duration>,
    ) -> Result<Term, CallError> {
        let request = tuple(vec![atom(op), List::from(args).into()]);
        self.gen_call(server, request, op.to_owned(), timeout, attached, false)
            .await
    }

    /// Calls `module:function(args)` on the remote through rex, with us as group leader.
    /// `timeout` of `None` waits as long as the connection lives (rex itself never times out).
    pub async fn call(
        &self,
        module: &str,
        function: &str,
        args: Vec<Term>,
        timeout: Option<Duration>,
    ) -> Result<Term, CallError> {
        let mfa = format!("{module}:{function}/{}", args.len());
        let request = tuple(vec![
            atom("call"),
            atom(module),
            atom(function),
            List::from(args).into(),
            self.pid.clone().into(),
        ]);
        self.gen_call("rex", request, mfa, timeout, None, true)
            .await
    }

    /// Sends `request` as a gen_server call to the remote process registered as `to` and waits
    /// for its reply, and then, `after_output`, until the output relayed before the reply is
    /// handled; `what` names the call in errors.
    async fn gen_call(
        &self,
        to: &str,
        request: Term,
        what: String,
        timeout: Option<Duration>,
        attached: Option<Arc<[u8]>>,
        after_output: bool,
    ) -> Result<Term, CallError> {
        let reference = self.make_ref();
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().expect("pending lock poisoned").as_mut() {
            Some(waiting) => {
                if std::mem::replace(&mut waiting.answered, false) {
                    self.round_trips.fetch_add(1, Ordering::Relaxed);
                }
                waiting.replies.insert(reference.id.clone(), tx)
            }
            None => return Err(DistError::Lost.into()),
        };
        let from = tuple(vec![self.pid.clone().into(), reference.clone().into()]);
        let msg = tuple(vec![atom("$gen_call"), from, request]);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.queue_attached(
            Message::reg_send(self.pid.clone(), Atom::from(to), msg),
            attached,
        )?;
        let answer = match timeout {
            None => rx.await,
            Some(limit) => match tokio::time::timeout(limit, rx).await {
                Ok(answer) => answer,
                Err(_) => {
                    self.forget(&reference);
                    return Err(CallError::Timeout {
                        mfa: what,
                        secs: limit.as_secs(),
                    });
                }
            },
        };
        let Ok((reply, relayed_before)) = answer else {
            // The node is gone (it halted, say): what it printed before is written first, as
            // before a reply.
            if after_output {
                self.output_handled(self.relayed.load(Ordering::Relaxed))
                    .await;
            }
            return Err(DistError::Lost.into());
        };
        if after_output {
            self.output_handled(relayed_before).await;
        }
        match reply {
            Term::Tuple(t) if t.elements.len() == 2 && is_atom(&t.elements[0], "badrpc") => {
                Err(CallError::BadRpc {
                    mfa: what,
                    reason: failure_text(&t.elements[1]),
                })
            }
            other => Ok(other),
        }
    }

    /// Waits until the [`Inbox`]'s reader has handled `relayed` of the relay's messages (at once
    /// for an inbox nobody reads: dropped).
    async fn output_handled(&self, relayed: u64) {
        let _ = self
            .handled
            .clone()
            .wait_for(|&handled| handled >= relayed)
            .await;
    }

    /// Queues `message` for the connection's writer.
    fn queue(&self, message: Message) -> Result<(), DistError> {
        self.queue_attached(message, None)
    }

    /// Queues `message` for the connection's writer, with the binary it attaches, if any.
    fn queue_attached(
        &self,
        message: Message,
        attached: Option<Arc<[u8]>>,
    ) -> Result<(), DistError> {
        let out = dist::Outgoing { message, attached };
        match self
            .outgoing
            .lock()
            .expect("outgoing lock poisoned")
            .as_ref()
        {
            Some(tx) => tx.send(out).map_err(|_| DistError::Lost),
            None => Err(DistError::Lost),
        }
    }

    /// Closes the connection from our side: the remote node sees us go and halts.
    pub fn disconnect(&self) {
        self.outgoing.lock().expect("outgoing lock poisoned").take();
    }

    fn make_ref(&self) -> Reference {
        let n = self.next_ref.fetch_add(1, Ordering::Relaxed);
        Reference {
            node: self.pid.node.clone(),
            id: vec![n, rand::random(), rand::random()],
            creation: self.creation,
        }
    }

    fn forget(&self, reference: &Reference) {
        if let Some(waiting) = self.pending.lock().expect("pending lock poisoned").as_mut() {
            waiting.replies.remove(&reference.id);
            waiting.answered = true;
        }
    }
}

/// Refuses every further connection on `listener` (before any cookie challenge), logging who
/// tried; runs until the listener fails.
async fn refuse_all(listener: &UnixListener, log: &(dyn Fn(String) + Send + Sync)) {
    while let Ok((stream, _)) = listener.accept().await {
        let peer = tokio::time::timeout(REFUSAL_LIMIT, dist::refuse(stream))
            .await
            .ok()
            .flatten();
        log(format!(
            "refused an incoming distribution connection from {}",
            peer.as_deref().unwrap_or("an unnamed peer")
        ));
    }
}

/// Waits on `listener` for the node named `peer` to connect and complete its handshake with
/// `local` and `cookie`; its connection. Handshakes run side by side, at most
/// [`HANDSHAKES_AT_ONCE`] (a connection past them closes the oldest under way but the first),
/// so peers that connect and stay silent cannot hold the door shut for the node, however long
/// that one takes, nor take all of the tool's descriptors. Those refused, closed, or still
/// under way when the node is in (let go then) are logged; the caller bounds the wait.
pub async fn accept_first(
    listener: &UnixListener,
    local: &LocalNode,
    cookie: &str,
    peer: &str,
    log: &(dyn Fn(String) + Send + Sync),
) -> Result<UnixStream, DistError> {
    let mut handshakes = JoinSet::new();
    // The handshakes under way but the first connection's, oldest first: the first is the
    // launcher's when it opened one, whose handshake waits for the VM to start.
    let mut later: VecDeque<AbortHandle> = VecDeque::new();
    let mut first = true;
    let mut closed = 0;
    // A connection that closed the oldest: it starts once that one is gone (and its descriptor
    // with it), and none is accepted meanwhile.
    let mut next: Option<UnixStream> = None;
    let stream = loop {
        if let Some(stream) = next.take_if(|_| handshakes.len() < HANDSHAKES_AT_ONCE) {
            let (local, cookie, peer) = (local.clone(), cookie.to_owned(), peer.to_owned());
            let handshake =
                handshakes.spawn(async move { dist::accept(stream, local, &cookie, &peer).await });
            if !std::mem::take(&mut first) {
                later.push_back(handshake);
            }
        }
        tokio::select! {
            incoming = listener.accept(), if next.is_none() => {
                let (stream, _) = incoming.map_err(|_| DistError::Lost)?;
                if handshakes.len() >= HANDSHAKES_AT_ONCE {
                    match later.pop_front() {
                        Some(oldest) => oldest.abort(),
                        None => continue,
                    }
                    closed += 1;
                }
                next = Some(stream);
            }
            Some(done) = handshakes.join_next_with_id() => {
                let id = match &done {
                    Ok((id, _)) => *id,
                    Err(e) => e.id(),
                };
                later.retain(|h| h.id() != id);
                match done {
                    Ok((_, Ok(stream))) => break stream,
                    Ok((_, Err(refused))) => log(format!("refused: {refused}")),
                    // Closed for a later one: counted below.
                    Err(e) if e.is_cancelled() => {}
                    Err(failed) => log(format!("refused: a handshake failed: {failed}")),
                }
            }
        }
    };
    if closed > 0 {
        log(format!(
            "refused: {closed} connection(s) closed for later ones, {HANDSHAKES_AT_ONCE} handshakes being under way"
        ));
    }
    // The others still in progress are aborted.
    if !handshakes.is_empty() {
        log(format!(
            "refused: {} connection(s) whose handshake had not finished when the node connected",
            handshakes.len()
        ));
    }
    Ok(stream)
}

/// Routes one incoming message: call replies to their waiters (with how many of the relay's
/// messages came before), the relay's to the inbox (counted).
fn deliver(
    msg: Message,
    pending: &Pending,
    (relay, relayed): (&mpsc::UnboundedSender<FromRelay>, &AtomicU64),
    log: &(dyn Fn(String) + Send + Sync),
) {
    let payload = match msg {
        Message::Send(m) => m.message,
        Message::SendSender(m) => m.message,
        Message::RegSend(m) => m.message,
        Message::AliasSend(m) => m.message,
        // Monitors of our pid (the io module monitors its group leader), links, exits: nothing to do.
        _ => return,
    };
    if let Some(message) = FromRelay::from_term(&payload) {
        relayed.fetch_add(1, Ordering::Relaxed);
        let _ = relay.send(message);
        return;
    }
    let waiter = match &payload {
        Term::Tuple(t) => match t.elements.as_slice() {
            [Term::Reference(r), _] => pending
                .lock()
                .expect("pending lock poisoned")
                .as_mut()
                .and_then(|waiting| {
                    let waiter = waiting.replies.remove(&r.id)?;
                    waiting.answered = true;
                    Some(waiter)
                }),
            _ => None,
        },
        _ => None,
    };
    match (waiter, payload) {
        (Some(waiter), Term::Tuple(mut t)) => {
            if let Some(reply) = t.elements.pop() {
                let _ = waiter.send((reply, relayed.load(Ordering::Relaxed)));
            }
        }
        (_, payload) => log(format!("ignored message: {payload}")),
    }
}

/// An atom term.
pub fn atom(name: &str) -> Term {
    Atom::from(name).into()
}

/// The atom `true` or `false`.
pub fn boolean(value: bool) -> Term {
    atom(if value { "true" } else { "false" })
}

/// How a remote failure reads (the reason of a `badrpc`; the boot program's `{Kind, Reason}`
/// of what it caught): an Elixir exception with its message as Elixir shows it, `(RuntimeError)
/// no writable temporary directory`, rather than its struct (whose message is a list of bytes
/// as a term); anything else as the term.
pub fn failure_text(reason: &Term) -> String {
    if let Term::Tuple(t) = reason
        && let [kind, Term::Map(exception)] = t.elements.as_slice()
        && is_atom(kind, "error")
        && let Some(Term::Atom(module)) = exception.map.get(&atom("__struct__"))
        && let Some(Term::Binary(message)) = exception.map.get(&atom("message"))
    {
        let name = module.name.strip_prefix("Elixir.").unwrap_or(&module.name);
        return format!("({name}) {}", String::from_utf8_lossy(&message.bytes));
    }
    reason.to_string()
}

/// A tuple term.
pub fn tuple(elements: Vec<Term>) -> Term {
    Tuple::from(elements).into()
}

/// Whether `term` is the atom `name`.
pub fn is_atom(term: &Term, name: &str) -> bool {
    matches!(term, Term::Atom(a) if a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::handshake::{ClientSideHandshake, HandshakeStatus};
    use tokio::net::UnixStream;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    #[test]
    fn a_remote_failure_reads_as_elixir_shows_an_exception() {
        let raised = crate::remote::push::tests::raised("no writable temporary directory");
        assert_eq!(
            failure_text(&raised),
            "(RuntimeError) no writable temporary directory"
        );
        let thrown = tuple(vec![atom("throw"), atom("oops")]);
        assert_eq!(failure_text(&thrown), "{'throw','oops'}");
        let odd = erl_dist::term::Map::from([(atom("__struct__"), atom("Elixir.KeyError"))]);
        let odd = tuple(vec![atom("error"), odd.into()]);
        assert_eq!(failure_text(&odd), odd.to_string(), "no message: the term");
    }

    /// Our node accepting `remote@localhost` with the cookie "right" on `listener`.
    async fn accepting(listener: UnixListener) -> Result<(Arc<Node>, Inbox), DistError> {
        let us: NodeName = "us@localhost".parse().unwrap();
        Node::accept(listener, &us, 7, "right", "remote@localhost", |_| {}).await
    }

    /// Connects to `path` as a node on localhost asking to be named, with the cookie "right",
    /// and completes the handshake (OTP's side of it, from `erl_dist`); the connection.
    async fn booted_node(path: &std::path::Path) -> UnixStream {
        booted_node_on(UnixStream::connect(path).await.unwrap()).await
    }

    /// [`booted_node`] on a connection made before.
    async fn booted_node_on(stream: UnixStream) -> UnixStream {
        let mut remote = dist::local_node(&"undefined@localhost".parse().unwrap(), 9);
        remote.flags |= erl_dist::DistributionFlags::NAME_ME;
        let mut hs = ClientSideHandshake::new(stream.compat(), remote, "right");
        let status = hs.execute_send_name(6).await.unwrap();
        assert!(
            matches!(&status, HandshakeStatus::Named { name, .. } if name == "remote"),
            "{status:?}"
        );
        hs.execute_rest(true).await.unwrap().0.into_inner()
    }

    /// Our node, connected to a booted node the test plays: what our node sends it comes out of
    /// the returned receiver, and what the test queues on the returned sender reaches our node.
    async fn with_peer() -> (
        Arc<Node>,
        Inbox,
        mpsc::UnboundedSender<dist::Outgoing>,
        mpsc::UnboundedReceiver<Message>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let accept = accepting(UnixListener::bind(&path).unwrap());
        let (accepted, peer) = tokio::join!(accept, booted_node(&path));
        let (node, inbox) = accepted.unwrap();
        let (reader, writer) = peer.into_split();
        let (to_us, queue) = mpsc::unbounded_channel();
        tokio::spawn(dist::write_loop(writer, queue));
        let (requests_tx, requests) = mpsc::unbounded_channel();
        tokio::spawn(dist::read_loop(
            reader,
            move |m| drop(requests_tx.send(m)),
            |_| {},
        ));
        (node, inbox, to_us, requests)
    }

    /// The reference of the next request our node sent (a gen_server call's), to reply with.
    async fn next_request(requests: &mut mpsc::UnboundedReceiver<Message>) -> Term {
        let Some(Message::RegSend(request)) = requests.recv().await else {
            panic!("no request")
        };
        let Term::Tuple(call) = request.message else {
            panic!("not a call")
        };
        let Term::Tuple(from) = &call.elements[1] else {
            panic!("no sender")
        };
        from.elements[1].clone()
    }

    /// What an accept gives.
    type Accepted = Result<(Arc<Node>, Inbox), DistError>;
    /// What an accept notes.
    type Notes = Arc<Mutex<Vec<String>>>;

    /// Our node accepting on a fresh socket, as a run's does: the socket's directory and path,
    /// the accept, and what it notes.
    fn accepting_on_a_socket() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        impl Future<Output = Accepted>,
        Notes,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let notes = Arc::new(Mutex::new(Vec::new()));
        let noted = Arc::clone(&notes);
        let listener = UnixListener::bind(&path).unwrap();
        let accept = async move {
            let us: NodeName = "us@localhost".parse().unwrap();
            let note = move |n| noted.lock().unwrap().push(n);
            Node::accept(listener, &us, 7, "right", "remote@localhost", note).await
        };
        (dir, path, accept, notes)
    }

    #[tokio::test]
    async fn a_silent_peer_does_not_keep_the_booted_node_out() {
        let (_dir, path, accept, notes) = accepting_on_a_socket();
        let peers = async {
            // Connects first and never says a word.
            let _silent = UnixStream::connect(&path).await.unwrap();
            let _booted = booted_node(&path).await;
            // Keeps both open until the node has accepted.
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let (accepted, ()) = tokio::time::timeout(Duration::from_secs(3), async {
            tokio::join!(accept, peers)
        })
        .await
        .expect("the booted node was kept waiting");
        assert!(accepted.is_ok());
        assert_eq!(
            *notes.lock().unwrap(),
            ["refused: 1 connection(s) whose handshake had not finished when the node connected"]
        );
    }

    #[tokio::test]
    async fn silent_connections_keep_neither_descriptors_nor_the_node_first_or_last() {
        for node_first in [true, false] {
            // The node's own connection comes first when the launcher opens it (before the VM
            // starts), else after others; meanwhile others connect, again and again, and stay
            // silent.
            let (_dir, path, accept, notes) = accepting_on_a_socket();
            let peers = async {
                let node = match node_first {
                    true => Some(UnixStream::connect(&path).await.unwrap()),
                    false => None,
                };
                let mut silent = Vec::new();
                for _ in 0..100 {
                    silent.push(UnixStream::connect(&path).await.unwrap());
                }
                let node = match node {
                    Some(node) => node,
                    None => UnixStream::connect(&path).await.unwrap(),
                };
                // Keeps the silent ones open until the node is in.
                (booted_node_on(node).await, silent)
            };
            let (accepted, (_node, mut silent)) =
                tokio::time::timeout(Duration::from_secs(10), async {
                    tokio::join!(accept, peers)
                })
                .await
                .expect("the node kept out");
            assert!(accepted.is_ok(), "node first: {node_first}");
            // Only the handshakes under way held a descriptor: every other silent one is
            // closed (the first, when it is not the node's, among those under way).
            let mut open = 0;
            for stream in &mut silent {
                let mut byte = [0; 1];
                let read = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::io::AsyncReadExt::read(stream, &mut byte),
                );
                if read.await.is_err() {
                    open += 1;
                }
            }
            assert_eq!(open, 0, "node first: {node_first}");
            // 100 silent, the node: 16 under way at most, and the first (the node's, or the
            // first silent one) stays.
            let closed = 85;
            assert_eq!(
                *notes.lock().unwrap(),
                [
                    format!("refused: {closed} connection(s) closed for later ones, 16 handshakes being under way"),
                    "refused: 15 connection(s) whose handshake had not finished when the node connected".to_owned(),
                ],
                "node first: {node_first}"
            );
        }
    }

    #[tokio::test]
    async fn a_reply_waits_until_the_relay_messages_before_it_are_handled() {
        let (node, mut inbox, to_us, mut requests) = with_peer().await;

        let asking = Arc::clone(&node);
        let mut reply =
            tokio::spawn(async move { asking.request("mix_remote", "run", vec![], None).await });
        // The peer answers as the boot program's server does: two pieces of output from the
        // relay, then the reply.
        let reference = next_request(&mut requests).await;
        let send = |term: Term| {
            let message = Message::send(node.pid.clone(), term);
            to_us
                .send(dist::Outgoing {
                    message,
                    attached: None,
                })
                .unwrap();
        };
        for piece in ["a", "b"] {
            send(tuple(vec![
                atom("mix_remote_out"),
                erl_dist::term::Binary::from(piece.as_bytes()).into(),
            ]));
        }
        send(tuple(vec![reference, atom("ok")]));

        let next = |mut inbox: Inbox| {
            tokio::task::spawn_blocking(move || {
                let message = inbox.blocking_next();
                (inbox, message)
            })
        };
        let (inbox_back, first) = next(inbox).await.unwrap();
        inbox = inbox_back;
        assert!(matches!(first, Some(FromRelay::Out(_))));
        // Both pieces and the reply have arrived; one piece is not handled yet.
        let (inbox_back, second) = next(inbox).await.unwrap();
        inbox = inbox_back;
        assert!(matches!(second, Some(FromRelay::Out(_))));
        inbox.handled();
        let early = tokio::time::timeout(Duration::from_millis(100), &mut reply).await;
        assert!(
            early.is_err(),
            "the reply came before the output was handled"
        );
        inbox.handled();
        let replied = tokio::time::timeout(Duration::from_secs(3), reply).await;
        assert!(matches!(replied, Ok(Ok(Ok(Term::Atom(a)))) if a.name == "ok"));
    }

    #[tokio::test]
    async fn a_node_gone_in_a_call_is_told_once_the_relay_messages_before_are_handled() {
        let (node, mut inbox, to_us, mut requests) = with_peer().await;

        let asking = Arc::clone(&node);
        let mut lost =
            tokio::spawn(async move { asking.request("mix_remote", "run", vec![], None).await });
        // The peer prints a piece, then halts: its connection ends without a reply.
        next_request(&mut requests).await;
        let message = Message::send(
            node.pid.clone(),
            tuple(vec![
                atom("mix_remote_out"),
                erl_dist::term::Binary::from(b"last words".as_slice()).into(),
            ]),
        );
        to_us
            .send(dist::Outgoing {
                message,
                attached: None,
            })
            .unwrap();
        drop(to_us);

        let (inbox, piece) = tokio::task::spawn_blocking(move || {
            let message = inbox.blocking_next();
            (inbox, message)
        })
        .await
        .unwrap();
        assert!(matches!(piece, Some(FromRelay::Out(_))));
        let early = tokio::time::timeout(Duration::from_millis(100), &mut lost).await;
        assert!(
            early.is_err(),
            "the loss was told before the output was handled"
        );
        inbox.handled();
        let told = tokio::time::timeout(Duration::from_secs(3), lost).await;
        assert!(
            matches!(told, Ok(Ok(Err(CallError::Dist(DistError::Lost))))),
            "{told:?}"
        );
    }

    #[tokio::test]
    async fn requests_sent_before_any_reply_share_a_round_trip() {
        let (node, _inbox, to_us, mut requests) = with_peer().await;
        let ask = |op: &'static str| {
            let node = Arc::clone(&node);
            tokio::spawn(async move { node.request("mix_remote", op, vec![], None).await })
        };
        // Answers the next request as the boot program's server does.
        let mut answer = async || {
            let reference = next_request(&mut requests).await;
            let message = Message::send(node.pid.clone(), tuple(vec![reference, atom("ok")]));
            to_us
                .send(dist::Outgoing {
                    message,
                    attached: None,
                })
                .unwrap();
        };

        // A load and, before its reply, the call: one round trip.
        let (load, call) = (ask("load"), ask("after_load"));
        answer().await;
        answer().await;
        assert!(load.await.unwrap().is_ok() && call.await.unwrap().is_ok());
        assert_eq!((node.requests(), node.round_trips()), (2, 1));
        // One made after a reply waited for it: a round trip of its own.
        let again = ask("info");
        answer().await;
        assert!(again.await.unwrap().is_ok());
        assert_eq!((node.requests(), node.round_trips()), (3, 2));
    }
}
