//! A spare node's connection, made by the agent before any run claims the spare: the agent gives
//! the node the names and cookie of a run to come, accepts its connection on the spare's socket,
//! makes the handshake and keeps the connection alive (`dist::hold`) until a run takes it over
//! (`Node::over`), socket and identities, through the agent's socket (`fd`). The run then starts
//! with its node up: no handshake, no forward's channel to open.

use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::spare::Spare;
use crate::remote::node::{self, Identities, dist};

/// How long the node may take to connect once it has its cookie.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// A spare's connection, handshake done, kept alive for the run that claims the spare.
pub struct Ahead {
    /// The names and cookie the handshake was made with: the run's from then on.
    pub ids: Identities,
    stop: Option<oneshot::Sender<()>>,
    held: JoinHandle<std::io::Result<(UnixStream, Vec<u8>)>>,
}

impl Ahead {
    /// Gives `spare` fresh identities and makes its connection; what went wrong if it did not
    /// come (the spare cannot serve a run then: it has its cookie).
    pub async fn connect(spare: &mut Spare) -> Result<Ahead, String> {
        let mut ids = Identities::fresh();
        ids.remote = spare
            .remote
            .parse()
            .map_err(|_| format!("bad node name {}", spare.remote))?;
        let _ = std::fs::remove_file(&spare.socket);
        let listener = UnixListener::bind(&spare.socket)
            .map_err(|e| format!("cannot listen on {}: {e}", spare.socket.display()))?;
        let refused = std::sync::Mutex::new(None::<String>);
        let connecting = async {
            spare
                .go(&ids.cookie, &ids.local.to_string())
                .await
                .map_err(|e| format!("the spare node's session closed: {e}"))?;
            // Side by side, as a run's: connections that stay silent cannot keep the node out
            // (past 16 under way, the oldest gives way). The last refusal says why, should the
            // node not come.
            let local = dist::local_node(&ids.local, ids.creation);
            let remote = ids.remote.to_string();
            // Until the node is in, what is noted is each refused handshake.
            let note = |n: String| *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(n);
            node::accept_first(&listener, &local, &ids.cookie, &remote, &note)
                .await
                .map_err(|e| e.to_string())
        };
        let connected = tokio::time::timeout(CONNECT_LIMIT, connecting).await;
        // Nothing else may connect: the socket goes once the node is in (or is not coming).
        drop(listener);
        let _ = std::fs::remove_file(&spare.socket);
        let stream = connected.map_err(|_| {
            let refused = refused.lock().unwrap_or_else(|e| e.into_inner()).take();
            match refused {
                Some(last) => format!("the spare node did not connect ({last})"),
                None => "the spare node did not connect".to_owned(),
            }
        })??;
        let (stop, stopped) = oneshot::channel();
        Ok(Ahead {
            ids,
            stop: Some(stop),
            held: tokio::spawn(dist::hold(stream, stopped)),
        })
    }

    /// The connection, and what was read of it past its last whole frame; `None` if it was lost.
    pub async fn take(mut self) -> Option<(UnixStream, Vec<u8>)> {
        let _ = self.stop.take()?.send(());
        (&mut self.held).await.ok()?.ok()
    }

    /// Whether the connection was lost meanwhile (the node gone, or silent too long).
    pub fn is_lost(&self) -> bool {
        self.held.is_finished()
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.held.abort();
    }
}
