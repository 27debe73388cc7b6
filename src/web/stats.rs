//! What `heartwire-web` learns from the event stream: counters and histograms that the
//! status report does not carry, and the last events for the page.
//!
//! They count from when the web process started following the node's events (as any
//! exporter's do; Prometheus's `rate()` and `increase()` handle the reset when it
//! restarts). Events missed by a slow reader are counted too (`lost_before`).

use std::collections::{BTreeMap, VecDeque};

use crate::ctl::events::EventRecord;

/// How many events the page lists.
pub const RECENT: usize = 50;

/// A group's move is counted as a failover when it starts acquiring within this many
/// seconds of a node's loss.
const FAILOVER_WINDOW_S: f64 = 10.0;

/// Bucket bounds (seconds) of every duration histogram: from the 100 µs profile's
/// detection to the 30 s of a slow application start.
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0, 30.0,
];

/// A cumulative histogram over [`BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each bound (not yet cumulative).
    pub counts: [u64; BUCKETS.len()],
    /// Observations above every bound.
    pub over: u64,
    /// Sum of the observations (seconds).
    pub sum: f64,
}

impl Histogram {
    /// Records one duration in seconds (negative ones, from clock readings of different
    /// events that raced, count as zero).
    pub fn observe(&mut self, secs: f64) {
        let secs = secs.max(0.0);
        self.sum += secs;
        match BUCKETS.iter().position(|b| secs <= *b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.over
    }
}

/// Counters and histograms built from one node's events.
#[derive(Debug, Clone, Default)]
pub struct EventStats {
    /// Events seen, by name.
    pub events: BTreeMap<String, u64>,
    /// Events the daemon dropped for this reader (it read too slowly).
    pub lost: u64,
    /// Times each group came online here.
    pub group_online: BTreeMap<String, u64>,
    /// Times each group went to error here.
    pub group_errors: BTreeMap<String, u64>,
    /// Resource failures, by (group, resource, operation).
    pub resource_failures: BTreeMap<(String, String, String), u64>,
    /// A peer's silence: `node_down`'s decision time minus the last frame heard from it.
    pub detection: Histogram,
    /// A peer's loss (`node_down`, `node_fenced`) to a group online here.
    pub failover: Histogram,
    /// Local pauses: how late the loop woke.
    pub pauses: Histogram,
    /// The last events, oldest first.
    pub recent: VecDeque<EventRecord>,
    /// The last peer loss, monotonic seconds.
    last_loss: Option<f64>,
    /// Groups acquiring after a loss: group → the loss's time.
    failing_over: BTreeMap<String, f64>,
}

/// Monotonic seconds from a log field (`12.000345678`).
fn secs(field: Option<&String>) -> Option<f64> {
    field.and_then(|s| s.parse::<f64>().ok())
}

impl EventStats {
    /// Takes one event into account.
    pub fn record(&mut self, e: &EventRecord) {
        #[allow(clippy::cast_precision_loss)] // ns since boot: exact to well below 1 µs
        let at = e.mono_ns as f64 / 1e9;
        *self.events.entry(e.event.clone()).or_default() += 1;
        self.lost += e.lost_before;
        let field = |k: &str| e.fields.get(k).cloned().unwrap_or_default();
        match e.event.as_str() {
            "node_down" => {
                if let Some(heard) = secs(e.fields.get("last_heard")) {
                    self.detection.observe(at - heard);
                }
                self.last_loss = Some(at);
            }
            "node_fenced" => self.last_loss = Some(at),
            "group_acquiring" => {
                if let Some(loss) = self.last_loss.filter(|l| at - l <= FAILOVER_WINDOW_S) {
                    self.failing_over.insert(field("group"), loss);
                }
            }
            "group_online" => {
                let group = field("group");
                if let Some(loss) = self.failing_over.remove(&group) {
                    self.failover.observe(at - loss);
                }
                *self.group_online.entry(group).or_default() += 1;
            }
            "group_error" => {
                let group = field("group");
                self.failing_over.remove(&group);
                *self.group_errors.entry(group).or_default() += 1;
            }
            "group_offline" | "group_releasing" => {
                self.failing_over.remove(&field("group"));
            }
            "resource_failed" => {
                let key = (field("group"), field("resource"), field("op"));
                *self.resource_failures.entry(key).or_default() += 1;
            }
            "local_pause" => {
                if let Some(us) = e.fields.get("late_us").and_then(|s| s.parse::<u32>().ok()) {
                    self.pauses.observe(f64::from(us) / 1e6);
                }
            }
            _ => {}
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(e.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, at_s: f64, fields: &[(&str, &str)]) -> EventRecord {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        EventRecord {
            event: name.into(),
            node: "b".into(),
            mono_ns: (at_s * 1e9) as u64,
            wall: "2026-12-05T00:00:00.000000Z".into(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            note: None,
            lost_before: 0,
        }
    }

    #[test]
    fn a_takeover_gives_one_detection_and_one_failover() {
        let mut s = EventStats::default();
        s.record(&event(
            "node_down",
            10.0105,
            &[("peer", "a"), ("last_heard", "10.000000000")],
        ));
        s.record(&event("group_acquiring", 10.0106, &[("group", "web")]));
        s.record(&event("group_online", 10.0125, &[("group", "web")]));
        assert_eq!(s.detection.count(), 1);
        assert!((s.detection.sum - 0.0105).abs() < 1e-6);
        assert_eq!(s.detection.counts[7], 1, "in the 25 ms bucket");
        assert_eq!(s.failover.count(), 1);
        assert!((s.failover.sum - 0.002).abs() < 1e-6);
        assert_eq!(s.group_online["web"], 1);
        assert_eq!(s.events["node_down"], 1);
        // A later planned move is not a failover.
        s.record(&event("group_acquiring", 100.0, &[("group", "web")]));
        s.record(&event("group_online", 100.5, &[("group", "web")]));
        assert_eq!(s.failover.count(), 1);
        assert_eq!(s.group_online["web"], 2);
    }

    #[test]
    fn pauses_failures_and_the_recent_list() {
        let mut s = EventStats::default();
        s.record(&event("local_pause", 1.0, &[("late_us", "2500")]));
        s.record(&event("local_pause", 2.0, &[("late_us", "not a number")]));
        s.record(&event(
            "resource_failed",
            3.0,
            &[("group", "db"), ("resource", "app"), ("op", "monitor")],
        ));
        assert_eq!(s.pauses.count(), 1);
        assert_eq!(s.pauses.counts[4], 1, "2.5 ms is in the 2.5 ms bucket");
        let key = ("db".to_owned(), "app".to_owned(), "monitor".to_owned());
        assert_eq!(s.resource_failures[&key], 1);
        for i in 0..RECENT + 5 {
            #[allow(clippy::cast_precision_loss)]
            s.record(&event("path_up", 10.0 + i as f64, &[]));
        }
        assert_eq!(s.recent.len(), RECENT);
        assert_eq!(s.events["path_up"], u64::try_from(RECENT + 5).unwrap());
    }
}
