//! Resource-group placement (DESIGN §5): a pure function of (group policy, quorate view,
//! current placement), computed identically on every member, so no extra round trip
//! decides where a group goes.
//!
//! Policies, HACMP names in brackets: startup `home` (online on home node only) · `first`
//! (online on first available node) · `all` (concurrent access); fallover `next` (cascading:
//! the next node in the list after the lost owner, wrapping) · `never`; fallback `home`
//! (return when a higher-priority node rejoins: hot standby, mutual takeover) · `never`
//! (rotating standby).

use super::spec::NodeId;

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
    /// The group goes offline.
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
    /// Online on each of these nodes (startup `all`).
    Concurrent(NodeSet),
    /// Taken offline by the operator or by `fallover = never`; stays so until `online`.
    Offline,
}

impl GroupPolicy {
    /// The placement for a view whose members are `members`, given the current
    /// placement. `members` must be the members of a *quorate* view: a node without
    /// quorum places nothing (its caller releases everything instead).
    pub fn place(&self, members: NodeSet, current: Placement) -> Placement {
        let eligible = |id: &NodeId| members.contains(*id);
        if self.startup == Startup::All {
            return match current {
                Placement::Offline => Placement::Offline,
                _ => Placement::Concurrent(self.nodes.iter().copied().filter(eligible).collect()),
            };
        }
        let best = self.nodes.iter().copied().find(eligible);
        match current {
            Placement::Offline => Placement::Offline,
            Placement::Unplaced => match self.startup {
                Startup::Home => self
                    .nodes
                    .first()
                    .copied()
                    .filter(eligible)
                    .map_or(Placement::Unplaced, Placement::Online),
                _ => best.map_or(Placement::Unplaced, Placement::Online),
            },
            Placement::Online(owner) if members.contains(owner) && self.nodes.contains(&owner) => {
                match (self.fallback, best) {
                    (Fallback::Home, Some(b)) => Placement::Online(b),
                    _ => Placement::Online(owner),
                }
            }
            Placement::Online(owner) => match self.fallover {
                Fallover::Never => Placement::Offline,
                Fallover::Next => self
                    .next_after(owner, members)
                    .map_or(Placement::Offline, Placement::Online),
            },
            // A concurrent placement of a non-concurrent group cannot arise; re-place it.
            Placement::Concurrent(_) => best.map_or(Placement::Unplaced, Placement::Online),
        }
    }

    /// The first node after `owner` in list order (wrapping) that is in `members`.
    fn next_after(&self, owner: NodeId, members: NodeSet) -> Option<NodeId> {
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

    use Placement::{Concurrent, Offline, Online, Unplaced};

    /// (view members, current placement, expected placement)
    type Row = (&'static [u8], Placement, Placement);

    fn check(p: &GroupPolicy, rows: &[Row]) {
        for (i, (members, current, want)) in rows.iter().enumerate() {
            assert_eq!(
                p.place(set(members), *current),
                *want,
                "row {i}: members {members:?}, current {current:?}"
            );
        }
    }

    #[test]
    fn hot_standby_falls_over_and_back() {
        let p = policy(&[1, 2], Startup::Home, Fallover::Next, Fallback::Home);
        check(
            &p,
            &[
                (&[1, 2], Unplaced, Online(id(1))),
                (&[2], Unplaced, Unplaced), // home only: wait for the home node
                (&[2], Online(id(1)), Online(id(2))), // owner lost: fall over
                (&[1, 2], Online(id(2)), Online(id(1))), // home back: fall back
                (&[], Online(id(1)), Offline), // nobody left
            ],
        );
    }

    #[test]
    fn rotating_standby_stays_where_it_is() {
        let p = policy(&[1, 2], Startup::First, Fallover::Next, Fallback::Never);
        check(
            &p,
            &[
                (&[2], Unplaced, Online(id(2))),         // first available
                (&[1, 2], Online(id(2)), Online(id(2))), // no fallback
                (&[1], Online(id(2)), Online(id(1))),
            ],
        );
    }

    #[test]
    fn mutual_takeover_is_two_groups_with_reversed_lists() {
        let g1 = policy(&[1, 2], Startup::Home, Fallover::Next, Fallback::Home);
        let g2 = policy(&[2, 1], Startup::Home, Fallover::Next, Fallback::Home);
        assert_eq!(
            (
                g1.place(set(&[1, 2]), Unplaced),
                g2.place(set(&[1, 2]), Unplaced)
            ),
            (Online(id(1)), Online(id(2)))
        );
        assert_eq!(
            (
                g1.place(set(&[2]), Online(id(1))),
                g2.place(set(&[2]), Online(id(2)))
            ),
            (Online(id(2)), Online(id(2)))
        );
        assert_eq!(
            (
                g1.place(set(&[1, 2]), Online(id(2))),
                g2.place(set(&[1, 2]), Online(id(2)))
            ),
            (Online(id(1)), Online(id(2)))
        );
    }

    #[test]
    fn cascading_walks_down_the_list_and_wraps() {
        let p = policy(&[1, 2, 3], Startup::Home, Fallover::Next, Fallback::Never);
        check(
            &p,
            &[
                (&[1, 2, 3], Unplaced, Online(id(1))),
                (&[2, 3], Online(id(1)), Online(id(2))),
                (&[3], Online(id(2)), Online(id(3))),
                (&[1, 3], Online(id(3)), Online(id(3))),
                (&[1, 2], Online(id(3)), Online(id(1))), // wraps to the top of the list
            ],
        );
        let back = policy(&[1, 2, 3], Startup::Home, Fallover::Next, Fallback::Home);
        assert_eq!(
            back.place(set(&[2, 3]), Online(id(3))),
            Online(id(2)),
            "fallback to the best available"
        );
    }

    #[test]
    fn fallover_never_takes_the_group_offline_until_the_operator_acts() {
        let p = policy(&[1, 2], Startup::Home, Fallover::Never, Fallback::Never);
        check(
            &p,
            &[(&[2], Online(id(1)), Offline), (&[1, 2], Offline, Offline)],
        );
    }

    #[test]
    fn concurrent_runs_on_every_member() {
        let p = policy(&[1, 2, 3], Startup::All, Fallover::Next, Fallback::Never);
        check(
            &p,
            &[
                (&[1, 2, 3], Unplaced, Concurrent(set(&[1, 2, 3]))),
                (
                    &[1, 3],
                    Concurrent(set(&[1, 2, 3])),
                    Concurrent(set(&[1, 3])),
                ),
                (&[1, 3, 4], Unplaced, Concurrent(set(&[1, 3]))), // 4 is not in the group
                (&[1], Offline, Offline),
            ],
        );
    }

    #[test]
    fn only_listed_nodes_host_a_group() {
        let p = policy(&[2, 3], Startup::First, Fallover::Next, Fallback::Home);
        assert_eq!(p.place(set(&[1]), Unplaced), Unplaced);
        assert_eq!(p.place(set(&[1]), Online(id(2))), Offline);
    }

    #[test]
    fn placement_is_deterministic_and_never_picks_a_non_member() {
        let policies = [
            policy(&[1, 2, 3], Startup::Home, Fallover::Next, Fallback::Home),
            policy(&[3, 1], Startup::First, Fallover::Next, Fallback::Never),
            policy(&[2, 1, 3], Startup::First, Fallover::Never, Fallback::Home),
        ];
        for p in &policies {
            for bits in 0u64..16 {
                let members = NodeSet::from_bits(bits << 1 | bits & 1);
                for cur in [
                    Unplaced,
                    Offline,
                    Online(id(1)),
                    Online(id(2)),
                    Online(id(3)),
                ] {
                    let a = p.place(members, cur);
                    assert_eq!(a, p.place(members, cur));
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
