//! Turning core state and events into log lines and the status report.

use std::collections::BTreeMap;

use super::log::secs;
use super::paths::PathSocket;
use super::resources::Failures;
use crate::config::GroupConfig;
use crate::core::event::DropReason;
use crate::core::link::LinkState;
use crate::core::node::PeerState;
use crate::core::placement::Placement;
use crate::core::{Event, Instant, Node, NodeId, Op};
use crate::ctl::status::{
    GroupStatus, LinkStatus, PathStatus, PeerStatus, ResourceStatus, StatusReport,
};

/// Per-path counters the daemon keeps (the core counts drops).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IoCounters {
    pub(crate) tx_errors: u64,
    pub(crate) rx_errors: u64,
    /// When the loop last read the path until it was empty: a frame without a kernel
    /// stamp read later arrived after this (and is taken to have arrived then).
    pub(crate) drained_ns: u64,
}

pub(crate) fn node_name(node: &Node, id: NodeId) -> &str {
    node.spec()
        .node_index(id)
        .map_or("?", |i| node.spec().nodes[i].name.as_str())
}

fn path_name(node: &Node, path: u8) -> &str {
    node.spec()
        .paths
        .get(usize::from(path))
        .map_or("?", |p| p.name.as_str())
}

/// Comma-separated names of the nodes in a member bitmap.
pub(crate) fn member_names(node: &Node, members: u64) -> String {
    let set = crate::core::placement::NodeSet::from_bits(members);
    set.iter()
        .map(|id| node_name(node, id))
        .collect::<Vec<_>>()
        .join(",")
}

/// Comma-separated names of the groups in a bitmap.
pub(crate) fn group_names(groups: &[GroupConfig], bits: u64) -> String {
    groups
        .iter()
        .enumerate()
        .filter(|(g, _)| bits & (1 << g) != 0)
        .map(|(_, c)| c.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Group `g` as status shows it.
pub(crate) fn group_status(node: &Node, g: usize) -> GroupStatus {
    let placement = node.view().plan.get(g);
    let lg = node.groups()[g];
    let running = node.running(g);
    GroupStatus {
        name: node.spec().groups[g].name.clone(),
        placement: placement.describe().into(),
        owner: match placement {
            Placement::Online(id) => Some(node_name(node, id).to_owned()),
            _ => None,
        },
        state: lg.phase.name().into(),
        since_ns: lg.since.as_nanos(),
        failed_here: lg.failed,
        online_on: names(node, running.online),
        held_by: names(node, running.held),
        pending: node.pins()[g].map(|p| op_text(node, p.op)),
        resources: Vec::new(),
    }
}

/// Group `g`'s resources on this node: their state in the core and their failures here.
pub(crate) fn resource_status(
    node: &Node,
    group: &GroupConfig,
    g: usize,
    failures: &[Failures],
) -> Vec<ResourceStatus> {
    let lg = node.groups()[g];
    group
        .resources
        .iter()
        .enumerate()
        .map(|(r, res)| {
            let f = failures.get(r).cloned().unwrap_or_default();
            ResourceStatus {
                name: res.name.clone(),
                kind: res.kind.name().into(),
                state: lg
                    .resource_state(u8::try_from(r).expect("invariant: < 255 resources"))
                    .into(),
                fail_count: f.count,
                last_failure: f.last.map(|(_, wall, what)| {
                    format!("{} {what}", crate::ctl::events::rfc3339_us(wall))
                }),
            }
        })
        .collect()
}

fn names(node: &Node, set: crate::core::placement::NodeSet) -> Vec<String> {
    set.iter()
        .map(|id| node_name(node, id).to_owned())
        .collect()
}

/// An operator op as text: `move b`, `online`, `offline`, `evacuate a`.
pub(crate) fn op_text(node: &Node, op: Op) -> String {
    match op {
        Op::Move(n) | Op::Evacuate(n) => format!("{} {}", op.name(), node_name(node, n)),
        Op::Online | Op::Offline | Op::Cleanup => op.name().to_owned(),
        Op::Maintenance(e) => format!("maintenance {}", on_off(e)),
    }
}

fn on_off(epoch: u64) -> &'static str {
    if crate::core::maintenance::is_on(epoch) {
        "on"
    } else {
        "off"
    }
}

fn opt_secs(t: Option<Instant>) -> String {
    t.map_or_else(|| "never".into(), |t| secs(t.as_nanos()))
}

/// One event as a log line: `event=<name> at=<decision time> key=value...`. For node_down
/// the line lists every path with the time it was last heard, so the log shows which paths
/// went silent and when.
fn network_name(node: &Node, n: u8) -> &str {
    node.spec()
        .networks
        .get(usize::from(n))
        .map_or("?", String::as_str)
}

/// Names of the networks in bitmap `bits`.
fn networks(spec: &crate::core::spec::ClusterSpec, bits: u64) -> Vec<String> {
    spec.networks
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| n.clone())
        .collect()
}

/// Monotonic instant `at_ns` in wall-clock time (RFC 3339), given monotonic `now_ns`.
fn wall(now_ns: u64, at_ns: u64) -> String {
    let real = heartwire_hal::clock::realtime_ns().saturating_sub(now_ns.saturating_sub(at_ns));
    crate::ctl::events::rfc3339_us(real)
}

pub(crate) fn event_line(node: &Node, groups: &[GroupConfig], at: Instant, e: &Event) -> String {
    let at = secs(at.as_nanos());
    let group_name = |g: u8| groups.get(usize::from(g)).map_or("?", |g| g.name.as_str());
    let resource_name = |g: u8, r: u8| {
        groups
            .get(usize::from(g))
            .and_then(|g| g.resources.get(usize::from(r)))
            .map_or("?", |r| r.name.as_str())
    };
    match *e {
        Event::Group { group, phase } => format!(
            "event=group_{} at={at} group={}",
            phase.name(),
            group_name(group)
        ),
        Event::Maintenance { on } => format!(
            "event=maintenance at={at} state={} ({})",
            if on { "on" } else { "off" },
            if on {
                "nothing is started, stopped or monitored until maintenance off"
            } else {
                "resources are managed again"
            }
        ),
        Event::FailureExpired { group } => format!(
            "event=failure_expired at={at} group={} (failure_timeout passed: it may run here again)",
            group_name(group)
        ),
        Event::GroupFatal { group, resource } => format!(
            "event=group_fatal at={at} group={} resource={} (it cannot run anywhere with this \
             config: offline on every node until `heartwire online {}` after the fix)",
            group_name(group),
            resource_name(group, resource),
            group_name(group)
        ),
        Event::ResourceFailed {
            group,
            resource,
            op,
        } => format!(
            "event=resource_failed at={at} group={} resource={} op={}",
            group_name(group),
            match (resource, op) {
                (crate::core::groups::HOOK, crate::core::ResourceOp::Start) => "pre-acquire",
                (crate::core::groups::HOOK, crate::core::ResourceOp::Stop) => "pre-release",
                _ => resource_name(group, resource),
            },
            op.name()
        ),
        Event::NetworkDown { peer, network } => format!(
            "event=network_down at={at} peer={} network={} (the peer is alive on another path; no takeover)",
            node_name(node, peer),
            network_name(node, network)
        ),
        Event::NetworkUp { peer, network } => format!(
            "event=network_up at={at} peer={} network={}",
            node_name(node, peer),
            network_name(node, network)
        ),
        Event::NetworkLost { network, carrier } => format!(
            "event=network_lost at={at} network={} cause={} (groups that need it move off this node)",
            network_name(node, network),
            if carrier { "carrier" } else { "unreachable" }
        ),
        Event::NetworkRegained { network } => format!(
            "event=network_regained at={at} network={}",
            network_name(node, network)
        ),
        Event::QuorumLost => {
            format!("event=quorum_lost at={at} (no quorate view or lease: every group is released)")
        }
        Event::TieBreaker {
            members,
            racer,
            won,
        } => format!(
            "event=tie_breaker at={at} members={} racer={} won={} ({})",
            member_names(node, members),
            node_name(node, racer),
            if won { "yes" } else { "no" },
            if won {
                "this half keeps quorum"
            } else {
                "the other half keeps quorum"
            }
        ),
        Event::PathUp { peer, path } => format!(
            "event=path_up at={at} peer={} path={}",
            node_name(node, peer),
            path_name(node, path)
        ),
        Event::PathDown {
            peer,
            path,
            last_heard,
        } => format!(
            "event=path_down at={at} peer={} path={} last_heard={}",
            node_name(node, peer),
            path_name(node, path),
            opt_secs(last_heard)
        ),
        Event::PathOneWay { peer, path } => format!(
            "event=path_one_way at={at} peer={} path={} (the peer no longer hears us there)",
            node_name(node, peer),
            path_name(node, path)
        ),
        Event::NodeUp { peer, incarnation } => format!(
            "event=node_up at={at} peer={} incarnation={incarnation:08x}",
            node_name(node, peer)
        ),
        Event::NodeDown { peer, last_heard } => {
            let silent: Vec<String> = node
                .spec()
                .node_index(peer)
                .map(|i| {
                    node.spec()
                        .paths
                        .iter()
                        .zip(node.peers()[i].links.iter())
                        .map(|(p, l)| format!("{}@{}", p.name, opt_secs(l.heard_at)))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "event=node_down at={at} peer={} last_heard={} paths_last_heard={}",
                node_name(node, peer),
                opt_secs(last_heard),
                silent.join(",")
            )
        }
        Event::NodeRestart { peer, old, new } => format!(
            "event=node_restart at={at} peer={} old={old:08x} new={new:08x}",
            node_name(node, peer)
        ),
        Event::NodeFenced {
            peer,
            incarnation,
            cause,
        } => format!(
            "event=node_fenced at={at} peer={} incarnation={incarnation:08x} ({cause}; its \
             sentinel fenced the host: taken over without waiting for the lease)",
            node_name(node, peer)
        ),
        Event::LocalPause { late } => format!(
            "event=local_pause at={at} late_us={} (loop woke late; silence deadlines extended)",
            late.as_micros()
        ),
        Event::ViewChange {
            number,
            members,
            quorate,
        } => format!(
            "event=view_change at={at} view={number} members={} quorum={}",
            member_names(node, members),
            if quorate { "yes" } else { "NO" }
        ),
        Event::Command {
            from,
            op,
            groups: bits,
        } => {
            let target = match op {
                Op::Move(to) | Op::Evacuate(to) => format!(" node={}", node_name(node, to)),
                Op::Online | Op::Offline | Op::Cleanup => String::new(),
                Op::Maintenance(e) => format!(" state={} epoch={e}", on_off(e)),
            };
            format!(
                "event=command at={at} from={} op={} groups={}{target}",
                node_name(node, from),
                op.name(),
                group_names(groups, bits)
            )
        }
        Event::ConfigMismatch { peer, theirs } => {
            let admitted = node
                .peers()
                .iter()
                .find(|p| p.id == peer)
                .is_some_and(|p| p.config_matched);
            format!(
                "event=config_mismatch at={at} peer={} theirs={theirs:016x} ours={:016x} ({})",
                node_name(node, peer),
                node.spec().config_hash,
                if admitted {
                    "it reloaded in place and stays in the view; reload here too, or `heartwire sync`"
                } else {
                    "it started with another config: it is kept out of this node's views until the configs agree"
                }
            )
        }
        Event::OfferReceived { origin, id, mode } => format!(
            "event=offer_received at={at} origin={} offer={id} mode={} (checking it)",
            node_name(node, origin),
            mode_name(mode)
        ),
        Event::OfferCommit { origin, id } => format!(
            "event=offer_commit at={at} origin={} offer={id} (every member accepted: installing)",
            node_name(node, origin)
        ),
        Event::OfferDropped { origin, id, why } => format!(
            "event=offer_dropped at={at} origin={} offer={id} why={} (nothing installed)",
            node_name(node, origin),
            why.name()
        ),
        Event::OfferSettled { id, result } => format!(
            "event=offer_settled at={at} offer={id} result={}",
            result.name()
        ),
    }
}

/// Wire mode of an offer, as logged and reported.
pub(crate) fn mode_name(mode: crate::wire::offer::OfferMode) -> &'static str {
    match mode {
        crate::wire::offer::OfferMode::Verify => "verify",
        crate::wire::offer::OfferMode::Install => "install",
    }
}

/// The full status report.
pub(crate) fn status(
    node: &Node,
    socks: &[PathSocket],
    io: &[IoCounters],
    started: Instant,
    now: Instant,
    recent: &[String],
    announce: (u64, u64),
) -> StatusReport {
    let spec = node.spec();
    let paths = spec
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| PathStatus {
            name: p.name.clone(),
            kind: p.kind.name().into(),
            device: socks[i].device(),
            network: p
                .network
                .and_then(|n| spec.networks.get(usize::from(n)).cloned()),
            servant_pid: socks[i].servant_pid(),
            interval_us: u64::try_from(p.interval.as_micros()).unwrap_or(u64::MAX),
            timeout_us: u64::try_from(p.timeout.as_micros()).unwrap_or(u64::MAX),
            tx_frames: node.tx_frames(i),
            tx_errors: io[i].tx_errors,
            rx_errors: io[i].rx_errors,
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_owned(), node.drops(i).get(*r)))
                .collect::<BTreeMap<_, _>>(),
        })
        .collect();
    let peers = node
        .peers()
        .iter()
        .zip(spec.nodes.iter())
        .filter(|(p, _)| p.id != node.local())
        .map(|(p, n)| PeerStatus {
            name: n.name.clone(),
            id: p.id.get(),
            state: match p.state {
                PeerState::Unknown => "unknown",
                PeerState::Up => "up",
                PeerState::Down => "down",
            }
            .into(),
            since_ns: p.since.as_nanos(),
            incarnation: p.incarnation,
            restarts: p.restarts,
            config_match: p.config_hash.map(|h| h == spec.config_hash),
            config_hash: p.config_hash.map(|h| format!("{h:016x}")),
            networks_down: networks(spec, p.networks_down),
            links: spec
                .paths
                .iter()
                .zip(p.links.iter())
                .map(|(ps, l)| LinkStatus {
                    path: ps.name.clone(),
                    state: match l.state {
                        LinkState::Never => "never",
                        LinkState::Up => "up",
                        LinkState::Down => "down",
                    }
                    .into(),
                    last_heard_ns: l.heard_at.map(Instant::as_nanos),
                    age_us: l.heard_at.map(|h| {
                        u64::try_from(now.saturating_since(h).as_micros()).unwrap_or(u64::MAX)
                    }),
                    down_at_ns: l.down_at.map(Instant::as_nanos),
                    rtt_us: l.rtt.map(|r| r.as_nanos() as f64 / 1e3),
                    jitter_us: l.jitter_ns as f64 / 1e3,
                    received: l.received,
                    lost: l.lost,
                    peer_hears_us: l.peer_hears_us,
                })
                .collect(),
        })
        .collect();
    let (pauses, pause_total) = node.pauses();
    let (views_per_second, views_span) = node.churn().per_second(now);
    StatusReport {
        version: env!("CARGO_PKG_VERSION").into(),
        cluster: spec.name.clone(),
        cluster_id: spec.cluster_id,
        node: node_name(node, node.local()).to_owned(),
        node_id: node.local().get(),
        incarnation: node.incarnation(),
        pid: 0,
        sentinel_pid: None,
        config_hash: format!("{:016x}", spec.config_hash),
        now_ns: now.as_nanos(),
        started_ns: started.as_nanos(),
        now_wall: wall(now.as_nanos(), now.as_nanos()),
        started_wall: wall(now.as_nanos(), started.as_nanos()),
        view: node.view().number,
        view_members: crate::core::placement::NodeSet::iter(node.view().members)
            .map(|id| node_name(node, id).to_owned())
            .collect(),
        view_changes: node.churn().total(),
        views_per_second,
        views_span_s: views_span.as_secs_f64(),
        quorate: node.quorate(),
        authority: node.authority(),
        leaving: node.leaving(),
        maintenance: node.maintenance(),
        groups: (0..spec.groups.len())
            .map(|g| group_status(node, g))
            .collect(),
        announcements: announce.0,
        announce_errors: announce.1,
        pauses,
        queue_overflows: node.queue_overflows(),
        pause_total_us: u64::try_from(pause_total.as_micros()).unwrap_or(u64::MAX),
        paths,
        networks_lost: networks(spec, node.lost()),
        peers,
        recent_events: recent.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::core::groups::HOOK;
    use crate::core::{ClusterSpec, Phase, ResourceOp};

    #[test]
    fn every_event_line_starts_with_its_name() {
        let spec = ClusterSpec::sample(1);
        let n2 = NodeId::new(2).unwrap();
        let node = Node::new(
            spec,
            NodeId::new(1).unwrap(),
            1,
            None,
            Instant::from_nanos(0),
        );
        let at = Instant::from_nanos(5);
        let events = [
            Event::PathUp { peer: n2, path: 0 },
            Event::PathDown {
                peer: n2,
                path: 0,
                last_heard: None,
            },
            Event::PathOneWay { peer: n2, path: 0 },
            Event::NodeUp {
                peer: n2,
                incarnation: 3,
            },
            Event::NodeDown {
                peer: n2,
                last_heard: Some(at),
            },
            Event::NodeRestart {
                peer: n2,
                old: 1,
                new: 2,
            },
            Event::NodeFenced {
                peer: n2,
                incarnation: 2,
                cause: crate::wire::notice::Cause::Hung,
            },
            Event::LocalPause {
                late: Duration::from_millis(3),
            },
            Event::ViewChange {
                number: 4,
                members: 3,
                quorate: true,
            },
            Event::Group {
                group: 0,
                phase: Phase::Acquiring,
            },
            Event::Group {
                group: 0,
                phase: Phase::Online,
            },
            Event::Group {
                group: 0,
                phase: Phase::Releasing,
            },
            Event::Group {
                group: 0,
                phase: Phase::Offline,
            },
            Event::Group {
                group: 0,
                phase: Phase::Error,
            },
            Event::ResourceFailed {
                group: 0,
                resource: HOOK,
                op: ResourceOp::Start,
            },
            Event::FailureExpired { group: 0 },
            Event::Maintenance { on: true },
            Event::QuorumLost,
            Event::TieBreaker {
                members: 3,
                racer: n2,
                won: true,
            },
            Event::Command {
                from: n2,
                op: Op::Offline,
                groups: 1,
            },
            Event::ConfigMismatch {
                peer: n2,
                theirs: 9,
            },
            Event::NetworkDown {
                peer: n2,
                network: 0,
            },
            Event::NetworkUp {
                peer: n2,
                network: 0,
            },
            Event::NetworkLost {
                network: 0,
                carrier: true,
            },
            Event::NetworkRegained { network: 0 },
            Event::OfferReceived {
                origin: n2,
                id: 1,
                mode: crate::wire::offer::OfferMode::Install,
            },
            Event::OfferCommit { origin: n2, id: 1 },
            Event::OfferDropped {
                origin: n2,
                id: 1,
                why: crate::core::event::OfferDrop::Aborted,
            },
            Event::OfferSettled {
                id: 1,
                result: crate::core::event::OfferResult::Refused,
            },
        ];
        for e in &events {
            let line = event_line(&node, &[], at, e);
            assert!(line.starts_with(&format!("event={} ", e.name())), "{line}");
            let rec = crate::ctl::events::EventRecord::parse(&line, "a", 0, 0)
                .unwrap_or_else(|| panic!("the event stream takes every line apart: {line}"));
            assert_eq!(rec.event, e.name());
        }
        let names: Vec<&str> = events.iter().map(Event::name).collect();
        assert_eq!(
            names,
            Event::NAMES[..names.len()],
            "NAMES lists every event, in this order"
        );
        assert_eq!(
            Event::NAMES[names.len()..],
            ["adapter_down", "adapter_up"],
            "then the daemon's own"
        );
        let hook = event_line(&node, &[], at, &events[14]);
        assert!(hook.contains("resource=pre-acquire"), "{hook}");
    }
}
