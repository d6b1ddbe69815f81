//! Where warm sessions live on this machine: `$XDG_RUNTIME_DIR/mix-remote/` when it is set to an
//! absolute path (a per-user tmpfs that goes at logout), else
//! `$XDG_CACHE_HOME/mix-remote/sessions/` (or `~/.cache/...`); in it, one 0700 directory per
//! session, named by the session's key, holding the agent's 0600 socket, its lock and ssh's control
//! socket. The root is made 0700 and must be the user's own.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The agent's socket in a session directory.
pub const SOCKET: &str = "agent.sock";
/// ssh's control socket in a session directory.
pub const CONTROL: &str = "ctl";
/// The file whose lock the agent holds for its whole life, its directory's removal included: a
/// socket that refuses connections then means an agent ending, not a dead one.
pub const LOCK: &str = "lock";

/// Takes the lock of the session directory `dir` for this process (see [`LOCK`]).
pub fn hold_lock(dir: &Path) -> io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(dir.join(LOCK))?;
    file.lock()?;
    Ok(file)
}

/// Whether a live process (an agent, ending or not) holds the lock of the session directory
/// `dir`.
pub fn lock_held(dir: &Path) -> bool {
    // Writable: where flock is emulated with POSIX locks (NFS), an exclusive lock needs it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(LOCK))
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// The directory that holds the sessions, created (0700) if need be (in an `XDG_RUNTIME_DIR`
/// that exists: that one is the system's to make). Refused when it belongs to another user or
/// others may enter it. An error names the directory and the variable that put it there
/// (`/x/mix-remote (in XDG_RUNTIME_DIR): Not a directory`).
pub fn root() -> io::Result<PathBuf> {
    let (root, var) = root_path()?;
    let named = |error: io::Error| {
        io::Error::new(
            error.kind(),
            format!("{} (in {var}): {error}", root.display()),
        )
    };
    // XDG_RUNTIME_DIR is the system's to make (and to remove at logout): only ours is made in it.
    let made = std::fs::DirBuilder::new()
        .recursive(var != "XDG_RUNTIME_DIR")
        .mode(0o700)
        .create(&root);
    match made {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(named(e)),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(&root).map_err(named)?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me {
        return Err(io::Error::other(format!(
            "{} (in {var}) is not a directory of this user's",
            root.display()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(named)?;
    }
    Ok(root)
}

/// Where the sessions directory is, and the variable that puts it there.
fn root_path() -> io::Result<(PathBuf, &'static str)> {
    // A relative path in an XDG variable is to be ignored, as the XDG spec says.
    let var = |name: &'static str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute() || name == "HOME" && !dir.as_os_str().is_empty())
            .map(|dir| (dir, name))
    };
    if let Some((runtime, name)) = var("XDG_RUNTIME_DIR") {
        return Ok((runtime.join("mix-remote"), name));
    }
    let (cache, name) = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|(home, name)| (home.join(".cache"), name)))
        .ok_or_else(|| io::Error::other("neither XDG_RUNTIME_DIR nor HOME is set"))?;
    Ok((cache.join("mix-remote").join("sessions"), name))
}

/// The directory of the session with `key` (which may not exist).
pub fn session(root: &Path, key: &str) -> PathBuf {
    root.join(key)
}

/// The session directories under `root`.
pub fn sessions(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}
