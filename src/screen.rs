//! The terminal the progress display shares with the function's output, and the rule that output
//! and prompts always win: the bars (drawn on stderr by indicatif) are taken off the screen before
//! the function leaves a line open on stdout (dots, a prompt) or reads, and come back only once
//! its output is quiet on a fresh line. One ticker thread animates every bar, under the same lock
//! as the writes, so nothing is ever drawn in the middle of a line of output.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

/// How often the bars are animated.
const TICK: Duration = Duration::from_millis(80);
/// How long output must be quiet (on a fresh line) before the bars come back.
const QUIET: Duration = Duration::from_millis(250);

/// See the module's documentation.
pub struct Screen {
    bars: MultiProgress,
    /// The bars are drawn at all (stderr is a terminal, no `-q`, no `--json`).
    drawn: bool,
    /// stdout is a terminal, so the function's output shares the screen with the bars.
    shared: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The function's output on stdout ends without a newline.
    open_line: bool,
    /// A read is waiting for input, after its prompt.
    reading: bool,
    /// When output was last written.
    last_output: Option<Instant>,
    /// The bars are off the screen.
    hidden: bool,
    /// The display was closed for good (Ctrl-C).
    closed: bool,
    /// The bars the ticker animates, by id.
    bars: Vec<(u64, ProgressBar)>,
    /// The id of the next bar.
    next_id: u64,
}

impl Screen {
    /// The screen of `bars`, drawn when `drawn`; starts the ticker then.
    pub fn new(bars: MultiProgress, drawn: bool) -> Arc<Screen> {
        let drawn = drawn && std::io::stderr().is_terminal();
        let screen = Arc::new(Screen {
            bars,
            drawn,
            shared: std::io::stdout().is_terminal(),
            state: Mutex::new(State::default()),
        });
        if drawn {
            let weak = Arc::downgrade(&screen);
            std::thread::Builder::new()
                .name("ticker".into())
                .spawn(move || tick(weak))
                .expect("spawning a thread");
        }
        screen
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("screen lock poisoned")
    }

    /// Adds `bar` to the display, animated by the ticker; returns its id for [`Screen::remove`].
    pub fn add(&self, bar: ProgressBar) -> (u64, ProgressBar) {
        let mut state = self.state();
        let bar = self.bars.add(bar);
        let id = state.next_id;
        state.next_id += 1;
        state.bars.push((id, bar.clone()));
        (id, bar)
    }

    /// Removes the bar `id` from the display.
    pub fn remove(&self, id: u64) {
        let mut state = self.state();
        if let Some(at) = state.bars.iter().position(|(i, _)| *i == id) {
            let (_, bar) = state.bars.remove(at);
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }

    /// Runs `f`, which changes a bar or draws a line above them, while nothing else draws.
    pub fn drawing<R>(&self, f: impl FnOnce(&MultiProgress) -> R) -> R {
        let _state = self.state();
        f(&self.bars)
    }

    /// Writes `bytes` of the function's output to stdout (as it is, flushed): with the bars taken
    /// off first when it leaves a line open or a read waits, above the bars otherwise.
    pub fn output(&self, bytes: &[u8]) {
        let mut state = self.state();
        if !bytes.is_empty() && self.shared {
            state.open_line = !bytes.ends_with(b"\n");
        }
        state.last_output = Some(Instant::now());
        if state.open_line || state.reading {
            self.hide(&mut state);
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        };
        if state.hidden {
            write();
        } else {
            self.bars.suspend(write);
        }
    }

    /// Writes a prompt (as output) before a read: the bars stay off until the read is done.
    pub fn prompt(&self, bytes: &[u8]) {
        self.state().reading = self.shared;
        self.output(bytes);
    }

    /// The read is done; a terminal that echoed the line left the cursor on a fresh line.
    pub fn read_done(&self, echoed: bool) {
        let mut state = self.state();
        state.reading = false;
        if echoed {
            state.open_line = false;
        }
        state.last_output = Some(Instant::now());
    }

    /// Ends an open line of output on the terminal (never in a file or pipe, whose bytes stay the
    /// function's own) and brings the bars back: before a result or a phase's last line.
    pub fn close_line(&self) {
        let mut state = self.state();
        if state.open_line {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\n");
            let _ = out.flush();
            state.open_line = false;
        }
        state.reading = false;
        self.show(&mut state);
    }

    /// Runs `f`, which writes lines to stderr, with the bars out of its way.
    pub fn above(&self, f: impl FnOnce()) {
        let state = self.state();
        if state.hidden {
            f();
        } else {
            self.bars.suspend(f);
        }
    }

    /// Takes the bars off the screen for good (Ctrl-C), ending an open line of output.
    pub fn close(&self) {
        let mut state = self.state();
        if !state.hidden && self.drawn && !state.bars.is_empty() {
            // The bars end at the terminal's right edge, so the terminal's echo of ^C (if it made
            // one) wrapped to a line of its own below them. A space takes the cursor below them
            // either way; that line is cleared and the cursor goes back up to the bars' last line,
            // where clearing them starts.
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b" \r\x1b[K\x1b[1A");
            let _ = err.flush();
        }
        self.hide(&mut state);
        state.closed = true;
        if state.open_line {
            let _ = std::io::stdout().write_all(b"\n");
            let _ = std::io::stdout().flush();
            state.open_line = false;
        }
    }

    fn hide(&self, state: &mut State) {
        if !state.hidden && self.drawn {
            let _ = self.bars.clear();
            self.bars.set_draw_target(ProgressDrawTarget::hidden());
        }
        state.hidden = true;
    }

    fn show(&self, state: &mut State) {
        if state.hidden && !state.closed {
            if self.drawn {
                self.bars.set_draw_target(ProgressDrawTarget::stderr());
            }
            state.hidden = false;
        }
    }
}

/// Animates the bars while the screen exists; brings them back once output is quiet on a fresh
/// line and no read waits.
fn tick(screen: Weak<Screen>) {
    while let Some(screen) = screen.upgrade() {
        {
            let mut state = screen.state();
            let quiet = state.last_output.is_none_or(|t| t.elapsed() >= QUIET);
            if state.hidden && !state.open_line && !state.reading && quiet {
                screen.show(&mut state);
            }
            if !state.hidden {
                state.bars.iter().for_each(|(_, bar)| bar.tick());
            }
        }
        drop(screen);
        std::thread::sleep(TICK);
    }
}
