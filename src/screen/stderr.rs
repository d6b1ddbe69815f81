//! The bars' draw target: the terminal on stderr, the cursor kept clear of the terminal's echo
//! of ^C (see [`Stderr`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressDrawTarget, TermLike};

/// Columns from the right edge where the cursor waits after a drawing: room for the terminal's
/// echo of ^C.
const ECHO_ROOM: u16 = 3;

/// The draw target of the bars while they are on the screen (at most 20 drawings a second, as
/// indicatif's own stderr target); `barred` says whether there are bars (see [`Stderr`]).
pub fn target(barred: &Arc<AtomicBool>) -> ProgressDrawTarget {
    let stderr = Stderr {
        term: console::Term::buffered_stderr(),
        cursor: Mutex::new(Cursor::Start),
        barred: Arc::clone(barred),
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
/// - once a drawing that ends with a bar is done, the cursor is parked [`ECHO_ROOM`] columns from
///   the edge, on the same row, blank there: an echo stays on that row, and the next drawing or
///   the bars' clearing wipes it (after lines printed above no bar, the cursor stays at the edge:
///   what comes next, from indicatif or not, starts on the row below);
/// - a drawing that starts at the start of a row (the bars cleared, output written above them)
///   starts with a carriage return, which takes back an echo made there meanwhile.
#[derive(Debug)]
struct Stderr<T = console::Term> {
    term: T,
    cursor: Mutex<Cursor>,
    /// There are bars, so a drawing ends with one (the screen's).
    barred: Arc<AtomicBool>,
}

/// Where [`Stderr`] left the cursor, as far as a line written next is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// At the start of a row: the rows were cleared, or the bars just came back (on a fresh
    /// line, see `Screen::show`).
    Start,
    /// At the end of a line just written, at the right edge.
    AtEdge,
    /// Parked after a drawing, back from the edge.
    Parked,
}

impl<T: TermLike> Stderr<T> {
    /// The terminal, ready for a line (`line`) or a move, after which the cursor is at `after`:
    /// a line starts on the row below a parked cursor, as it would from the edge, and at the
    /// start of its row from there.
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

impl<T: TermLike> TermLike for Stderr<T> {
    fn width(&self) -> u16 {
        TermLike::width(&self.term)
    }

    fn height(&self) -> u16 {
        TermLike::height(&self.term)
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        // indicatif moves by 0 rows to stay put (no bars before): that changes nothing.
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
        let room = TermLike::width(&self.term).saturating_sub(ECHO_ROOM);
        if *cursor == Cursor::AtEdge && self.barred.load(Ordering::Relaxed) && room > 0 {
            TermLike::write_str(&self.term, "\r")?;
            TermLike::move_cursor_right(&self.term, usize::from(room))?;
            *cursor = Cursor::Parked;
        }
        TermLike::flush(&self.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal that records what it is asked, as the escape sequences would read.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<String>);

    impl Recorder {
        fn push(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
    }

    impl TermLike for Recorder {
        fn width(&self) -> u16 {
            20
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("<up {n}>"))
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("<down {n}>"))
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("<right {n}>"))
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.push(&format!("<left {n}>"))
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.push("<clear>")
        }
        fn flush(&self) -> std::io::Result<()> {
            self.push("|")
        }
    }

    fn stderr(barred: bool) -> Stderr<Recorder> {
        Stderr {
            term: Recorder::default(),
            cursor: Mutex::new(Cursor::Start),
            barred: Arc::new(AtomicBool::new(barred)),
        }
    }

    /// What indicatif asks of its target to draw `lines` over `before` lines drawn last time.
    fn draw(t: &impl TermLike, before: usize, lines: &[&str]) {
        t.move_cursor_up(before.saturating_sub(1)).unwrap();
        for i in 0..before {
            t.clear_line().unwrap();
            if i + 1 != before {
                t.move_cursor_down(1).unwrap();
            }
        }
        t.move_cursor_up(before.saturating_sub(1)).unwrap();
        for line in lines {
            t.write_str(line).unwrap();
            t.write_str(&" ".repeat(20 - line.len())).unwrap();
        }
        t.flush().unwrap();
    }

    fn taken(t: &Stderr<Recorder>) -> String {
        std::mem::take(&mut *t.term.0.lock().unwrap())
    }

    #[test]
    fn the_cursor_waits_on_the_last_bar_with_room_for_an_echo_and_lines_start_clean() {
        let t = stderr(true);
        // On a fresh row (or one the bars were cleared from): a carriage return first, which
        // takes back an echo of ^C made there; parked 3 columns from the edge after the drawing.
        draw(&t, 0, &["a", "b"]);
        let pad = |n: usize| " ".repeat(n);
        assert_eq!(
            taken(&t),
            format!("\ra{}b{}\r<right 17>|", pad(19), pad(19))
        );
        // The next drawing clears the rows from the parked one (and an echo on it) upwards.
        draw(&t, 2, &["a", "b"]);
        assert_eq!(
            taken(&t),
            format!(
                "<up 1><clear><down 1><clear><up 1>\ra{}b{}\r<right 17>|",
                pad(19),
                pad(19)
            )
        );
        // With no bar before, a line starts on the row below the parked cursor, as from the edge.
        draw(&t, 0, &["c"]);
        assert_eq!(taken(&t), format!("\r\nc{}\r<right 17>|", pad(19)));
    }

    #[test]
    fn lines_above_no_bar_leave_the_cursor_at_the_edge() {
        let t = stderr(false);
        draw(&t, 0, &["done"]);
        assert_eq!(taken(&t), format!("\rdone{}|", " ".repeat(16)));
        draw(&t, 0, &["next"]);
        assert_eq!(taken(&t), format!("next{}|", " ".repeat(16)));
    }
}
