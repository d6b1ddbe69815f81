//! A stand-in for the server's `elixir` (the test host is this machine): a script given to the
//! tool with `--elixir`, which runs some shell first and then, typically, the real `elixir`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The script and its directory, removed when dropped.
pub struct ElixirWrapper {
    dir: TempDir,
}

impl ElixirWrapper {
    /// A wrapper script running `body`, typically ending in `exec elixir "$@"`.
    pub fn new(body: &str) -> ElixirWrapper {
        let dir = tempfile::Builder::new()
            .prefix("mix-remote-elixir-")
            .tempdir()
            .expect("testkit: a directory for the wrapper");
        let path = dir.path().join("elixir");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("testkit: write the wrapper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("testkit: make the wrapper executable");
        ElixirWrapper { dir }
    }

    /// A gate: the real elixir starts only once [`ElixirWrapper::open`] is called, so a test can
    /// act while the remote node is booting (the tunnel exists, nothing has connected back).
    /// Dropped closed (by a test that panicked), it gives up instead of waiting for good.
    pub fn gate() -> ElixirWrapper {
        let wrapper = ElixirWrapper::new("");
        let dir = wrapper.dir.path();
        std::fs::write(
            wrapper.path(),
            format!(
                "#!/bin/sh\nwhile [ ! -e {} ]; do [ -d {} ] || exit 1; sleep 0.05; done\nexec elixir \"$@\"\n",
                sh_quoted(&dir.join("open")),
                sh_quoted(dir)
            ),
        )
        .expect("testkit: write the gate");
        wrapper
    }

    /// The script, for `--elixir`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("elixir")
    }

    /// Opens the gate.
    pub fn open(&self) {
        std::fs::write(self.dir.path().join("open"), b"").expect("testkit: open the gate");
    }
}

/// `path` as one word for sh: single-quoted, its own single quotes escaped.
fn sh_quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}
