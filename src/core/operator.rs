//! Operator commands (DESIGN §7): `move GROUP NODE`, `online GROUP`, `offline GROUP`,
//! and the hand-over of a node that stops.
//!
//! A command is asked of any node. That node sends it on every path to every node (a
//! command frame, kind 6) and applies it to itself. Every node keeps it as a **pin** on
//! the named groups until a committed view carries it out or it expires; whichever node
//! coordinates applies the pins to the placement it proposes, so a command survives a
//! change of coordinator. Placement is sticky afterwards: a moved group stays where it
//! was moved (fallback looks only at nodes that join later), an offline group stays
//! offline until `online`.
//!
//! `move`, `online` and `offline` also clear the groups' *failed here* marks on every
//! node and retry the release of a group stuck in `error` (the operator has acted). A
//! pin that needs a node's mark cleared waits for that node's next report. `cleanup`
//! does only that (Pacemaker's `resource cleanup`): it pins nothing, so the policies
//! place the groups again, and it is done once no member reports a mark or an error.
//!
//! The command is done, for the node that was asked, when its installed view carries it
//! out and the groups run (or are released) where that view says: see [`Command::done`].

use core::time::Duration;

use super::maintenance::is_on;
use super::placement::{GroupPolicy, NodeSet, Placement, Plan, Startup};
use super::spec::{GroupSpec, NodeId};
use super::time::Instant;
use crate::wire::command::{
    CommandRepr, OP_CLEANUP, OP_EVACUATE, OP_MAINTENANCE, OP_MOVE, OP_OFFLINE, OP_ONLINE,
};

/// What a command does to each of its groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Run the group on this node.
    Move(NodeId),
    /// Bring the group online: on the highest-priority eligible member of its list if it
    /// runs nowhere (every eligible member for a concurrent group).
    Online,
    /// Take the group offline everywhere.
    Offline,
    /// This node is leaving: its groups go to the next eligible node of each list, or
    /// offline when there is none.
    Evacuate(NodeId),
    /// Forget the groups' failures on every node and retry releases stuck in error; the
    /// placement is what the policies make of it.
    Cleanup,
    /// Maintenance mode, cluster-wide, to this epoch (odd: on; see `maintenance`): a
    /// late copy of an older toggle cannot undo a newer one. Names no group.
    Maintenance(u64),
}

impl Op {
    /// Command and log name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Move(_) => "move",
            Op::Online => "online",
            Op::Offline => "offline",
            Op::Evacuate(_) => "evacuate",
            Op::Cleanup => "cleanup",
            Op::Maintenance(_) => "maintenance",
        }
    }

    /// Whether the command resets the groups' failure marks (the operator has acted).
    pub fn resets(self) -> bool {
        !matches!(self, Op::Evacuate(_) | Op::Maintenance(_))
    }

    /// Whether `placement` carries this op out for a group.
    pub fn satisfied_by(self, placement: Placement) -> bool {
        match self {
            Op::Move(to) => placement == Placement::Online(to),
            Op::Online => matches!(placement, Placement::Online(_) | Placement::Concurrent),
            Op::Offline => placement == Placement::Offline,
            Op::Evacuate(from) => placement != Placement::Online(from),
            Op::Cleanup | Op::Maintenance(_) => true,
        }
    }
}

/// An operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// What to do.
    pub op: Op,
    /// Group bitmap (bit g for group g).
    pub groups: u64,
}

/// Why a node refuses a command it was asked (the daemon adds names and the fix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another command asked of this node is still running.
    Busy,
    /// This node is stopping.
    Leaving,
    /// The installed view is not quorate (or this node's lease has lapsed).
    NoQuorum,
    /// No group named, or a group index out of range.
    NoGroup,
    /// `move` of a concurrent group (it runs on every node of its list).
    Concurrent(u8),
    /// `move` to a node outside the group's node list.
    NotInList(u8),
    /// `move` to a node that is not a member of the installed view.
    NotMember,
    /// The cluster is in maintenance: placement does not change until `maintenance off`.
    Maintenance,
    /// `maintenance off` while these configured nodes are outside the view (see
    /// `Node::command_with`).
    Absent(NodeSet),
}

/// A command kept by every node until a view carries it out or it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// What to do to the group.
    pub op: Op,
    /// When the pin lapses.
    pub until: Instant,
}

/// How a command asked of this node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandState {
    /// Sent; not yet carried out.
    Pending,
    /// Carried out.
    Done,
    /// Not carried out before its deadline.
    Expired,
    /// A later command for one of its groups (asked of this node `NodeId`, with this op)
    /// took its place before it was carried out: every node pins the later one now.
    /// A node whose agent failed fatally asks `offline` this way.
    Superseded(NodeId, Op),
}

/// Where each group runs, as this node knows it: from its own phases and the members'
/// reports for its installed view or a newer one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Running {
    /// Nodes that may hold the group (any phase but offline).
    pub held: NodeSet,
    /// Nodes on which it is fully online.
    pub online: NodeSet,
    /// Nodes that report it failed there.
    pub failed: NodeSet,
    /// Nodes of the installed view that may run it (in its node list).
    pub candidates: NodeSet,
}

impl Command {
    /// The command frame payload.
    pub fn to_repr(self, id: u32, valid: Duration) -> CommandRepr {
        let (op, node) = match self.op {
            Op::Move(n) => (OP_MOVE, n.get()),
            Op::Online => (OP_ONLINE, 0),
            Op::Offline => (OP_OFFLINE, 0),
            Op::Evacuate(n) => (OP_EVACUATE, n.get()),
            Op::Cleanup => (OP_CLEANUP, 0),
            Op::Maintenance(epoch) => (OP_MAINTENANCE, u8::from(is_on(epoch))),
        };
        CommandRepr {
            id,
            op,
            node,
            valid_ms: u32::try_from(valid.as_millis()).unwrap_or(u32::MAX),
            groups: match self.op {
                Op::Maintenance(epoch) => epoch,
                _ => self.groups,
            },
        }
    }

    /// A received payload checked against the config: a known op, a configured node where
    /// one is needed, at least one group and only configured groups.
    pub fn from_repr(r: &CommandRepr, nodes: NodeSet, groups: usize) -> Option<Command> {
        let node = NodeId::new(r.node).filter(|n| nodes.contains(*n));
        let op = match r.op {
            OP_MOVE => Op::Move(node?),
            OP_ONLINE if r.node == 0 => Op::Online,
            OP_OFFLINE if r.node == 0 => Op::Offline,
            OP_EVACUATE => Op::Evacuate(node?),
            OP_CLEANUP if r.node == 0 => Op::Cleanup,
            OP_MAINTENANCE if r.node == u8::from(is_on(r.groups)) => {
                return Some(Command {
                    op: Op::Maintenance(r.groups),
                    groups: 0,
                });
            }
            _ => return None,
        };
        let all = if groups >= 64 {
            u64::MAX
        } else {
            (1u64 << groups) - 1
        };
        (r.groups != 0 && r.groups & !all == 0).then_some(Command {
            op,
            groups: r.groups,
        })
    }

    /// Groups of the command, as indexes.
    pub fn group_indexes(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |g| self.groups & (1 << g) != 0)
    }

    /// Whether the command may be asked now: `members` is the installed view's member
    /// set, `quorate` whether this node may act on it.
    pub fn check(
        self,
        specs: &[GroupSpec],
        members: NodeSet,
        quorate: bool,
    ) -> Result<(), Refusal> {
        let groupless = matches!(self.op, Op::Maintenance(_));
        if (self.groups == 0 && !groupless) || self.group_indexes().any(|g| g >= specs.len()) {
            return Err(Refusal::NoGroup);
        }
        if !quorate {
            return Err(Refusal::NoQuorum);
        }
        if let Op::Move(to) = self.op {
            for g in self.group_indexes() {
                let gi = u8::try_from(g).expect("invariant: < 64");
                let policy = &specs[g].policy;
                if policy.startup == Startup::All {
                    return Err(Refusal::Concurrent(gi));
                }
                if !policy.nodes.contains(&to) {
                    return Err(Refusal::NotInList(gi));
                }
            }
            if !members.contains(to) {
                return Err(Refusal::NotMember);
            }
        }
        Ok(())
    }

    /// Whether the command is carried out, given the installed `plan` and where each
    /// group runs. Moved and onlined groups must be online where the plan says and held
    /// nowhere else; offline groups held nowhere; an evacuated group released by the
    /// leaving node and online wherever the plan put it.
    pub fn done(self, plan: &Plan, running: impl Fn(usize) -> Running) -> bool {
        self.group_indexes().all(|g| {
            let placed = plan.get(g);
            let r = running(g);
            if !self.op.satisfied_by(placed) {
                return false;
            }
            let settled = r.held == r.online;
            match (self.op, placed) {
                (Op::Cleanup, _) if !r.failed.is_empty() => false,
                // Marks cleared: a group nobody could run may be placed now.
                (Op::Cleanup, Placement::Unplaced | Placement::Waiting) => {
                    r.held.is_empty() && r.candidates.is_empty()
                }
                (Op::Offline, _) => r.held.is_empty(),
                (Op::Evacuate(from), _) if r.held.contains(from) => false,
                (_, Placement::Online(owner)) => settled && r.online == one(owner),
                (_, Placement::Concurrent) => settled && !r.online.is_empty(),
                (_, Placement::Offline | Placement::Unplaced | Placement::Waiting) => {
                    r.held.is_empty()
                }
            }
        })
    }
}

fn one(id: NodeId) -> NodeSet {
    let mut s = NodeSet::EMPTY;
    s.insert(id);
    s
}

/// The coordinator's last step of placement: carries out every live pin that can be
/// carried out for the members `members`. `failed(id, g)` says whether group `g` failed
/// on member `id` (as reported). A pin that cannot be carried out yet (its target is not
/// a member, or a failure mark it resets is not yet cleared) is left for a later view.
pub fn apply_pins(
    plan: &mut Plan,
    specs: &[GroupSpec],
    pins: &[Option<Pin>],
    now: Instant,
    members: NodeSet,
    failed: impl Fn(NodeId, usize) -> bool,
) {
    for (g, pin) in pins.iter().enumerate() {
        let Some(pin) = pin.filter(|p| now < p.until) else {
            continue;
        };
        let policy = &specs[g].policy;
        let mut eligible = members;
        let mut marked = false;
        for id in members.iter().filter(|id| failed(*id, g)) {
            eligible.remove(id);
            marked = true;
        }
        // A pin that places the group on a node waits for the marks it resets to clear;
        // `offline` places it nowhere, so no mark matters.
        if pin.op.resets() && marked && pin.op != Op::Offline {
            continue;
        }
        if let Some(p) = pinned(policy, pin.op, plan.get(g), eligible) {
            plan.set(g, p);
        }
    }
}

/// The placement a pin asks for, or `None` to leave the group as placed.
fn pinned(
    policy: &GroupPolicy,
    op: Op,
    current: Placement,
    eligible: NodeSet,
) -> Option<Placement> {
    let concurrent = policy.startup == Startup::All;
    match op {
        Op::Offline => Some(Placement::Offline),
        Op::Move(to) => (!concurrent && eligible.contains(to) && policy.nodes.contains(&to))
            .then_some(Placement::Online(to)),
        Op::Online if op.satisfied_by(current) => None,
        Op::Online if concurrent => Some(Placement::Concurrent),
        Op::Online => policy
            .nodes
            .iter()
            .copied()
            .find(|n| eligible.contains(*n))
            .map(Placement::Online),
        Op::Evacuate(from) if current == Placement::Online(from) => {
            let mut others = eligible;
            others.remove(from);
            Some(
                policy
                    .next_after(from, others)
                    .map_or(Placement::Offline, Placement::Online),
            )
        }
        Op::Evacuate(_) | Op::Cleanup | Op::Maintenance(_) => None,
    }
}

#[cfg(test)]
#[path = "operator_tests.rs"]
mod tests;
