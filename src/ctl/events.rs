//! `heartwire events`: the live event stream.
//!
//! The client sends `events`; the daemon answers with one [`StreamHello`] line, then one
//! [`EventRecord`] JSON line per event for as long as the client stays connected, and a
//! final [`StreamHello`] with `end` set when it stops. A client that reads too slowly
//! loses events rather than slowing the daemon: its backlog is bounded, and the next
//! record that fits carries how many were lost (`lost_before`).
//!
//! A record is the daemon's event log line (`event=<name> at=<secs> key=value… (note)`)
//! taken apart, plus the wall-clock time, so `--json` readers need no parser of their own.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// The first and the last line of a stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamHello {
    /// Always `events`.
    pub stream: String,
    /// Cluster name.
    pub cluster: String,
    /// The node whose events these are.
    pub node: String,
    /// Set on the last line: why the stream ends (`stopped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRecord {
    /// Event name (README lists them).
    pub event: String,
    /// The node that logged it.
    pub node: String,
    /// When it was decided, CLOCK_MONOTONIC ns on that node.
    pub mono_ns: u64,
    /// The same instant on the wall clock (CLOCK_REALTIME), RFC 3339, µs, UTC.
    pub wall: String,
    /// The event's details (`peer`, `path`, `group`, `network`, …), as in the log line.
    pub fields: BTreeMap<String, String>,
    /// The log line's explanation in parentheses, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Events this client missed just before this one (it read too slowly).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost_before: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EventRecord {
    /// Takes a log line apart. `now_mono_ns` and `now_wall_ns` are one reading of both
    /// clocks, used to put the event's monotonic time on the wall clock. `None` when the
    /// line is not an event line.
    pub fn parse(line: &str, node: &str, now_mono_ns: u64, now_wall_ns: u64) -> Option<Self> {
        let (head, note) = match line.find(" (") {
            Some(i) if line.ends_with(')') => (&line[..i], Some(&line[i + 2..line.len() - 1])),
            _ => (line, None),
        };
        let mut words = head.split(' ');
        let event = words.next()?.strip_prefix("event=")?.to_owned();
        let mut mono_ns = now_mono_ns;
        let mut fields = BTreeMap::new();
        for w in words {
            let (k, v) = w.split_once('=')?;
            if k == "at" {
                mono_ns = parse_secs(v)?;
            } else {
                fields.insert(k.to_owned(), v.to_owned());
            }
        }
        let wall_ns = now_wall_ns.saturating_sub(now_mono_ns.saturating_sub(mono_ns));
        Some(EventRecord {
            event,
            node: node.to_owned(),
            mono_ns,
            wall: rfc3339_us(wall_ns),
            fields,
            note: note.map(str::to_owned),
            lost_before: 0,
        })
    }

    /// One line for a terminal: wall time, monotonic seconds, node, event, details.
    pub fn render(&self) -> String {
        let mut o = format!(
            "{} {}.{:06} {} {}",
            self.wall,
            self.mono_ns / 1_000_000_000,
            (self.mono_ns % 1_000_000_000) / 1000,
            self.node,
            self.event
        );
        for (k, v) in &self.fields {
            let _ = write!(o, " {k}={v}");
        }
        if let Some(n) = &self.note {
            let _ = write!(o, " ({n})");
        }
        if self.lost_before > 0 {
            let _ = write!(
                o,
                " [{} earlier event(s) lost: reader too slow]",
                self.lost_before
            );
        }
        o
    }
}

/// `SECS.NANOS` (the log's time format) → ns.
fn parse_secs(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = 10u64.pow(9 - u32::try_from(frac.len()).ok()?);
    secs.parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac.parse::<u64>().ok()? * scale)
}

/// CLOCK_REALTIME ns → `2026-11-22T10:00:00.123456Z`.
pub fn rfc3339_us(wall_ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(wall_ns);
    humantime::format_rfc3339_micros(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_become_records() {
        let r = EventRecord::parse(
            "event=network_down at=12.000500000 peer=b network=hb (the peer is alive on another path; no takeover)",
            "a",
            13_000_500_000,
            1_700_000_001_000_000_000,
        )
        .unwrap();
        assert_eq!(r.event, "network_down");
        assert_eq!(r.mono_ns, 12_000_500_000);
        assert_eq!(
            r.wall, "2023-11-14T22:13:20.000000Z",
            "one second before the reading"
        );
        assert_eq!(r.fields["peer"], "b");
        assert_eq!(r.fields["network"], "hb");
        assert_eq!(
            r.note.as_deref(),
            Some("the peer is alive on another path; no takeover")
        );
        assert_eq!(
            r.render(),
            "2023-11-14T22:13:20.000000Z 12.000500 a network_down network=hb peer=b \
             (the peer is alive on another path; no takeover)"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<EventRecord>(&json).unwrap(), r);
        assert!(!json.contains("lost_before"), "{json}");
    }

    #[test]
    fn non_event_lines_are_refused() {
        for bad in [
            "",
            "started: cluster lab",
            "event=x at=soon",
            "event=x at=1.5 peer",
            "event=x at=1.1234567890",
        ] {
            assert_eq!(EventRecord::parse(bad, "a", 0, 0), None, "{bad}");
        }
        assert_eq!(parse_secs("1.5"), Some(1_500_000_000));
        assert_eq!(parse_secs("7"), Some(7_000_000_000));
    }
}
