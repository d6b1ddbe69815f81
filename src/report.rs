//! What the user sees: one spinner per phase on stderr (only when stderr is a terminal and not
//! `-q`), remote output and the result on stdout, notes for `-v`, errors as one line.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shared by every stage of a run; cheap to call from any task.
pub struct Reporter {
    bars: MultiProgress,
    quiet: bool,
    verbose: bool,
}

/// A phase in progress: finish it with [`Phase::done`], or drop it to clear its spinner.
pub struct Phase {
    bars: MultiProgress,
    bar: ProgressBar,
    started: Instant,
}

impl Reporter {
    /// `quiet` hides progress and notes; `verbose` shows what the tool does.
    pub fn new(quiet: bool, verbose: bool) -> Reporter {
        // indicatif hides a stderr target by itself when stderr is not a terminal.
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Reporter {
            bars: MultiProgress::with_draw_target(target),
            quiet,
            verbose,
        }
    }

    /// Starts a phase with a spinner showing `message`.
    pub fn phase(&self, message: impl Into<String>) -> Phase {
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                .expect("static template"),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(80));
        Phase {
            bars: self.bars.clone(),
            bar,
            started: Instant::now(),
        }
    }

    /// Writes output of the remote function to stdout as it arrives.
    pub fn output(&self, bytes: &[u8]) {
        self.bars.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        });
    }

    /// A line the remote node printed outside our IO server (logger, stderr, boot messages).
    pub fn remote_line(&self, host: &str, line: &str) {
        if !self.quiet {
            self.bars.suspend(|| eprintln!("[{host}] {line}"));
        }
    }

    /// A note shown with `-v`.
    pub fn verbose(&self, note: &str) {
        if self.verbose {
            self.bars.suspend(|| eprintln!("mix-remote: {note}"));
        }
    }

    /// A line for work that ran in the background and took `took`, as [`Phase::done`] shows it.
    pub fn done(&self, summary: impl Into<String>, took: Duration) {
        let _ = self
            .bars
            .println(format!("✓ {} ({} ms)", summary.into(), took.as_millis()));
    }

    /// An error, always shown, as one line.
    pub fn error(&self, message: &str) {
        self.bars
            .suspend(|| eprintln!("mix-remote: error: {message}"));
    }
}

impl Phase {
    /// Marks the phase done, leaving `summary` and its duration on screen above the live bars.
    pub fn done(self, summary: impl Into<String>) {
        let ms = self.started.elapsed().as_millis();
        // A permanent line rather than a finished bar: output printed later cannot erase it.
        let _ = self.bars.println(format!("✓ {} ({ms} ms)", summary.into()));
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        self.bars.remove(&self.bar);
    }
}
