//! A tiny stderr logger for the `log` facade: CLOCK_MONOTONIC seconds (the same clock every
//! namespace on a host shares, so lab timelines line up), level, node name, message.
//!
//! Lines are written with one `write` each so concurrent daemons' lines never interleave
//! mid-line. `-v` or `RUST_LOG=debug` enables debug; `-vv`/`trace` enables trace.

use std::io::Write;
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    node: String,
    level: LevelFilter,
}

static LOGGER: OnceLock<StderrLogger> = OnceLock::new();

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let ns = heartwire_hal::clock::monotonic_ns();
        let level = match r.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let line = format!(
            "{}.{:09} {level} {}: {}\n",
            ns / 1_000_000_000,
            ns % 1_000_000_000,
            self.node,
            r.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// The level from `-v` count, overridden by `RUST_LOG` (error|warn|info|debug|trace).
pub fn level(verbose: u8) -> LevelFilter {
    if let Ok(v) = std::env::var("RUST_LOG") {
        if let Ok(l) = v.trim().parse::<LevelFilter>() {
            return l;
        }
    }
    match verbose {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Installs the logger once; later calls are ignored.
pub fn init(node: &str, level: LevelFilter) {
    let logger = LOGGER.get_or_init(|| StderrLogger {
        node: node.to_owned(),
        level,
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Formats a CLOCK_MONOTONIC ns value as `s.nnnnnnnnn`.
pub fn secs(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Lets one message through per `period_ns`, counting the rest (STYLE §9: anything a peer
/// can trigger is rate limited).
#[derive(Debug, Default)]
pub struct RateLimit {
    last_ns: Option<u64>,
    suppressed: u64,
}

impl RateLimit {
    /// `Some(n)` if a message may go out now, `n` being how many were suppressed since.
    pub fn allow(&mut self, now_ns: u64, period_ns: u64) -> Option<u64> {
        match self.last_ns {
            Some(last) if now_ns.saturating_sub(last) < period_ns => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_ns = Some(now_ns);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}
