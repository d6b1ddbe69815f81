//! A server's stderr, read on a thread of its own: kept as a log and handed out line by line.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

/// Lines of a server's stderr kept in its log.
const LOG_LINES: usize = 2000;

/// The last lines a server printed on stderr, filled by a reader thread.
pub(crate) type SharedLog = Arc<Mutex<VecDeque<String>>>;

/// Reads `stderr` line by line on a thread named `thread_name` for as long as it is open (the
/// server would block on a full pipe otherwise), keeping the last lines in the returned log and
/// sending each to the returned channel while anyone listens.
pub(crate) fn read_lines(
    stderr: impl Read + Send + 'static,
    thread_name: &str,
) -> (SharedLog, Receiver<String>) {
    let log: SharedLog = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, rx) = mpsc::channel();
    let kept = log.clone();
    thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                {
                    let mut log = kept.lock().unwrap_or_else(|e| e.into_inner());
                    if log.len() == LOG_LINES {
                        log.pop_front();
                    }
                    log.push_back(line.clone());
                }
                let _ = tx.send(line);
            }
        })
        .expect("cannot spawn a thread");
    (log, rx)
}

/// The log's lines joined by newlines.
pub(crate) fn joined(log: &Mutex<VecDeque<String>>) -> String {
    let lines = log.lock().unwrap_or_else(|e| e.into_inner());
    lines.iter().cloned().collect::<Vec<_>>().join("\n")
}
