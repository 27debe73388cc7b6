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

    /// Ticks every node at `t` and delivers everything until quiet.
    fn step(&mut self, t: u64) {
        let now = Instant::from_nanos(t);
        let mut queue: Vec<(u8, ViewMsg)> = vec![];
        for i in 0..self.nodes.len() {
            let from = u8::try_from(i + 1).unwrap();
            let alive = self.alive[i];
            self.nodes[i].tick(now, alive, RETRY, no_groups, false, &mut |m| {
                queue.push((from, m))
            });
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
                let alive = self.alive[j];
                let m = &mut self.nodes[j];
                match msg.kind {
                    ViewMsgKind::Propose => {
                        m.on_propose(id(from), msg.view, alive, &mut |r| queue.push((to, r)))
                    }
                    ViewMsgKind::Ack => m.on_ack(id(from), msg.view),
                    ViewMsgKind::Commit => {
                        m.on_commit(id(from), msg.view);
                    }
                }
            }
            // The coordinator commits as soon as acks are in.
            for i in 0..self.nodes.len() {
                let me = u8::try_from(i + 1).unwrap();
                let alive = self.alive[i];
                self.nodes[i].tick(now, alive, RETRY, no_groups, false, &mut |m| {
                    queue.push((me, m))
                });
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
    m.on_propose(id(1), v1, set(&[1, 2, 3]), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "acked");
    m.on_propose(id(1), v1, set(&[1, 2, 3]), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "same number again: not acked");
    let v2 = View {
        number: 2,
        members: set(&[1, 2, 3]),
        plan: Plan::unplaced(0),
    };
    m.on_propose(id(3), v2, set(&[1, 2, 3]), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "proposer is not the lowest member");
    m.on_propose(id(1), v2, set(&[1, 2]), &mut |x| out.push(x));
    assert_eq!(out.len(), 1, "3 is not alive here: kept, not acked");
    m.tick(
        Instant::from_nanos(0),
        set(&[1, 2, 3]),
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
    m.on_propose(id(1), v3, set(&[1, 2, 3]), &mut |x| out.push(x));
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
    m.on_propose(id(1), view(5, &[1, 2, 3]), set(&[1, 2, 3]), &mut |x| {
        out.push(x)
    });
    assert!(
        out.is_empty(),
        "a proposal at the promised number is not acked"
    );
    m.on_propose(id(1), view(6, &[1, 2, 3]), set(&[1, 2, 3]), &mut |x| {
        out.push(x)
    });
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
