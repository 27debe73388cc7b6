//! Detector tests on virtual time: two `Node`s joined by hand, frames delivered or lost by
//! the test.

use core::time::Duration;

use super::*;
use crate::core::Phase;
use crate::wire::frame::FRAME_MAX;

const MS: u64 = 1_000_000;

fn spec(paths: usize) -> ClusterSpec {
    ClusterSpec::sample(paths)
}

fn key() -> AuthKey {
    AuthKey::new(b"node-tests-key-0123").unwrap()
}

fn node(id: u8, inc: u32, paths: usize) -> Node {
    Node::new(
        spec(paths),
        NodeId::new(id).unwrap(),
        inc,
        Some(key()),
        Instant::from_nanos(0),
    )
}

/// Drains every action of `n` at `now`: returns the frames (path, bytes) and events.
fn drain(n: &mut Node, now: Instant) -> (Vec<(usize, Vec<u8>)>, Vec<Event>) {
    let mut buf = [0u8; FRAME_MAX];
    let (mut frames, mut events) = (vec![], vec![]);
    while let Some(a) = n.poll_action(now, &mut buf) {
        match a {
            Action::Transmit { path, len, .. } => {
                frames.push((usize::from(path), buf[..len].to_vec()))
            }
            Action::Event { event, .. } => events.push(event),
            Action::Promise { .. } => {}
            a @ (Action::Resource(_)
            | Action::Fence { .. }
            | Action::Halt(_)
            | Action::TieBreaker(_)
            | Action::Announce { .. }) => {
                panic!("no groups or tie-breaker configured, yet {a:?}")
            }
        }
    }
    (frames, events)
}

/// Runs `a` and `b` from `from` to `to` in 100 µs steps; `deliver(t, path)` decides
/// whether a's frames reach b at time t. Returns b's events with their times.
fn run(
    a: &mut Node,
    b: &mut Node,
    from: u64,
    to: u64,
    deliver: impl Fn(u64, usize) -> bool,
) -> Vec<(u64, Event)> {
    let mut seen = vec![];
    let mut t = from;
    while t <= to {
        let now = Instant::from_nanos(t);
        a.handle_timeout(now);
        let (frames, _) = drain(a, now);
        for (path, bytes) in frames {
            if deliver(t, path) {
                let _ = b.handle_frame(now, now, path, &bytes);
            }
        }
        if b.next_deadline().is_some_and(|d| d <= now) {
            b.handle_timeout(now);
        }
        let (back, events) = drain(b, now);
        for (path, bytes) in back {
            let _ = a.handle_frame(now, now, path, &bytes);
        }
        seen.extend(events.into_iter().map(|e| (t, e)));
        t += MS / 10;
    }
    seen
}

/// Runs `n` with nobody to hear from `from` to `to` in 100 µs steps.
fn alone(n: &mut Node, from: u64, to: u64) {
    let mut t = from;
    while t < to {
        let now = Instant::from_nanos(t);
        n.handle_timeout(now);
        drain(n, now);
        t += MS / 10;
    }
}

fn id(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

#[test]
fn peer_comes_up_then_goes_down_when_all_paths_silent() {
    let (mut a, mut b) = (node(1, 11, 2), node(2, 22, 2));
    let ev = run(&mut a, &mut b, 0, 10 * MS, |_, _| true);
    assert!(ev.iter().any(|(_, e)| *e
        == Event::NodeUp {
            peer: id(1),
            incarnation: 11
        }));
    assert_eq!(b.peers()[0].state, PeerState::Up);
    // a dies at 10 ms: nothing more is delivered.
    let ev = run(&mut a, &mut b, 10 * MS + MS / 10, 30 * MS, |_, _| false);
    let downs: Vec<_> = ev
        .iter()
        .filter(|(_, e)| matches!(e, Event::PathDown { .. }))
        .collect();
    assert_eq!(downs.len(), 2, "both paths down: {ev:?}");
    let (t, _) = ev
        .iter()
        .find(|(_, e)| matches!(e, Event::NodeDown { .. }))
        .expect("node down");
    // last frame at 10 ms; timeout 5 ms; stepping 100 µs.
    assert!(
        (15 * MS..=15 * MS + MS / 10).contains(t),
        "node down at {t}"
    );
    assert_eq!(b.peers()[0].state, PeerState::Down);
}

#[test]
fn one_path_down_keeps_peer_up() {
    let (mut a, mut b) = (node(1, 1, 2), node(2, 2, 2));
    run(&mut a, &mut b, 0, 10 * MS, |_, _| true);
    let ev = run(&mut a, &mut b, 10 * MS, 40 * MS, |_, path| path == 0);
    assert!(ev.iter().any(|(_, e)| *e
        == Event::PathDown {
            peer: id(1),
            path: 1,
            last_heard: b.peers()[0].links[1].heard_at
        }));
    assert!(
        !ev.iter().any(|(_, e)| matches!(e, Event::NodeDown { .. })),
        "{ev:?}"
    );
    assert_eq!(b.peers()[0].state, PeerState::Up);
}

#[test]
fn restart_is_down_then_up_with_new_incarnation() {
    let (mut a, mut b) = (node(1, 100, 1), node(2, 2, 1));
    run(&mut a, &mut b, 0, 5 * MS, |_, _| true);
    let mut a2 = Node::new(
        spec(1),
        id(1),
        101,
        Some(key()),
        Instant::from_nanos(5 * MS),
    );
    let ev = run(&mut a2, &mut b, 5 * MS, 8 * MS, |_, _| true);
    let kinds: Vec<_> = ev
        .iter()
        .map(|(_, e)| *e)
        .filter(|e| !matches!(e, Event::PathUp { .. }))
        .collect();
    assert_eq!(
        kinds[..3],
        [
            Event::NodeRestart {
                peer: id(1),
                old: 100,
                new: 101
            },
            Event::NodeDown {
                peer: id(1),
                last_heard: kinds
                    .iter()
                    .find_map(|e| match e {
                        Event::NodeDown { last_heard, .. } => Some(*last_heard),
                        _ => None,
                    })
                    .unwrap()
            },
            Event::NodeUp {
                peer: id(1),
                incarnation: 101
            },
        ]
    );
    assert_eq!(b.peers()[0].restarts, 1);
}

#[test]
fn replayed_and_stale_frames_are_dropped_and_change_nothing() {
    let (mut a, mut b) = (node(1, 1, 1), node(2, 2, 1));
    let now = Instant::from_nanos(0);
    let (frames, _) = drain(&mut a, now);
    let old = frames[0].1.clone();
    assert_eq!(b.handle_frame(now, now, 0, &old), Ok(()));
    let before = b.peers()[0].links[0].received;
    assert_eq!(b.handle_frame(now, now, 0, &old), Err(DropReason::Replay));
    assert_eq!(b.peers()[0].links[0].received, before);
    assert_eq!(b.drops(0).get(DropReason::Replay), 1);
    // a restarts (1 ms later on its clock); its old incarnation's frames are replays.
    let later = Instant::from_nanos(MS);
    let mut a2 = Node::new(spec(1), id(1), 2, Some(key()), later);
    let (frames, _) = drain(&mut a2, later);
    assert_eq!(b.handle_frame(later, later, 0, &frames[0].1), Ok(()));
    assert_eq!(
        b.handle_frame(later, later, 0, &old),
        Err(DropReason::Replay)
    );
    assert_eq!(b.peers()[0].incarnation, Some(2));
    // A frame of an incarnation b never saw, sent before the live one's newest frame
    // (late or replayed), does not replace the live incarnation while it is up.
    let mut ghost = Node::new(spec(1), id(1), 3, Some(key()), now);
    let (frames, _) = drain(&mut ghost, now);
    assert_eq!(
        b.handle_frame(later, later, 0, &frames[0].1),
        Err(DropReason::Replay)
    );
    assert_eq!(
        (b.peers()[0].incarnation, b.peers()[0].restarts),
        (Some(2), 1)
    );
}

#[test]
fn each_bad_frame_lands_in_its_counter() {
    let mut a = node(1, 1, 2);
    let now = Instant::from_nanos(0);
    let (frames, _) = drain(&mut a, now);
    let good = frames[0].1.clone();
    let mut foreign = Node::new(
        ClusterSpec {
            cluster_id: 8,
            ..spec(2)
        },
        id(1),
        1,
        Some(key()),
        now,
    );
    let foreign_frame = drain(&mut foreign, now).0[0].1.clone();
    let mut wrong_key = Node::new(
        spec(2),
        id(1),
        1,
        Some(AuthKey::new(b"another-key-0123456").unwrap()),
        now,
    );
    let wrong_key_frame = drain(&mut wrong_key, now).0[0].1.clone();
    let mut own = Node::new(spec(2), id(2), 9, Some(key()), now);
    let own_frame = drain(&mut own, now).0[0].1.clone();
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let mut bad_magic = good.clone();
    bad_magic[0] = 0;
    let mut overlong = good.clone();
    overlong.push(0);
    let mut bad_version = good.clone();
    bad_version[2] = 1;
    let unknown = raw_frame(Kind::Heartbeat, 5, &good_payload());
    let bad_payload = raw_frame(Kind::Heartbeat, 1, &[1, 2, 3]);
    let unsupported = raw_frame(Kind::Reply, 1, &good_payload());
    let cases: [(&[u8], usize, DropReason); 13] = [
        (&good[..10], 0, DropReason::Short),
        (&overlong, 0, DropReason::Overlong),
        (&bad_version, 0, DropReason::BadVersion),
        (&unknown, 0, DropReason::UnknownNode),
        (&bad_payload, 0, DropReason::BadPayload),
        (&unsupported, 0, DropReason::UnsupportedKind),
        (&bad_magic, 0, DropReason::BadMagic),
        (&bad_crc, 0, DropReason::BadCrc),
        (&foreign_frame, 0, DropReason::ForeignCluster),
        (&wrong_key_frame, 0, DropReason::BadTag),
        (&own_frame, 0, DropReason::OwnNodeId),
        (&good, 1, DropReason::WrongPath),
        (&[0u8; 3], 0, DropReason::Short),
    ];
    let mut b = node(2, 2, 2);
    for (bytes, path, want) in cases {
        assert_eq!(b.handle_frame(now, now, path, bytes), Err(want), "{want:?}");
    }
    assert_eq!(b.drops(0).total() + b.drops(1).total(), 13);
    assert_eq!(b.peers()[0].state, PeerState::Unknown, "no state change");
    assert!(drain(&mut b, now).1.is_empty(), "no events");
    // A replay needs an accepted original first.
    assert_eq!(b.handle_frame(now, now, 0, &good), Ok(()));
    assert_eq!(b.handle_frame(now, now, 0, &good), Err(DropReason::Replay));
    // A view number past the ceiling (see `a_view_number_near_the_end_is_implausible…`).
    let state = crate::wire::state::StateRepr {
        view: u64::MAX,
        ..Default::default()
    };
    let forged = frame_from(Kind::Heartbeat, 1, 1, 2, 0, &heartbeat_with(state));
    assert_eq!(
        b.handle_frame(now, now, 0, &forged),
        Err(DropReason::Implausible)
    );
    // Line noise never reaches the core as a frame: the daemon's deframer counts it.
    b.count_drop(0, DropReason::Garbage);
    // A configuration offer to a cluster without a key: never taken.
    let mut unkeyed = Node::new(spec(2), id(2), 2, None, now);
    let offer = offer_frame(None);
    assert_eq!(
        unkeyed.handle_frame(now, now, 0, &offer),
        Err(DropReason::RefusedOffer)
    );
    assert!(unkeyed.offers().offered().is_none());
    b.count_drop(0, DropReason::RefusedOffer);
    // A death notice to a cluster without a key: never believed (see the notice test).
    b.count_drop(0, DropReason::RefusedNotice);
    // Every counter can be reached (STYLE §9: no counter that never increments).
    for r in DropReason::ALL {
        assert!(
            b.drops(0).get(r) + b.drops(1).get(r) > 0,
            "{r:?} never counted"
        );
    }
}

/// A one-chunk configuration offer from node 1 on path 0, signed with `key`.
fn offer_frame(key: Option<&AuthKey>) -> Vec<u8> {
    use crate::wire::offer::{OfferId, OfferMode, OfferMsg};
    let mut payload = [0u8; crate::wire::frame::PAYLOAD_MAX];
    let n = OfferMsg::Chunk {
        offer: OfferId {
            origin: 1,
            incarnation: 1,
            id: 1,
        },
        mode: OfferMode::Install,
        total: 3,
        offset: 0,
        sha: [0; 32],
        targets: 0b10,
        data: b"abc",
    }
    .emit(&mut payload);
    let h = HeaderRepr {
        kind: Kind::ConfigOffer,
        cluster: 7,
        node: 1,
        path: 0,
        incarnation: 1,
        seq: 1,
        timestamp_ns: 0,
    };
    let mut buf = [0u8; FRAME_MAX];
    let len = h
        .emit(&mut buf, n, key, |p| p.copy_from_slice(&payload[..n]))
        .unwrap();
    buf[..len].to_vec()
}

#[test]
fn an_offer_travels_between_nodes_and_installs_on_both() {
    use crate::core::event::OfferResult;
    use crate::core::offer::{TargetState, Verdict};
    use crate::wire::offer::OfferMode;
    let mut a = node(1, 1, 2);
    let mut b = node(2, 2, 2);
    run(&mut a, &mut b, 0, 5 * MS, |_, _| true);
    let config = vec![b'x'; 2500];
    let now = Instant::from_nanos(5 * MS);
    let n = a
        .start_offer(
            now,
            OfferMode::Install,
            &config,
            0xfeed,
            NodeSet::from_iter([id(2)]),
        )
        .unwrap();
    assert_eq!(n, 1);
    let seen = run(&mut a, &mut b, 5 * MS, 6 * MS, |_, _| true);
    assert!(
        seen.iter()
            .any(|(_, e)| matches!(e, Event::OfferReceived { .. }))
    );
    let (offer, _, bytes) = b.offers().offered().expect("b has it");
    assert_eq!(bytes, &config[..]);
    assert_eq!(a.offers().answer(id(2)).state, TargetState::Checking);
    let verdict = Verdict {
        accepted: true,
        hash: 0xfeed,
        errors: 0,
        warnings: 1,
        text: crate::core::offer::Text::new("warning: no key"),
    };
    b.judge_offer(Instant::from_nanos(6 * MS), offer, verdict);
    let seen = run(&mut a, &mut b, 6 * MS, 7 * MS, |_, _| true);
    assert!(
        seen.iter()
            .any(|(_, e)| matches!(e, Event::OfferCommit { .. }))
    );
    b.offer_installed(Instant::from_nanos(7 * MS), offer, true, "");
    run(&mut a, &mut b, 7 * MS, 8 * MS, |_, _| true);
    let own = a.offers().own().expect("own offer");
    assert_eq!(
        own.phase,
        crate::core::offer::Phase::Settled(OfferResult::Installed)
    );
    // Heartbeats kept flowing: b never lost a.
    assert_eq!(b.peers()[0].state, PeerState::Up);
    // Without a key, no offer starts.
    let mut unkeyed = Node::new(spec(2), id(1), 3, None, now);
    assert_eq!(
        unkeyed.start_offer(now, OfferMode::Verify, b"x", 1, NodeSet::from_iter([id(2)])),
        Err(crate::core::node::OfferRefusal::NoKey)
    );
}

fn good_payload() -> Vec<u8> {
    heartbeat_with(Default::default())
}

/// A keyed frame of cluster 7 on path 0 with any kind, sender and payload.
fn raw_frame(kind: Kind, node: u8, payload: &[u8]) -> Vec<u8> {
    frame_from(kind, node, 1, 1, 0, payload)
}

#[test]
fn malformed_operator_commands_are_dropped_and_change_nothing() {
    use crate::wire::command::{CommandRepr, LEN, OP_MOVE, OP_OFFLINE};
    let now = Instant::from_nanos(1_000);
    let mut b = node(2, 2, 2);
    let cmd = |id, op, node, groups| {
        let mut p = [0u8; LEN];
        CommandRepr {
            id,
            op,
            node,
            valid_ms: 100,
            groups,
        }
        .emit(&mut p);
        p
    };
    for (why, payload) in [
        ("short", cmd(1, OP_OFFLINE, 0, 1)[..LEN - 1].to_vec()),
        ("group the config lacks", cmd(1, OP_OFFLINE, 0, 1).to_vec()),
        ("no group", cmd(1, OP_OFFLINE, 0, 0).to_vec()),
        ("move to nobody", cmd(1, OP_MOVE, 0, 0).to_vec()),
        ("id 0", cmd(0, OP_OFFLINE, 0, 0).to_vec()),
        ("unknown op", cmd(1, 77, 0, 0).to_vec()),
    ] {
        let f = raw_frame(Kind::Command, 1, &payload);
        assert_eq!(
            b.handle_frame(now, now, 0, &f),
            Err(DropReason::BadPayload),
            "{why}"
        );
    }
    assert_eq!(b.drops(0).get(DropReason::BadPayload), 6);
    assert_eq!(b.peers()[0].state, PeerState::Unknown, "no state change");
    assert!(drain(&mut b, now).1.is_empty(), "no events");
}

#[test]
fn local_pause_extends_silence_instead_of_killing_a_live_peer() {
    let (mut a, mut b) = (node(1, 1, 1), node(2, 2, 1));
    run(&mut a, &mut b, 0, 3 * MS, |_, _| true);
    // b's loop does not run from 3 ms to 20 ms; a is alive but its frames of that time
    // were lost with the pause (a whole-VM stop: the kernel did not receive them either).
    let now = Instant::from_nanos(20 * MS);
    b.handle_timeout(now);
    let (_, events) = drain(&mut b, now);
    assert!(
        matches!(events[..], [Event::LocalPause { late }] if late >= Duration::from_millis(16)),
        "{events:?}"
    );
    assert_eq!(
        b.peers()[0].state,
        PeerState::Up,
        "no node down after a local pause"
    );
    // a's frames arrive again right after: the peer never went down.
    let ev = run(&mut a, &mut b, 20 * MS, 30 * MS, |_, _| true);
    assert!(
        !ev.iter()
            .any(|(_, e)| matches!(e, Event::NodeDown { .. } | Event::PathDown { .. })),
        "{ev:?}"
    );
}

#[test]
fn one_way_loss_is_seen_from_the_receiving_end() {
    let (mut a, mut b) = (node(1, 1, 1), node(2, 2, 1));
    // both directions work, then b's frames stop reaching a (a's receive side breaks).
    run(&mut a, &mut b, 0, 3 * MS, |_, _| true);
    let mut t = 3 * MS;
    let mut events = vec![];
    while t < 20 * MS {
        let now = Instant::from_nanos(t);
        a.handle_timeout(now);
        for (path, bytes) in drain(&mut a, now).0 {
            let _ = b.handle_frame(now, now, path, &bytes);
        }
        b.handle_timeout(now);
        events.extend(drain(&mut b, now).1); // b's frames are lost
        t += MS / 10;
    }
    assert!(
        events.contains(&Event::PathOneWay {
            peer: id(1),
            path: 0
        }),
        "{events:?}"
    );
    assert_eq!(b.peers()[0].links[0].peer_hears_us, Some(false));
    assert_eq!(b.peers()[0].state, PeerState::Up);
}

#[test]
fn rtt_is_measured_from_echoes() {
    let (mut a, mut b) = (node(1, 1, 2), node(2, 2, 2));
    run(&mut a, &mut b, 0, 5 * MS, |_, _| true);
    // delivery is instant in this driver, so RTT is the hold time alone: 0.
    assert_eq!(b.peers()[0].links[0].rtt, Some(Duration::ZERO));
    assert_eq!(a.peers()[1].links[1].rtt, Some(Duration::ZERO));
}

#[test]
fn never_heard_peer_goes_down_after_startup_grace_only() {
    let mut b = node(2, 2, 1);
    let mut events = vec![];
    for step in 0..=50u64 {
        let now = Instant::from_nanos(step * MS / 10);
        b.handle_timeout(now);
        events.extend(drain(&mut b, now).1.into_iter().map(|e| (step, e)));
        if step < 50 {
            assert_eq!(b.peers()[0].state, PeerState::Unknown, "step {step}");
        }
    }
    assert_eq!(
        events,
        [(
            50,
            Event::NodeDown {
                peer: id(1),
                last_heard: None
            }
        )]
    );
}

#[test]
fn transmit_schedule_skips_missed_slots() {
    let mut a = node(1, 1, 1);
    let (frames, _) = drain(&mut a, Instant::from_nanos(0));
    assert_eq!(frames.len(), 1);
    assert_eq!(a.tx[0].next_at, Instant::from_nanos(MS));
    let (frames, _) = drain(&mut a, Instant::from_nanos(7 * MS + 1));
    assert_eq!(frames.len(), 1, "one frame after a pause, not a burst");
    assert_eq!(a.tx[0].next_at, Instant::from_nanos(8 * MS));
}

fn views(events: &[(u64, Event)]) -> Vec<(u64, u64, bool)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ViewChange {
                number,
                members,
                quorate,
            } => Some((*number, *members, *quorate)),
            _ => None,
        })
        .collect()
}

#[test]
fn two_nodes_form_a_view_and_a_survivor_without_two_node_mode_loses_quorum() {
    let (mut a, mut b) = (node(1, 1, 2), node(2, 2, 2));
    let ev = run(&mut a, &mut b, 0, 5 * MS, |_, _| true);
    assert_eq!(
        views(&ev),
        [(1, 0b11, true)],
        "b installs the view a proposed"
    );
    assert_eq!((a.view().number, a.view().members.bits()), (1, 0b11));
    assert!(a.quorate() && b.quorate());
    let ev = run(&mut a, &mut b, 5 * MS + MS / 10, 20 * MS, |_, _| false);
    assert_eq!(
        views(&ev),
        [(2, 0b10, false)],
        "b alone: 1 of 2 votes is no majority"
    );
    assert!(!b.quorate());
    // The tie-breaker hook: the survivor that wins it is quorate with half the votes,
    // and its authority rests on the reservation, not on a lease.
    let now = Instant::from_nanos(21 * MS);
    b.set_tie_breaker(now, true);
    assert!(b.quorate() && b.authority());
    b.set_tie_breaker(now, false);
    assert!(!b.quorate() && !b.authority());
}

#[test]
fn a_won_tie_breaker_keeps_authority_and_gives_way_to_the_rejoined_majority() {
    let (mut a, mut b) = (node(1, 1, 2), node(2, 2, 2));
    run(&mut a, &mut b, 0, 5 * MS, |_, _| true);
    // b dies; a, alone with half the votes, wins the tie-breaker.
    alone(&mut a, 5 * MS + MS / 10, 20 * MS);
    assert_eq!(a.view().members.len(), 1);
    let now = Instant::from_nanos(21 * MS);
    a.set_tie_breaker(now, true);
    assert!(a.authority());
    // b comes back as a new incarnation: a's authority never lapses while the view grows
    // to both nodes.
    let mut b = node(2, 3, 2);
    let mut t = 21 * MS;
    while t < 40 * MS {
        run(&mut a, &mut b, t, t, |_, _| true);
        assert!(a.authority(), "a lost its authority at {t} ns");
        t += MS / 10;
    }
    assert_eq!(a.view().members.len(), 2);
    // The majority's word replaced the tie-breaker: a later tie is raced afresh.
    alone(&mut a, 40 * MS, 80 * MS);
    assert_eq!(a.view().members.len(), 1);
    assert!(
        !a.quorate(),
        "alone again, a holds no tie-breaker until it races"
    );
}

#[test]
fn two_node_mode_keeps_the_survivor_quorate() {
    let spec2 = || ClusterSpec {
        two_node: true,
        ..spec(1)
    };
    let mut a = Node::new(spec2(), id(1), 1, Some(key()), Instant::from_nanos(0));
    let mut b = Node::new(spec2(), id(2), 2, Some(key()), Instant::from_nanos(0));
    run(&mut a, &mut b, 0, 5 * MS, |_, _| true);
    let ev = run(&mut a, &mut b, 5 * MS + MS / 10, 20 * MS, |_, _| false);
    assert_eq!(views(&ev), [(2, 0b10, true)]);
}

/// A frame of `kind` from node `node` on path 0 with `payload`, of incarnation `inc`,
/// sequence `seq`, stamped `sent_ns`.
fn frame_from(kind: Kind, node: u8, inc: u32, seq: u32, sent_ns: u64, payload: &[u8]) -> Vec<u8> {
    let h = HeaderRepr {
        kind,
        cluster: 7,
        node,
        path: 0,
        incarnation: inc,
        seq,
        timestamp_ns: sent_ns,
    };
    let mut buf = [0u8; FRAME_MAX];
    let n = h
        .emit(&mut buf, payload.len(), Some(&key()), |p| {
            p.copy_from_slice(payload)
        })
        .unwrap();
    buf[..n].to_vec()
}

/// A heartbeat payload with state block `state`.
fn heartbeat_with(state: crate::wire::state::StateRepr) -> Vec<u8> {
    let hb = HeartbeatRepr {
        state,
        config_hash: 0,
        refused: 0,
        echo: None,
        path_count: 0,
        heard: [0; MAX_PATHS],
    };
    let mut p = vec![0u8; hb.buffer_len()];
    hb.emit(&mut p);
    p
}

/// Issue 21 finding 1 (fuzz review): one authentic heartbeat whose state block says view
/// `u64::MAX - 1` made the next coordinator overflow (debug: panic; release: wrapped to
/// view 0, refused by every member for ever). Now such counters are dropped as
/// implausible and change nothing; the two nodes go on forming views.
#[test]
fn a_view_number_near_the_end_is_implausible_and_wedges_nothing() {
    let (mut a, mut b) = (node(1, 1, 2), node(2, 2, 2));
    run(&mut a, &mut b, 0, 5 * MS, |_, _| true);
    assert_eq!(a.view().members.len(), 2);
    let now = Instant::from_nanos(5 * MS);
    let forged = |view: u64, installed: u64, inc: u32, sent: u64| {
        let state = crate::wire::state::StateRepr {
            view,
            installed,
            ..Default::default()
        };
        frame_from(
            Kind::Heartbeat,
            2,
            inc,
            1_000_000,
            sent,
            &heartbeat_with(state),
        )
    };
    for (view, installed) in [
        (u64::MAX - 1, 0),
        (u64::MAX, 1),
        (1, u64::MAX),
        (1 << 40, 1),
    ] {
        assert_eq!(
            a.handle_frame(now, now, 0, &forged(view, installed, 2, 5 * MS)),
            Err(DropReason::Implausible),
            "view {view} installed {installed}"
        );
    }
    // A restart claim stamped far in the future (it used to make the genuine incarnation
    // "past" until its node restarted).
    assert_eq!(
        a.handle_frame(now, now, 0, &forged(1, 1, 77, u64::MAX)),
        Err(DropReason::Implausible)
    );
    assert_eq!(a.drops(0).get(DropReason::Implausible), 5);
    assert_eq!(
        a.peers()[1].incarnation,
        Some(2),
        "b is not taken as restarted"
    );
    // b dies: a proposes the next view as usual (no overflow, no wrap).
    alone(&mut a, 5 * MS + MS / 10, 30 * MS);
    assert_eq!(a.view().members.len(), 1);
    assert!(a.view().number < 10, "view {}", a.view().number);
    // A commit past the ceiling is refused as well.
    let v = ViewRepr {
        number: u64::MAX,
        members: 0b11,
        groups: 0,
        plan: [0; crate::wire::state::MAX_GROUPS],
    };
    let mut p = vec![0u8; v.buffer_len()];
    v.emit(&mut p);
    assert_eq!(
        a.handle_frame(
            now,
            now,
            0,
            &frame_from(Kind::ViewCommit, 2, 2, 1_000_001, 5 * MS, &p)
        ),
        Err(DropReason::Implausible)
    );
}

/// Steps `a` and `b` from `from` to `to` in 100 µs steps, delivering frames both ways
/// while `linked(t)`, completing every resource request at once; returns every action
/// but frames and resource requests, with its time and node (0 = a, 1 = b).
fn run_pair(
    a: &mut Node,
    b: &mut Node,
    span: (u64, u64),
    linked: impl Fn(u64) -> bool,
) -> Vec<(u64, usize, Action)> {
    run_pair_with(a, b, span, |t, _, _| linked(t))
}

/// Like `run_pair`; `pass(t, i, frame)` says whether node i's frame reaches the other.
fn run_pair_with(
    a: &mut Node,
    b: &mut Node,
    (from, to): (u64, u64),
    pass: impl Fn(u64, usize, &[u8]) -> bool,
) -> Vec<(u64, usize, Action)> {
    let mut seen = vec![];
    let mut buf = [0u8; FRAME_MAX];
    let mut t = from;
    while t <= to {
        let now = Instant::from_nanos(t);
        for n in [&mut *a, &mut *b] {
            if n.next_deadline().is_some_and(|d| d <= now) {
                n.handle_timeout(now);
            }
        }
        let mut frames: [Vec<(usize, Vec<u8>)>; 2] = [vec![], vec![]];
        for (i, n) in [&mut *a, &mut *b].into_iter().enumerate() {
            while let Some(act) = n.poll_action(now, &mut buf) {
                match act {
                    Action::Transmit { path, len, .. } => {
                        frames[i].push((usize::from(path), buf[..len].to_vec()));
                    }
                    Action::Resource(r) => {
                        n.resource_done(now, r, true).unwrap();
                    }
                    Action::Event { .. } => {}
                    other => seen.push((t, i, other)),
                }
            }
        }
        for (path, bytes) in frames[0].iter().filter(|(_, f)| pass(t, 0, f)) {
            let _ = b.handle_frame(now, now, *path, bytes);
        }
        for (path, bytes) in frames[1].iter().filter(|(_, f)| pass(t, 1, f)) {
            let _ = a.handle_frame(now, now, *path, bytes);
        }
        t += MS / 10;
    }
    seen
}

/// Issue 17 item 6: the tie-breaker steps and `on_quorum_loss` are the core's decisions.
/// Two nodes with a tie-breaker and one group on a: in the view of both, each registers;
/// when the link is cut, each races for its half, a loses its authority and fences its
/// group, `on_quorum_loss` waits for the race; a lost race halts (policy `halt`), a won
/// race keeps the node (and b's lost race halts b).
#[test]
fn the_core_orders_the_tie_breaker_steps_and_on_quorum_loss() {
    use super::super::authority::{QuorumLoss, TieStep};
    let spec = || one_group(QuorumLoss::Halt, true);
    let mut a = Node::new(spec(), id(1), 1, Some(key()), Instant::from_nanos(0));
    let mut b = Node::new(spec(), id(2), 2, Some(key()), Instant::from_nanos(0));
    let seen = run_pair(&mut a, &mut b, (0, 10 * MS), |_| true);
    let register = |i| {
        seen.iter()
            .filter(|(_, n, act)| *n == i && *act == Action::TieBreaker(TieStep::Register))
            .count()
    };
    assert_eq!((register(0), register(1)), (1, 1), "{seen:?}");
    assert_eq!(a.groups()[0].phase, Phase::Online);
    let seen = run_pair(&mut a, &mut b, (10 * MS, 30 * MS), |_| false);
    let only = |i: usize| NodeSet::from_iter([id(u8::try_from(i + 1).unwrap())]);
    for i in 0..2 {
        assert!(
            seen.iter()
                .any(|(_, n, act)| *n == i && *act == Action::TieBreaker(TieStep::Race(only(i)))),
            "node {i} races for its half: {seen:?}"
        );
    }
    assert!(
        seen.iter()
            .any(|(_, n, act)| *n == 0 && *act == Action::Fence { group: 0 }),
        "a fenced its group: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(_, _, act)| matches!(act, Action::Halt(_))),
        "nobody halts before its race ends: {seen:?}"
    );
    assert!(a.quorum_loss_waits_for_race());
    let now = Instant::from_nanos(31 * MS);
    a.tie_breaker_result(now, only(0), true);
    b.tie_breaker_result(now, only(1), false);
    let seen = run_pair(&mut a, &mut b, (31 * MS, 40 * MS), |_| false);
    assert_eq!(
        seen.iter()
            .filter(|(_, _, act)| matches!(act, Action::Halt(_)))
            .map(|(_, n, act)| (*n, *act))
            .collect::<Vec<_>>(),
        [(1, Action::Halt(Halt::QuorumLoss))],
        "the loser halts, the winner does not"
    );
    assert!(
        a.authority(),
        "the winner holds authority on the tie-breaker"
    );
    assert_eq!(a.groups()[0].phase, Phase::Online, "and its group again");
}

/// Review F-b: a won the tie-breaker alone; b came back, and the view of both was
/// committed, but b's word for it never reached a (only membership frames got through),
/// so a kept the tie-breaker. Cut off again, a races afresh for its new half view: until
/// that race is won the view is not quorate. Before, the old flag made it quorate at
/// once with no lease to run out, while b — registered again in the view of both — could
/// win the new race.
#[test]
fn a_new_race_starts_without_the_tie_breaker_an_earlier_race_left() {
    use super::super::authority::{QuorumLoss, TieStep};
    let spec = || one_group(QuorumLoss::Freeze, true);
    let (mut a, mut b) = settled_pair(&spec);
    run_pair(&mut a, &mut b, (10 * MS, 30 * MS), |_| false);
    let only_a = NodeSet::from_iter([id(1)]);
    a.tie_breaker_result(Instant::from_nanos(30 * MS), only_a, true);
    assert!(a.quorate() && a.authority(), "a won its half");
    // No state block of b's that vouches for the view of both reaches a.
    let no_word = |_: u64, i: usize, f: &[u8]| {
        let word = crate::wire::frame::Frame::new_checked(f, true).is_ok_and(|fr| {
            matches!(fr.kind(), Kind::Heartbeat | Kind::GroupState)
                && crate::wire::state::StateRepr::parse(fr.payload())
                    .is_ok_and(|s| s.agreed == 0b11)
        });
        i == 0 || !word
    };
    let mut t = 30 * MS;
    while a.view().members.len() < 2 {
        assert!(t < 60 * MS, "the view of both was not committed");
        run_pair_with(&mut a, &mut b, (t, t), no_word);
        t += MS / 10;
    }
    assert!(
        a.tie_breaker(),
        "b's word never came: a keeps the tie-breaker"
    );
    let seen = run_pair(&mut a, &mut b, (t, t + 20 * MS), |_| false);
    assert_eq!(a.view().members, only_a);
    assert!(
        seen.iter()
            .any(|(_, n, act)| *n == 0 && *act == Action::TieBreaker(TieStep::Race(only_a))),
        "a races again: {seen:?}"
    );
    assert!(
        !a.quorate() && !a.authority(),
        "a half view is not quorate before its race is won"
    );
}

/// Two nodes, one group at home on node 1, `on_quorum_loss`, with or without a
/// tie-breaker.
fn one_group(
    on_quorum_loss: super::super::authority::QuorumLoss,
    tie_breaker: bool,
) -> ClusterSpec {
    ClusterSpec {
        groups: vec![GroupSpec::sample(
            &[1, 2],
            super::super::placement::Startup::Home,
            1,
        )],
        on_quorum_loss,
        tie_breaker,
        ..spec(1)
    }
}

/// Nodes a and b of `spec` (incarnations 1 and 2) after 10 ms together: a holds group 0.
fn settled_pair(spec: &dyn Fn() -> ClusterSpec) -> (Node, Node) {
    let mut a = Node::new(spec(), id(1), 1, Some(key()), Instant::from_nanos(0));
    let mut b = Node::new(spec(), id(2), 2, Some(key()), Instant::from_nanos(0));
    run_pair(&mut a, &mut b, (0, 10 * MS), |_| true);
    assert_eq!(a.groups()[0].phase, Phase::Online);
    (a, b)
}

/// The SAN lab's scenario 5: in a two-node cluster with a tie-breaker (no `two_node`),
/// the standby's daemon dies and its sentinel starts a new one at once. The holder hears
/// the new incarnation before any timeout: the old one's word for the view they shared
/// was given, and its lease runs out as it would have; the holder does not lose its
/// authority in that view (with `halt`: it halted, and nobody served the group). It
/// races for the half it is left in, and holds the group once the restarted node is back.
#[test]
fn a_restarted_standby_does_not_make_the_holder_lose_its_authority_at_once() {
    use super::super::authority::QuorumLoss;
    let spec = || one_group(QuorumLoss::Halt, true);
    let (mut a, _) = settled_pair(&spec);
    assert!(a.authority());
    // b's daemon dies at 10 ms; its successor (incarnation 3) runs from 10.1 ms.
    let mut b = Node::new(
        spec(),
        id(2),
        3,
        Some(key()),
        Instant::from_nanos(10 * MS + MS / 10),
    );
    let seen = run_pair(&mut a, &mut b, (10 * MS + MS / 10, 30 * MS), |_| true);
    assert!(
        !seen
            .iter()
            .any(|(_, n, act)| *n == 0 && matches!(act, Action::Halt(_))),
        "the holder halted: {seen:?}"
    );
    assert_eq!(a.groups()[0].phase, Phase::Online, "{seen:?}");
    assert!(a.authority());
}

/// `on_quorum_loss = "stop"`: a node that loses its authority leaves (releases, then
/// the daemon exits) — decided in the core.
#[test]
fn on_quorum_loss_stop_makes_the_node_leave() {
    use super::super::authority::QuorumLoss;
    let spec = || one_group(QuorumLoss::Stop, false);
    let (mut a, mut b) = settled_pair(&spec);
    assert!(!a.leaving());
    run_pair(&mut a, &mut b, (10 * MS, 30 * MS), |_| false);
    assert!(a.left_for_quorum_loss() && a.leaving() && a.stopped());
    assert_eq!(a.groups()[0].phase, Phase::Offline);
}

/// When nodes join the view, the groups online here are announced again (one of the
/// joiners may have announced them while cut off) — ordered by the core.
#[test]
fn a_view_that_gains_members_reannounces_the_groups_online_here() {
    use super::super::placement::Startup;
    let spec = || ClusterSpec {
        groups: vec![GroupSpec::sample(&[1, 2], Startup::Home, 1)],
        two_node: true,
        ..spec(1)
    };
    let (mut a, mut b) = settled_pair(&spec);
    let cut = run_pair(&mut a, &mut b, (10 * MS, 30 * MS), |_| false);
    assert!(
        !cut.iter()
            .any(|(_, _, act)| matches!(act, Action::Announce { .. })),
        "nobody joined: {cut:?}"
    );
    let healed = run_pair(&mut a, &mut b, (30 * MS, 50 * MS), |_| true);
    let announced: Vec<_> = healed
        .iter()
        .filter(|(_, _, act)| matches!(act, Action::Announce { .. }))
        .map(|(_, n, act)| (*n, *act))
        .collect();
    assert!(
        announced.contains(&(0, Action::Announce { group: 0 })),
        "a announces its group again when b rejoins: {healed:?}"
    );
}

/// Runs `nodes` from `from` to `to` in 100 µs steps; node i is stepped and its frames
/// delivered only while `alive(t, i)`; `inject(t)` returns extra frames (path, bytes)
/// delivered to every live node at t. Returns the first time each node had group 0
/// online, if it did.
/// `base` with a third node on every path, one group on nodes 1, 2, 3 (home 1) and
/// config hash `hash`.
fn three_nodes(base: ClusterSpec, hash: u64) -> ClusterSpec {
    use super::super::placement::Startup;
    let mut s = ClusterSpec {
        groups: vec![GroupSpec::sample(&[1, 2, 3], Startup::Home, 1)],
        config_hash: hash,
        ..base
    };
    s.nodes.push(crate::core::spec::NodeSpec {
        id: id(3),
        name: "n3".into(),
    });
    for p in &mut s.paths {
        p.nodes = NodeSet::from_bits(0b111);
    }
    s
}

fn run_nodes(
    nodes: &mut [Node],
    (from, to): (u64, u64),
    alive: impl Fn(u64, usize) -> bool,
    inject: impl Fn(u64) -> Vec<(usize, Vec<u8>)>,
) -> Vec<Option<u64>> {
    let mut online = vec![None; nodes.len()];
    let mut buf = [0u8; FRAME_MAX];
    let mut t = from;
    while t <= to {
        let now = Instant::from_nanos(t);
        let mut frames = inject(t);
        let mut from_node = vec![];
        for (i, n) in nodes.iter_mut().enumerate().filter(|(i, _)| alive(t, *i)) {
            if n.next_deadline().is_some_and(|d| d <= now) {
                n.handle_timeout(now);
            }
            while let Some(act) = n.poll_action(now, &mut buf) {
                match act {
                    Action::Transmit { path, len, .. } => {
                        from_node.push((i, usize::from(path), buf[..len].to_vec()));
                    }
                    Action::Resource(r) => n.resource_done(now, r, true).unwrap(),
                    _ => {}
                }
            }
            if online[i].is_none() && n.groups()[0].phase == Phase::Online {
                online[i] = Some(t);
            }
        }
        frames.extend(from_node.iter().map(|(_, p, b)| (*p, b.clone())));
        for (i, n) in nodes.iter_mut().enumerate().filter(|(i, _)| alive(t, *i)) {
            for (path, bytes) in &frames {
                if from_node.iter().all(|(s, _, b)| *s != i || b != bytes) {
                    let _ = n.handle_frame(now, now, *path, bytes);
                }
            }
        }
        t += MS / 10;
    }
    online
}

/// Issue 18: a sentinel's death notice for the owner's daemon makes the next node take
/// the group over at once — without it, only after detection plus the lease wait. The
/// notice's copies, a replay of it, and the dead incarnation's late frames change nothing
/// more; a notice in a keyless cluster is refused and counted.
#[test]
fn a_death_notice_lets_the_next_node_take_over_without_waiting_for_the_lease() {
    let spec = || three_nodes(spec(2), 0xabc);
    let cluster = || -> Vec<Node> {
        (1..=3)
            .map(|i| {
                Node::new(
                    spec(),
                    id(i),
                    u32::from(i) * 10,
                    Some(key()),
                    Instant::from_nanos(0),
                )
            })
            .collect()
    };
    let died = 20 * MS;
    let lease = spec().lease();
    let settle = u64::try_from((lease + spec().transit_margin()).as_nanos()).unwrap();
    let timeout = u64::try_from(spec().paths[0].timeout.as_nanos()).unwrap();
    let notice = |t: u64| -> Vec<(usize, Vec<u8>)> {
        if t != died {
            return vec![];
        }
        (0..2)
            .map(|path| {
                let mut buf = [0u8; FRAME_MAX];
                let len = death_notice(
                    &spec(),
                    &key(),
                    (id(1), 10),
                    path,
                    Instant::from_nanos(t),
                    Cause::Signalled(9),
                    &mut buf,
                );
                (path, buf[..len].to_vec())
            })
            .collect()
    };
    let alive = |t: u64, i: usize| i != 0 || t < died;

    // Without a notice: detection, then the lease wait.
    let mut plain = cluster();
    let on = run_nodes(&mut plain, (0, 60 * MS), alive, |_| vec![]);
    assert!(on[0].is_some_and(|t| t < died), "n1 owned it first: {on:?}");
    let slow = on[1].expect("n2 takes over after the timeout");
    // Silence counts from n1's last heartbeat, at most an interval before it died.
    let interval = u64::try_from(spec().paths[0].interval.as_nanos()).unwrap();
    assert!(slow >= died - interval + timeout + settle, "{slow} {on:?}");

    // With the sentinel's notice at `died`: n2 takes over before even a timeout passes.
    let mut fenced = cluster();
    let on = run_nodes(&mut fenced, (0, 60 * MS), alive, notice);
    let fast = on[1].expect("n2 takes over");
    assert!(
        fast < died + timeout,
        "{fast} vs {}: {on:?}",
        died + timeout
    );
    assert!(fenced[1].peers()[0].fenced && fenced[2].peers()[0].fenced);
    assert_eq!(on[2], None, "only n2 takes it");

    // A copy of the notice and the dead daemon's late heartbeat change nothing: n1 stays
    // down; a new incarnation of it comes up as a node again.
    let late = frame_from(Kind::Heartbeat, 1, 10, 99, 19 * MS, &good_payload());
    for (path, bytes) in notice(died).into_iter().chain([(0, late)]) {
        let r = fenced[1].handle_frame(
            Instant::from_nanos(61 * MS),
            Instant::from_nanos(61 * MS),
            path,
            &bytes,
        );
        assert!(matches!(r, Ok(()) | Err(DropReason::Replay)), "{r:?}");
    }
    assert_eq!(fenced[1].peers()[0].state, PeerState::Down);

    // Keyless: refused and counted, nothing changes.
    let mut open = Node::new(spec(), id(2), 20, None, Instant::from_nanos(0));
    let h = HeaderRepr {
        kind: Kind::DeathNotice,
        cluster: 7,
        node: 1,
        path: 0,
        incarnation: 10,
        seq: 0,
        timestamp_ns: MS,
    };
    let mut buf = [0u8; FRAME_MAX];
    let n = h
        .emit(&mut buf, crate::wire::notice::LEN, None, |p| {
            Cause::Hung.emit(p)
        })
        .unwrap();
    let (path, bytes) = (0, buf[..n].to_vec());
    let r = open.handle_frame(
        Instant::from_nanos(MS),
        Instant::from_nanos(MS),
        path,
        &bytes,
    );
    assert_eq!(r, Err(DropReason::RefusedNotice));
    assert_eq!(open.drops(path).get(DropReason::RefusedNotice), 1);
}

/// Review S7: a node that starts with another config is not admitted to the views of the
/// nodes that run the old one, while a member that reloads another config in place (as
/// `sync` does) stays. Three nodes in one view; at 20 ms n2 reloads config B in place and
/// n3 restarts with config B: n1 and n2 stay together, n3 stays out (without the rule, n3
/// rejoined at once: a rolling restart that grows the node list then makes two quorate
/// views with no partition).
#[test]
fn a_node_restarted_with_another_config_is_not_admitted_but_a_reload_in_place_stays() {
    let spec = |hash: u64| three_nodes(spec(1), hash);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            Node::new(
                spec(0xa),
                id(i),
                u32::from(i) * 10,
                Some(key()),
                Instant::from_nanos(0),
            )
        })
        .collect();
    run_nodes(&mut nodes, (0, 20 * MS), |_, _| true, |_| vec![]);
    assert!(
        nodes
            .iter()
            .all(|n| n.view().members == NodeSet::from_bits(0b111))
    );
    let t = 20 * MS + MS / 10;
    nodes[1].set_config_hash(0xb);
    nodes[2] = Node::new(spec(0xb), id(3), 31, Some(key()), Instant::from_nanos(t));
    run_nodes(&mut nodes, (t, 80 * MS), |_, _| true, |_| vec![]);
    let members: Vec<NodeSet> = nodes.iter().map(|n| n.view().members).collect();
    assert_eq!(members[0], NodeSet::from_bits(0b011), "n1: {members:?}");
    assert_eq!(members[1], NodeSet::from_bits(0b011), "n2: {members:?}");
    assert!(
        nodes[0].quorate() && nodes[0].authority(),
        "n1 keeps quorum"
    );
    assert!(!nodes[2].quorate(), "n3 is out: {members:?}");
    assert!(!nodes[0].peers()[2].config_matched);
}

/// Review S7 in a `two_node` pair: the standby restarts with another config. It is not
/// admitted, and a lone node of two is quorate only while no node with another config is
/// alive or once it has held authority: the holder keeps its group, the restarted node
/// takes nothing (without the rule both held it from about one timeout on).
#[test]
fn in_a_two_node_pair_a_node_restarted_with_another_config_takes_nothing() {
    use super::super::authority::QuorumLoss;
    let spec = |hash: u64| ClusterSpec {
        two_node: true,
        config_hash: hash,
        ..one_group(QuorumLoss::Freeze, false)
    };
    let (mut a, _) = settled_pair(&|| spec(0xa));
    let t = 10 * MS + MS / 10;
    let mut b = Node::new(spec(0xb), id(2), 3, Some(key()), Instant::from_nanos(t));
    run_pair(&mut a, &mut b, (t, 80 * MS), |_| true);
    assert_eq!(a.groups()[0].phase, Phase::Online);
    assert!(a.quorate() && a.authority(), "the holder keeps its group");
    assert_eq!(b.groups()[0].phase, Phase::Offline, "b: {:?}", b.view());
    assert!(!b.quorate());
    assert_eq!(a.view().members.len(), 1);
}

/// Two groups like [`one_group`]'s, both homed on node 1.
fn two_groups() -> ClusterSpec {
    let mut s = one_group(super::super::authority::QuorumLoss::Freeze, false);
    s.groups.push(s.groups[0].clone());
    s
}

/// `node` asks `op` of `groups` at `at`; the command must wait for the cluster.
fn ask_pending(node: &mut Node, at: Instant, op: super::super::operator::Op, groups: u64) {
    let cmd = Command { op, groups };
    assert_eq!(
        node.command(at, cmd, Duration::from_secs(1)),
        Ok(super::super::operator::CommandState::Pending),
        "{op:?} of {groups:#b}"
    );
}

/// Issue 20: a resource that fails fatally (an agent's "not configured") cannot run
/// anywhere with this config. The node it failed on asks `offline` of its group on every
/// node: the group is released there and the peer never starts it (a plain failure moves
/// it to the peer instead: the second half). `online` brings it back.
#[test]
fn a_fatal_failure_takes_the_group_offline_everywhere() {
    use super::super::operator::{CommandState, Op};
    use super::super::placement::Placement;
    let spec = || one_group(super::super::authority::QuorumLoss::Freeze, false);
    // Step by step (run_pair steps every 100 µs): neither node acquires it again, before
    // or after a view carries the `offline` out. Once with every frame delivered (a, the
    // coordinator, must not first place it on b), once with b's frames lost for 2 ms (the
    // view waits for b's ack; a keeps its own mark meanwhile).
    for lossy in [false, true] {
        let (mut a, mut b) = settled_pair(&spec);
        a.fatal_group(Instant::from_nanos(10 * MS), 0, 0);
        for step in 100..600 {
            let t = step * MS / 10;
            run_pair_with(&mut a, &mut b, (t, t), |t, i, _| {
                !lossy || i == 0 || t >= 12 * MS
            });
            for (n, name) in [(&a, "a"), (&b, "b")] {
                assert!(
                    matches!(n.groups()[0].phase, Phase::Offline | Phase::Releasing),
                    "{name} holds it again at {t} ns (lossy {lossy}): {:?}",
                    n.groups()[0].phase
                );
            }
        }
        assert_eq!(a.view().plan.get(0), Placement::Offline);
    }
    let (mut a, mut b) = settled_pair(&spec);
    a.fatal_group(Instant::from_nanos(10 * MS), 0, 0);
    run_pair(&mut a, &mut b, (10 * MS, 60 * MS), |_| true);
    assert_eq!(a.groups()[0].phase, Phase::Offline);
    assert_eq!(a.view().plan.get(0), Placement::Offline);
    assert_eq!(b.view().plan.get(0), Placement::Offline);

    let now = Instant::from_nanos(60 * MS);
    let online = Command {
        op: Op::Online,
        groups: 1,
    };
    b.command(now, online, Duration::from_secs(1)).unwrap();
    run_pair(&mut a, &mut b, (60 * MS, 80 * MS), |_| true);
    assert_eq!(a.groups()[0].phase, Phase::Online, "online after the fix");

    // An operator's command for the group, pending when the fatal failure comes: told
    // it was superseded (by a's `offline`), not left to wait for its deadline.
    let (mut a, _) = settled_pair(&spec);
    let at = Instant::from_nanos(10 * MS);
    ask_pending(&mut a, at, Op::Move(id(2)), 1);
    a.fatal_group(at, 0, 0);
    assert_eq!(
        a.command_state(),
        Some(CommandState::Superseded(id(1), Op::Offline))
    );

    let (mut a, mut b) = settled_pair(&spec);
    a.fail_group(Instant::from_nanos(10 * MS), 0);
    run_pair(&mut a, &mut b, (10 * MS, 60 * MS), |_| true);
    assert_eq!(
        b.groups()[0].phase,
        Phase::Online,
        "a plain failure moves it"
    );
}

/// The commands a node asks for fatal failures count their ids on their own: b asks
/// `move` of group 0 (all its copies lost at first), then asks `offline` of group 1 for
/// a fatal failure, which arrives first. With one count the fatal command's newer id made
/// a drop every resend of the move as old, and the move expired.
#[test]
fn fatal_and_operator_commands_have_their_own_ids() {
    use super::super::operator::{CommandState, Op};
    let (mut a, mut b) = settled_pair(&two_groups);
    let at = Instant::from_nanos(10 * MS);
    ask_pending(&mut b, at, Op::Move(id(2)), 1);
    run_pair_with(&mut a, &mut b, (10 * MS, 10 * MS + MS / 2), |_, i, f| {
        !(i == 1 && f[3] == 6)
    });
    b.fatal_group(Instant::from_nanos(10 * MS + MS / 2), 1, 0);
    run_pair(&mut a, &mut b, (10 * MS + MS / 2, 40 * MS), |_| true);
    assert_eq!(b.command_state(), Some(CommandState::Done));
    assert_eq!(b.groups()[0].phase, Phase::Online);
}

/// A later command supersedes an operator's pending one only by another op, and only
/// for the groups it names: `offline` of both groups goes on when one of them is asked
/// offline for a fatal failure; `move` of both goes on, narrowed, for the other group.
#[test]
fn a_later_command_supersedes_only_what_it_changes() {
    use super::super::operator::{CommandState, Op};
    let at = Instant::from_nanos(10 * MS);
    for op in [Op::Offline, Op::Move(id(2))] {
        let (mut a, mut b) = settled_pair(&two_groups);
        ask_pending(&mut a, at, op, 0b11);
        a.fatal_group(at, 1, 0);
        assert_eq!(a.command_state(), Some(CommandState::Pending), "{op:?}");
        run_pair(&mut a, &mut b, (10 * MS, 40 * MS), |_| true);
        assert_eq!(a.command_state(), Some(CommandState::Done), "{op:?}");
        assert_eq!(
            a.view().plan.get(1),
            super::super::placement::Placement::Offline
        );
    }
}

/// Two groups fail fatally on b, 100 µs apart (one bad config): the second `offline`
/// goes out at once with the first's groups, not after the first is done; a, the
/// coordinator, never places either on itself (with the second left to wait, a took
/// group 1 over from b's failure mark).
#[test]
fn a_second_fatal_failure_is_asked_at_once() {
    use super::super::placement::{Placement, Startup};
    let spec = || {
        let mut s = one_group(super::super::authority::QuorumLoss::Freeze, false);
        s.groups = vec![GroupSpec::sample(&[2, 1], Startup::Home, 1); 2];
        s
    };
    let mut a = Node::new(spec(), id(1), 1, Some(key()), Instant::from_nanos(0));
    let mut b = Node::new(spec(), id(2), 2, Some(key()), Instant::from_nanos(0));
    run_pair(&mut a, &mut b, (0, 10 * MS), |_| true);
    assert_eq!(b.groups()[1].phase, Phase::Online);
    b.fatal_group(Instant::from_nanos(10 * MS), 0, 0);
    run_pair(&mut a, &mut b, (10 * MS, 10 * MS), |_| true);
    b.fatal_group(Instant::from_nanos(10 * MS + MS / 10), 1, 0);
    for step in 101..400 {
        let t = step * MS / 10;
        run_pair(&mut a, &mut b, (t, t), |_| true);
        for g in 0..2 {
            assert!(
                matches!(a.groups()[g].phase, Phase::Offline),
                "a holds group {g} at {t} ns"
            );
        }
    }
    for g in 0..2 {
        assert_eq!(a.view().plan.get(g), Placement::Offline);
    }
}
