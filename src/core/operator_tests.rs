//! Operator commands: payload checks, refusals, how the coordinator applies pins, and
//! when a command counts as done.

use super::*;

fn id(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn set(ids: &[u8]) -> NodeSet {
    ids.iter().map(|i| id(*i)).collect()
}

fn group(nodes: &[u8], startup: Startup) -> GroupSpec {
    GroupSpec::sample(nodes, startup, 1)
}

fn plan_of(placements: &[Placement]) -> Plan {
    let mut p = Plan::unplaced(placements.len());
    for (g, x) in placements.iter().enumerate() {
        p.set(g, *x);
    }
    p
}

fn pin(op: Op) -> Option<Pin> {
    Some(Pin {
        op,
        until: Instant::from_nanos(1_000),
    })
}

const NOW: Instant = Instant::from_nanos(10);

#[test]
fn payloads_are_checked_against_the_config() {
    let nodes = set(&[1, 2, 3]);
    let repr = |op, node, groups| CommandRepr {
        id: 1,
        op,
        node,
        valid_ms: 100,
        groups,
    };
    let ok = Command::from_repr(&repr(OP_MOVE, 2, 0b10), nodes, 2);
    assert_eq!(
        ok,
        Some(Command {
            op: Op::Move(id(2)),
            groups: 0b10
        })
    );
    let c = Command::from_repr(&repr(OP_EVACUATE, 3, 0b1), nodes, 2).unwrap();
    assert_eq!(
        Command::from_repr(&c.to_repr(1, Duration::from_millis(100)), nodes, 2),
        Some(c)
    );
    for (why, r) in [
        ("move without a node", repr(OP_MOVE, 0, 1)),
        ("move to an unconfigured node", repr(OP_MOVE, 4, 1)),
        ("online naming a node", repr(OP_ONLINE, 1, 1)),
        ("offline naming a node", repr(OP_OFFLINE, 1, 1)),
        ("unknown op", repr(9, 0, 1)),
        ("no group", repr(OP_ONLINE, 0, 0)),
        ("unconfigured group", repr(OP_OFFLINE, 0, 0b100)),
    ] {
        assert_eq!(Command::from_repr(&r, nodes, 2), None, "{why}");
    }
}

#[test]
fn refusals_name_the_problem() {
    let specs = [
        group(&[1, 2], Startup::Home),
        group(&[1, 2, 3], Startup::All),
    ];
    let members = set(&[1, 2]);
    let cmd = |op, groups| Command { op, groups };
    assert_eq!(cmd(Op::Move(id(2)), 1).check(&specs, members, true), Ok(()));
    assert_eq!(
        cmd(Op::Move(id(2)), 1).check(&specs, members, false),
        Err(Refusal::NoQuorum)
    );
    assert_eq!(
        cmd(Op::Move(id(3)), 1).check(&specs, set(&[1, 2, 3]), true),
        Err(Refusal::NotInList(0))
    );
    assert_eq!(
        cmd(Op::Move(id(2)), 0b10).check(&specs, members, true),
        Err(Refusal::Concurrent(1))
    );
    let only_0 = [group(&[1, 2, 3], Startup::Home)];
    assert_eq!(
        cmd(Op::Move(id(3)), 1).check(&only_0, members, true),
        Err(Refusal::NotMember)
    );
    assert_eq!(
        cmd(Op::Online, 0b100).check(&specs, members, true),
        Err(Refusal::NoGroup)
    );
    assert_eq!(
        cmd(Op::Offline, 0).check(&specs, members, true),
        Err(Refusal::NoGroup)
    );
    assert_eq!(cmd(Op::Offline, 0b11).check(&specs, members, true), Ok(()));
}

#[test]
fn pins_place_groups_as_asked() {
    let specs = [
        group(&[1, 2, 3], Startup::Home),
        group(&[1, 2, 3], Startup::Home),
        group(&[2, 3], Startup::All),
        group(&[1, 2, 3], Startup::Home),
        group(&[2, 1], Startup::Home),
    ];
    let members = set(&[1, 2, 3]);
    let mut plan = plan_of(&[
        Placement::Online(id(1)),
        Placement::Offline,
        Placement::Offline,
        Placement::Online(id(1)),
        Placement::Online(id(1)),
    ]);
    let pins = [
        pin(Op::Move(id(3))),
        pin(Op::Online),
        pin(Op::Online),
        pin(Op::Evacuate(id(1))),
        pin(Op::Evacuate(id(1))),
    ];
    apply_pins(&mut plan, &specs, &pins, NOW, members, |_, _| false);
    assert_eq!(
        plan.iter().collect::<Vec<_>>(),
        [
            Placement::Online(id(3)),
            Placement::Online(id(1)),
            Placement::Concurrent,
            Placement::Online(id(2)),
            Placement::Online(id(2)),
        ],
        "move; online on the first eligible node; concurrent online; evacuate to the next \
         node after the leaver, wrapping"
    );
}

/// One group on nodes 1 and 2 (home 1), placed `placed`, with one pin `op` applied at
/// `at` for `members`; returns the placement.
fn pinned_one(
    placed: Placement,
    op: Op,
    at: Instant,
    members: &[u8],
    failed: impl Fn(NodeId, usize) -> bool,
) -> Placement {
    let mut plan = plan_of(&[placed]);
    let specs = [group(&[1, 2], Startup::Home)];
    apply_pins(&mut plan, &specs, &[pin(op)], at, set(members), failed);
    plan.get(0)
}

#[test]
fn evacuate_with_nowhere_to_go_takes_the_group_offline() {
    let at_1 = Placement::Online(id(1));
    let none = |_, _| false;
    assert_eq!(
        pinned_one(at_1, Op::Evacuate(id(1)), NOW, &[1, 3], none),
        Placement::Offline
    );
}

#[test]
fn a_pin_waits_for_failure_marks_to_clear_and_lapses() {
    let (at_1, at_2) = (Placement::Online(id(1)), Placement::Online(id(2)));
    let failed_on_2 = |n: NodeId, _| n == id(2);
    let none = |_, _| false;
    assert_eq!(
        pinned_one(at_1, Op::Move(id(2)), NOW, &[1, 2], failed_on_2),
        at_1,
        "2 has not reset its mark yet"
    );
    assert_eq!(
        pinned_one(Placement::Offline, Op::Online, NOW, &[1, 2], failed_on_2),
        Placement::Offline,
        "online waits for every mark"
    );
    assert_eq!(pinned_one(at_1, Op::Move(id(2)), NOW, &[1, 2], none), at_2);
    let late = Instant::from_nanos(1_000);
    assert_eq!(
        pinned_one(at_2, Op::Offline, late, &[1, 2], none),
        at_2,
        "a lapsed pin does nothing"
    );
    assert_eq!(
        pinned_one(at_2, Op::Move(id(3)), NOW, &[1, 2], none),
        at_2,
        "3 is not a member"
    );
}

#[test]
fn done_needs_the_plan_and_the_groups_where_it_says() {
    let running = |held: &[u8], online: &[u8]| Running {
        held: set(held),
        online: set(online),
        ..Running::default()
    };
    let mv = Command {
        op: Op::Move(id(2)),
        groups: 1,
    };
    let at_2 = plan_of(&[Placement::Online(id(2))]);
    assert!(!mv.done(&plan_of(&[Placement::Online(id(1))]), |_| running(&[], &[])));
    assert!(
        !mv.done(&at_2, |_| running(&[1], &[1])),
        "1 has not released"
    );
    assert!(
        !mv.done(&at_2, |_| running(&[2], &[])),
        "2 is still acquiring"
    );
    assert!(
        !mv.done(&at_2, |_| running(&[1, 2], &[2])),
        "1 still releasing"
    );
    assert!(mv.done(&at_2, |_| running(&[2], &[2])));
    let off = Command {
        op: Op::Offline,
        groups: 1,
    };
    let offline = plan_of(&[Placement::Offline]);
    assert!(!off.done(&offline, |_| running(&[1], &[])));
    assert!(off.done(&offline, |_| running(&[], &[])));
    let evac = Command {
        op: Op::Evacuate(id(1)),
        groups: 1,
    };
    assert!(!evac.done(&at_2, |_| running(&[1], &[])));
    assert!(!evac.done(&at_2, |_| running(&[], &[])), "2 not online yet");
    assert!(evac.done(&at_2, |_| running(&[2], &[2])));
    assert!(evac.done(&offline, |_| running(&[], &[])), "nowhere to go");
    let on = Command {
        op: Op::Online,
        groups: 1,
    };
    let concurrent = plan_of(&[Placement::Concurrent]);
    assert!(!on.done(&concurrent, |_| running(&[1, 2], &[1])));
    assert!(on.done(&concurrent, |_| running(&[1, 2], &[1, 2])));
    assert!(!on.done(&offline, |_| running(&[], &[])));
}

#[test]
fn cleanup_pins_nothing_and_is_done_when_no_mark_or_error_is_left() {
    let clean = Command {
        op: Op::Cleanup,
        groups: 1,
    };
    let repr = clean.to_repr(7, Duration::from_secs(1));
    assert_eq!(Command::from_repr(&repr, set(&[1, 2]), 1), Some(clean));
    let mut bad = repr;
    bad.node = 1;
    assert_eq!(
        Command::from_repr(&bad, set(&[1, 2]), 1),
        None,
        "no node for cleanup"
    );
    let at_1 = plan_of(&[Placement::Online(id(1))]);
    let unplaced = plan_of(&[Placement::Unplaced]);
    for placement in [
        Placement::Online(id(1)),
        Placement::Unplaced,
        Placement::Offline,
    ] {
        assert!(Op::Cleanup.satisfied_by(placement), "never pinned");
    }
    let r = |held: &[u8], online: &[u8], failed: &[u8], candidates: &[u8]| Running {
        held: set(held),
        online: set(online),
        failed: set(failed),
        candidates: set(candidates),
    };
    assert!(
        !clean.done(&at_1, |_| r(&[1], &[1], &[2], &[1, 2])),
        "2's mark is left"
    );
    assert!(
        !clean.done(&at_1, |_| r(&[1, 2], &[1], &[], &[1, 2])),
        "2 in error"
    );
    assert!(clean.done(&at_1, |_| r(&[1], &[1], &[], &[1, 2])));
    assert!(
        !clean.done(&unplaced, |_| r(&[], &[], &[], &[1, 2])),
        "marks cleared: the group is about to be placed"
    );
    assert!(
        clean.done(&unplaced, |_| r(&[], &[], &[], &[])),
        "nobody can run it"
    );
}
