//! `/metrics`: the Prometheus text exposition format (version 0.0.4), names by
//! Prometheus's rules: the `heartwire_` prefix, base units (seconds), `_total` for
//! counters, one-hot gauges for states. Built from one status report of the node and the
//! counters of its event stream ([`EventStats`]); `heartwire_up` is 0 and nothing else of
//! the node is shown when its daemon did not answer.

use std::fmt::Write;

use super::stats::{BUCKETS, EventStats, Histogram};
use crate::ctl::status::StatusReport;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// States a group has here (one-hot `heartwire_group_state`).
const GROUP_STATES: [&str; 5] = ["offline", "acquiring", "online", "releasing", "error"];
/// Where the view places a group (one-hot `heartwire_group_placement`).
const PLACEMENTS: [&str; 5] = ["unplaced", "waiting", "online", "concurrent", "offline"];
/// States of a resource here (one-hot `heartwire_resource_state`).
const RESOURCE_STATES: [&str; 5] = ["stopped", "starting", "started", "stopping", "stop failed"];

/// The exposition being written.
struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a metric family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP heartwire_{name} {help}");
        let _ = writeln!(self.out, "# TYPE heartwire_{name} {kind}");
    }

    /// One sample of the current family (`name` may carry a suffix: `_bucket`).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "heartwire_{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        if value.is_infinite() {
            self.out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }

    /// A family with a single unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (bound, n) in BUCKETS.iter().zip(h.counts) {
            cumulative += n;
            self.sample(&bucket, &[("le", &bound.to_string())], count(cumulative));
        }
        self.sample(&bucket, &[("le", "+Inf")], count(h.count()));
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], count(h.count()));
    }
}

/// A counter's value as a sample (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn count(n: u64) -> f64 {
    n as f64
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The exposition: the node's status (`None`: its daemon did not answer) and its events'
/// counters.
pub fn render(status: Option<&StatusReport>, stats: &EventStats) -> String {
    let mut x = Exposition { out: String::new() };
    x.single(
        "up",
        "gauge",
        "Whether the node's daemon answered this scrape (1) or not (0).",
        flag(status.is_some()),
    );
    if let Some(s) = status {
        node(&mut x, s);
        groups(&mut x, s);
        paths(&mut x, s);
        peers(&mut x, s);
    }
    events(&mut x, stats);
    x.out
}

fn node(x: &mut Exposition, s: &StatusReport) {
    x.family(
        "build_info",
        "gauge",
        "The daemon's version, its cluster, node and config hash (always 1).",
    );
    x.sample(
        "build_info",
        &[
            ("version", &s.version),
            ("cluster", &s.cluster),
            ("node", &s.node),
            ("config_hash", &s.config_hash),
        ],
        1.0,
    );
    #[allow(clippy::cast_precision_loss)]
    let uptime = s.now_ns.saturating_sub(s.started_ns) as f64 / 1e9;
    x.single(
        "uptime_seconds",
        "gauge",
        "Time since the daemon started.",
        uptime,
    );
    x.single(
        "view",
        "gauge",
        "Number of the committed membership view.",
        count(s.view),
    );
    x.single(
        "view_members",
        "gauge",
        "Members of the committed view.",
        count(s.view_members.len() as u64),
    );
    x.single(
        "view_changes_total",
        "counter",
        "Views this node installed since it started.",
        count(s.view_changes),
    );
    x.single(
        "views_per_second",
        "gauge",
        "Views installed per second over the last 10 to 20 s (a settled cluster: 0).",
        s.views_per_second,
    );
    x.single(
        "quorate",
        "gauge",
        "Whether this node's view holds quorum.",
        flag(s.quorate),
    );
    x.single(
        "authority",
        "gauge",
        "Whether this node may hold groups now (quorate view, valid lease).",
        flag(s.authority),
    );
    x.single(
        "maintenance",
        "gauge",
        "Whether the cluster is in maintenance (nothing started, stopped or monitored).",
        flag(s.maintenance),
    );
    x.single(
        "leaving",
        "gauge",
        "Whether the node is stopping.",
        flag(s.leaving),
    );
    x.single(
        "local_pauses_total",
        "counter",
        "Local pauses: the loop woke late.",
        count(s.pauses),
    );
    x.single(
        "local_pause_seconds_total",
        "counter",
        "Total length of the local pauses.",
        count(s.pause_total_us) / 1e6,
    );
    x.single(
        "queue_overflows_total",
        "counter",
        "Events or membership messages dropped by a full bounded queue.",
        count(s.queue_overflows),
    );
    x.single(
        "announcements_total",
        "counter",
        "Address announcement frames sent (gratuitous ARP, unsolicited NA).",
        count(s.announcements),
    );
    x.single(
        "announce_errors_total",
        "counter",
        "Address announcement frames that failed.",
        count(s.announce_errors),
    );
    x.family(
        "network_lost",
        "gauge",
        "Networks this node lost (carrier or reachability).",
    );
    for n in &s.networks_lost {
        x.sample("network_lost", &[("network", n)], 1.0);
    }
}

fn groups(x: &mut Exposition, s: &StatusReport) {
    x.family(
        "group_state",
        "gauge",
        "A group's state here, one-hot: offline, acquiring, online, releasing, error.",
    );
    for g in &s.groups {
        for state in GROUP_STATES {
            x.sample(
                "group_state",
                &[("group", &g.name), ("state", state)],
                flag(g.state == state),
            );
        }
    }
    x.family(
        "group_placement",
        "gauge",
        "Where the view places a group, one-hot: unplaced, waiting, online, concurrent, offline.",
    );
    for g in &s.groups {
        for p in PLACEMENTS {
            x.sample(
                "group_placement",
                &[("group", &g.name), ("placement", p)],
                flag(g.placement == p),
            );
        }
    }
    x.family(
        "group_online_on",
        "gauge",
        "Members where a group is fully online (1 per member).",
    );
    for g in &s.groups {
        for n in &g.online_on {
            x.sample("group_online_on", &[("group", &g.name), ("node", n)], 1.0);
        }
    }
    x.family(
        "group_failed_here",
        "gauge",
        "Whether a group failed here (a monitor gave up, a start failed).",
    );
    for g in &s.groups {
        x.sample(
            "group_failed_here",
            &[("group", &g.name)],
            flag(g.failed_here),
        );
    }
    x.family(
        "resource_state",
        "gauge",
        "A resource's state here, one-hot: stopped, starting, started, stopping, stop failed.",
    );
    for g in &s.groups {
        for r in &g.resources {
            for state in RESOURCE_STATES {
                x.sample(
                    "resource_state",
                    &[
                        ("group", &g.name),
                        ("resource", &r.name),
                        ("kind", &r.kind),
                        ("state", state),
                    ],
                    flag(r.state == state),
                );
            }
        }
    }
    x.family(
        "resource_failcount",
        "gauge",
        "A resource's failures here since cleanup or within failure_timeout.",
    );
    for g in &s.groups {
        for r in &g.resources {
            x.sample(
                "resource_failcount",
                &[("group", &g.name), ("resource", &r.name)],
                f64::from(r.fail_count),
            );
        }
    }
}

fn paths(x: &mut Exposition, s: &StatusReport) {
    type Counter = fn(&crate::ctl::status::PathStatus) -> u64;
    let families: [(&str, &str, Counter); 3] = [
        ("path_frames_sent_total", "Heartbeat rounds sent.", |p| {
            p.tx_frames
        }),
        ("path_send_errors_total", "Send failures.", |p| p.tx_errors),
        ("path_receive_errors_total", "Receive failures.", |p| {
            p.rx_errors
        }),
    ];
    for (name, help, value) in families {
        x.family(name, "counter", help);
        for p in &s.paths {
            x.sample(
                name,
                &[("path", &p.name), ("kind", &p.kind)],
                count(value(p)),
            );
        }
    }
    x.family(
        "path_frames_dropped_total",
        "counter",
        "Frames dropped, by reason (README, Status).",
    );
    for p in &s.paths {
        for (reason, n) in &p.drops {
            x.sample(
                "path_frames_dropped_total",
                &[("path", &p.name), ("reason", reason)],
                count(*n),
            );
        }
    }
}

fn peers(x: &mut Exposition, s: &StatusReport) {
    x.family("peer_up", "gauge", "Whether a peer is up.");
    for p in &s.peers {
        x.sample("peer_up", &[("peer", &p.name)], flag(p.state == "up"));
    }
    x.family("peer_restarts_total", "counter", "A peer's restarts seen.");
    for p in &s.peers {
        x.sample(
            "peer_restarts_total",
            &[("peer", &p.name)],
            count(p.restarts),
        );
    }
    x.family(
        "peer_config_match",
        "gauge",
        "Whether a peer's config hash equals this node's (absent before its first heartbeat).",
    );
    for p in &s.peers {
        if let Some(m) = p.config_match {
            x.sample("peer_config_match", &[("peer", &p.name)], flag(m));
        }
    }
    x.family(
        "peer_network_down",
        "gauge",
        "Networks whose every path to a peer is silent while another is alive.",
    );
    for p in &s.peers {
        for n in &p.networks_down {
            x.sample(
                "peer_network_down",
                &[("peer", &p.name), ("network", n)],
                1.0,
            );
        }
    }
    x.family("link_up", "gauge", "Whether a path to a peer is up.");
    each_link(x, s, "link_up", |l| Some(flag(l.state == "up")));
    x.family(
        "link_heard_by_peer",
        "gauge",
        "Whether the peer says it hears this node on the path (absent before it says).",
    );
    each_link(x, s, "link_heard_by_peer", |l| l.peer_hears_us.map(flag));
    x.family(
        "link_rtt_seconds",
        "gauge",
        "Last round-trip time on a path.",
    );
    each_link(x, s, "link_rtt_seconds", |l| l.rtt_us.map(|r| r / 1e6));
    x.family(
        "link_jitter_seconds",
        "gauge",
        "Interarrival jitter of a peer's frames on a path.",
    );
    each_link(x, s, "link_jitter_seconds", |l| Some(l.jitter_us / 1e6));
    x.family(
        "link_frames_received_total",
        "counter",
        "Valid frames received from a peer on a path.",
    );
    each_link(x, s, "link_frames_received_total", |l| {
        Some(count(l.received))
    });
    x.family(
        "link_frames_lost_total",
        "counter",
        "Sequence gaps in a peer's frames on a path.",
    );
    each_link(x, s, "link_frames_lost_total", |l| Some(count(l.lost)));
}

fn each_link(
    x: &mut Exposition,
    s: &StatusReport,
    name: &str,
    value: impl Fn(&crate::ctl::status::LinkStatus) -> Option<f64>,
) {
    for p in &s.peers {
        for l in &p.links {
            if let Some(v) = value(l) {
                x.sample(name, &[("peer", &p.name), ("path", &l.path)], v);
            }
        }
    }
}

fn events(x: &mut Exposition, st: &EventStats) {
    x.family(
        "events_total",
        "counter",
        "Events of this node, by name, since heartwire-web started following them.",
    );
    for (name, n) in &st.events {
        x.sample("events_total", &[("event", name)], count(*n));
    }
    x.single(
        "events_lost_total",
        "counter",
        "Events the daemon dropped for heartwire-web (it read too slowly).",
        count(st.lost),
    );
    x.family(
        "group_online_total",
        "counter",
        "Times a group came online here (moves and failovers onto this node).",
    );
    for (g, n) in &st.group_online {
        x.sample("group_online_total", &[("group", g)], count(*n));
    }
    x.family(
        "group_errors_total",
        "counter",
        "Times a group went to error here.",
    );
    for (g, n) in &st.group_errors {
        x.sample("group_errors_total", &[("group", g)], count(*n));
    }
    x.family(
        "resource_failures_total",
        "counter",
        "Resource failures here, by operation (start, stop, monitor).",
    );
    for ((g, r, op), n) in &st.resource_failures {
        x.sample(
            "resource_failures_total",
            &[("group", g), ("resource", r), ("op", op)],
            count(*n),
        );
    }
    x.histogram(
        "detection_seconds",
        "A peer's silence before it was declared down: node_down's decision minus the last frame heard.",
        &st.detection,
    );
    x.histogram(
        "failover_seconds",
        "A peer's loss (node_down, node_fenced) to a group online here.",
        &st.failover,
    );
    x.histogram(
        "local_pause_duration_seconds",
        "How late the loop woke in each local pause.",
        &st.pauses,
    );
}
