//! Resource-group placement (DESIGN §5): a pure function of (group policy, quorate view,
//! current placement), computed by the view's coordinator and installed with the view on
//! every member, so no extra round trip decides where a group goes.
//!
//! Fallback is judged against the nodes that *joined* with the new view: a group returns
//! to a higher-priority node when that node (re)joins, not at every later view change, so
//! an operator's `move` away from the home node sticks until the home node rejoins.
//!
//! Policies, HACMP names in brackets: startup `home` (online on home node only) · `first`
//! (online on first available node) · `all` (concurrent access); fallover `next` (cascading:
//! the next node in the list after the lost owner, wrapping) · `never`; fallback `home`
//! (return when a higher-priority node rejoins: hot standby, mutual takeover) · `never`
//! (rotating standby).

use super::spec::NodeId;
use crate::wire::state::MAX_GROUPS;
use crate::wire::view::{CONCURRENT, OFFLINE, UNPLACED, WAITING};

/// A set of node ids (bit id-1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NodeSet(u64);

impl NodeSet {
    /// The empty set.
    pub const EMPTY: NodeSet = NodeSet(0);

    /// A set from its bitmap.
    pub const fn from_bits(bits: u64) -> NodeSet {
        NodeSet(bits)
    }
    /// The bitmap.
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// Whether `id` is in the set.
    pub fn contains(self, id: NodeId) -> bool {
        self.0 & id.bit() != 0
    }
    /// Adds `id`.
    pub fn insert(&mut self, id: NodeId) {
        self.0 |= id.bit();
    }
    /// Removes `id`.
    pub fn remove(&mut self, id: NodeId) {
        self.0 &= !id.bit();
    }
    /// Number of members.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Members in id order.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        (1..=64u8)
            .filter_map(NodeId::new)
            .filter(move |id| self.contains(*id))
    }
}

impl FromIterator<NodeId> for NodeSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> NodeSet {
        let mut s = NodeSet::EMPTY;
        for id in iter {
            s.insert(id);
        }
        s
    }
}

/// Where a group comes online when it has no owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// Only on its home node (first in its list).
    Home,
    /// On the highest-priority member available.
    First,
    /// On every member available (concurrent access).
    All,
}

/// What happens when the owner leaves the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallover {
    /// The next node in the list after the lost owner that is in the view (wrapping).
    Next,
    /// The group goes offline until the operator brings it online.
    Never,
}

/// What happens when a higher-priority node (re)joins while the group runs elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Move back to the highest-priority member.
    Home,
    /// Stay where it is.
    Never,
}

/// A group's placement policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPolicy {
    /// Nodes that may host the group, highest priority first (the first is home).
    pub nodes: Vec<NodeId>,
    /// Startup policy.
    pub startup: Startup,
    /// Fallover policy.
    pub fallover: Fallover,
    /// Fallback policy.
    pub fallback: Fallback,
}

/// Where a group is (or is to be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Never placed since the cluster formed: the startup policy decides.
    Unplaced,
    /// Online on one node.
    Online(NodeId),
    /// Was online; its owner left and no node of its list could take it over. The first
    /// eligible node of its list takes it as soon as there is one, whatever the startup
    /// policy (that applies when the cluster forms; a group that ran is brought back
    /// wherever it may run, so a service is not left with nobody serving it because its
    /// home node happens to be the one still missing).
    Waiting,
    /// Online on every eligible node of its list (startup `all`).
    Concurrent,
    /// Taken offline by the operator or by `fallover = never`; stays so until `online`.
    Offline,
}

impl Placement {
    /// The wire code (see [`crate::wire::view`]).
    pub fn code(self) -> u8 {
        match self {
            Placement::Unplaced => UNPLACED,
            Placement::Waiting => WAITING,
            Placement::Online(id) => id.get(),
            Placement::Concurrent => CONCURRENT,
            Placement::Offline => OFFLINE,
        }
    }

    /// From a wire code; `None` for codes no placement has.
    pub fn from_code(code: u8) -> Option<Placement> {
        match code {
            UNPLACED => Some(Placement::Unplaced),
            WAITING => Some(Placement::Waiting),
            CONCURRENT => Some(Placement::Concurrent),
            OFFLINE => Some(Placement::Offline),
            id => NodeId::new(id).map(Placement::Online),
        }
    }

    /// Status name.
    pub fn describe(self) -> &'static str {
        match self {
            Placement::Unplaced => "unplaced",
            Placement::Waiting => "waiting",
            Placement::Online(_) => "online",
            Placement::Concurrent => "concurrent",
            Placement::Offline => "offline",
        }
    }
}

/// The placement of every group, as installed with a view. Fixed size, `Copy`: it travels
/// in views on the hot path without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    len: u8,
    codes: [u8; MAX_GROUPS],
}

impl core::fmt::Debug for Plan {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Plan {
    /// `groups` groups, all unplaced.
    ///
    /// # Panics
    /// If `groups` exceeds [`MAX_GROUPS`] (config rejects that first).
    pub fn unplaced(groups: usize) -> Plan {
        assert!(groups <= MAX_GROUPS, "{groups} groups");
        Plan {
            len: u8::try_from(groups).expect("invariant: <= 64"),
            codes: [UNPLACED; MAX_GROUPS],
        }
    }

    /// From wire codes; `None` if a code is invalid or there are too many.
    pub fn from_codes(codes: &[u8]) -> Option<Plan> {
        if codes.len() > MAX_GROUPS || codes.iter().any(|c| Placement::from_code(*c).is_none()) {
            return None;
        }
        let mut plan = Plan::unplaced(codes.len());
        plan.codes[..codes.len()].copy_from_slice(codes);
        Some(plan)
    }

    /// The wire codes.
    pub fn codes(&self) -> &[u8] {
        &self.codes[..usize::from(self.len)]
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The groups placed offline (bit g for group g).
    pub fn offline(&self) -> u64 {
        (0..self.len()).fold(0, |acc, g| {
            acc | u64::from(self.get(g) == Placement::Offline) << g
        })
    }

    /// The groups placed on a node, on every node, or waiting for one (bit g for group
    /// g): those that ran or were to run.
    pub fn placed(&self) -> u64 {
        (0..self.len()).fold(0, |acc, g| {
            let placed = matches!(
                self.get(g),
                Placement::Online(_) | Placement::Concurrent | Placement::Waiting
            );
            acc | u64::from(placed) << g
        })
    }

    /// Placement of group `g`.
    ///
    /// # Panics
    /// If `g` is out of range.
    pub fn get(&self, g: usize) -> Placement {
        assert!(g < self.len(), "group {g} of {}", self.len);
        Placement::from_code(self.codes[g]).expect("invariant: codes are validated")
    }

    /// Sets the placement of group `g`.
    ///
    /// # Panics
    /// If `g` is out of range.
    pub fn set(&mut self, g: usize, p: Placement) {
        assert!(g < self.len(), "group {g} of {}", self.len);
        self.codes[g] = p.code();
    }

    /// Every placement in group order.
    pub fn iter(&self) -> impl Iterator<Item = Placement> + '_ {
        (0..self.len()).map(|g| self.get(g))
    }
}

impl GroupPolicy {
    /// The placement for a quorate view, given the current placement. `eligible` are the
    /// view's members on which the group has not failed; `joined` the members that were
    /// not in the previous view. A node without quorum places nothing (its caller
    /// releases everything instead).
    pub fn place(&self, eligible: NodeSet, joined: NodeSet, current: Placement) -> Placement {
        let ok = |id: &NodeId| eligible.contains(*id);
        if self.startup == Startup::All {
            return match current {
                Placement::Offline => Placement::Offline,
                _ => Placement::Concurrent,
            };
        }
        let best = self.nodes.iter().copied().find(ok);
        match current {
            Placement::Offline => Placement::Offline,
            Placement::Unplaced => match self.startup {
                Startup::Home => self
                    .nodes
                    .first()
                    .copied()
                    .filter(ok)
                    .map_or(Placement::Unplaced, Placement::Online),
                _ => best.map_or(Placement::Unplaced, Placement::Online),
            },
            Placement::Online(owner) if ok(&owner) && self.nodes.contains(&owner) => {
                match (self.fallback, best) {
                    (Fallback::Home, Some(b)) if joined.contains(b) && self.outranks(b, owner) => {
                        Placement::Online(b)
                    }
                    _ => Placement::Online(owner),
                }
            }
            // Nowhere to go is not an operator's "offline": the group waits, and the first
            // node of its list to return takes it.
            Placement::Online(owner) => match self.fallover {
                Fallover::Never => Placement::Offline,
                Fallover::Next => self
                    .next_after(owner, eligible)
                    .map_or(Placement::Waiting, Placement::Online),
            },
            Placement::Waiting => best.map_or(Placement::Waiting, Placement::Online),
            // A concurrent placement of a non-concurrent group cannot arise; re-place it.
            Placement::Concurrent => best.map_or(Placement::Unplaced, Placement::Online),
        }
    }

    /// Whether `a` comes before `b` in the node list.
    fn outranks(&self, a: NodeId, b: NodeId) -> bool {
        let rank = |n: NodeId| self.nodes.iter().position(|m| *m == n);
        matches!((rank(a), rank(b)), (Some(x), Some(y)) if x < y)
    }

    /// Whether `node` should hold the group under `placement`, given the `eligible` set.
    pub fn runs_on(&self, placement: Placement, node: NodeId, eligible: NodeSet) -> bool {
        match placement {
            Placement::Online(owner) => owner == node,
            Placement::Concurrent => eligible.contains(node) && self.nodes.contains(&node),
            Placement::Unplaced | Placement::Waiting | Placement::Offline => false,
        }
    }

    /// The first node after `owner` in list order (wrapping) that is in `members`.
    pub(crate) fn next_after(&self, owner: NodeId, members: NodeSet) -> Option<NodeId> {
        let start = self
            .nodes
            .iter()
            .position(|n| *n == owner)
            .map_or(0, |i| i + 1);
        let n = self.nodes.len();
        (0..n)
            .map(|k| self.nodes[(start + k) % n])
            .find(|id| *id != owner && members.contains(*id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn set(ids: &[u8]) -> NodeSet {
        ids.iter().map(|i| id(*i)).collect()
    }

    fn policy(
        nodes: &[u8],
        startup: Startup,
        fallover: Fallover,
        fallback: Fallback,
    ) -> GroupPolicy {
        GroupPolicy {
            nodes: nodes.iter().map(|i| id(*i)).collect(),
            startup,
            fallover,
            fallback,
        }
    }

    use Placement::{Concurrent, Offline, Online, Unplaced, Waiting};

    /// (eligible members, joined with this view, current placement, expected placement)
    type Row = (&'static [u8], &'static [u8], Placement, Placement);

    fn check(p: &GroupPolicy, rows: &[Row]) {
        for (i, (members, joined, current, want)) in rows.iter().enumerate() {
            assert_eq!(
                p.place(set(members), set(joined), *current),
                *want,
                "row {i}: members {members:?}, joined {joined:?}, current {current:?}"
            );
        }
    }

    #[test]
    fn hot_standby_falls_over_and_back() {
        let p = policy(&[1, 2], Startup::Home, Fallover::Next, Fallback::Home);
        check(
            &p,
            &[
                (&[1, 2], &[1, 2], Unplaced, Online(id(1))),
                (&[2], &[2], Unplaced, Unplaced), // home only: wait for the home node
                (&[2], &[], Online(id(1)), Online(id(2))), // owner lost: fall over
                (&[1, 2], &[1], Online(id(2)), Online(id(1))), // home rejoined: fall back
                (&[1, 2], &[], Online(id(2)), Online(id(2))), // moved there: stays
                (&[], &[], Online(id(1)), Waiting), // nobody left: waits
                (&[], &[], Waiting, Waiting),
                // It ran: the first node of its list back takes it, home or not (the
                // startup policy is for a cluster forming; a held cut that kept both
                // nodes out for a moment left the group with nobody, sim
                // held_partial_cuts_..., topology 47).
                (&[2], &[2], Waiting, Online(id(2))),
                (&[1, 2], &[1, 2], Waiting, Online(id(1))),
            ],
        );
    }

    #[test]
    fn rotating_standby_stays_where_it_is() {
        let p = policy(&[1, 2], Startup::First, Fallover::Next, Fallback::Never);
        check(
            &p,
            &[
                (&[2], &[2], Unplaced, Online(id(2))), // first available
                (&[1, 2], &[1], Online(id(2)), Online(id(2))), // no fallback
                (&[1], &[], Online(id(2)), Online(id(1))),
            ],
        );
    }

    #[test]
    fn mutual_takeover_is_two_groups_with_reversed_lists() {
        let g1 = policy(&[1, 2], Startup::Home, Fallover::Next, Fallback::Home);
        let g2 = policy(&[2, 1], Startup::Home, Fallover::Next, Fallback::Home);
        let both = |m: &[u8], j: &[u8], c1, c2| {
            (g1.place(set(m), set(j), c1), g2.place(set(m), set(j), c2))
        };
        assert_eq!(
            both(&[1, 2], &[1, 2], Unplaced, Unplaced),
            (Online(id(1)), Online(id(2)))
        );
        assert_eq!(
            both(&[2], &[], Online(id(1)), Online(id(2))),
            (Online(id(2)), Online(id(2)))
        );
        assert_eq!(
            both(&[1, 2], &[1], Online(id(2)), Online(id(2))),
            (Online(id(1)), Online(id(2)))
        );
    }

    #[test]
    fn cascading_walks_down_the_list_and_wraps() {
        let p = policy(&[1, 2, 3], Startup::Home, Fallover::Next, Fallback::Never);
        check(
            &p,
            &[
                (&[1, 2, 3], &[1, 2, 3], Unplaced, Online(id(1))),
                (&[2, 3], &[], Online(id(1)), Online(id(2))),
                (&[3], &[], Online(id(2)), Online(id(3))),
                (&[1, 3], &[1], Online(id(3)), Online(id(3))),
                (&[1, 2], &[2], Online(id(3)), Online(id(1))), // wraps to the top of the list
            ],
        );
        let back = policy(&[1, 2, 3], Startup::Home, Fallover::Next, Fallback::Home);
        assert_eq!(
            back.place(set(&[2, 3]), set(&[2]), Online(id(3))),
            Online(id(2)),
            "fallback to the best available"
        );
    }

    #[test]
    fn a_failed_owner_is_not_eligible() {
        let p = policy(&[1, 2, 3], Startup::Home, Fallover::Next, Fallback::Home);
        // Members 1, 2, 3; the group failed on 1, so 1 is not eligible: it falls over.
        check(
            &p,
            &[
                (&[2, 3], &[], Online(id(1)), Online(id(2))),
                (&[], &[], Online(id(1)), Waiting),
            ],
        );
    }

    #[test]
    fn fallover_never_takes_the_group_offline_until_the_operator_acts() {
        let p = policy(&[1, 2], Startup::Home, Fallover::Never, Fallback::Never);
        check(
            &p,
            &[
                (&[2], &[], Online(id(1)), Offline),
                (&[1, 2], &[1], Offline, Offline),
            ],
        );
    }

    #[test]
    fn concurrent_runs_on_every_eligible_member_of_its_list() {
        let p = policy(&[1, 2, 3], Startup::All, Fallover::Next, Fallback::Never);
        check(
            &p,
            &[
                (&[1, 2, 3], &[1, 2, 3], Unplaced, Concurrent),
                (&[1, 3], &[], Concurrent, Concurrent),
                (&[1], &[], Offline, Offline),
            ],
        );
        let members = set(&[1, 3, 4]);
        assert!(p.runs_on(Concurrent, id(3), members));
        assert!(
            !p.runs_on(Concurrent, id(4), members),
            "4 is not in the list"
        );
        assert!(!p.runs_on(Concurrent, id(2), members), "2 is not eligible");
    }

    #[test]
    fn only_listed_nodes_host_a_group() {
        let p = policy(&[2, 3], Startup::First, Fallover::Next, Fallback::Home);
        assert_eq!(p.place(set(&[1]), set(&[1]), Unplaced), Unplaced);
        assert_eq!(p.place(set(&[1]), set(&[]), Online(id(2))), Waiting);
        assert_eq!(p.place(set(&[1]), set(&[1]), Waiting), Waiting);
    }

    #[test]
    fn placement_is_idempotent_and_never_picks_a_non_member() {
        let policies = [
            policy(&[1, 2, 3], Startup::Home, Fallover::Next, Fallback::Home),
            policy(&[3, 1], Startup::First, Fallover::Next, Fallback::Never),
            policy(&[2, 1, 3], Startup::First, Fallover::Never, Fallback::Home),
        ];
        for p in &policies {
            for bits in 0u64..16 {
                let members = NodeSet::from_bits(bits << 1 | bits & 1);
                for joined in [NodeSet::EMPTY, members] {
                    for cur in [
                        Unplaced,
                        Offline,
                        Online(id(1)),
                        Online(id(2)),
                        Online(id(3)),
                    ] {
                        let a = p.place(members, joined, cur);
                        assert_eq!(a, p.place(members, NodeSet::EMPTY, a), "fixpoint");
                        if let Online(n) = a {
                            assert!(
                                members.contains(n) && p.nodes.contains(&n),
                                "{a:?} for {members:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn plan_codes_round_trip() {
        let mut plan = Plan::unplaced(4);
        plan.set(1, Online(id(64)));
        plan.set(2, Concurrent);
        plan.set(3, Offline);
        assert_eq!(plan.codes(), &[0, 64, 0xFE, 0xFF]);
        assert_eq!(Plan::from_codes(plan.codes()), Some(plan));
        assert_eq!(Plan::from_codes(&[65]), None, "no node 65");
        assert_eq!(Plan::from_codes(&[0; 65]), None, "too many groups");
    }
}
