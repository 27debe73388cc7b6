//! What the core reports: events (state transitions, for logs, status and later for
//! membership) and drop reasons (one counter each, DESIGN §3).

use core::time::Duration;

use super::groups::{Phase, ResourceOp};
use super::operator::Op;
use super::spec::NodeId;
use super::time::Instant;
use crate::wire::frame::FrameError;
use crate::wire::offer::OfferMode;

/// A state transition the core decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Frames from `peer` arrive on `path` again (or for the first time).
    PathUp {
        /// The peer.
        peer: NodeId,
        /// Path index.
        path: u8,
    },
    /// Nothing valid arrived from `peer` on `path` for the path's timeout.
    PathDown {
        /// The peer.
        peer: NodeId,
        /// Path index.
        path: u8,
        /// When its last valid frame arrived (kernel time).
        last_heard: Option<Instant>,
    },
    /// `peer` still reaches us on `path` but says it no longer hears us there.
    PathOneWay {
        /// The peer.
        peer: NodeId,
        /// Path index.
        path: u8,
    },
    /// The peer is alive: a valid frame arrived on some path.
    NodeUp {
        /// The peer.
        peer: NodeId,
        /// Its incarnation.
        incarnation: u32,
    },
    /// Every path to the peer is silent (or it was never heard within the startup grace).
    NodeDown {
        /// The peer.
        peer: NodeId,
        /// When its last valid frame arrived on any path.
        last_heard: Option<Instant>,
    },
    /// The peer came back with a new incarnation: it restarted (treated as down, then up).
    NodeRestart {
        /// The peer.
        peer: NodeId,
        /// Incarnation before.
        old: u32,
        /// Incarnation now.
        new: u32,
    },
    /// The peer's sentinel sent a death notice for its current incarnation: its daemon
    /// died or hung and its host was fenced. It is down at once, and its groups are taken
    /// over without waiting for its lease.
    NodeFenced {
        /// The peer.
        peer: NodeId,
        /// The incarnation that is over.
        incarnation: u32,
        /// What the sentinel saw.
        cause: crate::wire::notice::Cause,
    },
    /// This node's own loop woke up late; silence deadlines were extended by `late`.
    LocalPause {
        /// How late.
        late: Duration,
    },
    /// A new membership view was installed.
    ViewChange {
        /// View number.
        number: u64,
        /// Member bitmap (bit id-1).
        members: u64,
        /// Whether it holds quorum.
        quorate: bool,
    },
    /// A resource group entered a new phase on this node.
    Group {
        /// Group index.
        group: u8,
        /// Its new phase.
        phase: Phase,
    },
    /// Starting or stopping a resource failed (or timed out).
    ResourceFailed {
        /// Group index.
        group: u8,
        /// Resource index within the group.
        resource: u8,
        /// What failed.
        op: ResourceOp,
    },
    /// A resource of the group failed here in a way that says it cannot run anywhere with
    /// this config (an agent's "not configured"): this node asks `offline` of the group
    /// on every node; `online` brings it back once the config is fixed.
    GroupFatal {
        /// Group index.
        group: u8,
        /// Resource index within the group.
        resource: u8,
    },
    /// The cluster entered (`on`) or left maintenance: nothing is started, stopped or
    /// monitored while it is in it.
    Maintenance {
        /// In maintenance now.
        on: bool,
    },
    /// The group's failure here is forgotten: its `failure_timeout` passed since it
    /// failed, and it may run on this node again.
    FailureExpired {
        /// Group index.
        group: u8,
    },
    /// This node lost its authority to hold groups (view no longer quorate, or its lease
    /// ran out): it releases everything; `on_quorum_loss` says what else it does.
    QuorumLost,
    /// The tie-breaker race for this node's half view ended: `racer` (this node, or the
    /// member that raced for the half, whose word this node took) `won` or lost it.
    TieBreaker {
        /// The half view's members (bit id-1).
        members: u64,
        /// The member that raced (the view's lowest).
        racer: NodeId,
        /// Whether this half holds the tie-breaker now.
        won: bool,
    },
    /// An operator command reached this node (from `from`; this node's own id when it
    /// was asked here). Every node pins it until a view carries it out.
    Command {
        /// The node the operator asked.
        from: NodeId,
        /// What to do.
        op: Op,
        /// Group bitmap.
        groups: u64,
    },
    /// Every path of `network` to `peer` is silent while another path to it is alive: the
    /// peer lives, the network between us is broken (never a takeover, DESIGN §4).
    NetworkDown {
        /// The peer.
        peer: NodeId,
        /// Network index.
        network: u8,
    },
    /// A path of `network` to `peer` carries frames again after a `NetworkDown`.
    NetworkUp {
        /// The peer.
        peer: NodeId,
        /// Network index.
        network: u8,
    },
    /// This node lost `network`: every adapter on it is without carrier (`carrier`), or
    /// it hears no peer there while peers hear each other. Groups that need it move off.
    NetworkLost {
        /// Network index.
        network: u8,
        /// Lost by carrier (else by reachability).
        carrier: bool,
    },
    /// This node has `network` again.
    NetworkRegained {
        /// Network index.
        network: u8,
    },
    /// The peer runs a different configuration.
    ConfigMismatch {
        /// The peer.
        peer: NodeId,
        /// Its config hash.
        theirs: u64,
    },
    /// A member has every chunk of a configuration offer: check it, then
    /// [`super::Node::judge_offer`] (DESIGN §7, `core::offer`).
    OfferReceived {
        /// The node whose offer it is.
        origin: NodeId,
        /// Its offer number.
        id: u32,
        /// Verify only, or install.
        mode: OfferMode,
    },
    /// Install the offer now (every member accepted it), then
    /// [`super::Node::offer_installed`]; `origin` is this node on the origin itself.
    OfferCommit {
        /// The node whose offer it is.
        origin: NodeId,
        /// Its offer number.
        id: u32,
    },
    /// An offer held here is gone: forget what was staged for it.
    OfferDropped {
        /// The node whose offer it was.
        origin: NodeId,
        /// Its offer number.
        id: u32,
        /// Why.
        why: OfferDrop,
    },
    /// This node's own offer is finished.
    OfferSettled {
        /// Its offer number.
        id: u32,
        /// How it ended.
        result: OfferResult,
    },
}

/// Why a member let go of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferDrop {
    /// The origin aborted it (a member refused).
    Aborted,
    /// Chunks stopped arriving, or no commit came in time.
    Expired,
    /// The origin sent a newer offer.
    Superseded,
    /// The chunks did not add up to the SHA-256 announced.
    Corrupt,
    /// The origin went down before committing.
    OriginDown,
}

impl OfferDrop {
    /// Log name.
    pub fn name(self) -> &'static str {
        match self {
            OfferDrop::Aborted => "aborted",
            OfferDrop::Expired => "expired",
            OfferDrop::Superseded => "superseded",
            OfferDrop::Corrupt => "corrupt",
            OfferDrop::OriginDown => "origin_down",
        }
    }
}

/// How an offer ended at its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferResult {
    /// Verify: every target accepted it.
    Verified,
    /// A target refused it, answered with another hash, or never answered: nothing was
    /// installed anywhere.
    Refused,
    /// Install: every target installed and reloaded it.
    Installed,
    /// Install: committed, but a target failed to install or did not confirm.
    Failed,
}

impl OfferResult {
    /// Log name.
    pub fn name(self) -> &'static str {
        match self {
            OfferResult::Verified => "verified",
            OfferResult::Refused => "refused",
            OfferResult::Installed => "installed",
            OfferResult::Failed => "failed",
        }
    }
}

impl Event {
    /// Every event name, as logged (`event=<name>`) and as `[[event]] on = "<name>"`.
    pub const NAMES: [&'static str; 31] = [
        "path_up",
        "path_down",
        "path_one_way",
        "node_up",
        "node_down",
        "node_restart",
        "node_fenced",
        "local_pause",
        "view_change",
        "group_acquiring",
        "group_online",
        "group_releasing",
        "group_offline",
        "group_error",
        "resource_failed",
        "failure_expired",
        "maintenance",
        "quorum_lost",
        "tie_breaker",
        "command",
        "config_mismatch",
        "network_down",
        "network_up",
        "network_lost",
        "network_regained",
        "offer_received",
        "offer_commit",
        "offer_dropped",
        "offer_settled",
        // Reported by the daemon from rtnetlink, not by the core.
        "adapter_down",
        "adapter_up",
    ];

    /// Whether events of this name concern one resource group.
    pub fn names_group(name: &str) -> bool {
        name.starts_with("group_") || name == "resource_failed"
    }

    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::PathUp { .. } => "path_up",
            Event::PathDown { .. } => "path_down",
            Event::PathOneWay { .. } => "path_one_way",
            Event::NodeUp { .. } => "node_up",
            Event::NodeDown { .. } => "node_down",
            Event::NodeRestart { .. } => "node_restart",
            Event::NodeFenced { .. } => "node_fenced",
            Event::LocalPause { .. } => "local_pause",
            Event::ViewChange { .. } => "view_change",
            Event::Group { phase, .. } => match phase {
                Phase::Acquiring => "group_acquiring",
                Phase::Online => "group_online",
                Phase::Releasing => "group_releasing",
                Phase::Offline => "group_offline",
                Phase::Error => "group_error",
            },
            Event::ResourceFailed { .. } => "resource_failed",
            Event::GroupFatal { .. } => "group_fatal",
            Event::FailureExpired { .. } => "failure_expired",
            Event::Maintenance { .. } => "maintenance",
            Event::QuorumLost => "quorum_lost",
            Event::TieBreaker { .. } => "tie_breaker",
            Event::Command { .. } => "command",
            Event::ConfigMismatch { .. } => "config_mismatch",
            Event::NetworkDown { .. } => "network_down",
            Event::NetworkUp { .. } => "network_up",
            Event::NetworkLost { .. } => "network_lost",
            Event::NetworkRegained { .. } => "network_regained",
            Event::OfferReceived { .. } => "offer_received",
            Event::OfferCommit { .. } => "offer_commit",
            Event::OfferDropped { .. } => "offer_dropped",
            Event::OfferSettled { .. } => "offer_settled",
        }
    }

    /// The group the event concerns, if one.
    pub fn group(&self) -> Option<u8> {
        match *self {
            Event::Group { group, .. }
            | Event::ResourceFailed { group, .. }
            | Event::GroupFatal { group, .. }
            | Event::FailureExpired { group } => Some(group),
            _ => None,
        }
    }
}

/// Why a received frame was dropped. Each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than a frame or its declared length.
    Short,
    /// Longer than its declared length, or above the size limit.
    Overlong,
    /// Not "HW".
    BadMagic,
    /// Unknown version.
    BadVersion,
    /// CRC mismatch.
    BadCrc,
    /// Another cluster's id.
    ForeignCluster,
    /// Authentication tag mismatch (wrong key or tampering).
    BadTag,
    /// Sender id not in the config.
    UnknownNode,
    /// Sender claims this node's own id.
    OwnNodeId,
    /// Sent on a different path than it arrived on (cross-wired networks).
    WrongPath,
    /// Heartbeat payload malformed.
    BadPayload,
    /// A frame kind this node does not handle yet.
    UnsupportedKind,
    /// Sequence number already seen, or an old incarnation.
    Replay,
    /// Bytes that are no frame at all: serial line noise or a half frame (COBS decode
    /// failed), a torn disk slot.
    Garbage,
    /// A configuration offer this node does not take: the cluster runs without a key
    /// (offers would be unauthenticated), or it came on a serial or disk path.
    RefusedOffer,
    /// A death notice in a cluster without a key: anyone on the segment could forge one
    /// and have a live node's groups taken over at once.
    RefusedNotice,
    /// A counter beyond what its sender can plausibly have reached: a view number far
    /// ahead of every one seen, a state generation's jump, a restart stamped in the
    /// future (`core::node` bounds). Forged, or a peer gone wrong.
    Implausible,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 17] = [
        DropReason::Short,
        DropReason::Overlong,
        DropReason::BadMagic,
        DropReason::BadVersion,
        DropReason::BadCrc,
        DropReason::ForeignCluster,
        DropReason::BadTag,
        DropReason::UnknownNode,
        DropReason::OwnNodeId,
        DropReason::WrongPath,
        DropReason::BadPayload,
        DropReason::UnsupportedKind,
        DropReason::Replay,
        DropReason::Garbage,
        DropReason::RefusedOffer,
        DropReason::RefusedNotice,
        DropReason::Implausible,
    ];

    /// Counter name in status output.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Short => "short",
            DropReason::Overlong => "overlong",
            DropReason::BadMagic => "bad_magic",
            DropReason::BadVersion => "bad_version",
            DropReason::BadCrc => "bad_crc",
            DropReason::ForeignCluster => "foreign_cluster",
            DropReason::BadTag => "bad_tag",
            DropReason::UnknownNode => "unknown_node",
            DropReason::OwnNodeId => "own_node_id",
            DropReason::WrongPath => "wrong_path",
            DropReason::BadPayload => "bad_payload",
            DropReason::UnsupportedKind => "unsupported_kind",
            DropReason::Replay => "replay",
            DropReason::Garbage => "garbage",
            DropReason::RefusedOffer => "refused_offer",
            DropReason::RefusedNotice => "refused_notice",
            DropReason::Implausible => "implausible",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .expect("invariant: ALL lists every reason")
    }
}

impl From<FrameError> for DropReason {
    fn from(e: FrameError) -> DropReason {
        match e {
            FrameError::Short => DropReason::Short,
            FrameError::Overlong => DropReason::Overlong,
            FrameError::BadMagic => DropReason::BadMagic,
            FrameError::BadVersion => DropReason::BadVersion,
            FrameError::BadCrc => DropReason::BadCrc,
            FrameError::BadTag => DropReason::BadTag,
        }
    }
}

/// One counter per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::ALL.len()]);

impl DropCounters {
    /// Counts one drop.
    pub fn count(&mut self, r: DropReason) {
        self.0[r.index()] += 1;
    }

    /// The count for `r`.
    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r.index()]
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}
