//! mix-remote in a pseudo-terminal, as a person at a terminal runs it: [`MixRemote::spawn_in_pty`]
//! starts the run with a pty as its controlling terminal (stdin, stdout and stderr alike), and
//! [`PtyRun`] types into it and reads the screen that a terminal emulator (vt100) renders of what
//! it printed. Like a real terminal, it answers the cursor position query (`ESC [6n`) that line
//! editors make. The one pseudo-terminal of the harness: for what a person at a terminal sees and
//! types, from a prompt of the function to an `iex` session.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use tempfile::TempDir;

use crate::launcher::{MixRemote, Output};
use crate::{CLEANUP_LIMIT, RUN_LIMIT};

/// Columns of the terminal.
pub const PTY_COLS: u16 = 120;
/// Rows of the terminal: enough that a test's whole session stays on the screen.
pub const PTY_ROWS: u16 = 60;

/// The cursor position query of ECMA-48 (DSR 6).
const CURSOR_QUERY: &[u8] = b"\x1b[6n";

/// Whether `text` (a screen) shows a spinner glyph (the braille block indicatif draws them with).
pub fn has_spinner(text: &str) -> bool {
    text.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
}

/// The rows of `screen`, without their trailing blanks.
fn rows_of(screen: &vt100::Screen) -> impl Iterator<Item = String> + '_ {
    screen
        .rows(0, PTY_COLS)
        .map(|row| row.trim_end().to_owned())
}

/// What the reading thread keeps up to date.
struct Screen {
    parser: vt100::Parser,
    /// The pty has no writer left: the run and everything it started have ended.
    ended: bool,
    /// The terminal reads nothing ([`PtyRun::stall`]): it stands for a display that does not
    /// keep up.
    stalled: bool,
}

/// The screen and a signal for each change of it.
type Shared = Arc<(Mutex<Screen>, Condvar)>;

/// A run in a pseudo-terminal; killed and reaped if dropped unfinished (a test panicked).
#[must_use = "dropping the run kills it"]
pub struct PtyRun {
    child: Box<dyn Child + Send + Sync>,
    keyboard: Arc<Mutex<Box<dyn Write + Send>>>,
    shared: Shared,
    reader: Option<JoinHandle<()>>,
    /// Kept open for the run's life: closing it would hang up the terminal.
    master: Box<dyn MasterPty + Send>,
    /// The run's `TMPDIR`, handed to its [`Output`].
    tmp: Option<TempDir>,
    finished: bool,
}

impl MixRemote {
    /// Starts the run in a fresh pseudo-terminal of [`PTY_COLS`] x [`PTY_ROWS`] (stdin, stdout
    /// and stderr alike), with the run's environment and `TERM=xterm`.
    pub fn spawn_in_pty(&self) -> PtyRun {
        let tmp = tempfile::Builder::new()
            .prefix("mix-remote-test-")
            .tempdir()
            .expect("testkit: a TMPDIR for the run");
        let (program, args) = self.command_line();
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        cmd.cwd(self.dir());
        cmd.env_clear();
        for (name, value) in self.environment() {
            cmd.env(name, value);
        }
        cmd.env("TMPDIR", tmp.path());
        cmd.env("TERM", "xterm");
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: PTY_ROWS,
                cols: PTY_COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("testkit: open a pseudo-terminal");
        keep_output_on_interrupt(pair.master.as_ref());
        let child = pair
            .slave
            .spawn_command(cmd)
            .expect("testkit: start mix-remote in the pseudo-terminal");
        // Only the run may hold the terminal's other end: its end is the end of output.
        drop(pair.slave);
        let keyboard = Arc::new(Mutex::new(
            pair.master
                .take_writer()
                .expect("testkit: the pty's writer"),
        ));
        let output = pair
            .master
            .try_clone_reader()
            .expect("testkit: the pty's reader");
        let shared: Shared = Arc::new((
            Mutex::new(Screen {
                parser: vt100::Parser::new(nonzero(PTY_ROWS), nonzero(PTY_COLS), 0),
                ended: false,
                stalled: false,
            }),
            Condvar::new(),
        ));
        let reader = {
            let (shared, keyboard) = (Arc::clone(&shared), Arc::clone(&keyboard));
            std::thread::spawn(move || render(output, &shared, &keyboard))
        };
        PtyRun {
            child,
            keyboard,
            shared,
            reader: Some(reader),
            master: pair.master,
            tmp: Some(tmp),
            finished: false,
        }
    }
}

/// Sets `NOFLSH` on the terminal: Ctrl-C then discards none of the output the terminal has not
/// read yet. A terminal emulator reads output as it comes; this one reads on a thread of its own,
/// so what the kernel would discard (the end of a drawing, or more) would depend on when that
/// thread last ran, not on what the run wrote.
fn keep_output_on_interrupt(master: &dyn MasterPty) {
    let fd = master
        .as_raw_fd()
        .expect("testkit: the pseudo-terminal's descriptor");
    // SAFETY: tcgetattr fills the zeroed structure; tcsetattr gets it back with one flag more.
    // On a pty's master both act on the terminal's (its other end's) modes.
    let set = unsafe {
        let mut modes: libc::termios = std::mem::zeroed();
        libc::tcgetattr(fd, &mut modes) == 0 && {
            modes.c_lflag |= libc::NOFLSH;
            libc::tcsetattr(fd, libc::TCSANOW, &modes) == 0
        }
    };
    assert!(set, "testkit: NOFLSH on the pseudo-terminal");
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a terminal has rows and columns")
}

/// Feeds everything the run prints to the emulator, answering cursor position queries, until
/// the terminal has no writer left.
fn render(
    mut output: Box<dyn Read + Send>,
    shared: &Shared,
    keyboard: &Mutex<Box<dyn Write + Send>>,
) {
    let mut buf = [0u8; 8192];
    // The last bytes of the previous read: a query may straddle two reads.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        {
            let screen = shared.0.lock().expect("screen lock");
            drop(
                shared
                    .1
                    .wait_while(screen, |s| s.stalled)
                    .expect("screen lock"),
            );
        }
        let n = match output.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut screen = shared.0.lock().expect("screen lock");
        screen.parser.process(&buf[..n]);
        tail.extend_from_slice(&buf[..n]);
        let queries = tail
            .windows(CURSOR_QUERY.len())
            .filter(|w| *w == CURSOR_QUERY)
            .count();
        let keep = tail.len().saturating_sub(CURSOR_QUERY.len() - 1);
        tail.drain(..keep);
        if queries > 0 {
            let (row, col) = screen.parser.screen().cursor_position();
            let answer = format!("\x1b[{};{}R", row + 1, col + 1).repeat(queries);
            let mut keys = keyboard.lock().expect("keyboard lock");
            let _ = keys.write_all(answer.as_bytes());
            let _ = keys.flush();
        }
        drop(screen);
        shared.1.notify_all();
    }
    shared.0.lock().expect("screen lock").ended = true;
    shared.1.notify_all();
}

impl PtyRun {
    /// Stops reading what the run prints and fills the terminal until it takes no more: from now
    /// on every write of the run to the terminal waits, as on a display that does not keep up,
    /// until [`PtyRun::resume`]. What filled it changes nothing on the screen.
    pub fn stall(&self) {
        use std::os::unix::fs::OpenOptionsExt;
        self.lock().stalled = true;
        let path = self
            .master
            .tty_name()
            .expect("testkit: the pseudo-terminal's name");
        let mut side = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path)
            .unwrap_or_else(|e| panic!("testkit: open {}: {e}", path.display()));
        // Resets of the text's attributes: they draw nothing.
        let filler = b"\x1b[m".repeat(1024);
        loop {
            match side.write(&filler) {
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("testkit: fill {}: {e}", path.display()),
            }
        }
    }

    /// The terminal reads again what the run printed, after a [`PtyRun::stall`].
    pub fn resume(&self) {
        self.lock().stalled = false;
        self.shared.1.notify_all();
    }

    /// Types `keys` (text, `\r` for Enter, `\x03` for Ctrl-C, `\x04` for Ctrl-D, `\t` for Tab).
    pub fn send(&self, keys: &str) {
        self.send_bytes(keys.as_bytes());
    }

    /// Types `bytes`, which need not be UTF-8 (a Latin-1 terminal's).
    pub fn send_bytes(&self, bytes: &[u8]) {
        let mut keyboard = self.keyboard.lock().expect("keyboard lock");
        keyboard
            .write_all(bytes)
            .and_then(|()| keyboard.flush())
            .expect("testkit: type into the pseudo-terminal");
    }

    /// The screen now, rows joined with newlines.
    pub fn screen(&self) -> String {
        self.lock().parser.screen().contents()
    }

    /// Waits (within [`RUN_LIMIT`]) until the screen shows `text`; returns the screen. Panics
    /// with the screen if the run ends or the limit passes first.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(text, |screen| screen.contents().contains(text))
    }

    /// Waits (within [`RUN_LIMIT`]) until the screen shows `text` `times` times; returns the
    /// screen.
    pub fn wait_for_count(&self, text: &str, times: usize) -> String {
        self.wait_until(&format!("{text} x{times}"), |screen| {
            screen.contents().matches(text).count() >= times
        })
    }

    /// Waits (within [`RUN_LIMIT`]) until a row of the screen contains `text`; returns that row,
    /// without trailing blanks.
    pub fn wait_for_row(&self, text: &str) -> String {
        let row = |screen: &vt100::Screen| rows_of(screen).find(|row| row.contains(text));
        self.wait_until(text, |screen| row(screen).is_some());
        row(self.lock().parser.screen()).expect("the screen keeps the row it showed")
    }

    /// The screen's rows now, without their trailing blanks.
    pub fn rows(&self) -> Vec<String> {
        rows_of(self.lock().parser.screen()).collect()
    }

    /// The cursor's row and column, from 0.
    pub fn cursor(&self) -> (u16, u16) {
        self.lock().parser.screen().cursor_position()
    }

    /// Waits (within [`RUN_LIMIT`]) until `done` holds of the screen; returns its contents.
    /// Panics with them, saying it waited for `what`, if the run ends or the limit passes first.
    pub fn wait_until(&self, what: &str, done: impl Fn(&vt100::Screen) -> bool) -> String {
        let deadline = Instant::now() + RUN_LIMIT;
        let mut screen = self.lock();
        loop {
            let contents = screen.parser.screen().contents();
            if done(screen.parser.screen()) {
                return contents;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if screen.ended || left.is_zero() {
                drop(screen);
                panic!("testkit: the screen never showed {what:?}:\n{contents}");
            }
            screen = self
                .shared
                .1
                .wait_timeout(screen, left)
                .expect("screen lock")
                .0;
        }
    }

    /// The pid of mix-remote, e.g. to send it a signal.
    pub fn id(&self) -> u32 {
        self.child.process_id().expect("testkit: the run's pid")
    }

    /// Waits for the run to end (killing it and panicking past [`RUN_LIMIT`]) and for its last
    /// output to be on the screen; returns its exit code and, as `stdout`, the screen as it was
    /// left, rows joined with newlines (`stderr` is empty: both went to the screen).
    pub fn finish(mut self) -> Output {
        self.resume();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("testkit: wait for the run") {
                break status;
            }
            if started.elapsed() > RUN_LIMIT {
                panic!(
                    "testkit: mix-remote did not finish within {RUN_LIMIT:?}; the screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.finished = true;
        // Whatever the run printed last is read once the terminal has no writer left.
        let deadline = Instant::now() + CLEANUP_LIMIT;
        let mut screen = self.lock();
        while !screen.ended && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            screen = self
                .shared
                .1
                .wait_timeout(screen, left)
                .expect("screen lock")
                .0;
        }
        let ended = screen.ended;
        let contents = screen.parser.screen().contents();
        drop(screen);
        if ended && let Some(reader) = self.reader.take() {
            reader.join().expect("testkit: the pty reader");
        }
        let code = match status.signal() {
            None => Some(i32::try_from(status.exit_code()).unwrap_or(i32::MAX)),
            Some(_) => None,
        };
        Output::new(
            code,
            contents,
            String::new(),
            self.tmp.take().expect("finished once"),
        )
    }

    fn lock(&self) -> MutexGuard<'_, Screen> {
        self.shared.0.lock().expect("screen lock")
    }
}

impl Drop for PtyRun {
    fn drop(&mut self) {
        self.resume();
        if !self.finished {
            if let Some(pid) = self.child.process_id() {
                crate::procs::signal("KILL", &[pid]);
            }
            let _ = self.child.wait();
        }
    }
}
