//! The group state machine against hand-built contexts: order, the acquire rule, the
//! lease, failures, and the coordinator's plan.

use super::*;
use crate::core::placement::Fallback;
use crate::wire::state::StateRepr;

const MS: u64 = 1_000_000;

fn id(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn set(ids: &[u8]) -> NodeSet {
    ids.iter().map(|i| id(*i)).collect()
}

fn t(ms: u64) -> Instant {
    Instant::from_nanos(ms * MS)
}

fn spec(nodes: &[u8], startup: Startup, resources: u8) -> GroupSpec {
    GroupSpec::sample(nodes, startup, resources)
}

/// A world seen from node 1: peers 2 and 3, a view, reports.
struct World {
    peers: Vec<Peer>,
    view: View,
    installed_at: Instant,
    authority: bool,
    leases_apply: bool,
    frozen: bool,
}

impl World {
    fn new(members: &[u8], owner: Placement) -> World {
        let mut plan = Plan::unplaced(1);
        plan.set(0, owner);
        World {
            peers: (1..=3).map(|i| Peer::new(id(i), t(0))).collect(),
            view: View {
                number: 5,
                members: set(members),
                plan,
            },
            installed_at: t(10),
            authority: true,
            leases_apply: true,
            frozen: false,
        }
    }

    fn report(&mut self, peer: u8, installed: u64, holds: u64, failed: u64) {
        self.peers[usize::from(peer - 1)].report = Some(StateRepr {
            installed,
            holds,
            failed,
            ..StateRepr::default()
        });
    }

    fn cx(&self, now: Instant) -> Context<'_> {
        Context {
            now,
            local: id(1),
            view: self.view,
            installed_at: self.installed_at,
            authority_until: self.authority.then_some(Instant::MAX),
            leases_apply: self.leases_apply,
            settle: Duration::from_millis(3),
            peers: &self.peers,
            frozen: self.frozen,
        }
    }
}

/// Members 1, 2, 3 in view 5, the group placed on 1, and 2 and 3 reporting from view 5
/// that they hold nothing.
fn owned_by_1() -> World {
    let mut w = World::new(&[1, 2, 3], Placement::Online(id(1)));
    w.report(2, 5, 0, 0);
    w.report(3, 5, 0, 0);
    w
}

fn drive(g: &mut Groups, w: &World, now: Instant) -> Vec<Event> {
    let mut ev = vec![];
    g.drive(&w.cx(now), &mut |e| ev.push(e));
    ev
}

fn done(g: &mut Groups, now: Instant, req: ResourceRequest, ok: bool) -> Vec<Event> {
    let mut ev = vec![];
    g.resource_done(now, req, ok, &mut |e| ev.push(e)).unwrap();
    ev
}

fn req(resource: u8, op: ResourceOp) -> ResourceRequest {
    ResourceRequest {
        group: 0,
        resource,
        op,
    }
}

/// Completes every request with `ok` and re-drives until quiet; returns the requests seen.
fn run(g: &mut Groups, w: &World, now: Instant, ok: bool) -> Vec<ResourceRequest> {
    let mut seen = vec![];
    drive(g, w, now);
    for _ in 0..20 {
        let Some(r) = g.pop_request() else { break };
        seen.push(r);
        done(g, now, r, ok);
        drive(g, w, now);
    }
    seen
}

#[test]
fn acquires_in_order_and_releases_in_reverse() {
    let mut w = owned_by_1();
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 3)], t(0));
    let seen = run(&mut g, &w, t(20), true);
    assert_eq!(
        seen,
        [0, 1, 2].map(|r| req(r, ResourceOp::Start)).to_vec(),
        "start in order"
    );
    assert_eq!(g.local()[0].phase, Phase::Online);
    assert_eq!(g.holds(), 1);
    w.view.plan.set(0, Placement::Online(id(2)));
    let seen = run(&mut g, &w, t(21), true);
    assert_eq!(
        seen,
        [2, 1, 0].map(|r| req(r, ResourceOp::Stop)).to_vec(),
        "stop in reverse"
    );
    assert_eq!(g.local()[0].phase, Phase::Offline);
    assert_eq!(g.holds(), 0);
}

#[test]
fn a_member_that_has_not_confirmed_its_release_blocks_the_gainer() {
    let mut w = World::new(&[1, 2, 3], Placement::Online(id(1)));
    let mut g = Groups::new(vec![spec(&[2, 1], Startup::Home, 1)], t(0));
    w.report(3, 5, 0, 0);
    w.report(2, 5, 1, 0); // 2 still holds it
    assert!(run(&mut g, &w, t(20), true).is_empty());
    w.report(2, 4, 0, 0); // released, but reported from an older view
    assert!(run(&mut g, &w, t(20), true).is_empty());
    w.report(2, 5, 0, 0); // released in this view
    assert_eq!(run(&mut g, &w, t(20), true).len(), 1);
    assert_eq!(g.local()[0].phase, Phase::Online);
}

#[test]
fn an_outsider_is_waited_out_for_one_lease_plus_margin() {
    let mut w = World::new(&[1, 2], Placement::Online(id(1)));
    w.report(2, 5, 0, 0);
    let mut g = Groups::new(vec![spec(&[3, 1], Startup::Home, 1)], t(0));
    drive(&mut g, &w, t(12));
    assert_eq!(g.pop_request(), None, "3 may still hold it");
    assert_eq!(g.next_deadline(), Some(t(13)), "installed at 10 + settle 3");
    drive(&mut g, &w, t(13));
    assert_eq!(g.pop_request(), Some(req(0, ResourceOp::Start)));
    // Where a lone node keeps quorum there is no lease to wait out.
    let mut w2 = World::new(&[1, 2], Placement::Online(id(1)));
    w2.report(2, 5, 0, 0);
    w2.leases_apply = false;
    let mut g2 = Groups::new(vec![spec(&[3, 1], Startup::Home, 1)], t(0));
    drive(&mut g2, &w2, t(10));
    assert_eq!(g2.pop_request(), Some(req(0, ResourceOp::Start)));
}

/// Issue 17 item 1: an owner that loses authority fences at once, also with a start in
/// flight (a slow stop or start no longer keeps the address and the application up
/// while a gainer takes over); a fenced acquisition is released before it is acquired
/// again, also when authority came back meanwhile; a later loss fences again.
#[test]
fn losing_authority_fences_at_once_and_a_fenced_start_is_released_first() {
    let mut w = owned_by_1();
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 2)], t(0));
    drive(&mut g, &w, t(20));
    let r0 = g.pop_request().unwrap();
    done(&mut g, t(20), r0, true);
    drive(&mut g, &w, t(20));
    let r1 = g.pop_request().unwrap(); // the second start is in flight
    assert_eq!(g.pop_fence(), None, "nothing to fence with authority");
    w.authority = false;
    let ev = drive(&mut g, &w, t(21));
    assert_eq!(ev, [Event::QuorumLost]);
    assert_eq!(
        g.pop_fence(),
        Some(0),
        "fenced without waiting for the start"
    );
    assert_eq!(g.pop_fence(), None, "once");
    assert!(g.local()[0].fenced());
    assert_eq!(
        g.pop_request(),
        None,
        "the start in flight is not interrupted"
    );
    // Authority comes back before the start ends: the acquisition does not go on.
    w.authority = true;
    drive(&mut g, &w, t(22));
    done(&mut g, t(22), r1, true);
    let seen = run(&mut g, &w, t(22), true);
    assert_eq!(
        &seen[..2],
        &[req(1, ResourceOp::Stop), req(0, ResourceOp::Stop)],
        "released first"
    );
    assert_eq!(g.local()[0].phase, Phase::Offline);
    run(&mut g, &w, t(22), true);
    assert_eq!(g.local()[0].phase, Phase::Online, "then acquired afresh");
    assert!(!g.local()[0].fenced());
    w.authority = false;
    drive(&mut g, &w, t(23));
    assert_eq!(g.pop_fence(), Some(0), "a second loss fences again");
}

/// A node that leaves with a group in error fences it (the others take it over once the
/// node is gone).
#[test]
fn leaving_with_a_group_in_error_fences_it() {
    let mut w = owned_by_1();
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 1)], t(0));
    run(&mut g, &w, t(20), true);
    w.view.plan.set(0, Placement::Online(id(2)));
    run(&mut g, &w, t(21), false);
    assert_eq!(g.local()[0].phase, Phase::Error);
    assert_eq!(g.pop_fence(), None, "held with authority: nobody takes it");
    g.leave();
    drive(&mut g, &w, t(22));
    assert_eq!(g.pop_fence(), Some(0));
}

/// A group with a release bound (a filesystem no reservation guards): a gainer waits the
/// bound on top of the lease for an outsider; a fenced owner whose release has not ended
/// within the bound halts, and one whose stop failed halts at once.
#[test]
fn a_release_bound_is_waited_by_the_gainer_and_enforced_by_a_halt() {
    let bound = Duration::from_millis(40);
    let bounded = || GroupSpec {
        release_bound: Some(bound),
        ..spec(&[3, 1], Startup::Home, 1)
    };
    let mut w = World::new(&[1, 2], Placement::Online(id(1)));
    w.report(2, 5, 0, 0);
    let mut g = Groups::new(vec![bounded()], t(0));
    drive(&mut g, &w, t(13));
    assert_eq!(g.pop_request(), None, "the lease alone is not enough");
    assert_eq!(
        g.next_deadline(),
        Some(t(53)),
        "installed at 10 + settle 3 + bound 40"
    );
    drive(&mut g, &w, t(53));
    assert_eq!(g.pop_request(), Some(req(0, ResourceOp::Start)));

    // The owner's side.
    let mut w = owned_by_1();
    let mut g = Groups::new(vec![bounded()], t(0));
    run(&mut g, &w, t(20), true);
    w.authority = false;
    drive(&mut g, &w, t(21));
    assert_eq!(g.pop_fence(), Some(0));
    assert_eq!(
        g.pop_request(),
        Some(req(0, ResourceOp::Stop)),
        "a slow unmount"
    );
    assert_eq!(g.next_deadline(), Some(t(61)));
    drive(&mut g, &w, t(60));
    assert_eq!(g.take_halt(), None);
    drive(&mut g, &w, t(61));
    assert_eq!(
        g.take_halt(),
        Some(0),
        "the bound passed with the stop still running"
    );
    assert_eq!(g.take_halt(), None, "ordered once");

    let mut w = owned_by_1();
    let mut g = Groups::new(vec![bounded()], t(0));
    run(&mut g, &w, t(20), true);
    w.authority = false;
    run(&mut g, &w, t(21), false);
    assert_eq!(g.local()[0].phase, Phase::Error);
    assert_eq!(
        g.take_halt(),
        Some(0),
        "a failed stop will not end by itself"
    );
}

#[test]
fn concurrent_groups_need_only_authority() {
    let mut w = World::new(&[1, 3], Placement::Concurrent);
    let mut g = Groups::new(vec![spec(&[1, 2, 3], Startup::All, 1)], t(0));
    assert_eq!(run(&mut g, &w, t(10), true).len(), 1);
    assert_eq!(g.local()[0].phase, Phase::Online);
    w.authority = false;
    let ev = drive(&mut g, &w, t(11));
    assert_eq!(ev[0], Event::QuorumLost);
    assert_eq!(g.pop_request(), Some(req(0, ResourceOp::Stop)));
}

#[test]
fn a_failed_start_is_stopped_marked_failed_and_released() {
    let w = owned_by_1();
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 2)], t(0));
    drive(&mut g, &w, t(20));
    let r0 = g.pop_request().unwrap();
    done(&mut g, t(20), r0, true);
    drive(&mut g, &w, t(20));
    let r1 = g.pop_request().unwrap();
    let ev = done(&mut g, t(20), r1, false);
    assert!(ev.contains(&Event::ResourceFailed {
        group: 0,
        resource: 1,
        op: ResourceOp::Start
    }));
    let seen = run(&mut g, &w, t(20), true);
    assert_eq!(
        seen,
        vec![req(1, ResourceOp::Stop), req(0, ResourceOp::Stop)],
        "the failed start is cleaned up too"
    );
    assert_eq!(
        (g.local()[0].phase, g.failed(), g.holds()),
        (Phase::Offline, 1, 0)
    );
    assert!(
        run(&mut g, &w, t(30), true).is_empty(),
        "failed here: not acquired again"
    );
}

#[test]
fn a_failure_is_forgotten_after_the_failure_timeout_and_the_group_comes_back() {
    let w = owned_by_1();
    let mut sp = spec(&[1, 2], Startup::Home, 1);
    sp.failure_timeout = Some(Duration::from_millis(100));
    let mut g = Groups::new(vec![sp], t(0));
    drive(&mut g, &w, t(20));
    let r0 = g.pop_request().unwrap();
    done(&mut g, t(20), r0, false);
    run(&mut g, &w, t(20), true);
    assert_eq!(g.failed(), 1);
    assert_eq!(
        g.next_deadline(),
        Some(t(120)),
        "woken when the mark expires"
    );
    assert!(
        run(&mut g, &w, t(119), true).is_empty(),
        "still failed here"
    );
    assert!(drive(&mut g, &w, t(120)).contains(&Event::FailureExpired { group: 0 }));
    assert_eq!(g.failed(), 0);
    assert!(
        g.take_changed(),
        "the cleared mark is reported to the coordinator"
    );
    assert_eq!(
        run(&mut g, &w, t(120), true),
        vec![req(0, ResourceOp::Start)]
    );
}

#[test]
fn in_maintenance_nothing_starts_or_stops_but_a_node_without_authority_releases() {
    let mut w = owned_by_1();
    w.frozen = true;
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 1)], t(0));
    assert!(
        run(&mut g, &w, t(20), true).is_empty(),
        "placed here: not started"
    );
    w.frozen = false;
    run(&mut g, &w, t(20), true);
    assert_eq!(g.local()[0].phase, Phase::Online);
    w.frozen = true;
    w.view.plan.set(0, Placement::Online(id(2)));
    assert!(
        run(&mut g, &w, t(30), true).is_empty(),
        "placed elsewhere: not stopped"
    );
    w.authority = false;
    assert_eq!(
        run(&mut g, &w, t(40), true),
        vec![req(0, ResourceOp::Stop)],
        "no authority, nothing held: in maintenance too"
    );
}

#[test]
fn a_group_resumed_in_maintenance_is_kept_for_one_lease_while_the_node_joins() {
    let mut w = owned_by_1();
    w.frozen = true;
    w.authority = false;
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 1)], t(100));
    g.adopt(t(100), 0);
    assert_eq!(
        (g.local()[0].phase, g.holds(), g.online()),
        (Phase::Online, 1, 1)
    );
    assert!(run(&mut g, &w, t(101), true).is_empty(), "joining: kept");
    assert_eq!(
        g.next_deadline(),
        Some(t(103)),
        "woken when the lease would have passed"
    );
    assert_eq!(
        run(&mut g, &w, t(103), true),
        vec![req(0, ResourceOp::Stop)]
    );
}

#[test]
fn a_failed_stop_leaves_the_group_held_in_error() {
    let mut w = owned_by_1();
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 1)], t(0));
    run(&mut g, &w, t(20), true);
    w.view.plan.set(0, Placement::Online(id(2)));
    drive(&mut g, &w, t(21));
    let stop = g.pop_request().unwrap();
    let ev = done(&mut g, t(21), stop, false);
    assert!(ev.contains(&Event::Group {
        group: 0,
        phase: Phase::Error
    }));
    assert_eq!(
        g.holds(),
        1,
        "still counted as held: nobody else acquires it"
    );
    assert!(run(&mut g, &w, t(22), true).is_empty());
}

#[test]
fn completions_must_match_the_request_in_flight() {
    let mut g = Groups::new(vec![spec(&[1], Startup::Home, 1)], t(0));
    assert_eq!(
        g.resource_done(t(0), req(0, ResourceOp::Start), true, &mut |_| {}),
        Err(UnexpectedCompletion)
    );
    let bad_group = ResourceRequest {
        group: 9,
        resource: 0,
        op: ResourceOp::Start,
    };
    assert_eq!(
        g.resource_done(t(0), bad_group, true, &mut |_| {}),
        Err(UnexpectedCompletion)
    );
}

#[test]
fn the_plan_adopts_a_running_holder_and_moves_off_a_failed_one() {
    let mut rotating = spec(&[1, 2, 3], Startup::First, 1);
    rotating.policy.fallback = Fallback::Never;
    let specs = vec![rotating, spec(&[2, 3], Startup::Home, 1)];
    let prev = View {
        number: 3,
        members: set(&[1]),
        plan: Plan::unplaced(2),
    };
    // Group 0 unplaced in our lineage, but 3 runs it (partitions merged): it stays on 3.
    // Group 1 is held by 2 but failed there: it goes to 3.
    let standing = |n: NodeId| match n.get() {
        3 => Standing {
            holds: 0b01,
            ..Standing::default()
        },
        2 => Standing {
            holds: 0b10,
            failed: 0b10,
            ..Standing::default()
        },
        _ => Standing::default(),
    };
    let majority = |m: NodeSet| m.len() >= 2;
    let p = plan(&specs, &prev, id(1), set(&[1, 2, 3]), majority, standing);
    assert_eq!(p.get(0), Placement::Online(id(3)));
    assert_eq!(p.get(1), Placement::Online(id(3)));
    assert_eq!(
        plan(&specs, &prev, id(1), set(&[1]), majority, standing),
        prev.plan,
        "no quorum: nothing re-placed"
    );
}

#[test]
fn a_coordinator_rejoining_from_a_view_without_quorum_counts_as_joined() {
    // Hot standby on [1, 2]; 2 runs it; 1 restarted (its own view: itself alone) and
    // coordinates the view {1, 2}: 1 rejoined, so the group falls back to it.
    let mut hot = spec(&[1, 2], Startup::Home, 1);
    hot.policy.fallback = Fallback::Home;
    let prev = View {
        number: 0,
        members: set(&[1]),
        plan: Plan::unplaced(1),
    };
    let standing = |n: NodeId| Standing {
        holds: u64::from(n.get() == 2),
        ..Standing::default()
    };
    let majority = |m: NodeSet| m.len() >= 2;
    let p = plan(&[hot], &prev, id(1), set(&[1, 2]), majority, standing);
    assert_eq!(p.get(0), Placement::Online(id(1)));
}

/// A cut-off owner coming back: 1 held the group, was cut off (its own view: itself
/// alone, not quorate, its plan still saying 1), 2 took the group over. 1 coordinates the
/// view {1, 2, 3}: 2's holding is newer than 1's plan, so with fallback never the group
/// stays on 2 (before, 2 released it and 1 acquired it: the lab's slow-stop test); with
/// fallback home it goes back to 1, which rejoined. An offline in the stale plan does not
/// take a group the others brought online off its holder either.
#[test]
fn a_coordinator_back_from_a_view_without_quorum_leaves_a_group_where_it_runs() {
    let mut hot = spec(&[1, 2], Startup::Home, 1);
    hot.policy.fallback = Fallback::Never;
    let mut prev = View {
        number: 4,
        members: set(&[1]),
        plan: Plan::unplaced(1),
    };
    prev.plan.set(0, Placement::Online(id(1)));
    let standing = |n: NodeId| Standing {
        holds: u64::from(n.get() == 2),
        ..Standing::default()
    };
    let majority = |m: NodeSet| m.len() >= 2;
    let placed = |hot: &GroupSpec, prev: &View| {
        plan(
            std::slice::from_ref(hot),
            prev,
            id(1),
            set(&[1, 2, 3]),
            majority,
            standing,
        )
        .get(0)
    };
    assert_eq!(
        placed(&hot, &prev),
        Placement::Online(id(2)),
        "fallback never"
    );
    hot.policy.fallback = Fallback::Home;
    assert_eq!(
        placed(&hot, &prev),
        Placement::Online(id(1)),
        "fallback home"
    );
    hot.policy.fallback = Fallback::Never;
    prev.plan.set(0, Placement::Offline);
    assert_eq!(
        placed(&hot, &prev),
        Placement::Online(id(2)),
        "a stale offline"
    );
    // Back from a quorate view, the plan is current: a move to 1 in progress stays.
    prev.members = set(&[1, 2]);
    prev.plan.set(0, Placement::Online(id(1)));
    let p = placed(&hot, &prev);
    assert_eq!(p, Placement::Online(id(1)), "a move in progress");
}

#[test]
fn pre_commands_run_before_the_first_resource_of_each_acquisition_and_release() {
    let mut w = owned_by_1();
    let mut s = spec(&[1, 2], Startup::Home, 2);
    s.pre_acquire = true;
    s.pre_release = true;
    let mut g = Groups::new(vec![s], t(0));
    let seen = run(&mut g, &w, t(20), true);
    assert_eq!(
        seen,
        [
            req(HOOK, ResourceOp::Start),
            req(0, ResourceOp::Start),
            req(1, ResourceOp::Start)
        ]
    );
    w.view.plan.set(0, Placement::Online(id(2)));
    // A failed pre-release command is logged by the daemon; the release goes on.
    let seen = run(&mut g, &w, t(21), false);
    assert_eq!(
        seen,
        [req(HOOK, ResourceOp::Stop), req(1, ResourceOp::Stop),],
        "the stop of resource 1 failed: the group is in error"
    );
    assert_eq!(g.local()[0].phase, Phase::Error);
}

#[test]
fn a_failed_pre_acquire_command_fails_the_group_here() {
    let w = owned_by_1();
    let mut s = spec(&[1, 2], Startup::Home, 2);
    s.pre_acquire = true;
    s.pre_release = true;
    let mut g = Groups::new(vec![s], t(0));
    drive(&mut g, &w, t(20));
    let hook = g.pop_request().unwrap();
    assert_eq!(hook, req(HOOK, ResourceOp::Start));
    let ev = done(&mut g, t(20), hook, false);
    assert!(ev.contains(&Event::ResourceFailed {
        group: 0,
        resource: HOOK,
        op: ResourceOp::Start
    }));
    assert!(
        run(&mut g, &w, t(20), true).is_empty(),
        "nothing was started, so nothing (not even pre-release) runs"
    );
    assert_eq!(
        (g.local()[0].phase, g.failed(), g.holds()),
        (Phase::Offline, 1, 0)
    );
}

#[test]
fn a_group_leaves_a_node_that_lost_its_network_unless_every_node_did() {
    // Hot standby on [1, 2] that needs network 0; 1 runs it and loses network 0.
    let mut hot = spec(&[1, 2], Startup::Home, 1);
    let prev = View {
        number: 4,
        members: set(&[1, 2]),
        plan: {
            let mut p = Plan::unplaced(1);
            p.set(0, Placement::Online(id(1)));
            p
        },
    };
    let majority = |m: NodeSet| m.len() >= 2;
    let lost_on = |who: &'static [u8]| {
        move |n: NodeId| Standing {
            holds: u64::from(n.get() == 1),
            lost: u64::from(who.contains(&n.get())),
            ..Standing::default()
        }
    };
    // (networks the group needs, nodes that lost network 0, where it runs, why)
    let cases: [(u64, &'static [u8], u8, &str); 4] = [
        (0b01, &[1], 2, "moves to the connected node"),
        (0b01, &[1, 2], 1, "everyone lost it: it stays"),
        (0b01, &[2], 1, "the standby's loss changes nothing"),
        (0b10, &[1], 1, "a network it does not need"),
    ];
    for (networks, lost, want, why) in cases {
        hot.networks = networks;
        let p = plan(
            &[hot.clone()],
            &prev,
            id(1),
            set(&[1, 2]),
            majority,
            lost_on(lost),
        );
        assert_eq!(p.get(0), Placement::Online(id(want)), "{why}");
    }
    // Its cable out (no carrier: `cut`), the owner is no candidate even when everyone lost
    // the network; alone in its view (two_node: quorate), it does not hold the group.
    hot.networks = 0b01;
    let cut_1 = |n: NodeId| Standing {
        holds: u64::from(n.get() == 1),
        lost: 1,
        cut: u64::from(n.get() == 1),
        ..Standing::default()
    };
    let both = plan(&[hot.clone()], &prev, id(1), set(&[1, 2]), majority, cut_1);
    assert_eq!(
        both.get(0),
        Placement::Online(id(2)),
        "the cut owner lets go"
    );
    let alone = plan(&[hot.clone()], &prev, id(1), set(&[1]), |_| true, cut_1);
    assert_ne!(
        alone.get(0),
        Placement::Online(id(1)),
        "cut off, alone: not held"
    );
}

/// A reload bounces a group whose resources changed: held off, it releases with the old
/// list (the view still places it here); its list can be replaced only once it is
/// offline; let go, it acquires with the new list.
#[test]
fn a_held_off_group_releases_and_comes_back_with_its_new_resources() {
    let w = owned_by_1();
    let mut g = Groups::new(vec![spec(&[1, 2], Startup::Home, 2)], t(0));
    run(&mut g, &w, t(20), true);
    assert_eq!(g.local()[0].phase, Phase::Online);
    let new = spec(&[1, 2], Startup::Home, 3);
    assert_eq!(
        g.respec(0, new.clone()),
        Err(NotOffline),
        "not while online"
    );
    g.hold_off(0, true);
    let seen = run(&mut g, &w, t(21), true);
    assert_eq!(seen, [1, 0].map(|r| req(r, ResourceOp::Stop)).to_vec());
    assert_eq!(g.local()[0].phase, Phase::Offline);
    assert!(
        run(&mut g, &w, t(22), true).is_empty(),
        "held off: not acquired"
    );
    g.respec(0, new).unwrap();
    g.hold_off(0, false);
    let seen = run(&mut g, &w, t(23), true);
    assert_eq!(seen, [0, 1, 2].map(|r| req(r, ResourceOp::Start)).to_vec());
    assert_eq!(g.local()[0].phase, Phase::Online);
}

/// Review S8: a restarted coordinator knows no placement; a group that runs nowhere
/// stays offline when the member with the newest view has it offline (the operator's
/// `offline` outlives the restart), and goes by its startup policy when that member's
/// newer view has it placed again.
#[test]
fn a_restarted_coordinator_keeps_a_group_offline_that_the_newest_view_has_offline() {
    let hot = spec(&[1, 2], Startup::Home, 1);
    let prev = View {
        number: 0,
        members: set(&[1]),
        plan: Plan::unplaced(1),
    };
    let majority = |m: NodeSet| m.len() >= 2;
    let offline_at = |newer_online: bool| {
        move |n: NodeId| match n.get() {
            2 => Standing {
                installed: 7,
                offline: 1,
                ..Standing::default()
            },
            3 => Standing {
                installed: if newer_online { 8 } else { 6 },
                ..Standing::default()
            },
            _ => Standing::default(),
        }
    };
    let members = set(&[1, 2, 3]);
    let p = plan(
        std::slice::from_ref(&hot),
        &prev,
        id(1),
        members,
        majority,
        offline_at(false),
    );
    assert_eq!(p.get(0), Placement::Offline);
    let p = plan(&[hot], &prev, id(1), members, majority, offline_at(true));
    assert_eq!(p.get(0), Placement::Online(id(1)), "by its startup policy");
}

/// Sim seed 40: a restarted coordinator's first proposal went unanswered and it committed
/// a view of itself and one member, without quorum. That view's plan was its own, which
/// knows nothing, and its number the highest: the next quorate view took it for the
/// newest word and brought an offline group back. A plan without quorum carries the
/// offline word of the member with the newest view.
#[test]
fn a_view_without_quorum_carries_an_offline_group_forward() {
    let hot = spec(&[1, 2], Startup::Home, 1);
    let prev = View {
        number: 0,
        members: set(&[1]),
        plan: Plan::unplaced(1),
    };
    let majority = |m: NodeSet| m.len() >= 3;
    let standing = |n: NodeId| match n.get() {
        2 => Standing {
            installed: 27,
            offline: 1,
            ..Standing::default()
        },
        _ => Standing::default(),
    };
    let p = plan(&[hot], &prev, id(1), set(&[1, 2]), majority, standing);
    assert_eq!(p.get(0), Placement::Offline);
}

/// A restarted coordinator (1 of 3) whose view leaves out, through a held cut, the owner
/// of a group (3, home of g: nodes [3, 1]); member 2 has the newest view, which places
/// g. No member holds it, so it fails over as from a node that left: to 1 (it waited
/// for its home for as long as the cut held: sim `a_node_rejoining_…`, seed 1); with
/// `fallover = never` offline; a concurrent group runs on the members of its list
/// (review F3: it was taken offline, and stayed stopped everywhere after the heal).
#[test]
fn a_restarted_coordinator_fails_over_a_group_the_newest_view_placed() {
    let prev = View {
        number: 0,
        members: set(&[1]),
        plan: Plan::unplaced(1),
    };
    let majority = |m: NodeSet| m.len() >= 2;
    let standing = |placed: u64| {
        move |n: NodeId| match n.get() {
            2 => Standing {
                installed: 7,
                placed,
                ..Standing::default()
            },
            _ => Standing::default(),
        }
    };
    let members = set(&[1, 2]);
    let place = |g: GroupSpec, placed: u64| {
        plan(&[g], &prev, id(1), members, majority, standing(placed)).get(0)
    };
    let home = spec(&[3, 1], Startup::Home, 1);
    assert_eq!(place(home.clone(), 1), Placement::Online(id(1)));
    assert_eq!(
        place(home.clone(), 0),
        Placement::Unplaced,
        "never ran: waits for home"
    );
    let mut never = home;
    never.policy.fallover = crate::core::placement::Fallover::Never;
    assert_eq!(place(never, 1), Placement::Offline);
    let mut all = spec(&[3, 1], Startup::All, 1);
    all.policy.fallover = crate::core::placement::Fallover::Never;
    assert_eq!(place(all, 1), Placement::Concurrent);
}
