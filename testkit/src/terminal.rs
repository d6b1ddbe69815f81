//! mix-remote on a pseudo-terminal of its own, as a person runs it: [`MixRemote::on_terminal`]
//! starts it as the session leader of a 120x40 pty (typed keys, ^C and ssh's questions on
//! /dev/tty behave as they would for a person), and what it draws is rendered into a screen of
//! rows and cells to look at.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use tempfile::TempDir;

use crate::RUN_LIMIT;
use crate::launcher::{MixRemote, Output};

/// The size of the terminal.
pub const COLUMNS: u16 = 120;
/// The size of the terminal.
pub const ROWS: u16 = 40;

/// A run on a pseudo-terminal; killed if dropped unfinished (a test panicked).
pub struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    /// The reader has seen the end of what the terminal shows (every writer closed it).
    ended: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    tmp: Option<TempDir>,
    _master: Box<dyn MasterPty + Send>,
}

impl MixRemote {
    /// Starts the run on a pseudo-terminal: stdin, stdout and stderr are the terminal, with the
    /// run's environment and `TERM=xterm-256color`.
    pub fn on_terminal(&self) -> Terminal {
        let tmp = tempfile::Builder::new()
            .prefix("mix-remote-test-")
            .tempdir()
            .expect("testkit: a TMPDIR for the run");
        let (program, args) = self.command_line();
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        cmd.cwd(self.dir());
        cmd.env_clear();
        for (name, value) in self
            .environment()
            .into_iter()
            .filter(|(name, _)| name != "TERM")
        {
            cmd.env(name, value);
        }
        cmd.env("TERM", "xterm-256color");
        cmd.env("TMPDIR", tmp.path());
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLUMNS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("testkit: a pseudo-terminal");
        let child = pty
            .slave
            .spawn_command(cmd)
            .expect("testkit: start mix-remote on the terminal");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("testkit: pty reader");
        let writer = pty.master.take_writer().expect("testkit: pty writer");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLUMNS, 0)));
        let ended = Arc::new(AtomicBool::new(false));
        let (shown, done) = (Arc::clone(&screen), Arc::clone(&ended));
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // EIO once the last process holding the terminal has closed it.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                shown.lock().expect("screen lock").process(&buf[..n]);
            }
            done.store(true, Ordering::SeqCst);
        });
        Terminal {
            child,
            writer,
            screen,
            ended,
            reader: Some(reader),
            tmp: Some(tmp),
            _master: pty.master,
        }
    }
}

impl Terminal {
    /// Types `keys` (`b"y\r"` is y and Enter, `b"\x03"` is ^C).
    pub fn type_keys(&mut self, keys: &[u8]) {
        self.writer
            .write_all(keys)
            .and_then(|()| self.writer.flush())
            .expect("testkit: typing on the terminal");
    }

    /// The screen's rows, as text without trailing blanks.
    pub fn rows(&self) -> Vec<String> {
        let parser = self.screen.lock().expect("screen lock");
        parser
            .screen()
            .rows(0, COLUMNS)
            .map(|row| row.trim_end().to_owned())
            .collect()
    }

    /// The screen as text: its rows, without the blank ones at the end.
    pub fn text(&self) -> String {
        let mut rows = self.rows();
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows.join("\n")
    }

    /// Waits (polling every 20 ms) until some row of the screen contains `text`; returns that
    /// row. Panics, showing the screen, if it does not within [`RUN_LIMIT`].
    pub fn wait_for_row(&self, text: &str) -> String {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            if let Some(row) = self.rows().into_iter().find(|r| r.contains(text)) {
                return row;
            }
            if Instant::now() > deadline {
                panic!(
                    "testkit: no row with {text:?} on the screen:\n{}",
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the run to end (killing it and panicking past [`RUN_LIMIT`]) and for everything
    /// it drew; returns its exit code (none after a signal) and, as `stdout`, the screen's text
    /// (`stderr` is empty: both went to the screen).
    pub fn finish(mut self) -> Output {
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            match self
                .child
                .try_wait()
                .expect("testkit: waiting for mix-remote")
            {
                Some(status) => break status,
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    panic!(
                        "testkit: mix-remote on the terminal ran past {RUN_LIMIT:?}:\n{}",
                        self.text()
                    );
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        // What it drew last is read once every process holding the terminal has closed it.
        let drained = Instant::now() + crate::CLEANUP_LIMIT;
        while !self.ended.load(Ordering::SeqCst) && Instant::now() < drained {
            std::thread::sleep(Duration::from_millis(10));
        }
        let code = if status.signal().is_some() {
            None
        } else {
            i32::try_from(status.exit_code()).ok()
        };
        Output::new(
            code,
            self.text(),
            String::new(),
            self.tmp.take().expect("the run's TMPDIR"),
        )
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader ends with the terminal; it is not waited for.
        drop(self.reader.take());
    }
}
