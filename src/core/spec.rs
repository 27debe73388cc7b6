//! What the core needs to know about the cluster: nodes, paths and their timing. Built and
//! validated by `config`; the core asserts the invariants it relies on.

use core::time::Duration;

use super::placement::{GroupPolicy, NodeSet};
use crate::wire::state::MAX_GROUPS;
use crate::wire::{MAX_NODES, MAX_PATHS};

/// A node id, 1..=64 (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u8);

impl NodeId {
    /// A node id, or `None` outside 1..=64.
    pub fn new(id: u8) -> Option<NodeId> {
        (1..=u8::try_from(MAX_NODES).expect("invariant: 64 fits u8"))
            .contains(&id)
            .then_some(NodeId(id))
    }

    /// The raw id.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The node's bit in a heard bitmap.
    pub fn bit(self) -> u64 {
        1u64 << (self.0 - 1)
    }
}

/// How a path carries frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Raw Ethernet frames (AF_PACKET) to the cluster's multicast address.
    Ether,
    /// UDP datagrams, unicast to each peer.
    Udp,
    /// An RS232 line between exactly two nodes (COBS-framed, compact heartbeats).
    Serial,
    /// A shared disk: one heartbeat slot per node, a mailbox per node.
    Disk,
}

impl PathKind {
    /// Whether configuration offers travel on it (`core::offer`): the IP paths do; a
    /// serial line is too slow for a config file, and a disk slot holds one frame.
    pub fn carries_offers(self) -> bool {
        matches!(self, PathKind::Ether | PathKind::Udp)
    }

    /// The config and status name.
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Ether => "ether",
            PathKind::Udp => "udp",
            PathKind::Serial => "serial",
            PathKind::Disk => "disk",
        }
    }

    /// Whether the path runs over a network (and so can belong to one): raw Ethernet and
    /// UDP. Serial lines and disks are the non-IP paths that tell a broken network from a
    /// dead node (DESIGN §4).
    pub fn on_network(self) -> bool {
        matches!(self, PathKind::Ether | PathKind::Udp)
    }
}

/// One heartbeat path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSpec {
    /// Operator's name for it.
    pub name: String,
    /// Medium.
    pub kind: PathKind,
    /// Time between heartbeats.
    pub interval: Duration,
    /// Silence after which the path to a peer is down.
    pub timeout: Duration,
    /// The nodes on it (a serial line joins two).
    pub nodes: NodeSet,
    /// The network it runs over (index into [`ClusterSpec::networks`]); `None` for
    /// serial and disk paths.
    pub network: Option<u8>,
}

/// How long a child killed at its timeout may take to end before the daemon abandons it
/// and reports its operation failed (a process stuck in the kernel ignores SIGKILL).
pub const ABANDON_AFTER: core::time::Duration = core::time::Duration::from_secs(2);

/// One configured node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Its id.
    pub id: NodeId,
    /// Its name.
    pub name: String,
}

/// One resource group as the core sees it: a placement policy and how many resources
/// it has (acquired in order, released in reverse; what they are is the daemon's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Operator's name for it.
    pub name: String,
    /// Where it may run.
    pub policy: GroupPolicy,
    /// Number of resources.
    pub resources: u8,
    /// A `pre` event command runs before the first resource is acquired (its failure
    /// fails the acquisition), as request [`HOOK`](super::groups::HOOK) `Start`.
    pub pre_acquire: bool,
    /// A `pre` event command runs before the first resource is released (its failure is
    /// logged; the release goes on), as request [`HOOK`](super::groups::HOOK) `Stop`.
    pub pre_release: bool,
    /// Networks its service addresses need (bit = network index): it is placed on a node
    /// that has lost one of them only when every candidate has.
    pub networks: u64,
    /// How long after it failed on a node the failure is forgotten there (Pacemaker's
    /// `failure-timeout`); `None`: until the operator acts.
    pub failure_timeout: Option<core::time::Duration>,
    /// How long a release that lost authority may take to end what the self-fence does
    /// not (a filesystem no reservation guards) before the node halts; `None` when the
    /// self-fence ends or a gainer's reservation fences everything (see
    /// [`groups`](super::groups)). A gainer waits this much longer for an outsider.
    pub release_bound: Option<core::time::Duration>,
}

#[cfg(test)]
impl GroupSpec {
    /// A group named `g` on `nodes` (ids, priority order) with `startup`, fallover
    /// `next`, fallback `home`, `resources` resources and no pre commands, for tests.
    pub(crate) fn sample(
        nodes: &[u8],
        startup: super::placement::Startup,
        resources: u8,
    ) -> GroupSpec {
        use super::placement::{Fallback, Fallover};
        GroupSpec {
            name: "g".into(),
            policy: GroupPolicy {
                nodes: nodes
                    .iter()
                    .map(|i| NodeId::new(*i).expect("1..=64"))
                    .collect(),
                startup,
                fallover: Fallover::Next,
                fallback: Fallback::Home,
            },
            resources,
            pre_acquire: false,
            pre_release: false,
            networks: 0,
            failure_timeout: None,
            release_bound: None,
        }
    }
}

/// The validated cluster description the core runs on.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Cluster name.
    pub name: String,
    /// Cluster id carried in every frame.
    pub cluster_id: u16,
    /// Configured nodes, in config order.
    pub nodes: Vec<NodeSpec>,
    /// Configured paths; a path's index is its path id.
    pub paths: Vec<PathSpec>,
    /// Network names (at most 64); a network's index is its bit in `lost` bitmaps.
    pub networks: Vec<String>,
    /// Hash of the canonical config, carried in heartbeats to spot mismatches.
    pub config_hash: u64,
    /// A loop wake-up later than this past its deadline is a local pause.
    pub pause_threshold: Duration,
    /// Two-node mode: a lone survivor of a two-node cluster keeps quorum (DESIGN §5;
    /// safe only with a tie-breaker or a non-IP path, which `verify` checks).
    pub two_node: bool,
    /// Resource groups; a group's index is its bit in `holds` (DESIGN §3).
    pub groups: Vec<GroupSpec>,
    /// What a node does besides releasing when it loses quorum.
    pub on_quorum_loss: super::authority::QuorumLoss,
    /// A `[tie_breaker]` disk decides views of exactly half the nodes.
    pub tie_breaker: bool,
}

impl ClusterSpec {
    /// A two-node cluster (`n1`, `n2`, cluster id 7) with `paths` paths (the first raw
    /// Ethernet, the others UDP; 1 ms interval, 5 ms timeout) and no groups, for tests.
    #[cfg(test)]
    pub(crate) fn sample(paths: usize) -> ClusterSpec {
        ClusterSpec {
            name: "t".into(),
            cluster_id: 7,
            nodes: (1..=2)
                .map(|i| NodeSpec {
                    id: NodeId::new(i).unwrap(),
                    name: format!("n{i}"),
                })
                .collect(),
            paths: (0..paths)
                .map(|i| PathSpec {
                    name: format!("p{i}"),
                    kind: if i == 0 {
                        PathKind::Ether
                    } else {
                        PathKind::Udp
                    },
                    interval: Duration::from_millis(1),
                    timeout: Duration::from_millis(5),
                    nodes: NodeSet::from_bits(0b11),
                    network: Some(u8::try_from(i).unwrap()),
                })
                .collect(),
            networks: (0..paths).map(|i| format!("p{i}")).collect(),
            config_hash: 0xabc,
            pause_threshold: Duration::from_millis(2),
            two_node: false,
            groups: vec![],
            on_quorum_loss: super::authority::QuorumLoss::Freeze,
            tie_breaker: false,
        }
    }

    /// Asserts the invariants the core relies on (config validates them with good messages
    /// first; reaching a failed assert here is a programmer error).
    ///
    /// # Panics
    /// On any violated invariant.
    pub fn assert_valid(&self) {
        assert!(!self.nodes.is_empty(), "no nodes");
        assert!(self.nodes.len() <= MAX_NODES, "{} nodes", self.nodes.len());
        assert!(!self.paths.is_empty(), "no paths");
        assert!(self.paths.len() <= MAX_PATHS, "{} paths", self.paths.len());
        for (i, n) in self.nodes.iter().enumerate() {
            assert!(
                self.nodes[..i].iter().all(|m| m.id != n.id),
                "duplicate node id {:?}",
                n.id
            );
        }
        assert!(
            self.groups.len() <= MAX_GROUPS,
            "{} groups",
            self.groups.len()
        );
        for g in &self.groups {
            assert!(!g.policy.nodes.is_empty(), "group {} has no nodes", g.name);
            assert!(
                g.policy.nodes.iter().all(|n| self.node_index(*n).is_some()),
                "group {} lists an unknown node",
                g.name
            );
        }
        assert!(
            self.networks.len() <= 64,
            "{} networks",
            self.networks.len()
        );
        for p in &self.paths {
            assert!(p.interval > Duration::ZERO, "path {} interval zero", p.name);
            assert!(
                p.nodes.bits() & !self.nodes.iter().fold(0, |b, n| b | n.id.bit()) == 0,
                "path {} lists an unknown node",
                p.name
            );
            assert!(
                p.network
                    .is_none_or(|n| usize::from(n) < self.networks.len())
                    && (p.network.is_some() == p.kind.on_network()),
                "path {} network",
                p.name
            );
            assert!(
                p.timeout > p.interval,
                "path {} timeout <= interval",
                p.name
            );
        }
    }

    /// Index of node `id` in `nodes`.
    pub fn node_index(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The longest path timeout: the grace a never-heard peer gets at startup.
    pub fn timeout_max(&self) -> Duration {
        self.paths
            .iter()
            .map(|p| p.timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// How long a node keeps its groups after the last sign that a majority still agrees
    /// to a view containing it (DESIGN §5): the longest path timeout.
    pub fn lease(&self) -> Duration {
        self.timeout_max()
    }

    /// The bound on frame transit (network queueing plus the receiver's drain) that the
    /// takeover wait assumes on top of the lease: half the lease.
    pub fn transit_margin(&self) -> Duration {
        self.lease() / 2
    }
}
