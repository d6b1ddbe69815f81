//! What the user sees: one spinner per phase on stderr (only when stderr is a terminal and not
//! `-q`), remote output and the result on stdout, notes for `-v`, errors as one line. With several
//! hosts, one progress bar per host and every line prefixed with its host; with `--json`, events
//! on stdout instead (see `events.rs`) and no bars.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{self, Event, Stage, Status};

/// Shared by every stage of a run; cheap to call from any task. [`Reporter::for_host`] gives the
/// view of one host.
pub struct Reporter {
    shared: Arc<Shared>,
    host: Option<HostScope>,
}

struct Shared {
    bars: MultiProgress,
    quiet: bool,
    verbose: bool,
    json: bool,
    /// Where the lines remote nodes print outside the relay go instead of stderr, once set
    /// (`iex`'s line editor prints them above the line being edited).
    remote_lines: OnceLock<RemoteLines>,
}

/// A writer of the lines remote nodes print outside the relay.
type RemoteLines = Box<dyn Fn(&str) + Send + Sync>;

/// The host a reporter speaks for.
struct HostScope {
    name: String,
    /// Several hosts: prefix lines with the name, one bar per host.
    prefixed: bool,
    /// The host's bar (several hosts, human output only).
    bar: Option<ProgressBar>,
    /// Output received after the last newline, held back until the line is complete.
    partial: Mutex<Vec<u8>>,
}

/// A phase in progress: finish it with [`Phase::done`], or drop it to clear its spinner.
pub struct Phase {
    shared: Arc<Shared>,
    host: Option<String>,
    stage: Stage,
    bar: PhaseBar,
    started: Instant,
}

enum PhaseBar {
    /// A spinner of its own, removed when the phase ends.
    Own(ProgressBar),
    /// The host's bar, advanced when the phase is done.
    Host(ProgressBar),
}

impl Reporter {
    /// `quiet` hides progress and notes; `verbose` shows what the tool does; `json` writes
    /// events on stdout instead of human output, and no bars.
    pub fn new(quiet: bool, verbose: bool, json: bool) -> Reporter {
        // indicatif hides a stderr target by itself when stderr is not a terminal.
        let target = if quiet || json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Reporter {
            shared: Arc::new(Shared {
                bars: MultiProgress::with_draw_target(target),
                quiet,
                verbose,
                json,
                remote_lines: OnceLock::new(),
            }),
            host: None,
        }
    }

    /// The view of host `name`. With `prefixed` (several hosts), its lines carry its name and it
    /// gets a bar of its own, advanced by each of its `steps` phases.
    pub fn for_host(&self, name: &str, prefixed: bool, steps: u64) -> Reporter {
        let bar = (prefixed && !self.shared.json).then(|| {
            let bar = self.shared.bars.add(ProgressBar::new(steps));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:.bold} [{bar:10.cyan/dim}] {msg} {elapsed:.dim}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_owned());
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(80));
            bar
        });
        Reporter {
            shared: Arc::clone(&self.shared),
            host: Some(HostScope {
                name: name.to_owned(),
                prefixed,
                bar,
                partial: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Whether events go to stdout instead of human output.
    pub fn json(&self) -> bool {
        self.shared.json
    }

    /// Writes `event` on stdout with `--json`; nothing otherwise.
    pub fn event(&self, event: Event) {
        if self.shared.json {
            events::emit(&event);
        }
    }

    fn host_name(&self) -> Option<String> {
        self.host.as_ref().map(|h| h.name.clone())
    }

    fn prefix(&self) -> String {
        match &self.host {
            Some(h) if h.prefixed => format!("[{}] ", h.name),
            _ => String::new(),
        }
    }

    /// Starts a phase showing `message`: a spinner of its own, or the host's bar.
    pub fn phase(&self, stage: Stage, message: impl Into<String>) -> Phase {
        let message = message.into();
        self.event(Event::PhaseStarted {
            host: self.host_name(),
            phase: stage,
            message: message.clone(),
        });
        let bar = match self.host.as_ref().and_then(|h| h.bar.as_ref()) {
            Some(bar) => {
                bar.set_message(message);
                PhaseBar::Host(bar.clone())
            }
            None => {
                let bar = self.shared.bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                        .expect("static template"),
                );
                bar.set_message(message);
                bar.enable_steady_tick(Duration::from_millis(80));
                PhaseBar::Own(bar)
            }
        };
        Phase {
            shared: Arc::clone(&self.shared),
            host: self.host_name(),
            stage,
            bar,
            started: Instant::now(),
        }
    }

    /// Writes output of the remote function as it arrives: as is for one host, line by line with
    /// the host's name for several, as `output` events with `--json`.
    pub fn output(&self, bytes: &[u8]) {
        let Some(host) = self
            .host
            .as_ref()
            .filter(|h| h.prefixed || self.shared.json)
        else {
            self.bars_suspended(|| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes);
                let _ = out.flush();
            });
            return;
        };
        let mut partial = host.partial.lock().expect("output lock poisoned");
        partial.extend_from_slice(bytes);
        let Some(last) = partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = partial.drain(..=last).collect();
        drop(partial);
        let lines: Vec<String> = complete[..last]
            .split(|&b| b == b'\n')
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        self.output_lines(&lines);
    }

    /// Complete lines of output, without their newlines: events with `--json`, else prefixed
    /// with the host and written at once.
    fn output_lines(&self, lines: &[String]) {
        if self.shared.json {
            for text in lines {
                self.event(Event::Output {
                    host: self.host_name().unwrap_or_default(),
                    text: text.clone(),
                });
            }
            return;
        }
        let prefix = self.prefix();
        let text: String = lines.iter().map(|l| format!("{prefix}{l}\n")).collect();
        self.bars_suspended(|| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        });
    }

    /// A prompt the function shows before it reads, after all its earlier output: written as
    /// output; with `--json`, sent at once as an `output` event, so that a consumer sees it
    /// before the read.
    pub fn prompt(&self, bytes: &[u8]) {
        self.output(bytes);
        if self.shared.json {
            self.flush_partial();
        }
    }

    /// Writes output received after the last newline as a line of its own.
    fn flush_partial(&self) {
        let Some(host) = &self.host else { return };
        let rest: Vec<u8> =
            std::mem::take(&mut *host.partial.lock().expect("output lock poisoned"));
        if !rest.is_empty() {
            self.output_lines(&[String::from_utf8_lossy(&rest).into_owned()]);
        }
    }

    /// Ends the host's view: writes a last line of output that had no newline, removes its bar.
    pub fn end_host(&self) {
        let Some(host) = &self.host else { return };
        self.flush_partial();
        if let Some(bar) = &host.bar {
            bar.finish_and_clear();
            self.shared.bars.remove(bar);
        }
    }

    /// A line the remote node printed outside the relay (logger, stderr, boot messages).
    pub fn remote_line(&self, host: &str, line: &str) {
        if self.shared.json {
            self.event(Event::Log {
                host: host.to_owned(),
                text: line.to_owned(),
            });
        } else if !self.shared.quiet {
            match self.shared.remote_lines.get() {
                Some(write) => write(&format!("[{host}] {line}")),
                None => self.bars_suspended(|| eprintln!("[{host}] {line}")),
            }
        }
    }

    /// From now on, the lines remote nodes print outside the relay (with their `[host]`) go to
    /// `write` instead of stderr; only the first call counts.
    pub fn divert_remote_lines(&self, write: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.shared.remote_lines.set(Box::new(write));
    }

    /// A note shown with `-v`.
    pub fn verbose(&self, note: &str) {
        if self.shared.verbose {
            let prefix = self.prefix();
            self.bars_suspended(|| eprintln!("mix-remote: {prefix}{note}"));
        }
    }

    /// An error, always shown on stderr as one line; with `--json` also an `error` event.
    pub fn error(&self, message: &str) {
        self.event(Event::Error {
            host: self.host_name(),
            message: message.to_owned(),
        });
        let prefix = self.prefix();
        self.bars_suspended(|| eprintln!("mix-remote: error: {prefix}{message}"));
    }

    /// A warning: shown on stderr unless `-q`; with `--json` a `warning` event instead.
    pub fn warning(&self, message: &str) {
        if self.shared.json {
            self.event(Event::Warning {
                host: self.host_name(),
                message: message.to_owned(),
            });
        } else if !self.shared.quiet {
            let prefix = self.prefix();
            self.bars_suspended(|| eprintln!("mix-remote: warning: {prefix}{message}"));
        }
    }

    /// Advice after a failure, always shown on stderr as one line (with `--json` too, but not as
    /// an event: it is for people).
    pub fn hint(&self, text: &str) {
        let prefix = self.prefix();
        self.bars_suspended(|| eprintln!("mix-remote: {prefix}hint: {text}"));
    }

    /// The end of the call on this host: the value it returned on stdout, or what it raised on
    /// stderr. `ok` says whether `--expect` accepted it.
    pub fn result(&self, entry: &str, status: Status, value: &str, ok: bool) {
        if self.shared.json {
            self.event(Event::Result {
                host: self.host_name().unwrap_or_default(),
                status,
                value: value.to_owned(),
                ok,
            });
            return;
        }
        let prefix = self.prefix();
        let prefixed =
            |text: &str| -> String { text.lines().map(|l| format!("{prefix}{l}\n")).collect() };
        match status {
            Status::Returned => {
                let text = prefixed(value);
                self.bars_suspended(|| {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                });
            }
            Status::Raised => {
                let host = self.host_name().unwrap_or_default();
                self.bars_suspended(|| {
                    eprintln!("mix-remote: error: {prefix}{entry} raised on {host}:");
                    eprint!("{}", prefixed(value));
                });
            }
        }
    }

    /// A table on stderr (not with `-q` or `--json`), e.g. the summary of several hosts.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        if !self.shared.quiet && !self.shared.json {
            let text = table(headers, rows);
            self.bars_suspended(|| eprint!("{text}"));
        }
    }

    fn bars_suspended(&self, f: impl FnOnce()) {
        self.shared.bars.suspend(f);
    }
}

impl Phase {
    /// Marks the phase done: leaves `summary` and its duration on screen above the live bars
    /// (one host), or advances the host's bar (several hosts).
    pub fn done(self, summary: impl Into<String>) {
        let ms = self.started.elapsed().as_millis();
        let summary = summary.into();
        if self.shared.json {
            events::emit(&Event::PhaseFinished {
                host: self.host.clone(),
                phase: self.stage,
                message: summary,
                ms: ms as u64,
            });
            return;
        }
        match &self.bar {
            // A permanent line rather than a finished bar: output printed later cannot erase it.
            PhaseBar::Own(_) => drop(self.shared.bars.println(format!("✓ {summary} ({ms} ms)"))),
            PhaseBar::Host(bar) => bar.inc(1),
        }
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let PhaseBar::Own(bar) = &self.bar {
            bar.finish_and_clear();
            self.shared.bars.remove(bar);
        }
    }
}

/// `rows` under `headers`, columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `text` cut to `max` characters, with an ellipsis when cut, on one line.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line = text.lines().next().unwrap_or_default();
    let cut = one_line != text;
    if one_line.chars().count() <= max && !cut {
        return one_line.to_owned();
    }
    let kept: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_to_their_widest_cell() {
        let rows = vec![
            vec!["web-1".into(), "returned :ok".into(), "1.2 s".into()],
            vec!["db".into(), "error: ssh failed".into(), "30.0 s".into()],
        ];
        assert_eq!(
            table(&["HOST", "RESULT", "TIME"], &rows),
            "HOST   RESULT             TIME\n\
             web-1  returned :ok       1.2 s\n\
             db     error: ssh failed  30.0 s\n"
        );
    }

    #[test]
    fn shortened_text_is_one_line() {
        assert_eq!(shorten(":ok", 10), ":ok");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
        assert_eq!(
            shorten("** (RuntimeError) x\n  stack", 40),
            "** (RuntimeError) x…"
        );
    }
}
