//! The run's private directory: the ssh control socket and the Unix socket the reverse forward
//! ends in, reachable by the user alone, and gone however the run ends.
//!
//! Unix sockets have to be files while ssh connects to them, so the directory exists only for as
//! long as it is needed: from before the connection until the remote node has connected back, when
//! the run removes it (the open listeners and the master keep working without their paths). A run
//! ended by SIGKILL in that window cannot remove anything itself, so each directory has a guardian:
//! a small `sh` in a process group of its own that waits for end-of-file on a pipe only the tool
//! holds, then removes the directory. The kernel closes that pipe when the tool dies, however it
//! dies, so the directory goes within milliseconds.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{ChildStdin, Command};

/// Removes the directory named by its argument once its stdin reaches end-of-file.
const GUARDIAN: &str = "read -r _; rm -rf -- \"$1\"";

/// A 0700 directory under `$TMPDIR`, removed on [`PrivateDir::remove`], on drop, and by its
/// guardian if the tool dies first.
pub struct PrivateDir {
    path: PathBuf,
    removed: bool,
    /// Our end of the guardian's stdin; dropping it lets the guardian run.
    guardian: Option<ChildStdin>,
}

impl PrivateDir {
    /// Creates the directory (`$TMPDIR/mix-remote-XXXXXX`, mode 0700) and starts its guardian.
    /// Without `sh` there is no guardian: the directory is still removed unless the tool is killed.
    pub fn create() -> io::Result<PrivateDir> {
        let path = tempfile::Builder::new()
            .prefix("mix-remote-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?
            .keep();
        Ok(PrivateDir::guarded(path))
    }

    /// Creates the directory `path` (mode 0700; it must not exist yet: nothing is reused) and
    /// starts its guardian, as [`PrivateDir::create`] does: for the directory of a warm session.
    pub fn create_at(path: PathBuf) -> io::Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(PrivateDir::guarded(path))
    }

    fn guarded(path: PathBuf) -> PrivateDir {
        let guardian = Command::new("sh")
            .args(["-c", GUARDIAN, "mix-remote-guardian"])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not in our process group: a Ctrl-C at the terminal must not stop it before it is due.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .ok()
            // The runtime reaps the guardian once it exits; only its stdin is kept.
            .and_then(|mut child| child.stdin.take());
        PrivateDir {
            path,
            removed: false,
            guardian,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory and everything in it now, and releases the guardian.
    pub fn remove(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_dir_all(&self.path);
            self.removed = true;
        }
        self.guardian.take();
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Restricts a socket file to its owner (the directory already is): 0600.
pub fn owner_only(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn is_private_and_removed_by_remove_and_by_drop() {
        let mut dir = PrivateDir::create().unwrap();
        let path = dir.path().to_owned();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o700);
        let socket = path.join("s.sock");
        let _listener = tokio::net::UnixListener::bind(&socket).unwrap();
        owner_only(&socket).unwrap();
        assert_eq!(std::fs::metadata(&socket).unwrap().mode() & 0o777, 0o600);
        dir.remove();
        assert!(!path.exists());

        let dir = PrivateDir::create().unwrap();
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn the_guardian_removes_the_directory_when_its_pipe_closes() {
        // Closing the pipe without removing the directory is what the tool's death does.
        let mut dir = PrivateDir::create().unwrap();
        let path = dir.path().to_owned();
        std::fs::write(path.join("file"), b"x").unwrap();
        dir.guardian.take();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while path.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!path.exists(), "the guardian left {}", path.display());
    }
}
