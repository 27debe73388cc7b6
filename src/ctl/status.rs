//! `heartwire status`: the report (its JSON form is the `--json` schema, documented in the
//! README) and its table rendering.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// heartwire version.
    pub version: String,
    /// Cluster name.
    pub cluster: String,
    /// Cluster id.
    pub cluster_id: u16,
    /// This node's name.
    pub node: String,
    /// This node's id.
    pub node_id: u8,
    /// This node's incarnation.
    pub incarnation: u32,
    /// The daemon's process id.
    #[serde(default)]
    pub pid: u32,
    /// Its sentinel's process id (the service's main process), when one watches it.
    #[serde(default)]
    pub sentinel_pid: Option<u32>,
    /// Config hash, hex.
    pub config_hash: String,
    /// CLOCK_MONOTONIC now, ns.
    pub now_ns: u64,
    /// CLOCK_MONOTONIC at start, ns.
    pub started_ns: u64,
    /// Wall-clock time now, RFC 3339 UTC.
    #[serde(default)]
    pub now_wall: String,
    /// Wall-clock time of the daemon's start, RFC 3339 UTC.
    #[serde(default)]
    pub started_wall: String,
    /// Committed membership view number.
    pub view: u64,
    /// Its members, by name.
    pub view_members: Vec<String>,
    /// Views this node installed since it started.
    #[serde(default)]
    pub view_changes: u64,
    /// Views installed per second, over `views_span_s` (the last 10 to 20 s).
    #[serde(default)]
    pub views_per_second: f64,
    /// The span `views_per_second` covers, seconds.
    #[serde(default)]
    pub views_span_s: f64,
    /// Whether it holds quorum.
    pub quorate: bool,
    /// Whether this node may hold groups now (quorate view and a valid lease).
    pub authority: bool,
    /// The node is stopping (`heartwire stop` or SIGTERM): it releases and hands over.
    pub leaving: bool,
    /// The cluster is in maintenance: nothing is started, stopped or monitored.
    #[serde(default)]
    pub maintenance: bool,
    /// Resource groups: where the view places each and its state on this node.
    pub groups: Vec<GroupStatus>,
    /// Address announcement frames sent (gratuitous ARP, unsolicited NA).
    pub announcements: u64,
    /// Announcement frames that failed to send.
    pub announce_errors: u64,
    /// Local pauses (late loop wake-ups) and their total length.
    pub pauses: u64,
    /// Total pause length, µs.
    pub pause_total_us: u64,
    /// Events or membership messages dropped because a bounded queue was full.
    pub queue_overflows: u64,
    /// Configured paths with local counters.
    pub paths: Vec<PathStatus>,
    /// Networks this node has lost (groups that need them run elsewhere).
    #[serde(default)]
    pub networks_lost: Vec<String>,
    /// Every other node.
    pub peers: Vec<PeerStatus>,
    /// The last events, oldest first.
    pub recent_events: Vec<String>,
}

/// One resource group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupStatus {
    /// Name.
    pub name: String,
    /// Placement in the installed view: `unplaced`, `waiting`, `online`, `concurrent`, `offline`.
    pub placement: String,
    /// The node the view places it on (`online` placement only).
    pub owner: Option<String>,
    /// Its phase on this node: `offline`, `acquiring`, `online`, `releasing`, `error`.
    pub state: String,
    /// CLOCK_MONOTONIC ns when it entered that phase.
    pub since_ns: u64,
    /// It failed on this node (monitor gave up or a start failed).
    pub failed_here: bool,
    /// Members on which it is fully online (this node's phase, the others' reports).
    pub online_on: Vec<String>,
    /// Members that may hold it (acquiring, online, releasing or in error).
    pub held_by: Vec<String>,
    /// An operator command pinned on it, not yet carried out by a view (`move b`,
    /// `online`, `offline`, `evacuate a`).
    pub pending: Option<String>,
    /// Its resources on this node, in acquisition order.
    #[serde(default)]
    pub resources: Vec<ResourceStatus>,
}

/// One resource of a group on this node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResourceStatus {
    /// Name.
    pub name: String,
    /// `ip`, `application`, `reservation` or `filesystem`.
    pub kind: String,
    /// `stopped`, `starting`, `started` or `stopping` here.
    pub state: String,
    /// Failures here (start, stop, monitor) since the last `cleanup` or within the
    /// group's `failure_timeout`.
    pub fail_count: u32,
    /// The last of them: wall-clock time (RFC 3339) and what failed.
    pub last_failure: Option<String>,
}

/// One path as seen locally.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PathStatus {
    /// Path name.
    pub name: String,
    /// `ether`, `udp`, `serial` or `disk`.
    pub kind: String,
    /// Local interface, address or device (`-` when this node is not on the path).
    pub device: String,
    /// The network it runs over (ether and udp paths).
    #[serde(default)]
    pub network: Option<String>,
    /// The disk servant's pid (disk paths).
    #[serde(default)]
    pub servant_pid: Option<u32>,
    /// Heartbeat interval, µs.
    pub interval_us: u64,
    /// Timeout, µs.
    pub timeout_us: u64,
    /// Heartbeat rounds sent.
    pub tx_frames: u64,
    /// Send failures (including a full queue: heartbeats are never queued).
    pub tx_errors: u64,
    /// Receive failures other than "nothing to read".
    pub rx_errors: u64,
    /// Frames dropped, by reason.
    pub drops: BTreeMap<String, u64>,
}

/// One peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerStatus {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u8,
    /// `unknown`, `up` or `down`.
    pub state: String,
    /// When the state last changed, CLOCK_MONOTONIC ns.
    pub since_ns: u64,
    /// Its incarnation, once heard.
    pub incarnation: Option<u32>,
    /// Restarts seen.
    pub restarts: u64,
    /// Whether its config hash matches ours (None before its first heartbeat).
    pub config_match: Option<bool>,
    /// Its config hash, hex (None before its first heartbeat).
    #[serde(default)]
    pub config_hash: Option<String>,
    /// One entry per path.
    pub links: Vec<LinkStatus>,
    /// Networks whose every path to this peer is silent while another path is alive.
    #[serde(default)]
    pub networks_down: Vec<String>,
}

/// One (peer, path) link.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinkStatus {
    /// Path name.
    pub path: String,
    /// `never`, `up` or `down`.
    pub state: String,
    /// Kernel arrival time of the last valid frame, CLOCK_MONOTONIC ns.
    pub last_heard_ns: Option<u64>,
    /// Time since then, µs.
    pub age_us: Option<u64>,
    /// When it went down, CLOCK_MONOTONIC ns.
    pub down_at_ns: Option<u64>,
    /// Last round-trip time, µs.
    pub rtt_us: Option<f64>,
    /// Interarrival jitter, µs.
    pub jitter_us: f64,
    /// Valid frames received.
    pub received: u64,
    /// Frames lost (sequence gaps).
    pub lost: u64,
    /// Whether the peer says it hears us on this path.
    pub peer_hears_us: Option<bool>,
}

impl StatusReport {
    /// The human-readable table.
    /// The table, with the last `events` of the recent events.
    pub fn render(&self, events: usize) -> String {
        let mut o = String::new();
        let up_s = self.now_ns.saturating_sub(self.started_ns) as f64 / 1e9;
        let _ = writeln!(
            o,
            "cluster {} (id {})  node {} (id {})  incarnation {:08x}  up {up_s:.1}s (since {})  config {}",
            self.cluster,
            self.cluster_id,
            self.node,
            self.node_id,
            self.incarnation,
            self.started_wall,
            self.config_hash
        );
        let _ = writeln!(
            o,
            "daemon pid {}  {}",
            self.pid,
            self.sentinel_pid.map_or_else(
                || "no sentinel: nothing fences this node if the daemon dies".into(),
                |p| format!("sentinel pid {p} (fences this node if the daemon dies or hangs)")
            )
        );
        let _ = writeln!(
            o,
            "view {}  members {}  quorum {}  ({} view change{}; {:.2}/s over the last {:.0} s)",
            self.view,
            self.view_members.join(","),
            if self.quorate { "yes" } else { "NO" },
            self.view_changes,
            if self.view_changes == 1 { "" } else { "s" },
            self.views_per_second,
            self.views_span_s
        );
        if self.maintenance {
            let _ = writeln!(
                o,
                "MAINTENANCE: nothing is started, stopped or monitored (`heartwire maintenance off`)"
            );
        }
        if self.leaving && !self.maintenance {
            let _ = writeln!(o, "STOPPING: releasing groups and handing them over");
        }
        let _ = writeln!(
            o,
            "local pauses: {} ({} µs in all)  queue overflows: {}\n",
            self.pauses, self.pause_total_us, self.queue_overflows
        );
        if !self.networks_lost.is_empty() {
            let _ = writeln!(
                o,
                "NETWORK LOST here: {} (groups that need it run elsewhere)\n",
                self.networks_lost.join(", ")
            );
        }
        if !self.groups.is_empty() {
            let _ = writeln!(
                o,
                "{:<16} {:<11} {:<12} {:<16} {:<10}",
                "GROUP", "PLACEMENT", "OWNER", "ONLINE ON", "HERE"
            );
            for g in &self.groups {
                let online = if g.online_on.is_empty() {
                    "-".to_owned()
                } else {
                    g.online_on.join(",")
                };
                let _ = writeln!(
                    o,
                    "{:<16} {:<11} {:<12} {:<16} {:<10}{}{}",
                    g.name,
                    g.placement,
                    g.owner.as_deref().unwrap_or("-"),
                    online,
                    g.state,
                    if g.failed_here { "  (failed here)" } else { "" },
                    g.pending
                        .as_deref()
                        .map(|p| format!("  (pending: {p})"))
                        .unwrap_or_default()
                );
                for r in &g.resources {
                    let fails = match (&r.last_failure, r.fail_count) {
                        (Some(last), n) => format!("  fail count {n}, last {last}"),
                        (None, _) => String::new(),
                    };
                    let kind = format!("({})", r.kind);
                    let _ = writeln!(o, "  {:<14} {:<13} {}{fails}", r.name, kind, r.state);
                }
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(
            o,
            "{:<10} {:<6} {:<8} {:<16} {:>9} {:>9} {:>10} {:>6} {:>6}  drops",
            "PATH", "KIND", "NETWORK", "DEVICE", "INTERVAL", "TIMEOUT", "TX", "TXERR", "RXERR"
        );
        for p in &self.paths {
            let drops: Vec<String> = p
                .drops
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            let _ = writeln!(
                o,
                "{:<10} {:<6} {:<8} {:<16} {:>7}µs {:>7}µs {:>10} {:>6} {:>6}  {}",
                p.name,
                p.kind,
                p.network.as_deref().unwrap_or("-"),
                p.device,
                p.interval_us,
                p.timeout_us,
                p.tx_frames,
                p.tx_errors,
                p.rx_errors,
                if drops.is_empty() {
                    "-".to_owned()
                } else {
                    drops.join(" ")
                }
            );
        }
        for peer in &self.peers {
            let since = self.now_ns.saturating_sub(peer.since_ns) as f64 / 1e9;
            let cfg = match peer.config_match {
                Some(true) => "config ok",
                Some(false) => "CONFIG MISMATCH",
                None => "config ?",
            };
            let _ = writeln!(
                o,
                "\npeer {} (id {}): {} for {since:.3}s  incarnation {}  restarts {}  {cfg}",
                peer.name,
                peer.id,
                peer.state.to_uppercase(),
                peer.incarnation.map_or("-".into(), |i| format!("{i:08x}")),
                peer.restarts
            );
            if !peer.networks_down.is_empty() {
                let _ = writeln!(
                    o,
                    "  network down to this peer: {} (alive on another path: no takeover)",
                    peer.networks_down.join(", ")
                );
            }
            let _ = writeln!(
                o,
                "  {:<10} {:<6} {:>12} {:>10} {:>10} {:>10} {:>8} {:>10}",
                "PATH", "STATE", "LAST HEARD", "RTT", "JITTER", "RECEIVED", "LOST", "HEARS US"
            );
            for l in &peer.links {
                let age = l
                    .age_us
                    .map_or("never".into(), |a| format!("{:.3}ms ago", a as f64 / 1e3));
                let rtt = l.rtt_us.map_or("-".into(), |r| format!("{r:.1}µs"));
                let hears = l
                    .peer_hears_us
                    .map_or("?", |h| if h { "yes" } else { "NO" });
                let _ = writeln!(
                    o,
                    "  {:<10} {:<6} {:>12} {:>10} {:>8.1}µs {:>10} {:>8} {:>10}",
                    l.path, l.state, age, rtt, l.jitter_us, l.received, l.lost, hears
                );
            }
        }
        let shown = &self.recent_events[self.recent_events.len().saturating_sub(events)..];
        if !shown.is_empty() {
            let _ = writeln!(
                o,
                "\nlast {} of {} recent events (--events N):",
                shown.len(),
                self.recent_events.len()
            );
            for e in shown {
                let _ = writeln!(o, "  {e}");
            }
        }
        o
    }
}
