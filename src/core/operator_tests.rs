//! Operator commands: payload checks, refusals, how the coordinator applies pins, and
//! when a command counts as done.

use super::*;
use crate::core::placement::{Fallback, Fallover};

fn id(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn set(ids: &[u8]) -> NodeSet {
    ids.iter().map(|i| id(*i)).collect()
}

fn group(nodes: &[u8], startup: Startup) -> GroupSpec {
    GroupSpec {
        name: "g".into(),
        policy: GroupPolicy {
            nodes: nodes.iter().map(|i| id(*i)).collect(),
            startup,
            fallover: Fallover::Next,
            fallback: Fallback::Home,
        },
        resources: 1,
        pre_acquire: false,
        pre_release: false,
    }
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

#[test]
fn evacuate_with_nowhere_to_go_takes_the_group_offline() {
    let specs = [group(&[1, 2], Startup::Home)];
    let mut plan = plan_of(&[Placement::Online(id(1))]);
    apply_pins(
        &mut plan,
        &specs,
        &[pin(Op::Evacuate(id(1)))],
        NOW,
        set(&[1, 3]),
        |_, _| false,
    );
    assert_eq!(plan.get(0), Placement::Offline);
}

#[test]
fn a_pin_waits_for_failure_marks_to_clear_and_lapses() {
    let specs = [group(&[1, 2], Startup::Home)];
    let members = set(&[1, 2]);
    let mut plan = plan_of(&[Placement::Online(id(1))]);
    let failed_on_2 = |n: NodeId, _| n == id(2);
    apply_pins(
        &mut plan,
        &specs,
        &[pin(Op::Move(id(2)))],
        NOW,
        members,
        failed_on_2,
    );
    assert_eq!(
        plan.get(0),
        Placement::Online(id(1)),
        "2 has not reset its mark yet"
    );
    let mut offline = plan_of(&[Placement::Offline]);
    apply_pins(
        &mut offline,
        &specs,
        &[pin(Op::Online)],
        NOW,
        members,
        failed_on_2,
    );
    assert_eq!(
        offline.get(0),
        Placement::Offline,
        "online waits for every mark"
    );
    apply_pins(
        &mut plan,
        &specs,
        &[pin(Op::Move(id(2)))],
        NOW,
        members,
        |_, _| false,
    );
    assert_eq!(plan.get(0), Placement::Online(id(2)));
    let late = Instant::from_nanos(1_000);
    apply_pins(
        &mut plan,
        &specs,
        &[pin(Op::Offline)],
        late,
        members,
        |_, _| false,
    );
    assert_eq!(
        plan.get(0),
        Placement::Online(id(2)),
        "a lapsed pin does nothing"
    );
    apply_pins(
        &mut plan,
        &specs,
        &[pin(Op::Move(id(3)))],
        NOW,
        members,
        |_, _| false,
    );
    assert_eq!(plan.get(0), Placement::Online(id(2)), "3 is not a member");
}

#[test]
fn done_needs_the_plan_and_the_groups_where_it_says() {
    let running = |held: &[u8], online: &[u8]| Running {
        held: set(held),
        online: set(online),
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
