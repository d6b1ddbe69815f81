//! The tool's stdin, read for the remote function only when it asks. Its first `BULK_AFTER` (8)
//! reads take a line each, so that nothing is read ahead that a later process of the
//! user's shell should get (a confirmation read from `yes |`, `(run; cat) < file`): on a terminal
//! in canonical mode one `read` (the line discipline returns one line), on a regular file a block
//! and an `lseek` back to just after the line, on anything else (pipes, sockets, a raw terminal)
//! byte by byte, as the shell's own `read` does. A function that reads on past them reads data:
//! from then on each read takes what a pipe holds, or a regular file's whole lines, up to
//! `MAX_PIECE` (64 KiB), as `mix run`'s own stdin does, and the relay serves the lines from it (one
//! round trip a block instead of one a line). Reads happen on a thread of their own.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Mutex;
use std::sync::mpsc;

/// The most read at once: a longer line goes to the function in pieces, which it joins.
const MAX_PIECE: usize = 64 * 1024;

/// How many reads take a line (or a piece of a long one) before reads take blocks (see the
/// module's documentation): enough for a function's prompts and confirmations.
const BULK_AFTER: usize = 8;

/// The terminal settings in force before a password read changed them, to restore on any exit.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

/// What one read gave.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// The bytes up to and including the newline (without one at the end of input, or for a
    /// piece of a long line), or a block of input once reads take blocks; `None` at the end of
    /// input.
    pub bytes: Option<Vec<u8>>,
    /// The line was typed on a terminal, which echoed it and its newline.
    pub from_terminal: bool,
}

impl Line {
    fn eof() -> Line {
        Line {
            bytes: None,
            from_terminal: false,
        }
    }
}

/// A read asked for: whether to echo, and who gets the line.
struct Ask {
    echo: bool,
    answer: Box<dyn FnOnce(Line) + Send>,
}

/// The reader of the tool's stdin; see the module's documentation.
pub struct Stdin {
    asks: mpsc::Sender<Ask>,
}

impl Stdin {
    /// Starts the reading thread, idle until asked. Without a usable fd 0, every read is the end
    /// of input.
    pub fn start() -> Stdin {
        let (asks, queue) = mpsc::channel::<Ask>();
        let file = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(File::from);
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut file = file;
                for (reads, ask) in queue.into_iter().enumerate() {
                    let line = match file.as_ref() {
                        Some(f) => read_input(f, ask.echo, reads >= BULK_AFTER),
                        None => Line::eof(),
                    };
                    if line.bytes.is_none() {
                        // Never read again: a terminal's Ctrl-D is an end the function has seen.
                        file = None;
                    }
                    (ask.answer)(line);
                }
            })
            .expect("spawning a thread");
        Stdin { asks }
    }

    /// Reads a line, or past the first `BULK_AFTER` reads a block of input (without echo on a
    /// terminal when `echo` is false), and hands it to `answer`, on the reading thread.
    pub fn ask(&self, echo: bool, answer: impl FnOnce(Line) + Send + 'static) {
        let _ = self.asks.send(Ask {
            echo,
            answer: Box::new(answer),
        });
    }
}

/// Puts the terminal settings back if a password read is still waiting: for the tool's exit.
pub fn restore_terminal() {
    // Also as a panic unwinds: a poisoned lock still holds the settings.
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(saved) = saved {
        // SAFETY: tcsetattr on fd 0 with settings tcgetattr returned for it.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
    }
}

/// How input arrives on `file`, decided at each read (a terminal's mode may change).
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// A terminal in canonical mode: the line discipline hands over one line per read.
    Canonical,
    /// A regular file: it can be read ahead and seeked back.
    Seekable,
    /// Anything else: only byte by byte reads nothing past the line.
    Stream,
}

fn kind(file: &File) -> Kind {
    let fd = file.as_raw_fd();
    // SAFETY: fstat, isatty and tcgetattr only write into the zeroed structures given.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG {
            return Kind::Seekable;
        }
        let mut t: libc::termios = std::mem::zeroed();
        if libc::isatty(fd) == 1
            && libc::tcgetattr(fd, &mut t) == 0
            && t.c_lflag & libc::ICANON != 0
        {
            return Kind::Canonical;
        }
    }
    Kind::Stream
}

/// Reads a line from `file`, or with `bulk` a block of input (see the module's documentation).
fn read_input(file: &File, echo: bool, bulk: bool) -> Line {
    let kind = kind(file);
    let mut buf = vec![0u8; MAX_PIECE];
    let bytes = match kind {
        Kind::Canonical if !echo => without_echo(file, |f| read_some(f, &mut buf)),
        Kind::Canonical => read_some(file, &mut buf),
        Kind::Seekable if bulk => {
            read_some(file, &mut buf).map(|n| rewind_after_lines(file, &buf[..n]))
        }
        Kind::Seekable => read_some(file, &mut buf).map(|n| rewind_after_line(file, &buf[..n])),
        Kind::Stream if bulk => read_some(file, &mut buf),
        Kind::Stream => read_bytewise(file, &mut buf),
    };
    match bytes {
        Some(0) | None => Line::eof(),
        Some(n) => Line {
            bytes: Some(buf[..n].to_vec()),
            from_terminal: kind == Kind::Canonical,
        },
    }
}

/// One `read` into `buf`: the number of bytes, 0 at the end of input, `None` on an error
/// (taken as the end).
fn read_some(file: &File, buf: &mut [u8]) -> Option<usize> {
    let mut reader = file;
    loop {
        match reader.read(buf) {
            Ok(n) => return Some(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_readable(file),
            Err(_) => return None,
        }
    }
}

/// Waits until a non-blocking fd 0 (someone set O_NONBLOCK on a shared terminal) has input.
fn wait_readable(file: &File) {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll, 1, -1) };
}

/// After a block read from a regular file: seeks back to just after the first line, and returns
/// that line's length (the whole block when it holds no newline).
fn rewind_after_line(file: &File, block: &[u8]) -> usize {
    rewind_to(file, block, block.iter().position(|&b| b == b'\n'))
}

/// After a block read from a regular file: seeks back to just after its last whole line, and
/// returns the length of its lines (the whole block when it holds no newline).
fn rewind_after_lines(file: &File, block: &[u8]) -> usize {
    rewind_to(file, block, block.iter().rposition(|&b| b == b'\n'))
}

/// Seeks back to just after the newline at `newline` in `block`, the bytes just read (nowhere
/// without one), and returns how many bytes of the block are kept.
fn rewind_to(file: &File, block: &[u8], newline: Option<usize>) -> usize {
    let Some(end) = newline else {
        return block.len();
    };
    let back = (block.len() - end - 1) as libc::off_t;
    if back > 0 {
        // SAFETY: lseek on our own fd.
        unsafe { libc::lseek(file.as_raw_fd(), -back, libc::SEEK_CUR) };
    }
    end + 1
}

/// Reads byte by byte up to and including a newline, or until `buf` is full.
fn read_bytewise(file: &File, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match read_some(file, &mut buf[n..=n]) {
            Some(1) => {
                n += 1;
                if buf[n - 1] == b'\n' {
                    break;
                }
            }
            _ if n > 0 => break,
            other => return other,
        }
    }
    Some(n)
}

/// Runs `read` with the terminal's echo off (the newline still echoed), then restores it.
fn without_echo<T>(file: &File, read: impl FnOnce(&File) -> T) -> T {
    let fd = file.as_raw_fd();
    // SAFETY: tcgetattr fills the zeroed structure; tcsetattr gets a modified copy of it.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(fd, &mut t) == 0).then_some(t)
    };
    if let Some(saved) = saved {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        *SAVED.lock().expect("terminal lock poisoned") = Some(saved);
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let result = read(file);
    restore_terminal();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn a_regular_file_is_left_just_after_the_line_read() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"first\nsecond\nthird").unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        assert_eq!(kind(&file), Kind::Seekable);
        let line = read_input(&file, true, false);
        assert_eq!(line.bytes.as_deref(), Some(&b"first\n"[..]));
        assert!(!line.from_terminal);
        assert_eq!(file.stream_position().unwrap(), 6);
        assert_eq!(
            read_input(&file, true, false).bytes.as_deref(),
            Some(&b"second\n"[..])
        );
        assert_eq!(
            read_input(&file, true, false).bytes.as_deref(),
            Some(&b"third"[..])
        );
        assert_eq!(read_input(&file, true, false), Line::eof());
    }

    #[test]
    fn a_pipe_is_read_no_further_than_the_line() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"yes\nfor the next one\n").unwrap();
        drop(writer);
        let mut file = File::from(std::os::fd::OwnedFd::from(reader));
        assert_eq!(kind(&file), Kind::Stream);
        assert_eq!(
            read_input(&file, true, false).bytes.as_deref(),
            Some(&b"yes\n"[..])
        );
        let mut rest = String::new();
        file.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "for the next one\n");
    }

    #[test]
    fn reads_that_take_blocks_take_a_files_whole_lines_and_what_a_pipe_holds() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"one\ntwo\nthree").unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let lines = read_input(&file, true, true);
        assert_eq!(lines.bytes.as_deref(), Some(&b"one\ntwo\n"[..]));
        assert_eq!(file.stream_position().unwrap(), 8);
        assert_eq!(
            read_input(&file, true, true).bytes.as_deref(),
            Some(&b"three"[..])
        );

        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"a\nb\nc").unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        assert_eq!(
            read_input(&pipe, true, true).bytes.as_deref(),
            Some(&b"a\nb\nc"[..])
        );
        drop(writer);
        assert_eq!(read_input(&pipe, true, true), Line::eof());
    }

    #[test]
    fn a_long_line_comes_in_pieces() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let long = vec![b'x'; MAX_PIECE + 10];
        let feeder = std::thread::spawn(move || {
            writer.write_all(&long).unwrap();
            writer.write_all(b"\n").unwrap();
        });
        let file = File::from(std::os::fd::OwnedFd::from(reader));
        assert_eq!(
            read_input(&file, true, false).bytes.map(|b| b.len()),
            Some(MAX_PIECE)
        );
        assert_eq!(
            read_input(&file, true, false).bytes.map(|b| b.len()),
            Some(11)
        );
        feeder.join().unwrap();
        assert_eq!(read_input(&file, true, false), Line::eof());
    }
}
