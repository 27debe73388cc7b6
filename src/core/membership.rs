//! Membership (DESIGN §5): views agreed by propose / ack / commit, and quorum.
//!
//! Each node follows a *leader*: the lowest-id member of the largest set of nodes alive to
//! it, itself included, whose members all hear each other ([`connected`]); with no link
//! cut that is the lowest-id node alive. A node that is its own leader coordinates: when
//! its alive set differs from the committed view it proposes a view (number above any it
//! has seen) with that set; a member acks when it is in the set, believes every proposed
//! member alive, the proposer is its leader (so with a link cut between two nodes that
//! both reach a third, the third follows one coordinator instead of acking each in turn;
//! and a lowest-id node that reaches only a few does not keep a majority that hears each
//! other from forming: review S4), and has acked no equal or higher number; the
//! coordinator commits when every
//! proposed member acked, and otherwise, at the retry deadline, proposes again without
//! the members that stayed silent. A node that receives a commit excluding it falls back
//! to a view of itself alone (never quorate in a cluster of more than two).
//!
//! A view also carries the placement of every resource group ([`Plan`]): the coordinator
//! computes it for the proposed members (a pure function the caller supplies) and proposes
//! again when it changes, so a placement change is a view change and every member installs
//! the same placement at the same moment.
//!
//! Each node also remembers the newest view it *agreed* to (proposed, acked or installed).
//! Its members are carried in heartbeats: a node keeps its lease on its groups only while
//! a majority agrees to views that include it (see `node`), which is what lets a gainer
//! bound how long a cut-off owner can still hold a group.
//!
//! Pure: messages go out through a callback, time is an argument.

use core::time::Duration;

use super::placement::{NodeSet, Plan};
use super::spec::NodeId;
use super::time::Instant;

/// A committed (or proposed) view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Number; higher is newer.
    pub number: u64,
    /// Members.
    pub members: NodeSet,
    /// Placement of every resource group in this view.
    pub plan: Plan,
}

/// What a membership message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMsgKind {
    /// Coordinator → members: please agree to this view.
    Propose,
    /// Member → coordinator: agreed.
    Ack,
    /// Coordinator → members: this view is installed.
    Commit,
}

/// A membership message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewMsg {
    /// Kind.
    pub kind: ViewMsgKind,
    /// The view it is about.
    pub view: View,
    /// Recipient; `None` for every member of `view`.
    pub to: Option<NodeId>,
}

/// How many retry periods a member that failed to ack is left out of proposals.
pub const SUSPECT_RETRIES: u32 = 4;

#[derive(Debug, Clone, Copy)]
struct Proposal {
    view: View,
    acks: NodeSet,
    deadline: Instant,
    /// The latest the deadline moves to while members hold off joining nodes
    /// ([`Membership::set_joining`]): a lease past the first deadline, and never more
    /// than a retry period past the first ack (`first_ack`).
    patience: Instant,
    /// When the first member's ack (or its report of agreeing) arrived: from then its
    /// word for the installed view runs out a lease later, so the proposal must commit,
    /// or be given up for one without the silent members, by half a lease after it.
    first_ack: Option<Instant>,
}

/// One node's membership state.
#[derive(Debug, Clone)]
pub struct Membership {
    local: NodeId,
    view: View,
    /// The view installed before `view` (its members' word for it still counts towards
    /// this node's lease for a while: see `Node::lease_end`).
    previous: View,
    /// Newest view proposed, acked or installed.
    agreed: View,
    /// The newest view an earlier daemon on this host agreed to (`resume_promise`): no
    /// commit of an older view, or of another with its number, is installed. Its word was
    /// given, and may be what a newer view's majority rests on.
    floor: (u64, NodeSet),
    max_seen: u64,
    acked: u64,
    proposal: Option<Proposal>,
    /// Proposals this node is a member of but could not agree to yet (its detector did not
    /// yet see every proposed member alive, or the proposer is not its leader yet); one
    /// may be acked on a later tick if that changes. The newest of each of two proposers:
    /// with one slot, a node holding off a rejoining node let its old leader's fresh
    /// proposal take the place of the rejoining leader's, acked the old leader's, and
    /// had nothing left to ack when the rejoining node became its leader a moment later;
    /// it became that leader's suspect and lost its group (sim `a_node_rejoining_…`,
    /// seed 2915 of 3000).
    pending: [Option<(NodeId, View)>; 2],
    suspects: NodeSet,
    suspects_until: Instant,
    configured: u32,
    two_node: bool,
    /// A node alive here runs another config, and this node has not held authority
    /// since it started (see [`Membership::set_stranger`]).
    stranger: bool,
    /// This node holds the tie-breaker (see [`quorum`]).
    tie_breaker: bool,
    /// Nodes that came up here, or at a member of the installed view, less than a lease
    /// ago (see [`Membership::set_joining`]).
    joining: NodeSet,
    /// Until when a member may still hold off a joining node (see
    /// [`Membership::set_joining`]).
    held_until: Instant,
}

/// Whether `members` hold quorum among `configured` nodes: a strict majority; or exactly
/// half when this side holds the tie-breaker (`tie_breaker`: a SCSI-3 reservation on a
/// tie-breaker disk, won by a PREEMPT race, DESIGN §5); or, with `alone_ok` (`two_node`
/// in a two-node cluster), a lone node.
pub fn quorum(configured: u32, alone_ok: bool, tie_breaker: bool, members: NodeSet) -> bool {
    let n = members.len();
    2 * n > configured || (tie_breaker && 2 * n == configured) || (alone_ok && n > 0)
}

/// The largest set of nodes of `alive` (which holds `local`) that contains `local` and
/// whose members are pairwise connected (`neighbours(id)`: the nodes `id` and which hear
/// each other; `local`'s are `alive`), ties going to the set with the lowest id the other
/// lacks — the same rule on every node, so nodes that know the same agree on who leads
/// (a tie-break by each node's installed view made nodes of a healed split follow
/// different leaders for as long as a cut lasted: review of 2026-12-05). A coordinator
/// proposes it rather than every node it hears: a node some members
/// cannot hear (its NIC down, reached by others over a serial line) would leave the
/// proposal pending on them, and the retry would then leave out the majority that could
/// not ack instead of that one node (review S4). An exact search over bitsets (at most
/// 64 nodes; the clusters are small and nearly complete, which it prunes at once).
pub fn connected(alive: NodeSet, local: NodeId, neighbours: impl Fn(NodeId) -> NodeSet) -> NodeSet {
    // Every node of `alive` and `local` hear each other (that is what alive means).
    let adj = |id: NodeId| {
        if id == local {
            alive.bits() & !local.bit()
        } else {
            (neighbours(id).bits() & alive.bits() | local.bit()) & !id.bit()
        }
    };
    let mut best = local.bit();
    grow(local.bit(), adj(local), 0, &adj, &mut best);
    NodeSet::from_bits(best)
}

/// Bron–Kerbosch with a pivot: `r` is a clique, `p` the nodes that extend it, `x` those
/// already tried.
fn grow(r: u64, mut p: u64, mut x: u64, adj: &impl Fn(NodeId) -> u64, best: &mut u64) {
    if p == 0 {
        if x == 0 && better(r, *best) {
            *best = r;
        }
        return;
    }
    if (r | p).count_ones() < best.count_ones() {
        return;
    }
    let id = |bit: u32| {
        NodeId::new(u8::try_from(bit + 1).expect("invariant: < 64")).expect("invariant: >= 1")
    };
    let pivot = (p | x).trailing_zeros();
    let mut todo = p & !adj(id(pivot));
    while todo != 0 {
        let v = todo.trailing_zeros();
        todo &= todo - 1;
        let nv = adj(id(v));
        grow(r | 1 << v, p & nv, x & nv, adj, best);
        p &= !(1 << v);
        x |= 1 << v;
    }
}

/// Whether clique `a` is preferred to `b`: larger, or as large and holding the lowest id
/// in which they differ.
fn better(a: u64, b: u64) -> bool {
    let (na, nb) = (a.count_ones(), b.count_ones());
    na > nb || na == nb && a != b && a & (a ^ b) & (a ^ b).wrapping_neg() != 0
}

/// The leader of a set a node follows: its lowest member.
fn leader_of(set: NodeSet) -> NodeId {
    set.iter().next().expect("invariant: holds the local node")
}

/// Highest view number a node takes or proposes (views change a few times a second at
/// most: 2^62 of them take longer than any cluster runs). Frames with higher numbers are
/// dropped as implausible (`node_bounds`), so a proposal past it is never needed.
pub const VIEW_MAX: u64 = 1 << 62;

impl Membership {
    /// Starts in the view of this node alone, number 0, with `groups` groups unplaced.
    pub fn new(
        local: NodeId,
        configured: u32,
        two_node: bool,
        groups: usize,
        now: Instant,
    ) -> Membership {
        let mut members = NodeSet::EMPTY;
        members.insert(local);
        let view = View {
            number: 0,
            members,
            plan: Plan::unplaced(groups),
        };
        Membership {
            local,
            view,
            previous: view,
            agreed: view,
            floor: (0, NodeSet::EMPTY),
            max_seen: 0,
            acked: 0,
            proposal: None,
            pending: [None; 2],
            suspects: NodeSet::EMPTY,
            suspects_until: now,
            configured,
            two_node,
            stranger: false,
            tie_breaker: false,
            joining: NodeSet::EMPTY,
            held_until: now,
        }
    }

    /// The highest view number this node has seen, proposed or acked. Heartbeats carry
    /// it, so a coordinator (also a freshly restarted one) proposes above every number any
    /// member has acked and would otherwise refuse.
    pub fn highest_number(&self) -> u64 {
        self.max_seen.max(self.acked).max(self.view.number)
    }

    /// Takes up the promise of the daemon that ran on this host before: it agreed to view
    /// (`number`, `members`) and to nothing newer. This node agrees to nothing up to that
    /// number and installs no commit of an older view (nor of another view with that
    /// number): a new daemon that forgot would vouch for a view its predecessor had left,
    /// and give back a majority to a member cut off from the one it joined (the sim's
    /// `a_restarted_daemon_keeps_its_predecessors_word`). Only before the node runs.
    pub fn resume_promise(&mut self, number: u64, members: NodeSet) {
        assert_eq!(self.view.number, 0, "resume_promise before the node runs");
        let number = number.min(VIEW_MAX);
        self.floor = (number, members);
        self.agreed = View {
            number,
            members,
            plan: self.agreed.plan,
        };
        self.acked = number;
        self.max_seen = number;
    }

    /// The committed view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The newest view this node proposed, acked or installed.
    pub fn agreed(&self) -> View {
        self.agreed
    }

    /// Whether a lone node keeps quorum (`two_node` in a two-node cluster): it then needs
    /// nobody's agreement to hold its groups.
    pub fn alone_is_quorate(&self) -> bool {
        self.two_node && self.configured == 2 && !self.stranger
    }

    /// Whether a node alive here, but running another config, is kept out of the views
    /// while this node has not held authority since it started. A lone node of two is
    /// then not quorate: its peer is alive and may hold the groups in a view of its own
    /// (a node restarted with another config in a `two_node` pair took the groups its
    /// peer held). The node that held them keeps them.
    pub fn set_stranger(&mut self, stranger: bool) {
        self.stranger = stranger;
    }

    /// The nodes that came up here, or at a member of the installed view, less than a
    /// lease ago. While who hears whom about them is still arriving (every link of a
    /// healed split must come up both ways, and each node's heard bitmap go round), a
    /// member of a quorate view neither follows a set that drops its mates for them
    /// ([`Membership::clique`]) nor agrees to one ([`Membership::leaves_mates`]). A
    /// quarter lease was too short: in the simulator's healed 3+3 splits (1 ms
    /// heartbeats, 5 ms timeout) the last links came up a millisecond after the first,
    /// and the winners' coordinator followed the losers into a view without its mates
    /// (`an_even_split_…`, seed 55).
    ///
    /// `held_until`: until when some node may still be holding off a joining node (a
    /// retry period after the last heartbeat that said so). A proposal's deadline waits
    /// for it, by at most a lease: the members that hold off ack once they know more, and
    /// leaving them out as suspects at the first deadline made them lose their groups (a
    /// node restarting through a held cut: the mates' acks came a few hundred µs after
    /// the deadline, sim `a_node_rejoining_…`, seed 1295 of 3000).
    pub fn set_joining(&mut self, joining: NodeSet, held_until: Instant) {
        self.joining = joining;
        self.held_until = held_until;
    }

    /// The configured node count (votes).
    pub fn configured(&self) -> u32 {
        self.configured
    }

    /// Whether `members` hold quorum (see [`quorum`]).
    pub fn is_quorate(&self, members: NodeSet) -> bool {
        quorum(
            self.configured,
            self.alone_is_quorate(),
            self.tie_breaker,
            members,
        )
    }

    /// Whether this node holds the tie-breaker.
    pub fn tie_breaker(&self) -> bool {
        self.tie_breaker
    }

    /// Whether quorum of `members` rests on the tie-breaker alone (exactly half the votes):
    /// the reservation, not a majority's word, then keeps the other half from acting.
    pub fn tie_breaker_decides(&self, members: NodeSet) -> bool {
        self.tie_breaker && 2 * members.len() == self.configured
    }

    /// The tie-breaker was won (`true`) or lost. The disk-reservation layer calls this;
    /// until it exists nothing holds the tie-breaker.
    pub fn set_tie_breaker(&mut self, held: bool) {
        self.tie_breaker = held;
    }

    /// Whether the committed view holds quorum.
    pub fn quorate(&self) -> bool {
        self.is_quorate(self.view.members)
    }

    /// Notes a view number seen anywhere (heartbeats carry the sender's).
    pub fn observe(&mut self, number: u64) {
        self.max_seen = self.max_seen.max(number);
    }

    /// Drives the coordinator role. `alive` must contain this node; `plan` gives the
    /// placement for a member set (called only while coordinating); `stale` says some
    /// member agreed to a view newer than the installed one that was never committed
    /// (an abandoned proposal, possibly another coordinator's): such a member no longer
    /// vouches for the installed view, so a fresh view is proposed even if nothing else
    /// changed. Returns a newly committed view, if any.
    ///
    /// Members that did not ack by a proposal's deadline become suspects: they are left
    /// out of proposals for [`SUSPECT_RETRIES`] retry periods, then tried again, so a node
    /// that cannot ack neither blocks the others nor makes the view flap.
    pub fn tick(
        &mut self,
        now: Instant,
        (alive, neighbours): (NodeSet, impl Fn(NodeId) -> NodeSet),
        retry: Duration,
        plan: impl Fn(NodeSet) -> Plan,
        stale: bool,
        out: &mut impl FnMut(ViewMsg),
    ) -> Option<View> {
        assert!(alive.contains(self.local), "alive set lacks the local node");
        let mine = self.clique(alive, &neighbours);
        self.try_ack(alive, mine, out);
        if leader_of(mine) != self.local {
            self.proposal = None;
            return None;
        }
        if let Some(p) = self.proposal.as_mut() {
            // Members holding off a joining node are waited for (`set_joining`), but not
            // past a retry period after the first ack: the members that acked no longer
            // vouch for the installed view, and a lost ack waited out to the patience
            // left every member without its lease (review of 2026-12-05, F1).
            let cap = p
                .first_ack
                .map_or(p.patience, |t| p.patience.min(t.saturating_add(retry)));
            p.deadline = p.deadline.max(self.held_until.min(cap));
        }
        if let Some(p) = self.proposal {
            let mut waiting = p.view.members;
            waiting.remove(self.local);
            if NodeSet::from_bits(waiting.bits() & !p.acks.bits()).is_empty() {
                return Some(self.commit(p.view, out));
            }
            if now >= p.deadline {
                self.suspects = NodeSet::from_bits(waiting.bits() & !p.acks.bits());
                self.suspects_until = now.saturating_add(retry * SUSPECT_RETRIES);
            } else {
                let target = self.target(now, alive, &neighbours);
                if p.view.members == target && p.view.plan == plan(target) {
                    return None;
                }
            }
            self.proposal = None;
        }
        let target = self.target(now, alive, &neighbours);
        let target_plan = plan(target);
        if target != self.view.members || target_plan != self.view.plan || stale {
            return self.propose(now, target, target_plan, retry, out);
        }
        None
    }

    /// The member set to propose: of the alive set less current suspects, the largest
    /// part whose members all hear each other (see [`connected`]) — of those with ids
    /// from this node's up, when the largest is a lower node's: no member would ack this
    /// node's proposal of that one (they ack only their leader's), and proposing nothing
    /// left the installed view without the word of the members that had acked the last
    /// proposal, every member without its lease until the suspects were tried again
    /// (review of 2026-12-05, F2; unit test
    /// `a_coordinator_proposes_a_set_it_leads_when_its_suspects_are_left_out`).
    fn target(
        &self,
        now: Instant,
        alive: NodeSet,
        neighbours: &impl Fn(NodeId) -> NodeSet,
    ) -> NodeSet {
        let candidates = if now < self.suspects_until {
            NodeSet::from_bits(alive.bits() & !self.suspects.bits())
        } else {
            alive
        };
        let set = self.clique(candidates, neighbours);
        if leader_of(set) == self.local {
            return set;
        }
        let from_here = candidates.bits() & !(self.local.bit() - 1);
        self.clique(NodeSet::from_bits(from_here), neighbours)
    }

    /// Whether agreeing to `view` would leave behind a mate (a member of this node's
    /// quorate view) that is in `mine`, the set this node follows, while nodes are
    /// joining (see [`Membership::set_joining`]): its leader may not know yet that the
    /// mates hear the joining nodes too, and proposed what it knew (sim `an_even_split_…`,
    /// seed 203 of 1000: a member of the winning half acked the rejoining coordinator's majority
    /// without its mates). The proposal waits until the leader, knowing more, proposes
    /// anew, or the joining ends. The members of a view end the joining together, and
    /// a coordinator waits for those that hold off (see [`Membership::set_joining`]):
    /// a refusal held past the retry period made this node a suspect for two leases,
    /// and it released. Only while the leader leaves out a mate this node's own largest
    /// set holds (a real cut does not).
    fn leaves_mates(&self, mine: NodeSet, view: View) -> bool {
        let keep = self.view.members.bits();
        self.joining.bits() & !keep != 0
            && self.quorate()
            && keep & mine.bits() & !view.members.bits() != 0
    }

    /// The set this node follows: the largest set of `alive` that hears each other
    /// ([`connected`]) — unless, while nodes are joining, that set drops a mate (a member
    /// of this node's quorate view alive here) and the largest set without the joining
    /// nodes keeps every such mate and has quorum: then that one. As a split healed, a
    /// node of the winning half followed the losing half's coordinator into a majority
    /// without its mates before anyone knew that they heard the others too, and that
    /// majority took their groups over (sim `an_even_split_…`, seed 3).
    fn clique(&self, alive: NodeSet, neighbours: &impl Fn(NodeId) -> NodeSet) -> NodeSet {
        let all = connected(alive, self.local, neighbours);
        let mates = self.view.members.bits() & alive.bits();
        let joining = self.joining.bits() & !self.view.members.bits() & alive.bits();
        if mates & !all.bits() == 0 || joining == 0 || !self.quorate() {
            return all;
        }
        let settled = connected(
            NodeSet::from_bits(alive.bits() & !joining),
            self.local,
            neighbours,
        );
        if mates & !settled.bits() == 0 && self.is_quorate(settled) {
            settled
        } else {
            all
        }
    }

    fn propose(
        &mut self,
        now: Instant,
        members: NodeSet,
        plan: Plan,
        retry: Duration,
        out: &mut impl FnMut(ViewMsg),
    ) -> Option<View> {
        // Never past VIEW_MAX, which no accepted frame exceeds: refuse rather than wrap.
        let next = self
            .highest_number()
            .checked_add(1)
            .filter(|n| *n <= VIEW_MAX)?;
        self.max_seen = next;
        let view = View {
            number: self.max_seen,
            members,
            plan,
        };
        self.agreed = view;
        if members.len() == 1 {
            return Some(self.commit(view, out));
        }
        self.proposal = Some(Proposal {
            view,
            acks: NodeSet::EMPTY,
            deadline: now.saturating_add(retry),
            patience: now.saturating_add(retry * 3),
            first_ack: None,
        });
        out(ViewMsg {
            kind: ViewMsgKind::Propose,
            view,
            to: None,
        });
        None
    }

    fn commit(&mut self, view: View, out: &mut impl FnMut(ViewMsg)) -> View {
        self.proposal = None;
        self.install(view);
        if view.members.len() > 1 {
            out(ViewMsg {
                kind: ViewMsgKind::Commit,
                view,
                to: None,
            });
        }
        view
    }

    fn install(&mut self, view: View) {
        self.observe(view.number);
        self.acked = self.acked.max(view.number);
        if view.number >= self.agreed.number {
            self.agreed = view;
        }
        if view != self.view {
            self.previous = self.view;
        }
        self.view = view;
    }

    /// The view installed before the current one (the first one: the start view).
    pub fn previous(&self) -> View {
        self.previous
    }

    /// A proposal from `from`. Acked now if this node agrees (see the module docs), or
    /// kept and acked on a later tick once this node's detector agrees.
    pub fn on_propose(
        &mut self,
        from: NodeId,
        view: View,
        (alive, neighbours): (NodeSet, impl Fn(NodeId) -> NodeSet),
        out: &mut impl FnMut(ViewMsg),
    ) {
        self.observe(view.number);
        let acceptable = view.members.contains(self.local)
            && view.members.iter().next() == Some(from)
            && view.number > self.acked
            && view.number > self.view.number;
        if acceptable {
            let mine = self.clique(alive, &neighbours);
            // The slot: the proposer's own, an empty one, or the one worth least — a
            // proposer not alive here (not admitted), else not this node's leader, else
            // the lower number (a third proposer evicted the leader's entry: review F4).
            let worth = |p: Option<(NodeId, View)>| {
                p.map(|(f, v)| (alive.contains(f), f == leader_of(mine), v.number))
            };
            let slot = self
                .pending
                .iter()
                .position(|p| p.is_some_and(|(f, _)| f == from))
                .unwrap_or_else(|| usize::from(worth(self.pending[1]) < worth(self.pending[0])));
            self.pending[slot] = Some((from, view));
            self.try_ack(alive, mine, out);
        }
    }

    /// Acks a kept proposal if it is newer than any acked, every member is alive here, its
    /// proposer is this node's leader (the lowest of `mine`, the set it follows: see
    /// [`Membership::clique`]), and it does not leave a mate of `mine` behind while nodes
    /// are joining ([`Membership::leaves_mates`]).
    fn try_ack(&mut self, alive: NodeSet, mine: NodeSet, out: &mut impl FnMut(ViewMsg)) {
        let acked = self.acked;
        for p in &mut self.pending {
            *p = p.filter(|(_, v)| v.number > acked);
        }
        let leader = leader_of(mine);
        let Some((from, view)) = self.pending.into_iter().flatten().find(|(from, view)| {
            *from == leader
                && view.members.bits() & !alive.bits() == 0
                && !self.leaves_mates(mine, *view)
        }) else {
            return;
        };
        self.acked = view.number;
        self.agreed = view;
        for p in &mut self.pending {
            *p = p.filter(|(_, v)| v.number > view.number);
        }
        out(ViewMsg {
            kind: ViewMsgKind::Ack,
            view,
            to: Some(from),
        });
    }

    /// An ack from `from`.
    pub fn on_ack(&mut self, now: Instant, from: NodeId, view: View) {
        if let Some(p) = self.proposal.as_mut().filter(|p| p.view == view) {
            p.acks.insert(from);
            p.first_ack.get_or_insert(now);
        }
    }

    /// A commit. Returns the view this node now has if it changed.
    pub fn on_commit(&mut self, from: NodeId, view: View) -> Option<View> {
        self.observe(view.number);
        if view.number <= self.view.number || view.members.iter().next() != Some(from) {
            return None;
        }
        let (floor, promised) = self.floor;
        if view.number < floor || view.number == floor && view.members != promised {
            return None;
        }
        if view.members.contains(self.local) {
            self.install(view);
        } else if self.view.members.len() > 1 && self.view.members.iter().next() != Some(from)
            || self.agreed.number >= view.number && self.agreed.members.contains(self.local)
        {
            // Excluded by a node that does not coordinate this node's view: that commit is
            // about other nodes (with links cut between some of them, another part formed
            // its own view). Taking it as this node's exclusion knocked a member out of a
            // majority that did not exclude it, again every few retries (review S4). Or
            // excluded by a view no newer than one this node agreed to with itself in it
            // (its leader's, while the old coordinator formed a view without it): going
            // alone at that number would refuse the commit of the view it agreed to, and
            // leave that view's members without its word. Ignoring a commit is what its
            // loss does.
            return None;
        } else {
            // Excluded: this node is on its own until it is admitted again.
            let mut alone = NodeSet::EMPTY;
            alone.insert(self.local);
            self.install(View {
                number: view.number,
                members: alone,
                plan: view.plan,
            });
        }
        Some(self.view)
    }

    /// A member's heartbeat says it runs view number `installed`. If this node
    /// coordinates the committed view and that member of it is behind (its commit was
    /// lost), the commit is sent to it again.
    pub fn resync(&self, member: NodeId, installed: u64, out: &mut impl FnMut(ViewMsg)) {
        let coordinating =
            self.view.members.iter().next() == Some(self.local) && self.view.members.len() > 1;
        if coordinating && self.view.members.contains(member) && installed < self.view.number {
            out(ViewMsg {
                kind: ViewMsgKind::Commit,
                view: self.view,
                to: Some(member),
            });
        }
    }

    /// Forgets the proposals kept from `from`: its daemon restarted or died, and what
    /// that incarnation proposed is no longer its word (review F4).
    pub fn forget_proposals(&mut self, from: NodeId) {
        for p in &mut self.pending {
            *p = p.filter(|(f, _)| *f != from);
        }
    }

    /// Drops this node's pending proposal (membership pauses while a peer is settling; a
    /// fresh proposal follows).
    pub fn abandon_proposal(&mut self) {
        self.proposal = None;
    }

    /// What the members that have not acked the pending proposal say they agreed to, at
    /// `now` (`agreed(id)`: the number and members of the newest view `id` agreed to,
    /// from its heartbeats).
    ///
    /// Agreed to the proposal itself: an ack (its ack frame was lost; the heartbeats
    /// that follow say the same). Before, nothing sent an ack or a proposal again, and
    /// the member was left out at the deadline (review of 2026-12-05, F1).
    ///
    /// Agreed to a view it can no longer leave for the proposal (a higher number, or the
    /// same number with other members): the proposal is dropped. Such a member never
    /// acks it, and waiting for the retry made it a suspect and cost it its place in the
    /// next view: as a split healed, two members of the winning half acked their old
    /// coordinator's proposal, which it gave up when it turned to follow the rejoining
    /// lowest id, whose proposal had a lower number; the lowest id left them out at its
    /// retry, and they lost their groups (sim `an_even_split_…`, seed 217 of 1000). A
    /// fresh proposal, numbered above theirs, follows at once.
    pub fn hear_agreements(
        &mut self,
        now: Instant,
        agreed: impl Fn(NodeId) -> Option<(u64, NodeSet)>,
    ) {
        let Some(p) = self.proposal.as_mut() else {
            return;
        };
        let waiting = p.view.members.bits() & !p.acks.bits() & !self.local.bit();
        let mut outbid = None;
        for id in NodeSet::from_bits(waiting).iter() {
            match agreed(id) {
                Some((n, m)) if n == p.view.number && m == p.view.members => {
                    p.acks.insert(id);
                    p.first_ack.get_or_insert(now);
                }
                Some((n, _)) if n >= p.view.number => outbid = Some(n),
                _ => {}
            }
        }
        if let Some(n) = outbid {
            self.observe(n);
            self.proposal = None;
        }
    }

    /// When the pending proposal's retry is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.proposal.map(|p| p.deadline)
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
