//! The bars' draw target: the terminal on stderr, the cursor kept clear of the terminal's echo
//! of ^C (see [`ParkedStderr`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressDrawTarget, TermLike};

/// Columns from the right edge where the cursor waits after a drawing: room for the terminal's
/// echo of ^C, twice (a second Ctrl-C may come before the display is closed).
const ECHO_ROOM: u16 = 8;

/// The draw target of the bars while they are on the screen, at most 20 drawings a second as
/// indicatif's own stderr target (unlike it, it neither checks `TERM` nor marks styles for
/// stderr: see `Screen::new` and `Reporter::new`); `has_bars` says whether the screen has bars.
pub fn target(has_bars: &Arc<AtomicBool>) -> ProgressDrawTarget {
    let stderr = ParkedStderr {
        term: console::Term::buffered_stderr(),
        cursor: Mutex::new(Cursor::Start),
        has_bars: Arc::clone(has_bars),
    };
    ProgressDrawTarget::term_like_with_hz(Box::new(stderr), 20)
}

/// The terminal on stderr, as the bars' draw target, kept clear of the terminal's echo of ^C,
/// which comes before the tool hears of the signal and may come between two drawings. indicatif
/// pads each line it draws to the terminal's width, so that the next starts on the row below,
/// and leaves the cursor there, at the right edge: from there the echo would wrap to a row of its
/// own below the bars, and a drawing made before the tool has heard of the signal (the painter's
/// tick, on a busy machine) would start a row too low and leave a stale copy of the first bar
/// behind. So:
/// - once a drawing is done while the screen has bars, the cursor is parked [`ECHO_ROOM`] columns
///   from the edge, on the same row: an echo stays on that row (over the bar's end, if it is that
///   long), and the next drawing or the bars' clearing wipes it;
/// - what indicatif writes next from a parked cursor without clearing rows first (lines above no
///   bar, when there are none to clear) starts on the row below, as it would from the edge, and
///   so does what is written after a flush that leaves the cursor parked with nothing drawn;
/// - a line written at the start of a row (after indicatif cleared or moved over the rows, or as
///   the bars come back, which the painter does on a fresh line only) starts with a carriage
///   return, which takes back an echo made there meanwhile (after output written above the bars
///   and before their redraw).
///
/// What the tool writes itself goes above the bars (`Screen::above`, or with them off the
/// screen), never from where the cursor waits. indicatif's drawing with `set_move_cursor` (a
/// bare carriage return after moving up) is not used, and would not be understood.
#[derive(Debug)]
struct ParkedStderr<T = console::Term> {
    term: T,
    cursor: Mutex<Cursor>,
    /// The screen has bars (`Screen::has_bars`).
    has_bars: Arc<AtomicBool>,
}

/// Where [`ParkedStderr`] left the cursor, as far as a line written next is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// At the start of a row.
    Start,
    /// At the end of a line just written, at the right edge; or moved within its row.
    AtEdge,
    /// Parked after a drawing, back from the edge.
    Parked,
}

impl<T: TermLike> ParkedStderr<T> {
    /// The terminal, ready for a line (`line`) or a move, after which the cursor is at `after`:
    /// a line starts on the row below a parked cursor, and at the start of its row from there.
    fn then(&self, line: bool, after: Cursor) -> std::io::Result<&T> {
        let mut cursor = self.cursor.lock().expect("cursor lock poisoned");
        match *cursor {
            Cursor::Parked if line => TermLike::write_str(&self.term, "\r\n")?,
            Cursor::Start if line => TermLike::write_str(&self.term, "\r")?,
            _ => {}
        }
        *cursor = after;
        Ok(&self.term)
    }
}

impl<T: TermLike> TermLike for ParkedStderr<T> {
    fn width(&self) -> u16 {
        TermLike::width(&self.term)
    }

    fn height(&self) -> u16 {
        TermLike::height(&self.term)
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        // indicatif moves by 0 rows to stay on the row it drew last (one or none): nothing moves.
        if n == 0 {
            return Ok(());
        }
        TermLike::move_cursor_up(self.then(false, Cursor::Start)?, n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        TermLike::move_cursor_down(self.then(false, Cursor::Start)?, n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        TermLike::move_cursor_right(self.then(false, Cursor::AtEdge)?, n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        TermLike::move_cursor_left(self.then(false, Cursor::AtEdge)?, n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        TermLike::write_line(self.then(true, Cursor::Start)?, s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        TermLike::write_str(self.then(true, Cursor::AtEdge)?, s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        TermLike::clear_line(self.then(false, Cursor::Start)?)
    }

    fn flush(&self) -> std::io::Result<()> {
        let mut cursor = self.cursor.lock().expect("cursor lock poisoned");
        match *cursor {
            // The width is asked only then: a terminal narrower than the room keeps the edge.
            Cursor::AtEdge if self.has_bars.load(Ordering::Relaxed) => {
                let room = TermLike::width(&self.term).saturating_sub(ECHO_ROOM);
                if room > 0 {
                    TermLike::write_str(&self.term, "\r")?;
                    TermLike::move_cursor_right(&self.term, usize::from(room))?;
                    *cursor = Cursor::Parked;
                }
            }
            // Nothing drawn over no rows (a clearing with none to clear): what the tool writes
            // next starts on the row below, as from the edge.
            Cursor::Parked => {
                TermLike::write_str(&self.term, "\r\n")?;
                *cursor = Cursor::Start;
            }
            _ => {}
        }
        TermLike::flush(&self.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

    const WIDTH: u16 = 40;

    /// A terminal emulator's screen, shared with what writes to it "directly" (the tool's own
    /// output, the terminal's echo).
    #[derive(Clone)]
    struct Screen(Arc<Mutex<vt100::Parser>>);

    impl std::fmt::Debug for Screen {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Screen")
        }
    }

    impl Screen {
        fn new() -> Screen {
            let size = |n| std::num::NonZeroU16::new(n).unwrap();
            Screen(Arc::new(Mutex::new(vt100::Parser::new(
                size(20),
                size(WIDTH),
                0,
            ))))
        }
        fn put(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().process(s.as_bytes());
            Ok(())
        }
        fn rows(&self) -> Vec<String> {
            let parser = self.0.lock().unwrap();
            let rows: Vec<String> = parser.screen().rows(0, WIDTH).collect();
            let used = rows
                .iter()
                .rposition(|r| !r.trim().is_empty())
                .map_or(0, |i| i + 1);
            rows[..used]
                .iter()
                .map(|r| r.trim_end().to_owned())
                .collect()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            WIDTH
        }
        fn height(&self) -> u16 {
            20
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}A"))
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}B"))
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}C"))
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}D"))
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.put(&format!("{s}\r\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.put(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.put("\r\x1b[2K")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// indicatif drawing on `screen` through the parked target (no rate limit), `has_bars` set.
    fn parked(screen: &Screen) -> MultiProgress {
        let target = ParkedStderr {
            term: screen.clone(),
            cursor: Mutex::new(Cursor::Start),
            has_bars: Arc::new(AtomicBool::new(true)),
        };
        MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(target)))
    }

    /// Two real indicatif bars on `screen` (see [`parked`]).
    fn bars(screen: &Screen) -> (MultiProgress, Vec<ProgressBar>) {
        let multi = parked(screen);
        let style = ProgressStyle::with_template("{prefix} {msg}").unwrap();
        let bars = ["a", "b"]
            .map(|name| {
                let bar = multi.add(ProgressBar::new(1).with_style(style.clone()));
                bar.set_prefix(name);
                bar.set_message("working");
                bar
            })
            .to_vec();
        (multi, bars)
    }

    #[test]
    fn an_echo_of_ctrl_c_between_drawings_leaves_no_bar_behind() {
        for echo in ["^C", "^C^C"] {
            let screen = Screen::new();
            screen.put("before\r\n").unwrap();
            let (multi, bars) = bars(&screen);
            assert_eq!(screen.rows(), ["before", "a working", "b working"]);
            // The terminal echoes at the cursor, then a tick redraws before the tool hears of
            // the signal, then the display is cleared.
            screen.put(echo).unwrap();
            bars[0].set_message("still working");
            assert_eq!(
                screen.rows(),
                ["before", "a still working", "b working"],
                "{echo}"
            );
            multi.clear().unwrap();
            assert_eq!(screen.rows(), ["before"], "{echo}");
        }
    }

    #[test]
    fn an_echo_after_output_above_the_bars_is_taken_back_by_their_redraw() {
        let screen = Screen::new();
        let (multi, _bars) = bars(&screen);
        multi
            .suspend(|| screen.put("output\r\n").and_then(|()| screen.put("^C")))
            .unwrap();
        assert_eq!(screen.rows(), ["output", "a working", "b working"]);
        multi.clear().unwrap();
        assert_eq!(screen.rows(), ["output"]);
    }

    #[test]
    fn a_bar_added_below_lines_drawn_alone_starts_on_the_next_row() {
        let screen = Screen::new();
        let multi = parked(&screen);
        multi.println("one").unwrap();
        multi.println("two").unwrap();
        let bar = multi.add(ProgressBar::new(1));
        bar.set_style(ProgressStyle::with_template("{msg}").unwrap());
        bar.set_message("bar");
        assert_eq!(screen.rows(), ["one", "two", "bar"]);
    }

    #[test]
    fn what_is_written_after_lines_drawn_alone_starts_on_the_next_row() {
        // The screen has a bar that is not drawn yet: a line printed above it is drawn alone and
        // the cursor parks on it; the tool's own next line must not land there.
        let screen = Screen::new();
        let multi = parked(&screen);
        multi.println("done").unwrap();
        multi.suspend(|| screen.put("result\r\n")).unwrap();
        assert_eq!(screen.rows(), ["done", "result"]);
    }
}
