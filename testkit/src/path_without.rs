//! A `PATH` like this process's, without one program: for a server that lacks it (bash).

use std::path::Path;

use tempfile::TempDir;

/// A directory of links to every program on this process's `PATH` but one, first found first;
/// gone with the value.
pub struct PathWithout {
    dir: TempDir,
}

impl PathWithout {
    /// The programs of `PATH` (as symbolic links) but `program`.
    pub fn new(program: &str) -> PathWithout {
        let dir = tempfile::Builder::new()
            .prefix("mix-remote-path-")
            .tempdir()
            .expect("testkit: cannot create a temporary directory");
        let path = std::env::var_os("PATH").unwrap_or_default();
        for entry in std::env::split_paths(&path).filter_map(|d| std::fs::read_dir(d).ok()) {
            for file in entry.flatten() {
                let name = file.file_name();
                let link = dir.path().join(&name);
                if name != program && !link.exists() {
                    // A name two directories share keeps its first, as PATH would.
                    let _ = std::os::unix::fs::symlink(file.path(), &link);
                }
            }
        }
        PathWithout { dir }
    }

    /// The directory to give as `PATH`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
