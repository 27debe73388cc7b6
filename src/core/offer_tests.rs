//! Configuration offers between three nodes on two paths (one UDP, one Ethernet), the
//! messages carried through their real wire encoding, with loss injected by rule.

use super::*;
use crate::wire::frame::PAYLOAD_MAX;

const HASH: u64 = 0x1234_5678_9abc_def0;

fn id(n: u8) -> NodeId {
    NodeId::new(n).expect("valid id")
}

fn t(ms: u64) -> Instant {
    Instant::from_nanos(1_000_000_000 + ms * 1_000_000)
}

/// Three nodes (ids 1, 2, 3) on a UDP path 0 and an Ethernet path 1.
struct Net {
    nodes: Vec<Offers>,
    events: Vec<Vec<Event>>,
    /// Frames sent so far (every copy).
    sent: usize,
    /// Drop a copy from node index `from` to `to` numbered `n` (counting every copy
    /// sent) when this says so.
    lose: Box<dyn Fn(usize, usize, usize) -> bool>,
}

impl Net {
    fn new(lose: impl Fn(usize, usize, usize) -> bool + 'static) -> Net {
        let all = NodeSet::from_iter([id(1), id(2), id(3)]);
        let paths = vec![
            OfferPath {
                index: 0,
                udp: true,
                nodes: all,
            },
            OfferPath {
                index: 1,
                udp: false,
                nodes: all,
            },
        ];
        Net {
            nodes: (1..=3)
                .map(|n| Offers::new(id(n), 0x100 + u32::from(n), paths.clone()))
                .collect(),
            events: vec![Vec::new(); 3],
            sent: 0,
            lose: Box::new(lose),
        }
    }

    /// Delivers everything the nodes send at `now`, until nobody sends more.
    fn pump(&mut self, now: Instant) {
        for _ in 0..10_000 {
            let mut any = false;
            for i in 0..3 {
                let mut p = [0u8; PAYLOAD_MAX];
                while let Some(send) = self.nodes[i].poll(now, &mut p) {
                    any = true;
                    let to: Vec<usize> = match send.dest {
                        Dest::All => (0..3).filter(|&j| j != i).collect(),
                        Dest::Node(n) => vec![usize::from(n.get() - 1)],
                    };
                    for j in to {
                        self.sent += 1;
                        if (self.lose)(i, j, self.sent) {
                            continue;
                        }
                        let msg = OfferMsg::parse(&p[..send.len]).expect("valid payload");
                        let from = id(u8::try_from(i + 1).expect("small"));
                        let ev = &mut self.events[j];
                        self.nodes[j].receive(now, from, &msg, &mut |e| ev.push(e));
                    }
                }
            }
            if !any {
                return;
            }
        }
        panic!("offers never went quiet");
    }

    /// Runs timers and delivery from `from` to `to` ms in 1 ms steps.
    fn run(&mut self, from: u64, to: u64) {
        for ms in from..=to {
            let now = t(ms);
            for (n, ev) in self.nodes.iter_mut().zip(self.events.iter_mut()) {
                if n.next_deadline().is_some_and(|d| d <= now) {
                    n.on_timer(now, &mut |e| ev.push(e));
                }
            }
            self.pump(now);
        }
    }

    /// Node 1 offers a config of `len` bytes to `targets` at t(0), delivered at once.
    fn offer(&mut self, mode: OfferMode, len: usize, targets: NodeSet) {
        self.nodes[0]
            .start(t(0), mode, &config(len), HASH, targets)
            .expect("starts");
        self.pump(t(0));
    }

    fn take(&mut self, node: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[node])
    }

    /// Member `node` judges what it was handed.
    fn judge(&mut self, node: usize, now: Instant, accepted: bool, hash: u64, why: &str) {
        let (offer, _, _) = self.nodes[node].offered().expect("an offer to judge");
        let mut text = Text::EMPTY;
        text.set(why.as_bytes());
        self.nodes[node].judge(
            now,
            offer,
            Verdict {
                accepted,
                hash,
                errors: u16::from(!accepted),
                warnings: 0,
                text,
            },
        );
    }

    fn install(&mut self, node: usize, now: Instant, ok: bool) {
        let (offer, _, _) = self.nodes[node].offered().expect("an offer to install");
        self.nodes[node].installed(now, offer, ok, if ok { "" } else { "reload refused" });
    }
}

/// What the origin reports when its first offer ends with `result`.
fn settled(result: OfferResult) -> Vec<Event> {
    vec![Event::OfferSettled { id: 1, result }]
}

fn config(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).expect("below 251"))
        .collect()
}

fn both() -> NodeSet {
    NodeSet::from_iter([id(2), id(3)])
}

#[test]
fn install_reaches_every_member_then_commits() {
    let mut net = Net::new(|_, _, _| false);
    let cfg = config(3000);
    let n = net.nodes[0]
        .start(t(0), OfferMode::Install, &cfg, HASH, both())
        .expect("starts");
    assert_eq!(n, 1);
    net.pump(t(0));
    for m in [1, 2] {
        let (offer, mode, bytes) = net.nodes[m].offered().expect("complete");
        assert_eq!((offer.origin, offer.id, mode), (1, 1, OfferMode::Install));
        assert_eq!(bytes, &cfg[..]);
        assert_eq!(
            net.take(m),
            vec![Event::OfferReceived {
                origin: id(1),
                id: 1,
                mode: OfferMode::Install
            }]
        );
        assert_eq!(
            net.nodes[0]
                .answer(id(u8::try_from(m + 1).expect("small")))
                .state,
            TargetState::Checking
        );
    }
    net.judge(1, t(5), true, HASH, "");
    net.pump(t(5));
    assert!(net.take(0).is_empty(), "one verdict is not enough");
    net.judge(2, t(6), true, HASH, "1 warning");
    net.pump(t(6));
    assert_eq!(
        net.take(0),
        vec![Event::OfferCommit {
            origin: id(1),
            id: 1
        }]
    );
    for m in [1, 2] {
        assert_eq!(
            net.take(m),
            vec![Event::OfferCommit {
                origin: id(1),
                id: 1
            }]
        );
        net.install(m, t(7), true);
    }
    net.pump(t(7));
    assert_eq!(net.take(0), settled(OfferResult::Installed));
    assert_eq!(
        net.nodes[0].answer(id(3)).verdict.expect("in").text.lossy(),
        "1 warning"
    );
    assert!(net.nodes[0].next_deadline().is_none(), "settled: no timers");
}

#[test]
fn one_refusal_aborts_everywhere() {
    let mut net = Net::new(|_, _, _| false);
    net.offer(OfferMode::Install, 100, both());
    net.take(1);
    net.take(2);
    net.judge(1, t(1), true, HASH, "");
    net.judge(2, t(1), false, HASH, "interface eth9 does not exist");
    net.pump(t(1));
    assert_eq!(net.take(0), settled(OfferResult::Refused));
    let dropped = Event::OfferDropped {
        origin: id(1),
        id: 1,
        why: OfferDrop::Aborted,
    };
    assert_eq!(net.take(1), vec![dropped], "the accepting member unstages");
    assert_eq!(net.take(2), vec![dropped]);
    let a = net.nodes[0].answer(id(3)).verdict.expect("in");
    assert!(!a.accepted);
    assert_eq!(a.text.lossy(), "interface eth9 does not exist");
    // The abort is repeated, never a commit.
    net.run(2, 1000);
    assert!(net.take(1).is_empty() && net.take(2).is_empty());
    assert!(net.nodes[0].next_deadline().is_none());
}

#[test]
fn another_hash_is_a_refusal() {
    let mut net = Net::new(|_, _, _| false);
    net.offer(OfferMode::Verify, 10, both());
    net.judge(1, t(1), true, HASH, "");
    net.judge(2, t(1), true, HASH ^ 1, "");
    net.pump(t(1));
    assert_eq!(net.take(0), settled(OfferResult::Refused));
}

#[test]
fn verify_only_never_commits() {
    let mut net = Net::new(|_, _, _| false);
    net.offer(OfferMode::Verify, 10, both());
    net.judge(1, t(1), true, HASH, "");
    net.judge(2, t(1), true, HASH, "");
    net.pump(t(1));
    assert_eq!(net.take(0), settled(OfferResult::Verified));
    net.run(2, 40_000);
    for m in [1, 2] {
        let ev = net.take(m);
        assert!(
            !ev.iter()
                .any(|e| matches!(e, Event::OfferCommit { .. } | Event::OfferDropped { .. })),
            "{ev:?}"
        );
    }
}

#[test]
fn lost_frames_are_repeated_until_answered() {
    // Every other copy is lost, both ways.
    let mut net = Net::new(|_, _, n| n % 2 == 0);
    net.nodes[0]
        .start(t(0), OfferMode::Install, &config(5000), HASH, both())
        .expect("starts");
    net.run(0, 2000);
    for m in [1, 2] {
        assert!(
            net.nodes[m].offered().is_some(),
            "member {m} got every chunk"
        );
        net.judge(m, t(2000), true, HASH, "");
    }
    net.run(2000, 4000);
    assert_eq!(
        net.take(0),
        vec![Event::OfferCommit {
            origin: id(1),
            id: 1
        }]
    );
    for m in [1, 2] {
        net.install(m, t(4000), true);
    }
    net.run(4000, 6000);
    assert_eq!(net.take(0), settled(OfferResult::Installed));
}

#[test]
fn a_silent_member_refuses_by_timeout_and_a_down_one_at_once() {
    let mut net = Net::new(|_, _, _| false);
    net.offer(OfferMode::Install, 10, both());
    net.judge(1, t(1), true, HASH, "");
    net.pump(t(1));
    // Node 3 checks forever: the origin gives up at the verdict deadline.
    let deadline = u64::try_from(VERDICT_TIMEOUT.as_millis()).expect("fits");
    net.run(2, deadline - 1);
    assert!(net.take(0).is_empty());
    net.run(deadline, deadline);
    assert_eq!(net.take(0), settled(OfferResult::Refused));
    assert_eq!(net.nodes[0].answer(id(3)).state, TargetState::Silent);

    // A new offer; node 3 goes down: settled at once.
    let mut net = Net::new(|_, _, _| false);
    net.offer(OfferMode::Install, 10, both());
    net.judge(1, t(1), true, HASH, "");
    net.pump(t(1));
    let ev = &mut net.events[0];
    net.nodes[0].node_down(t(2), id(3), &mut |e| ev.push(e));
    assert_eq!(net.take(0), settled(OfferResult::Refused));
}

#[test]
fn a_second_origin_is_refused_while_an_offer_is_held() {
    let mut net = Net::new(|_, _, _| false);
    net.offer(OfferMode::Install, 10, both());
    // Node 3 accepted node 1's offer and waits for the commit (node 2 still checks).
    net.judge(2, t(1), true, HASH, "");
    net.pump(t(1));
    net.take(1);
    net.take(2);
    // Node 2 offers to node 3.
    net.nodes[1]
        .start(
            t(2),
            OfferMode::Install,
            &config(20),
            HASH,
            NodeSet::from_iter([id(3)]),
        )
        .expect("starts");
    net.pump(t(2));
    assert_eq!(net.take(1), settled(OfferResult::Refused));
    let v = net.nodes[1].answer(id(3)).verdict.expect("refused");
    assert!(v.text.lossy().starts_with("busy:"), "{:?}", v.text);
    // Node 1's offer is intact and completes.
    assert_eq!(net.nodes[2].offered().expect("held").0.origin, 1);
    assert!(net.take(2).is_empty());
    net.judge(1, t(3), true, HASH, "");
    net.pump(t(3));
    assert_eq!(
        net.take(2),
        vec![Event::OfferCommit {
            origin: id(1),
            id: 1
        }]
    );
}

#[test]
fn an_unknown_commit_gets_a_failed_done() {
    let mut net = Net::new(|_, _, _| false);
    net.nodes[0]
        .start(
            t(0),
            OfferMode::Install,
            &config(10),
            HASH,
            NodeSet::from_iter([id(2)]),
        )
        .expect("starts");
    net.pump(t(0));
    net.judge(1, t(1), true, HASH, "");
    // The verdict arrives, the commit is lost; node 2 forgets the offer (its staging
    // expired) before the commit is repeated.
    net.lose = Box::new(|from, _, _| from == 0);
    net.pump(t(1));
    assert_eq!(
        net.take(0),
        vec![Event::OfferCommit {
            origin: id(1),
            id: 1
        }]
    );
    let expired = t(1).saturating_add(STAGE_TTL);
    let ev = &mut net.events[1];
    net.nodes[1].on_timer(expired, &mut |e| ev.push(e));
    assert!(net.nodes[1].offered().is_none());
    net.lose = Box::new(|_, _, _| false);
    net.run(2, 300);
    let ev = net.take(0);
    assert_eq!(ev, settled(OfferResult::Failed));
    let (ok, text) = net.nodes[0].answer(id(2)).done.expect("answered");
    assert!(!ok);
    assert!(text.lossy().starts_with("no such offer"), "{text:?}");
}

#[test]
fn big_offers_go_out_in_paced_bursts() {
    let mut net = Net::new(|_, _, _| false);
    let cfg = config(CONFIG_MAX);
    net.nodes[0]
        .start(t(0), OfferMode::Verify, &cfg, HASH, both())
        .expect("starts");
    let mut p = [0u8; PAYLOAD_MAX];
    let mut n = 0;
    while net.nodes[0].poll(t(0), &mut p).is_some() {
        n += 1;
    }
    assert_eq!(n, BURST, "one burst, then a pause");
    assert_eq!(
        net.nodes[0].next_deadline(),
        Some(t(0).saturating_add(PACE))
    );
    // The first burst was taken above, not delivered: the repeat brings it.
    net.run(1, 600);
    for m in [1, 2] {
        assert_eq!(net.nodes[m].offered().expect("complete").2, &cfg[..]);
    }
}

#[test]
fn refusals_to_start() {
    let mut net = Net::new(|_, _, _| false);
    let o = &mut net.nodes[0];
    assert_eq!(
        o.start(t(0), OfferMode::Install, &[], HASH, both()),
        Err(StartError::Size)
    );
    assert_eq!(
        o.start(
            t(0),
            OfferMode::Install,
            &config(CONFIG_MAX + 1),
            HASH,
            both()
        ),
        Err(StartError::Size)
    );
    assert_eq!(
        o.start(
            t(0),
            OfferMode::Install,
            &config(1),
            HASH,
            NodeSet::default()
        ),
        Err(StartError::NoTargets)
    );
    assert_eq!(
        o.start(
            t(0),
            OfferMode::Install,
            &config(1),
            HASH,
            NodeSet::from_iter([id(9)])
        ),
        Err(StartError::Unreachable(id(9)))
    );
    // Issue 21 finding 5: the local node among the targets made the node emit offer
    // frames addressed to itself.
    assert_eq!(
        o.start(
            t(0),
            OfferMode::Install,
            &config(1),
            HASH,
            NodeSet::from_iter([id(1), id(2)])
        ),
        Err(StartError::SelfTarget)
    );
    o.start(t(0), OfferMode::Install, &config(1), HASH, both())
        .expect("starts");
    assert_eq!(
        o.start(t(0), OfferMode::Install, &config(1), HASH, both()),
        Err(StartError::Busy)
    );
}

#[test]
fn a_newer_offer_from_the_same_origin_supersedes_the_held_one() {
    let mut net = Net::new(|_, _, _| false);
    let one = NodeSet::from_iter([id(2)]);
    net.offer(OfferMode::Verify, 10, one);
    net.take(1);
    // The origin restarts (new incarnation) and offers again while node 2 still checks.
    net.nodes[0] = Offers::new(id(1), 0x999, net.nodes[0].paths.clone());
    net.nodes[0]
        .start(t(1), OfferMode::Install, &config(20), HASH, one)
        .expect("starts");
    net.pump(t(1));
    let ev = net.take(1);
    assert_eq!(
        ev[0],
        Event::OfferDropped {
            origin: id(1),
            id: 1,
            why: OfferDrop::Superseded
        }
    );
    assert!(matches!(
        ev[1],
        Event::OfferReceived {
            mode: OfferMode::Install,
            ..
        }
    ));
    assert_eq!(net.nodes[1].offered().expect("new").2.len(), 20);
}
