//! A progress line for long generations: rows written and rows/s, on
//! standard error, redrawn at most every [`REDRAW_EVERY`].

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a terminal progress line is redrawn.
pub const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// Counts rows for one table and reports them.
pub struct Progress {
    label: String,
    rows: u64,
    started: Instant,
    drawn: Instant,
    terminal: bool,
    quiet: bool,
}

impl Progress {
    /// Start counting for `label`; `quiet` prints nothing.
    pub fn start(label: &str, quiet: bool) -> Self {
        let now = Instant::now();
        Self {
            label: label.to_string(),
            rows: 0,
            started: now,
            drawn: now,
            terminal: std::io::stderr().is_terminal(),
            quiet,
        }
    }

    /// Count `rows` more rows (redrawing the line on a terminal).
    pub fn add(&mut self, rows: usize) {
        self.rows += rows as u64;
        if self.terminal && !self.quiet && self.drawn.elapsed() >= REDRAW_EVERY {
            self.drawn = Instant::now();
            eprint!("\r{}", self.line());
            let _ = std::io::stderr().flush();
        }
    }

    /// Rows counted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Print the final line; returns the rows counted.
    pub fn finish(self) -> u64 {
        if !self.quiet {
            let prefix = if self.terminal { "\r" } else { "" };
            eprintln!("{prefix}{}", self.line());
        }
        self.rows
    }

    fn line(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "{:>10}: {:>12} rows  {:>12.0} rows/s  {:>7.1} s",
            self.label,
            self.rows,
            self.rows as f64 / seconds,
            seconds
        )
    }
}
