//! A tiny logger for the `log` facade: wall-clock time (RFC 3339, UTC, microseconds),
//! level, node name, message. Where a timeline needs the monotonic clock (the same clock
//! every namespace on a host shares, so lab timelines line up), the line carries it as
//! `at=<seconds>`: every event line, and the address changes of a takeover.
//!
//! In the foreground the lines go to stderr; a detached daemon sends the same lines to
//! syslog (`/dev/log`, RFC 3164 local form `<PRI>heartwire[PID]: line`, facility daemon).
//! Each line is one `write` (one datagram) so concurrent daemons' lines never interleave.
//! `-v` or `RUST_LOG=debug` enables debug; `-vv`/`trace` enables trace.
//!
//! **The journal.** When stderr is the journal (systemd runs the unit's `--foreground`
//! daemon with `JOURNAL_STREAM` naming that stream, as sd-journal checks it), or a
//! detached daemon without `--log-socket` finds journald's socket, each line goes to
//! journald's native protocol instead, with fields (see [`journal_entry`]): `PRIORITY`,
//! `SYSLOG_IDENTIFIER=heartwire`, `HW_NODE`, `CODE_FILE`/`CODE_LINE`, and for an event line
//! (`event=NAME key=value …`) `MESSAGE_ID` (one per event kind: [`message_id`]) and one
//! `HW_KEY=value` field per `key=value` of the line (`HW_EVENT`, `HW_AT`, `HW_GROUP`,
//! `HW_PEER`, …), so `journalctl MESSAGE_ID=… ` or `journalctl HW_GROUP=web` select them.
//! A line the journal does not take (it is gone) goes to stderr.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    node: String,
    level: LevelFilter,
    sink: Sink,
}

/// Where the lines go.
enum Sink {
    Stderr,
    /// A connected syslog socket (detached).
    Syslog(UnixDatagram),
    /// A connected journald native socket.
    Journal(UnixDatagram),
}

/// journald's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

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
        let severity = match r.level() {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
        let line = format!("{wall} {level} {}: {}\n", self.node, r.args());
        match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::Syslog(sock) => {
                let msg = format!(
                    "<{}>heartwire[{}]: {}",
                    FACILITY_DAEMON | severity,
                    std::process::id(),
                    line.trim_end()
                );
                // A full syslog queue drops the line rather than block the loop.
                let _ = sock.send(msg.as_bytes());
            }
            Sink::Journal(sock) => {
                let message = r.args().to_string();
                let code = (r.file().unwrap_or("?"), r.line().unwrap_or(0));
                let entry = journal_entry(&self.node, severity, &message, code);
                match sock.send(&entry) {
                    // A full queue drops the line rather than block the loop, as syslog.
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        let _ = std::io::stderr().lock().write_all(line.as_bytes());
                    }
                }
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

/// Installs the foreground logger once (later calls are ignored): stderr, or the
/// journal when stderr is the journal stream named by `JOURNAL_STREAM`.
pub fn init(node: &str, level: LevelFilter) {
    let sink = match stderr_is_journal().then(|| datagram_socket(Path::new(JOURNAL_SOCKET))) {
        Some(Ok(sock)) => Sink::Journal(sock),
        _ => Sink::Stderr,
    };
    install(node, level, sink);
}

/// Whether stderr is the journal stream systemd named in `JOURNAL_STREAM` (`DEV:INODE`
/// of the stream's socket): then a daemon logs to the journal natively (sd-journal's rule:
/// a child that inherited the variable but not the stream does not).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(named) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| named.to_str() == Some(format!("{}:{}", m.dev(), m.ino()).as_str()))
}

/// The native journal protocol's datagram for one line: `KEY=value` lines, a value with a
/// newline in the binary form (`KEY`, newline, its length as 64-bit little-endian, the
/// value, newline). `message` is the line without time, level and node (the journal keeps
/// those as fields); `code` is the source file and line.
pub fn journal_entry(node: &str, priority: u8, message: &str, code: (&str, u32)) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 160);
    let mut field = |key: &str, value: &str| {
        out.extend_from_slice(key.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    };
    field("MESSAGE", message);
    field("PRIORITY", &priority.to_string());
    field("SYSLOG_IDENTIFIER", "heartwire");
    field("SYSLOG_FACILITY", "3");
    field("HW_NODE", node);
    field("CODE_FILE", code.0);
    field("CODE_LINE", &code.1.to_string());
    if let Some(event) = message.strip_prefix("event=") {
        let name = event.split(' ').next().unwrap_or_default();
        field("MESSAGE_ID", &message_id(name));
        // `key=value` words up to the first explanation in parentheses.
        for word in message.split(' ').take_while(|w| !w.starts_with('(')) {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let ok = !key.is_empty()
                && key.len() <= 61
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if ok {
                field(&format!("HW_{}", key.to_ascii_uppercase()), value);
            }
        }
    }
    out
}

/// The journal's `MESSAGE_ID` of event kind `name` (its `event=` word): a fixed 64-bit
/// prefix of heartwire's and the FNV-1a hash of the name, 32 hex digits. Stable across
/// releases, so `journalctl MESSAGE_ID=…` in an operator's scripts keeps working; the
/// README lists the ids of every event.
pub fn message_id(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("d5a1e3b0c2f64e1c{h:016x}")
}

/// A datagram socket connected to the syslog or journald socket at `path` (nonblocking),
/// to check before detaching and then log through.
pub fn datagram_socket(path: &Path) -> std::io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Installs the syslog logger once (see [`datagram_socket`]); later calls are ignored.
pub fn init_syslog(node: &str, level: LevelFilter, sock: UnixDatagram) {
    install(node, level, Sink::Syslog(sock));
}

/// Installs the journal logger once (`sock`: [`datagram_socket`] of [`JOURNAL_SOCKET`]);
/// later calls are ignored.
pub fn init_journal(node: &str, level: LevelFilter, sock: UnixDatagram) {
    install(node, level, Sink::Journal(sock));
}

fn install(node: &str, level: LevelFilter, sink: Sink) {
    let logger = LOGGER.get_or_init(|| StderrLogger {
        node: node.to_owned(),
        level,
        sink,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An event line becomes MESSAGE_ID and one HW_ field per `key=value` before the
    /// explanation; a value with a newline takes the binary form; other lines get none.
    #[test]
    fn journal_entries_carry_the_event_as_fields() {
        let e = journal_entry(
            "a",
            6,
            "event=node_down at=12.5 peer=b last_heard=12.1 (no frame: a=b is prose)",
            ("src/x.rs", 7),
        );
        let text = String::from_utf8(e).unwrap();
        for f in [
            "MESSAGE=event=node_down at=12.5 peer=b last_heard=12.1 (no frame: a=b is prose)\n",
            "PRIORITY=6\n",
            "SYSLOG_IDENTIFIER=heartwire\n",
            "HW_NODE=a\n",
            "CODE_FILE=src/x.rs\nCODE_LINE=7\n",
            "HW_EVENT=node_down\nHW_AT=12.5\nHW_PEER=b\nHW_LAST_HEARD=12.1\n",
        ] {
            assert!(text.contains(f), "{f:?} not in {text:?}");
        }
        assert!(text.contains(&format!("MESSAGE_ID={}\n", message_id("node_down"))));
        assert!(!text.contains("HW_A="), "prose after ( is no field");

        let e = journal_entry("a", 3, "two\nlines", ("f", 1));
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert!(e.starts_with(&want), "{e:?}");
        assert!(!String::from_utf8_lossy(&e).contains("MESSAGE_ID"));
    }

    /// MESSAGE_IDs are 128-bit ids in hex, distinct per event and stable across releases
    /// (operators select by them).
    #[test]
    fn message_ids_are_stable() {
        assert_ne!(message_id("node_down"), message_id("node_up"));
        assert_eq!(message_id("node_down").len(), 32);
        assert_eq!(
            message_id("group_online"),
            "d5a1e3b0c2f64e1c".to_owned() + &message_id("group_online")[16..]
        );
        assert_eq!(
            message_id("node_down"),
            "d5a1e3b0c2f64e1c581feabc5062fd5e",
            "changed: operators' filters break"
        );
    }
}

#[cfg(test)]
mod readme {
    /// The README's MESSAGE_ID table is what the daemon sends, for every event it lists.
    #[test]
    fn the_readme_lists_each_event_s_message_id() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("| event | MESSAGE_ID |")
            .nth(1)
            .expect("README: the journal's MESSAGE_ID table");
        let mut rows = 0;
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('`').collect();
            assert_eq!(super::message_id(cells[1]), cells[3], "README row {row}");
            rows += 1;
        }
        for name in [
            "node_down",
            "group_online",
            "group_fatal",
            "adapter_down",
            "offer_settled",
        ] {
            assert!(
                table.contains(&format!("| `{name}` |")),
                "{name} not in the table"
            );
        }
        assert!(rows >= 30, "{rows} rows");
    }
}
