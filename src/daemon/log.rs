//! A tiny logger for the `log` facade: wall-clock time (RFC 3339, UTC, microseconds),
//! level, node name, message. Where a timeline needs the monotonic clock (the same clock
//! every namespace on a host shares, so lab timelines line up), the line carries it as
//! `at=<seconds>`: every event line, and the address changes of a takeover.
//!
//! In the foreground the lines go to stderr; a detached daemon sends the same lines to
//! syslog (`/dev/log`, RFC 3164 local form `<PRI>heartwire[PID]: line`, facility daemon).
//! Each line is one `write` (one datagram) so concurrent daemons' lines never interleave.
//! `-v` or `RUST_LOG=debug` enables debug; `-vv`/`trace` enables trace.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    node: String,
    level: LevelFilter,
    /// Connected to the syslog socket when detached.
    syslog: Option<UnixDatagram>,
}

static LOGGER: OnceLock<StderrLogger> = OnceLock::new();

/// Syslog facility `daemon` (3), shifted.
const FACILITY_DAEMON: u8 = 3 << 3;

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let wall = crate::ctl::events::rfc3339_us(heartwire_hal::clock::realtime_ns());
        let level = match r.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let line = format!("{wall} {level} {}: {}\n", self.node, r.args());
        match &self.syslog {
            None => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Some(sock) => {
                let severity = match r.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    Level::Info => 6,
                    Level::Debug | Level::Trace => 7,
                };
                let msg = format!(
                    "<{}>heartwire[{}]: {}",
                    FACILITY_DAEMON | severity,
                    std::process::id(),
                    line.trim_end()
                );
                // A full syslog queue drops the line rather than block the loop.
                let _ = sock.send(msg.as_bytes());
            }
        }
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

/// Installs the stderr logger once; later calls are ignored.
pub fn init(node: &str, level: LevelFilter) {
    install(node, level, None);
}

/// A datagram socket connected to the syslog socket at `path` (nonblocking), to check
/// before detaching and then log through.
pub fn syslog_socket(path: &Path) -> std::io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Installs the syslog logger once (see [`syslog_socket`]); later calls are ignored.
pub fn init_syslog(node: &str, level: LevelFilter, sock: UnixDatagram) {
    install(node, level, Some(sock));
}

fn install(node: &str, level: LevelFilter, syslog: Option<UnixDatagram>) {
    let logger = LOGGER.get_or_init(|| StderrLogger {
        node: node.to_owned(),
        level,
        syslog,
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
