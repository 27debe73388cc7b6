//! Membership on a tiny synchronous network: each node gets the alive set its detector
//! would report; messages are delivered at once, in order.

use super::*;

const RETRY: Duration = Duration::from_millis(5);

fn id(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn set(ids: &[u8]) -> NodeSet {
    ids.iter().map(|i| id(*i)).collect()
}

/// Every node hears every other.
fn all_hear(_: NodeId) -> NodeSet {
    NodeSet::from_bits(u64::MAX)
}

fn no_groups(_: NodeSet) -> Plan {
    Plan::unplaced(0)
}

struct Net {
    nodes: Vec<Membership>,
    /// alive[i]: what node i+1's detector reports.
    alive: Vec<NodeSet>,
    /// Directed links that deliver: (from, to).
    cut: Vec<(u8, u8)>,
}

impl Net {
    fn new(n: u8, two_node: bool) -> Net {
        let t = Instant::from_nanos(0);
        Net {
            nodes: (1..=n)
                .map(|i| Membership::new(id(i), u32::from(n), two_node, 0, t))
                .collect(),
            alive: (1..=n).map(|_| set(&(1..=n).collect::<Vec<_>>())).collect(),
            cut: vec![],
        }
    }

    fn node(&self, i: u8) -> &Membership {
        &self.nodes[usize::from(i - 1)]
    }

    /// Who node `x` and which hear each other (each other's detector says alive).
    fn neighbours(alive: &[NodeSet], x: NodeId) -> NodeSet {
        let ax = alive[usize::from(x.get() - 1)];
        ax.iter()
            .filter(|y| *y != x && alive[usize::from(y.get() - 1)].contains(x))
            .collect()
    }

    /// Ticks node `i` at `now`; its messages go to `queue`.
    fn tick(&mut self, i: usize, now: Instant, queue: &mut Vec<(u8, ViewMsg)>) {
        let from = u8::try_from(i + 1).unwrap();
        let reach = (self.alive[i], |x| Net::neighbours(&self.alive, x));
        self.nodes[i].tick(now, reach, RETRY, no_groups, false, &mut |m| {
            queue.push((from, m))
        });
    }

    /// Ticks every node at `t` and delivers everything until quiet.
    fn step(&mut self, t: u64) {
        let now = Instant::from_nanos(t);
        let mut queue: Vec<(u8, ViewMsg)> = vec![];
        for i in 0..self.nodes.len() {
            self.tick(i, now, &mut queue);
        }
        let mut rounds = 0;
        while let Some((from, msg)) = queue.pop() {
            rounds += 1;
            assert!(rounds < 1000, "message storm");
            let targets: Vec<u8> = match msg.to {
                Some(to) => vec![to.get()],
                None => msg
                    .view
                    .members
                    .iter()
                    .map(NodeId::get)
                    .filter(|t| *t != from)
                    .collect(),
            };
            for to in targets {
                if self.cut.contains(&(from, to)) {
                    continue;
                }
                let j = usize::from(to - 1);
                let all = &self.alive;
                let reach = (all[j], |x| Net::neighbours(all, x));
                let m = &mut self.nodes[j];
                match msg.kind {
                    ViewMsgKind::Propose => {
                        m.on_propose(id(from), msg.view, reach, &mut |r| queue.push((to, r)))
                    }
                    ViewMsgKind::Ack => m.on_ack(now, id(from), msg.view),
                    ViewMsgKind::Commit => {
                        m.on_commit(id(from), msg.view);
                    }
                }
            }
            // The coordinator commits as soon as acks are in.
            for i in 0..self.nodes.len() {
                self.tick(i, now, &mut queue);
            }
        }
    }
}

#[test]
fn all_alive_agree_on_one_quorate_view() {
    let mut net = Net::new(3, false);
    net.step(0);
    for i in 1..=3 {
        assert_eq!(
            net.node(i).view(),
            View {
                number: 1,
                members: set(&[1, 2, 3]),
                plan: Plan::unplaced(0),
            },
            "node {i}"
        );
        assert!(net.node(i).quorate());
    }
}

#[test]
fn a_dead_coordinator_is_replaced_by_the_next_lowest() {
    let mut net = Net::new(3, false);
    net.step(0);
    net.alive[1] = set(&[2, 3]);
    net.alive[2] = set(&[2, 3]);
    net.cut = vec![(1, 2), (1, 3), (2, 1), (3, 1)];
    net.step(1);
    assert_eq!(
        net.node(2).view(),
        View {
            number: 2,
            members: set(&[2, 3]),
            plan: Plan::unplaced(0),
        }
    );
    assert_eq!(net.node(3).view(), net.node(2).view());
    assert!(net.node(2).quorate(), "2 of 3 is a majority");
}

#[test]
fn a_minority_partition_is_not_quorate() {
    let mut net = Net::new(3, false);
    net.step(0);
    net.alive = vec![set(&[1]), set(&[2, 3]), set(&[2, 3])];
    net.cut = vec![(1, 2), (1, 3), (2, 1), (3, 1)];
    net.step(1);
    assert_eq!(net.node(1).view().members, set(&[1]));
    assert!(!net.node(1).quorate());
    assert!(net.node(2).quorate() && net.node(3).quorate());
}

#[test]
fn a_member_that_never_acks_is_dropped_at_the_deadline() {
    let mut net = Net::new(3, false);
    // 3 does not believe 1 alive, so it never acks 1's proposals; 2 sees everybody.
    net.alive[2] = set(&[2, 3]);
    net.step(0);
    assert_eq!(net.node(1).view().number, 0, "nothing committed yet");
    net.step(6_000_000); // past RETRY
    assert_eq!(net.node(1).view().members, set(&[1, 2]));
    assert_eq!(net.node(2).view(), net.node(1).view());
    assert_eq!(
        net.node(3).view().members,
        set(&[3]),
        "3 was excluded by the commit"
    );
    assert!(!net.node(3).quorate());
}

#[test]
fn quorum_is_a_majority_or_half_with_the_tie_breaker() {
    for (configured, alone_ok, tie, members, want) in [
        (3, false, false, &[1, 2][..], true),
        (3, false, false, &[1][..], false),
        (4, false, false, &[1, 2][..], false),
        (4, false, true, &[1, 2][..], true),
        (4, false, true, &[1][..], false),
        (2, false, true, &[2][..], true),
        (2, true, false, &[2][..], true),
        (2, false, false, &[2][..], false),
        (5, false, true, &[1, 2][..], false),
    ] {
        assert_eq!(
            quorum(configured, alone_ok, tie, set(members)),
            want,
            "{members:?} of {configured}, alone_ok {alone_ok}, tie-breaker {tie}"
        );
    }
}

#[test]
fn two_node_mode_lets_a_lone_survivor_keep_quorum() {
    for (two_node, want) in [(false, false), (true, true)] {
        let mut net = Net::new(2, two_node);
        net.step(0);
        assert!(net.node(1).quorate());
        net.alive[1] = set(&[2]);
        net.cut = vec![(1, 2), (2, 1)];
        net.step(1);
        assert_eq!(net.node(2).view().members, set(&[2]));
        assert_eq!(net.node(2).quorate(), want, "two_node = {two_node}");
    }
}

#[test]
fn stale_and_foreign_proposals_are_not_acked() {
    let mut m = Membership::new(id(2), 3, false, 0, Instant::from_nanos(0));
    let mut out = vec![];
    let v1 = View {
        number: 1,
        members: set(&[1, 2, 3]),
        plan: Plan::unplaced(0),
    };
    m.on_propose(id(1), v1, (set(&[1, 2, 3]), all_hear), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "acked");
    m.on_propose(id(1), v1, (set(&[1, 2, 3]), all_hear), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "same number again: not acked");
    let v2 = View {
        number: 2,
        members: set(&[1, 2, 3]),
        plan: Plan::unplaced(0),
    };
    m.on_propose(id(3), v2, (set(&[1, 2, 3]), all_hear), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "proposer is not the lowest member");
    m.on_propose(id(1), v2, (set(&[1, 2]), all_hear), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "3 is not alive here: kept, not acked");
    m.tick(
        Instant::from_nanos(0),
        (set(&[1, 2, 3]), |_| set(&[1, 2, 3])),
        RETRY,
        no_groups,
        false,
        &mut |x| out.push(x),
    );
    assert_eq!(
        out.last().map(|x| (x.kind, x.view)),
        Some((ViewMsgKind::Ack, v2)),
        "acked once 3 is seen alive"
    );
    let v3 = View {
        number: 3,
        members: set(&[1, 3]),
        plan: Plan::unplaced(0),
    };
    m.on_propose(id(1), v3, (set(&[1, 2, 3]), all_hear), &mut |x| out.push(x));
    assert_eq!(out.len(), 2, "not a member: no further ack");
    assert_eq!(
        m.on_commit(
            id(1),
            View {
                number: 0,
                members: set(&[1, 2]),
                plan: Plan::unplaced(0),
            }
        ),
        None,
        "old commit ignored"
    );
}

#[test]
fn a_suspect_is_retried_without_flapping_and_admitted_once_it_can_ack() {
    let ms = 1_000_000;
    let mut net = Net::new(3, false);
    net.alive[2] = set(&[2, 3]);
    net.step(0);
    net.step(6 * ms);
    let first = net.node(1).view();
    assert_eq!(first.members, set(&[1, 2]));
    net.step(30 * ms); // suspects expired: 3 is proposed again, still does not ack
    assert_eq!(net.node(1).view(), first, "no new view while 3 cannot ack");
    net.step(36 * ms); // that proposal's deadline: 3 is a suspect again, nothing committed
    assert_eq!(net.node(1).view(), first);
    net.alive[2] = set(&[1, 2, 3]);
    net.step(60 * ms);
    assert_eq!(net.node(1).view().members, set(&[1, 2, 3]));
    assert_eq!(net.node(3).view(), net.node(1).view());
}

/// A daemon started with its predecessor's promise (view 5 = {2, 3}) installs no commit
/// of an older view, nor another view numbered 5, acks only above 5, and says it agreed
/// to 5 until it agrees to something newer; the view it promised it installs.
#[test]
fn a_resumed_promise_refuses_older_commits_and_acks_only_above_it() {
    let mut m = Membership::new(id(2), 3, false, 0, Instant::from_nanos(0));
    m.resume_promise(5, set(&[2, 3]));
    let view = |number, members: &[u8]| View {
        number,
        members: set(members),
        plan: Plan::unplaced(0),
    };
    assert_eq!((m.agreed().number, m.agreed().members), (5, set(&[2, 3])));
    assert_eq!(m.highest_number(), 5, "a proposal here goes above it");
    assert_eq!(m.on_commit(id(1), view(4, &[1, 2, 3])), None, "older view");
    assert_eq!(m.on_commit(id(1), view(5, &[1, 2])), None, "another view 5");
    assert_eq!(m.view().number, 0);
    let mut out = vec![];
    m.on_propose(
        id(1),
        view(5, &[1, 2, 3]),
        (set(&[1, 2, 3]), all_hear),
        &mut |x| out.push(x),
    );
    assert!(
        out.is_empty(),
        "a proposal at the promised number is not acked"
    );
    m.on_propose(
        id(1),
        view(6, &[1, 2, 3]),
        (set(&[1, 2, 3]), all_hear),
        &mut |x| out.push(x),
    );
    assert_eq!(out.len(), 1, "acked above it");
    assert_eq!(m.agreed().number, 6);
    let mut n = Membership::new(id(2), 3, false, 0, Instant::from_nanos(0));
    n.resume_promise(5, set(&[1, 2]));
    assert_eq!(
        n.on_commit(id(1), view(5, &[1, 2])),
        Some(view(5, &[1, 2])),
        "the promised view itself (its coordinator resends the commit)"
    );
}

/// Review S4: of the nodes alive here, the largest part that hears each other.
#[test]
fn the_connected_part_is_the_largest_set_that_hears_each_other() {
    // Node 5's NIC is down: 1 and 4 hear it over serial lines, 2 and 3 do not.
    let links = |x: NodeId| match x.get() {
        1 | 4 => set(&[1, 2, 3, 4, 5]),
        2 | 3 => set(&[1, 2, 3, 4]),
        _ => set(&[1, 4, 5]),
    };
    let all = set(&[1, 2, 3, 4, 5]);
    assert_eq!(connected(all, id(1), links), set(&[1, 2, 3, 4]));
    assert_eq!(connected(set(&[1, 4, 5]), id(5), links), set(&[1, 4, 5]));
    // A cut between 1 and 2, both reaching 3: two sets of two; the lower ids win.
    let cut = |x: NodeId| match x.get() {
        1 => set(&[1, 3]),
        2 => set(&[2, 3]),
        _ => set(&[1, 2, 3]),
    };
    assert_eq!(connected(set(&[1, 2, 3]), id(3), cut), set(&[1, 3]));
    assert_eq!(connected(set(&[2, 3]), id(2), cut), set(&[2, 3]));
    // Everyone hears everyone: all of them.
    assert_eq!(connected(all, id(2), |_| all), all);
}

/// Steps `net` every millisecond for `ms`; returns node `i`'s view numbers, one a step.
fn views_over(net: &mut Net, i: u8, from_ms: u64, ms: u64) -> Vec<u64> {
    (from_ms..from_ms + ms)
        .map(|t| {
            net.step(t * 1_000_000);
            net.node(i).view().number
        })
        .collect()
}

/// Review S4, 5 nodes: node 5 reached only by 1 and 4 (its NIC down, serial lines to
/// them). The four that hear each other form a quorate view at once and keep it; before,
/// 2 and 3 left the proposal with 5 pending, the retry left out the refusing majority,
/// and a minority view {1, 4} took quorum from everyone, again every few leases.
#[test]
fn a_node_only_some_members_hear_is_left_out_not_the_majority() {
    let mut net = Net::new(5, false);
    net.step(0);
    net.alive = vec![
        set(&[1, 2, 3, 4, 5]),
        set(&[1, 2, 3, 4]),
        set(&[1, 2, 3, 4]),
        set(&[1, 2, 3, 4, 5]),
        set(&[1, 4, 5]),
    ];
    net.cut = vec![(2, 5), (5, 2), (3, 5), (5, 3)];
    let seen = views_over(&mut net, 1, 1, 100);
    for i in 1..=4 {
        assert_eq!(net.node(i).view().members, set(&[1, 2, 3, 4]), "node {i}");
        assert!(net.node(i).quorate(), "node {i}");
    }
    assert!(
        seen.windows(2).filter(|w| w[0] != w[1]).count() <= 1,
        "one view change, not churn: {seen:?}"
    );
}

/// Review S4, 3 nodes: the link between 1 and 2 is cut, both reach 3. 3 follows the
/// lowest node it hears (1) and acks only its proposals, so {1, 3} is formed once and
/// kept; before, 1 and 2 each proposed, 3 acked each newer one in turn, and the view
/// changed about once a round trip for as long as the cut lasted.
#[test]
fn a_cut_between_two_members_does_not_make_two_coordinators_take_turns() {
    let mut net = Net::new(3, false);
    net.step(0);
    net.alive = vec![set(&[1, 3]), set(&[2, 3]), set(&[1, 2, 3])];
    net.cut = vec![(1, 2), (2, 1)];
    let seen = views_over(&mut net, 3, 1, 200);
    assert_eq!(net.node(1).view().members, set(&[1, 3]));
    assert_eq!(net.node(3).view(), net.node(1).view());
    assert!(net.node(1).quorate() && net.node(3).quorate());
    assert!(!net.node(2).quorate());
    assert!(
        seen.windows(2).filter(|w| w[0] != w[1]).count() <= 1,
        "3 installed one view, not a churn: {seen:?}"
    );
}

/// A split heals (joining nodes, see `Membership::set_joining`): a member of a quorate
/// view follows the set that keeps its mates while who hears whom about the joining
/// nodes is still arriving, and holds back a proposal that leaves a mate it follows
/// behind; but only then — not when keeping its mates gains no quorate set, nor for a
/// mate that its own largest set drops for a cut that is real (review of 2026-12-05,
/// problem B: a held cut beside a joining node stalled the view a lease and more).
#[test]
fn a_joining_node_does_not_take_a_member_from_its_mates() {
    let t = Instant::from_nanos(0);
    let view = |members: &[u8]| View {
        number: 7,
        members: set(members),
        plan: Plan::unplaced(0),
    };
    // Five nodes; 3, 4, 5 in a quorate view; 1 and 2 come back. Node 3 hears all, and
    // knows 1 and 2 hear it and 5, but not yet that they hear 4.
    let mut m = Membership::new(id(3), 5, false, 0, t);
    assert!(m.on_commit(id(3), view(&[3, 4, 5])).is_some());
    let all = set(&[1, 2, 3, 4, 5]);
    let partial = |x: NodeId| match x.get() {
        1 | 2 => set(&[1, 2, 3, 5]),
        4 => set(&[3, 4, 5]),
        _ => all,
    };
    assert_eq!(m.clique(all, &partial), set(&[1, 2, 3, 5]));
    m.set_joining(set(&[1, 2]), t);
    assert_eq!(m.clique(all, &partial), set(&[3, 4, 5]), "keeps 4");
    let theirs = view(&[1, 2, 3, 5]);
    assert!(
        m.leaves_mates(set(&[1, 2, 3, 4, 5]), theirs),
        "the full set is known"
    );
    // Once they are known to hear 4 as well, the largest set is all five.
    assert_eq!(m.clique(all, &|_| all), all);
    m.set_joining(NodeSet::EMPTY, t);
    assert_eq!(m.clique(all, &partial), set(&[1, 2, 3, 5]), "joining over");
    assert!(!m.leaves_mates(set(&[1, 2, 3, 4, 5]), theirs));

    // Problem B: 1..4 in a quorate view of five, 5 joining, and a real cut between 3
    // and 4. Node 2's largest set drops 4 for the cut, not for 5: it follows it, and
    // agrees to a proposal without 4.
    let mut m = Membership::new(id(2), 5, false, 0, t);
    assert!(m.on_commit(id(1), view(&[1, 2, 3, 4])).is_some());
    m.set_joining(set(&[5]), t);
    let cut = |x: NodeId| match x.get() {
        3 => set(&[1, 2, 3, 5]),
        4 => set(&[1, 2, 4, 5]),
        _ => all,
    };
    let mine = m.clique(all, &cut);
    assert_eq!(mine, set(&[1, 2, 3, 5]));
    assert!(!m.leaves_mates(mine, view(&[1, 2, 3, 5])));
}

/// A member keeps the newest proposal of each of two proposers: its current leader's
/// fresh proposal does not take the place of one from a node about to become its leader,
/// which it acks once it is (sim `a_node_rejoining_…`, seed 2915).
#[test]
fn a_member_keeps_the_proposal_of_its_next_leader_beside_its_current_leaders() {
    let t = Instant::from_nanos(0);
    let view = |number: u64, members: &[u8]| View {
        number,
        members: set(members),
        plan: Plan::unplaced(0),
    };
    let mut m = Membership::new(id(3), 5, false, 0, t);
    assert!(m.on_commit(id(2), view(2, &[2, 3, 4, 5])).is_some());
    let mut acks = vec![];
    // Node 1 is not alive here yet: its proposal waits.
    let without_1 = set(&[2, 3, 4, 5]);
    m.on_propose(
        id(1),
        view(4, &[1, 2, 3, 4]),
        (without_1, all_hear),
        &mut |x| acks.push(x),
    );
    assert!(acks.is_empty());
    // Its leader, node 2, proposes anew below it: acked.
    m.on_propose(
        id(2),
        view(3, &[2, 3, 4, 5]),
        (without_1, all_hear),
        &mut |x| acks.push(x),
    );
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].view.number, acks[0].to), (3, Some(id(2))));
    // Node 1 is alive now and leads: its kept proposal is acked at the next tick.
    let all = set(&[1, 2, 3, 4, 5]);
    m.tick(t, (all, all_hear), RETRY, no_groups, false, &mut |x| {
        acks.push(x)
    });
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert_eq!((acks[1].view.number, acks[1].to), (4, Some(id(1))));
}

/// A coordinator waits past its deadline for members that may be holding off a joining
/// node (`set_joining`'s `held_until`), by at most a lease (three retry periods from the
/// proposal) and at most a retry period after the first ack (the members that acked no
/// longer vouch for the installed view: review F1), and only then leaves the silent ones
/// out (sim `a_node_rejoining_…`, seed 1295).
#[test]
fn a_coordinator_waits_for_members_that_hold_off_a_joining_node() {
    let at = Instant::from_nanos;
    let ms = 1_000_000;
    let mut m = Membership::new(id(1), 4, false, 0, at(0));
    let mut out = vec![];
    let all = set(&[1, 2, 3, 4]);
    let tick = |m: &mut Membership, now: u64, out: &mut Vec<ViewMsg>| {
        m.tick(
            at(now),
            (all, all_hear),
            RETRY,
            no_groups,
            false,
            &mut |x| out.push(x),
        )
    };
    assert!(tick(&mut m, 0, &mut out).is_none());
    assert_eq!(out[0].kind, ViewMsgKind::Propose);
    let proposal = out[0].view;
    // Past the deadline (5 ms), nobody acked, but someone held off a joining node until
    // 9 ms: waits.
    m.set_joining(NodeSet::EMPTY, at(9 * ms));
    assert!(tick(&mut m, 6 * ms, &mut out).is_none());
    assert_eq!(out.len(), 1, "no new proposal: {out:?}");
    assert_eq!(m.next_deadline(), Some(at(9 * ms)));
    // Node 2 acks at 7 ms; held much longer, the wait ends a retry period later.
    m.on_ack(at(7 * ms), id(2), proposal);
    m.set_joining(NodeSet::EMPTY, at(40 * ms));
    assert!(tick(&mut m, 10 * ms, &mut out).is_none());
    assert_eq!(m.next_deadline(), Some(at(12 * ms)));
    assert!(tick(&mut m, 12 * ms, &mut out).is_none());
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].view.members, set(&[1, 2]), "3 and 4 left out");
}

/// A member whose ack was lost says in its heartbeats that it agreed to the proposal:
/// that is its ack (review F1: nothing sent either again, and the member was left out
/// at the deadline, or, with the deadline waiting for holders, every member lost its
/// lease). A member that agreed to a higher number outbids the proposal instead.
#[test]
fn a_members_report_of_agreeing_is_its_ack() {
    let at = Instant::from_nanos;
    let mut m = Membership::new(id(1), 3, false, 0, at(0));
    let mut out = vec![];
    let all = set(&[1, 2, 3]);
    let tick = |m: &mut Membership, out: &mut Vec<ViewMsg>| {
        m.tick(
            at(1000),
            (all, all_hear),
            RETRY,
            no_groups,
            false,
            &mut |x| out.push(x),
        )
    };
    assert!(tick(&mut m, &mut out).is_none());
    let p = out[0].view;
    m.on_ack(at(10), id(2), p);
    m.hear_agreements(at(20), |x| (x == id(3)).then_some((p.number, p.members)));
    assert_eq!(tick(&mut m, &mut out), Some(p), "committed: {out:?}");
    // The next proposal, outbid by node 3's agreement to a higher number: dropped.
    let mut m = Membership::new(id(1), 3, false, 0, at(0));
    assert!(tick(&mut m, &mut out).is_none());
    m.hear_agreements(at(20), |x| (x == id(3)).then_some((9, all)));
    assert_eq!(m.next_deadline(), None, "dropped");
    assert!(m.highest_number() >= 9);
}

/// With its suspects left out, a coordinator's largest set can be one a lower node leads
/// (5 nodes, links 1–4 and 1–5 cut; {2, 3, 4, 5} installed, 2 coordinates; 4 left the
/// next proposal unacked, and without it {1, 2, 3} ties {2, 3, 5} and wins). Nobody
/// would ack 2's proposal of {1, 2, 3}, and proposing nothing left the installed view
/// without the word of 3 and 5, who had acked: 2 proposes {2, 3, 5}, which it leads
/// (review F2).
#[test]
fn a_coordinator_proposes_a_set_it_leads_when_its_suspects_are_left_out() {
    let at = Instant::from_nanos;
    let ms = 1_000_000;
    let mut m = Membership::new(id(2), 5, false, 0, at(0));
    let v = View {
        number: 3,
        members: set(&[2, 3, 4, 5]),
        plan: Plan::unplaced(0),
    };
    assert!(m.on_commit(id(2), v).is_some());
    let alive = set(&[1, 2, 3, 4, 5]);
    let hears = |x: NodeId| match x.get() {
        1 => set(&[2, 3]),
        2 | 3 => set(&[1, 2, 3, 4, 5]),
        _ => set(&[2, 3, 4, 5]),
    };
    let mut out = vec![];
    let tick = |m: &mut Membership, now: u64, out: &mut Vec<ViewMsg>| {
        m.tick(at(now), (alive, hears), RETRY, no_groups, true, &mut |x| {
            out.push(x)
        });
        out.len()
    };
    assert_eq!(tick(&mut m, 0, &mut out), 1);
    assert_eq!(out[0].view.members, set(&[2, 3, 4, 5]));
    m.on_ack(at(0), id(3), out[0].view);
    m.on_ack(at(0), id(5), out[0].view);
    assert_eq!(tick(&mut m, 5 * ms, &mut out), 2, "{out:?}");
    assert_eq!(out[1].view.members, set(&[2, 3, 5]));
}

/// Two other proposers do not push out the leader's kept proposal (review F4): node 5's
/// leader 1 proposes with node 6, not yet alive at 5; 2 and 3 propose too; once 6 is
/// alive, 5 acks 1's. A restarted proposer's kept proposal is forgotten.
#[test]
fn the_leaders_kept_proposal_outlasts_two_other_proposers() {
    let t = Instant::from_nanos(0);
    let view = |number: u64, members: &[u8]| View {
        number,
        members: set(members),
        plan: Plan::unplaced(0),
    };
    let mut m = Membership::new(id(5), 6, false, 0, t);
    let five = set(&[1, 2, 3, 4, 5]);
    let mut acks = vec![];
    m.on_propose(
        id(1),
        view(10, &[1, 2, 3, 4, 5, 6]),
        (five, all_hear),
        &mut |x| acks.push(x),
    );
    m.on_propose(id(2), view(11, &[2, 3, 4, 5]), (five, all_hear), &mut |x| {
        acks.push(x)
    });
    m.on_propose(id(3), view(12, &[3, 4, 5]), (five, all_hear), &mut |x| {
        acks.push(x)
    });
    assert!(acks.is_empty(), "{acks:?}");
    let all = set(&[1, 2, 3, 4, 5, 6]);
    let mut again = m.clone();
    m.tick(t, (all, all_hear), RETRY, no_groups, false, &mut |x| {
        acks.push(x)
    });
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!((acks[0].view.number, acks[0].to), (10, Some(id(1))));
    // Node 1's daemon restarted meanwhile: nothing of its old incarnation is acked.
    again.forget_proposals(id(1));
    let mut none = vec![];
    again.tick(t, (all, all_hear), RETRY, no_groups, false, &mut |x| {
        none.push(x)
    });
    assert!(none.iter().all(|x| x.kind != ViewMsgKind::Ack), "{none:?}");
}
