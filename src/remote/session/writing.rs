//! The batch a cold run writes on its booting node's stdin: the write's own task, which gives
//! the session's stdin back, and what the run keeps of it until the load is done.

use std::sync::Arc;
use std::time::Instant;

use tokio::process::ChildStdin;
use tokio::sync::oneshot;

use crate::remote::push;
use crate::remote::ssh::{Master, SshError};
use crate::remote::wire::Prepared;

/// The batch a cold run sends on its node's stdin, and what it loads.
pub(super) struct Sent {
    pub(super) load: push::Load,
    pub(super) prepared: Arc<Prepared>,
    /// When the tool knew what to load (the load frame went then, or after the batch).
    pub(super) at: Instant,
    /// The write, if it is still going on: it gives back the session's stdin.
    pub(super) writing: Option<Writing>,
}

/// What `Session::connect` started for `Session::boot`: the batch's write, and where the
/// load frame is to be given once the node has said what it has.
pub(super) struct Batch {
    /// The write, or `None` if the session's stdin was closed.
    pub(super) writing: Option<Writing>,
    /// Where the frame saying what to load goes, to be written after the batch.
    pub(super) load_frame: oneshot::Sender<Vec<u8>>,
}

/// Writing a batch on the boot session's stdin (taken from the master while it goes on), in a
/// task of its own, which gives the stdin back; aborted if dropped, so it never outlives its run.
pub(super) struct Writing {
    task: tokio::task::JoinHandle<Result<ChildStdin, SshError>>,
}

impl Writing {
    /// Runs `write` in a task of its own.
    pub(super) fn spawn(
        write: impl Future<Output = Result<ChildStdin, SshError>> + Send + 'static,
    ) -> Writing {
        Writing {
            task: tokio::spawn(write),
        }
    }
}

impl Future for Writing {
    type Output = Result<ChildStdin, SshError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.task)
            .poll(cx)
            .map(|joined| match joined {
                Ok(written) => written,
                Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
                Err(_) => unreachable!("a write is aborted only as its `Writing` is dropped"),
            })
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The session's stdin that a write (the batch, the load frame) gives back; if the write failed,
/// why the session ended, which says more than the failed write (the node's last words, ssh's).
pub(super) async fn stdin_back(
    master: &mut Master,
    written: Result<ChildStdin, SshError>,
) -> Result<ChildStdin, SshError> {
    match written {
        Ok(stdin) => Ok(stdin),
        Err(_) => Err(master.failure("the remote node").await),
    }
}
