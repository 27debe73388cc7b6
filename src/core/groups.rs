//! Takeover orchestration (DESIGN §5): each node's resource groups, the lease that bounds
//! how long a cut-off owner can hold them, and the rule a gainer follows before acquiring.
//!
//! Placement comes with the installed view (see `membership`): a node holds group `g`
//! when the view's plan puts `g` on it, it has *authority* (a quorate view and a valid
//! lease), and `g` has not failed on it. Resources are acquired in order and released in
//! reverse, one request at a time through [`Groups::pop_request`] and
//! [`Groups::resource_done`]; a failed start is cleaned up with a stop and marks the group
//! failed here (the coordinator then places it elsewhere); a failed stop leaves the group
//! in `error`, still counted as held, so nobody else ever acquires it.
//!
//! **Lease.** A node keeps authority only while a majority of the configured nodes
//! (itself included) vouch for its installed view: the newest view each has agreed to
//! (carried in every heartbeat) is that very view, or the view this node installed
//! before it (so a view change that keeps the node keeps its authority). A peer's word
//! lasts [`ClusterSpec::lease`] from the arrival of the last frame that said so. Every member of a gainer's quorate view agreed
//! to that view (without the old owner) before it was committed, and from then on agrees
//! only to newer views; two majorities share a node; so the old owner's lease runs out at
//! most one lease after the commit, plus frame transit — even if a still newer view that
//! includes it is already being proposed.
//!
//! **Acquire rule** for a group that is not concurrent: every other member of the view
//! has reported, from that view or a newer one, that it does not hold the group (release
//! confirmed); and if any configured node is outside the view, one lease plus the transit
//! margin has passed since this node installed the view (the outsider's lease has run
//! out and it has released). An outsider whose sentinel's death notice was taken
//! (`Peer::fenced`) holds nothing and is not waited for. When a lone node keeps quorum (`two_node`), an outsider's
//! lease never runs out, so there is nothing to wait for: that mode relies on the
//! tie-breaker or a non-IP path to rule out a partition (DESIGN §5).
//!
//! [`ClusterSpec::lease`]: super::spec::ClusterSpec::lease

use core::time::Duration;
use std::collections::VecDeque;

use super::event::Event;
use super::membership::View;
use super::node::Peer;
use super::placement::{Fallover, NodeSet, Placement, Plan, Startup};
use super::spec::{GroupSpec, NodeId};
use super::time::Instant;

/// Where a group stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Holds nothing of it.
    Offline,
    /// Starting its resources in order.
    Acquiring,
    /// Every resource started.
    Online,
    /// Stopping its resources in reverse order.
    Releasing,
    /// A stop failed: it may still hold resources. Stays held until the operator acts.
    Error,
}

impl Phase {
    /// Status and log name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Offline => "offline",
            Phase::Acquiring => "acquiring",
            Phase::Online => "online",
            Phase::Releasing => "releasing",
            Phase::Error => "error",
        }
    }
}

/// Start or stop a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceOp {
    /// Acquire it.
    Start,
    /// Release it.
    Stop,
}

impl ResourceOp {
    /// Log name.
    pub fn name(self) -> &'static str {
        match self {
            ResourceOp::Start => "start",
            ResourceOp::Stop => "stop",
        }
    }
}

/// The resource index of a group's `pre` event command: `Start` runs the pre-acquire
/// command, `Stop` the pre-release command (see [`GroupSpec`]).
pub const HOOK: u8 = u8::MAX;

/// A resource operation for the daemon to carry out and report back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceRequest {
    /// Group index.
    pub group: u8,
    /// Resource index within the group.
    pub resource: u8,
    /// What to do.
    pub op: ResourceOp,
}

/// A completion that matches no request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnexpectedCompletion;

/// One group on this node.
#[derive(Debug, Clone, Copy)]
pub struct LocalGroup {
    /// Its phase.
    pub phase: Phase,
    /// When the phase last changed.
    pub since: Instant,
    /// Resources started and not yet stopped (a prefix of the list).
    started: u8,
    in_flight: Option<(u8, ResourceOp)>,
    /// The pre command of the current acquisition or release has run.
    hooked: bool,
    /// It failed here and must run elsewhere.
    pub failed: bool,
    /// When it last failed here.
    pub failed_at: Instant,
    /// When this node fenced it after losing authority (since its last acquisition).
    fenced_at: Option<Instant>,
}

impl LocalGroup {
    /// Whether this node fenced it after losing authority and has not acquired it again:
    /// its addresses are gone and its applications killed, whatever its stops do.
    pub fn fenced(&self) -> bool {
        self.fenced_at.is_some()
    }

    /// Resource `r`'s state here: `starting` or `stopping` while its request runs,
    /// `stop failed` for the one whose stop left the group in error (releases run in
    /// reverse, so it is the last started), `started` when it is within the started
    /// prefix, `stopped` otherwise.
    pub fn resource_state(&self, r: u8) -> &'static str {
        match self.in_flight {
            Some((x, ResourceOp::Start)) if x == r => "starting",
            Some((x, ResourceOp::Stop)) if x == r => "stopping",
            _ if self.phase == Phase::Error && r + 1 == self.started => "stop failed",
            _ if r < self.started => "started",
            _ => "stopped",
        }
    }
}

/// What [`Groups::drive`] needs to know about the node.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Now.
    pub now: Instant,
    /// This node.
    pub local: NodeId,
    /// The installed view.
    pub view: View,
    /// When this node installed it.
    pub installed_at: Instant,
    /// When this node's lease ends (`None`: no quorum or support; it has authority
    /// while this is later than `now`).
    pub authority_until: Option<Instant>,
    /// Whether an outsider's lease can still be running (false when a lone node keeps
    /// quorum).
    pub leases_apply: bool,
    /// Lease plus transit margin: how long after installing a view an outsider may still
    /// hold a group.
    pub settle: Duration,
    /// Every configured node (this one's entry is skipped).
    pub peers: &'a [Peer],
    /// The cluster is in maintenance: nothing is started or stopped, except that a node
    /// without authority still releases (it holds nothing then, in maintenance too).
    pub frozen: bool,
}

/// This node's resource groups.
#[derive(Debug)]
pub struct Groups {
    specs: Vec<GroupSpec>,
    local: Vec<LocalGroup>,
    requests: VecDeque<ResourceRequest>,
    authority: bool,
    /// The node is stopping: it releases every group and acquires none.
    leaving: bool,
    wake: Option<Instant>,
    changed: bool,
    /// Groups released here whatever the view says, until cleared (a reload bounces a
    /// group whose resources changed: release with the old list, acquire with the new).
    held_off: u64,
    /// When this node started (a node resumed in maintenance joins within a lease).
    born: Instant,
    /// This node has had authority since it started.
    had_authority: bool,
    /// Groups to fence now (see [`Groups::pop_fence`]).
    fences: u64,
    /// A fenced group's release overran its bound: the node must halt.
    halt: Option<u8>,
    halt_ordered: bool,
}

/// Why a group's resource list could not be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOffline;

impl Groups {
    /// Every group offline.
    pub fn new(specs: Vec<GroupSpec>, now: Instant) -> Groups {
        let local = vec![
            LocalGroup {
                phase: Phase::Offline,
                since: now,
                started: 0,
                in_flight: None,
                hooked: false,
                failed: false,
                failed_at: now,
                fenced_at: None,
            };
            specs.len()
        ];
        let requests = VecDeque::with_capacity(specs.len());
        Groups {
            specs,
            local,
            requests,
            authority: false,
            leaving: false,
            wake: None,
            changed: false,
            held_off: 0,
            born: now,
            had_authority: false,
            fences: 0,
            halt: None,
            halt_ordered: false,
        }
    }

    /// Holds group `g` off this node (`on`), so it is released and not acquired, or lets
    /// the view decide again. The placement is untouched: no other node takes it over.
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn hold_off(&mut self, g: usize, on: bool) {
        assert!(g < self.specs.len(), "group index");
        if on {
            self.held_off |= 1 << g;
        } else {
            self.held_off &= !(1 << g);
        }
    }

    /// Replaces group `g`'s resource list (count and pre commands; its name, nodes,
    /// policy and networks stay). Only while it is offline here with nothing in flight:
    /// `started` counts resources of the list it was acquired with.
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn respec(&mut self, g: usize, spec: GroupSpec) -> Result<(), NotOffline> {
        let lg = &self.local[g];
        if lg.phase != Phase::Offline || lg.in_flight.is_some() || lg.started != 0 {
            return Err(NotOffline);
        }
        let old = &self.specs[g];
        assert!(
            old.name == spec.name && old.policy == spec.policy && old.networks == spec.networks,
            "respec changes only the resource list"
        );
        self.specs[g] = spec;
        Ok(())
    }

    /// The groups' specs.
    pub fn specs(&self) -> &[GroupSpec] {
        &self.specs
    }

    /// Each group's local state.
    pub fn local(&self) -> &[LocalGroup] {
        &self.local
    }

    /// Bitmap of groups this node may hold (any phase but offline).
    pub fn holds(&self) -> u64 {
        self.bits(|l| l.phase != Phase::Offline)
    }

    /// Bitmap of groups fully online here.
    pub fn online(&self) -> u64 {
        self.bits(|l| l.phase == Phase::Online)
    }

    /// Whether every group is offline or stuck in error (nothing more will be released).
    pub fn released(&self) -> bool {
        self.local
            .iter()
            .all(|l| matches!(l.phase, Phase::Offline | Phase::Error))
    }

    /// The node is stopping: release every group, acquire none from now on.
    pub fn leave(&mut self) {
        self.leaving = true;
    }

    /// Whether the node is stopping.
    pub fn leaving(&self) -> bool {
        self.leaving
    }

    /// The operator acted on group `g`: forget that it failed here, and retry the release
    /// of a group stuck in error (stops are idempotent by contract).
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn reset(&mut self, now: Instant, g: usize, push: &mut impl FnMut(Event)) {
        if self.local[g].failed {
            self.local[g].failed = false;
            self.changed = true;
        }
        if self.local[g].phase == Phase::Error {
            self.set_phase(now, g, Phase::Releasing, push);
            self.advance(now, g, push);
        }
    }

    /// Takes group `g` as online here with every resource started: a daemon that stopped
    /// in maintenance left it running, and the one that replaced it resumes it.
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn adopt(&mut self, now: Instant, g: usize) {
        let resources = self.specs[g].resources;
        let lg = &mut self.local[g];
        lg.phase = Phase::Online;
        lg.since = now;
        lg.started = resources;
        self.changed = true;
    }

    /// Bitmap of groups that failed here.
    pub fn failed(&self) -> u64 {
        self.bits(|l| l.failed)
    }

    fn bits(&self, f: impl Fn(&LocalGroup) -> bool) -> u64 {
        self.local
            .iter()
            .enumerate()
            .filter(|(_, l)| f(l))
            .fold(0, |acc, (g, _)| acc | 1 << g)
    }

    /// Whether this node had authority at the last drive.
    pub fn authority(&self) -> bool {
        self.authority
    }

    /// Whether holdings or failures changed since the last call (then a group-state frame
    /// goes out).
    pub fn take_changed(&mut self) -> bool {
        core::mem::take(&mut self.changed)
    }

    /// The next group to fence: its service addresses removed and its applications'
    /// process groups killed at once, before anything else (see the module docs).
    pub fn pop_fence(&mut self) -> Option<u8> {
        if self.fences == 0 {
            return None;
        }
        let g = self.fences.trailing_zeros();
        self.fences &= self.fences - 1;
        Some(u8::try_from(g).expect("invariant: <= 64 groups"))
    }

    /// The group whose release overran its bound after a fence, once: the node must
    /// halt (the config allows such a group only with a watchdog).
    pub fn take_halt(&mut self) -> Option<u8> {
        self.halt.take()
    }

    /// The next resource operation to carry out.
    pub fn pop_request(&mut self) -> Option<ResourceRequest> {
        self.requests.pop_front()
    }

    /// When a waiting acquisition may go ahead.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.wake
    }

    /// Marks group `g` failed here (e.g. its application's monitor gave up): it is
    /// released, and the coordinator places it elsewhere.
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn fail(&mut self, now: Instant, g: usize) {
        self.local[g].failed_at = now;
        if !self.local[g].failed {
            self.local[g].failed = true;
            self.changed = true;
        }
    }

    /// Reports the outcome of a request taken from [`Groups::pop_request`].
    pub fn resource_done(
        &mut self,
        now: Instant,
        req: ResourceRequest,
        ok: bool,
        push: &mut impl FnMut(Event),
    ) -> Result<(), UnexpectedCompletion> {
        let g = usize::from(req.group);
        let lg = self.local.get_mut(g).ok_or(UnexpectedCompletion)?;
        if lg.in_flight != Some((req.resource, req.op)) {
            return Err(UnexpectedCompletion);
        }
        lg.in_flight = None;
        let hook = req.resource == HOOK;
        lg.hooked |= hook;
        match (req.op, ok) {
            // A pre-release command that failed is logged by the daemon; the release goes on.
            (_, true) | (ResourceOp::Stop, false) if hook => {}
            (ResourceOp::Start, true) => lg.started += 1,
            (ResourceOp::Stop, true) => lg.started -= 1,
            (ResourceOp::Start, false) => {
                // Clean up a failed start with a stop, like every resource agent expects
                // (a failed pre-acquire command started nothing).
                lg.started += u8::from(!hook);
                lg.failed = true;
                lg.failed_at = now;
                push(Event::ResourceFailed {
                    group: req.group,
                    resource: req.resource,
                    op: req.op,
                });
                self.set_phase(now, g, Phase::Releasing, push);
            }
            (ResourceOp::Stop, false) => {
                push(Event::ResourceFailed {
                    group: req.group,
                    resource: req.resource,
                    op: req.op,
                });
                self.set_phase(now, g, Phase::Error, push);
            }
        }
        Ok(())
    }

    /// Moves every group one step towards what the installed view asks of this node.
    pub fn drive(&mut self, cx: &Context<'_>, push: &mut impl FnMut(Event)) {
        let authority = cx.authority_until.is_some_and(|t| t > cx.now);
        if self.authority && !authority && !self.specs.is_empty() {
            push(Event::QuorumLost);
        }
        self.authority = authority;
        self.had_authority |= authority;
        self.wake = None;
        for g in 0..self.local.len() {
            self.expire_failure(cx.now, g, push);
            self.step(cx, g, push);
        }
    }

    /// Forgets that group `g` failed here once its `failure_timeout` has passed (then it
    /// may be placed here again); until then, wakes the node when it will have.
    fn expire_failure(&mut self, now: Instant, g: usize, push: &mut impl FnMut(Event)) {
        let lg = &mut self.local[g];
        let Some(timeout) = self.specs[g].failure_timeout.filter(|_| lg.failed) else {
            return;
        };
        let at = lg.failed_at.saturating_add(timeout);
        if now < at {
            self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
            return;
        }
        lg.failed = false;
        self.changed = true;
        push(Event::FailureExpired {
            group: u8::try_from(g).expect("invariant: <= 64 groups"),
        });
    }

    fn step(&mut self, cx: &Context<'_>, g: usize, push: &mut impl FnMut(Event)) {
        // In maintenance a daemon that restarted has not had authority yet: it keeps what
        // it resumed for one lease while it joins (the others acquire nothing meanwhile),
        // then it too counts as cut off.
        let joining_until = self.born.saturating_add(cx.settle);
        let cut_off =
            !self.authority && (!cx.frozen || self.had_authority || cx.now >= joining_until);
        let phase = self.local[g].phase;
        if phase != Phase::Offline {
            // A node that leaves with a group in error is fenced too: the others take the
            // group over once it is gone.
            if cut_off || (self.leaving && phase == Phase::Error) {
                self.fence(cx.now, g);
            }
            self.escalate(cx.now, g);
        }
        let lg = self.local[g];
        if lg.in_flight.is_some() {
            return;
        }
        if cx.frozen {
            // What runs goes on (a sequence under way finishes), nothing new starts or
            // stops; losing authority still releases.
            if !self.authority && !cut_off && lg.phase == Phase::Online {
                self.wake = Some(self.wake.map_or(joining_until, |w| w.min(joining_until)));
            }
            match lg.phase {
                Phase::Acquiring | Phase::Online if cut_off || lg.fenced() => {
                    self.set_phase(cx.now, g, Phase::Releasing, push);
                    self.advance(cx.now, g, push);
                }
                Phase::Acquiring | Phase::Releasing if self.authority || cut_off => {
                    self.advance(cx.now, g, push);
                }
                Phase::Offline
                | Phase::Online
                | Phase::Acquiring
                | Phase::Releasing
                | Phase::Error => {}
            }
            return;
        }
        let spec = &self.specs[g];
        let eligible = eligible(cx, g, lg.failed);
        let want = self.authority
            && !self.leaving
            && !lg.failed
            && self.held_off & (1 << g) == 0
            && spec.policy.runs_on(cx.view.plan.get(g), cx.local, eligible);
        match lg.phase {
            Phase::Offline if want => match self.blocked(cx, g) {
                Blocked::No => {
                    self.set_phase(cx.now, g, Phase::Acquiring, push);
                    self.advance(cx.now, g, push);
                }
                Blocked::Until(t) => self.wake = Some(self.wake.map_or(t, |w| w.min(t))),
                Blocked::OnPeers => {}
            },
            // A fence ended what the acquisition had started: it is released before it
            // is acquired again, also when authority came back meanwhile.
            Phase::Acquiring if want && !lg.fenced() => self.advance(cx.now, g, push),
            Phase::Acquiring | Phase::Online if !want || lg.fenced() => {
                self.set_phase(cx.now, g, Phase::Releasing, push);
                self.advance(cx.now, g, push);
            }
            Phase::Releasing => self.advance(cx.now, g, push),
            Phase::Offline | Phase::Online | Phase::Acquiring | Phase::Error => {}
        }
    }

    /// Fences group `g` once after this node lost authority (also with a start or stop
    /// in flight: a fence does not wait).
    fn fence(&mut self, now: Instant, g: usize) {
        let lg = &mut self.local[g];
        if lg.fenced_at.is_none() {
            lg.fenced_at = Some(now);
            self.fences |= 1 << g;
        }
    }

    /// Halts the node when group `g`, fenced and not yet offline, has a release bound
    /// that has passed (authority that came back changes nothing: a gainer may have
    /// counted on the bound), or is in error (its release will not go on by itself).
    fn escalate(&mut self, now: Instant, g: usize) {
        let Some(fenced_at) = self.local[g].fenced_at else {
            return;
        };
        if let Some(bound) = self.specs[g].release_bound {
            let at = fenced_at.saturating_add(bound);
            if now >= at || self.local[g].phase == Phase::Error {
                if !self.halt_ordered {
                    self.halt_ordered = true;
                    self.halt = Some(u8::try_from(g).expect("invariant: <= 64 groups"));
                }
            } else {
                self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
            }
        }
    }

    /// Issues the next request of an acquiring or releasing group, or finishes it.
    fn advance(&mut self, now: Instant, g: usize, push: &mut impl FnMut(Event)) {
        let lg = self.local[g];
        let spec = &self.specs[g];
        let count = spec.resources;
        let next = match lg.phase {
            Phase::Acquiring if lg.started == 0 && spec.pre_acquire && !lg.hooked => {
                Some((HOOK, ResourceOp::Start))
            }
            Phase::Acquiring if lg.started < count => Some((lg.started, ResourceOp::Start)),
            Phase::Acquiring => {
                self.set_phase(now, g, Phase::Online, push);
                None
            }
            Phase::Releasing if lg.started > 0 && spec.pre_release && !lg.hooked => {
                Some((HOOK, ResourceOp::Stop))
            }
            Phase::Releasing if lg.started > 0 => Some((lg.started - 1, ResourceOp::Stop)),
            Phase::Releasing => {
                self.set_phase(now, g, Phase::Offline, push);
                None
            }
            _ => None,
        };
        if let Some((resource, op)) = next {
            self.local[g].in_flight = Some((resource, op));
            self.requests.push_back(ResourceRequest {
                group: u8::try_from(g).expect("invariant: <= 64 groups"),
                resource,
                op,
            });
        }
    }

    fn set_phase(&mut self, now: Instant, g: usize, phase: Phase, push: &mut impl FnMut(Event)) {
        let lg = &mut self.local[g];
        if lg.phase == phase {
            return;
        }
        if phase == Phase::Acquiring {
            lg.fenced_at = None;
        }
        lg.phase = phase;
        lg.since = now;
        lg.hooked = false;
        self.changed = true;
        push(Event::Group {
            group: u8::try_from(g).expect("invariant: <= 64 groups"),
            phase,
        });
    }

    /// Whether group `g` may be acquired now (see the module docs).
    fn blocked(&self, cx: &Context<'_>, g: usize) -> Blocked {
        if self.specs[g].policy.startup == Startup::All {
            return Blocked::No;
        }
        let bit = 1u64 << g;
        let mut outsiders = false;
        for p in cx.peers.iter().filter(|p| p.id != cx.local) {
            if !cx.view.members.contains(p.id) {
                // A fenced outsider (its sentinel's death notice was taken) holds
                // nothing: no lease or release of it to wait for.
                outsiders |= !p.fenced;
                continue;
            }
            let released = p
                .report
                .is_some_and(|r| r.installed >= cx.view.number && r.holds & bit == 0);
            if !released {
                return Blocked::OnPeers;
            }
        }
        if outsiders && cx.leases_apply {
            let bound = self.specs[g].release_bound.unwrap_or(Duration::ZERO);
            let t = cx
                .installed_at
                .saturating_add(cx.settle)
                .saturating_add(bound);
            if cx.now < t {
                return Blocked::Until(t);
            }
        }
        Blocked::No
    }
}

enum Blocked {
    No,
    /// Until an outsider's lease has surely run out.
    Until(Instant),
    /// Until a member confirms it released (its report arrives).
    OnPeers,
}

/// Members of the view on which group `g` has not failed (`local_failed` for this node).
fn eligible(cx: &Context<'_>, g: usize, local_failed: bool) -> NodeSet {
    let mut set = cx.view.members;
    for p in cx.peers {
        let failed = if p.id == cx.local {
            local_failed
        } else {
            p.report.is_some_and(|r| r.failed & (1 << g) != 0)
        };
        if failed {
            set.remove(p.id);
        }
    }
    set
}

/// What the coordinator knows of a node for placement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Standing {
    /// Groups it may hold.
    pub holds: u64,
    /// Groups that failed on it.
    pub failed: u64,
    /// It has never installed a view (it just started).
    pub fresh: bool,
    /// Networks it lost (bit = network index).
    pub lost: u64,
    /// Networks it has no carrier on at all (bit = network index): known of this node
    /// only (the coordinator's own standing), a definite local fact.
    pub cut: u64,
    /// The number of the view it runs in.
    pub installed: u64,
    /// Groups that view places offline.
    pub offline: u64,
    /// Groups that view places on a node or waits to place ([`Plan::placed`]).
    pub placed: u64,
}

/// The coordinator's placement in maintenance: nothing moves. A group some member holds
/// is placed on it (a daemon restarted in maintenance resumed it); any other keeps its
/// place in `prev`, also on a node that left (nobody takes it over until maintenance ends
/// and the usual rules apply).
pub fn frozen_plan(
    groups: usize,
    prev: &View,
    members: NodeSet,
    standing: impl Fn(NodeId) -> Standing,
) -> Plan {
    let mut plan = prev.plan;
    for g in 0..groups {
        if plan.get(g) == Placement::Concurrent {
            continue;
        }
        if let Some(holder) = members
            .iter()
            .find(|id| standing(*id).holds & (1 << g) != 0)
        {
            plan.set(g, Placement::Online(holder));
        }
    }
    plan
}

/// The coordinator's placement for a view of `members`, given the installed view `prev`,
/// whether `members` and `prev` hold quorum, and what each node reports (`standing`). A
/// group whose planned owner is gone but which some member still holds is taken to be
/// where it runs (a coordinator that restarted, or partitions that merged); a coordinator
/// that restarted knows nothing else, so a group running nowhere is placed by its startup
/// policy. Without quorum nothing is re-placed: the plan stays as it was, for when quorum
/// returns.
///
/// Nodes that *joined* (for fallback) are the members not in `prev`; when `prev` had no
/// quorum the coordinator itself is the one rejoining the cluster, so it counts as joined
/// and the others do not; a node that never installed a view always counts as joined.
pub fn plan(
    specs: &[GroupSpec],
    prev: &View,
    local: NodeId,
    members: NodeSet,
    quorate: impl Fn(NodeSet) -> bool,
    standing: impl Fn(NodeId) -> Standing,
) -> Plan {
    let mut plan = prev.plan;
    if !quorate(members) {
        // A view without quorum places nothing anew, but it carries the offline word of
        // the member with the newest view into a plan that knows nothing of the group:
        // a restarted coordinator's view of itself and one member, without quorum,
        // had an empty plan and the highest number, and the next quorate view took it
        // for the newest word and brought an offline group back (sim seed 40).
        for g in 0..specs.len() {
            if plan.get(g) == Placement::Unplaced
                && newest(members, Some(local), &standing).offline & 1 << g != 0
            {
                plan.set(g, Placement::Offline);
            }
        }
        return plan;
    }
    let mut joined = if quorate(prev.members) {
        NodeSet::from_bits(members.bits() & !prev.members.bits())
    } else {
        let mut me = NodeSet::EMPTY;
        me.insert(local);
        me
    };
    for id in members.iter().filter(|id| standing(*id).fresh) {
        joined.insert(id);
    }
    for (g, spec) in specs.iter().enumerate() {
        let bit = 1u64 << g;
        let mut eligible = members;
        let mut holder = None;
        for id in members.iter() {
            let st = standing(id);
            if st.failed & bit != 0 {
                eligible.remove(id);
            }
            if st.holds & bit != 0 && holder.is_none() {
                holder = Some(id);
            }
        }
        // A node that lost a network the group needs is a candidate only when every
        // candidate lost one (then nowhere is better, and the group stays where it is).
        if spec.networks != 0 {
            let mut connected = eligible;
            for id in eligible.iter() {
                if standing(id).lost & spec.networks != 0 {
                    connected.remove(id);
                }
            }
            if !connected.is_empty() {
                eligible = connected;
            }
            // Not a node whose cable to that network is out, though: it cannot serve
            // there at all, and when it is out of every network it is the one cut off —
            // holding the group there would make two owners with the nodes it cannot
            // see (the lab's pulled cables: the owner took the group back onto a dead
            // link at the timeout, beside the survivor).
            for id in eligible.iter() {
                if standing(id).cut & spec.networks != 0 {
                    eligible.remove(id);
                }
            }
        }
        let mut current = prev.plan.get(g);
        // A coordinator rejoining from a view without quorum carries a plan the others
        // have moved on from: where a member holds the group, that holding is the
        // newer word (a cut-off owner coming back pulled its group from the node that
        // took it over, whatever the fallback policy said — the lab's slow-stop test
        // caught the bounce).
        let stale = !quorate(prev.members);
        let owner_gone = match current {
            Placement::Unplaced | Placement::Waiting => true,
            Placement::Online(x) => !members.contains(x) || stale && standing(x).holds & bit == 0,
            Placement::Offline => stale,
            Placement::Concurrent => false,
        };
        if let (true, Some(h)) = (owner_gone, holder) {
            current = Placement::Online(h);
        }
        // A coordinator that knows no placement (it restarted), or only a stale one, and
        // finds the group running nowhere keeps it offline when the member with the newest view has it
        // offline: the operator's `offline`, or `fallover = never`, outlives the restart
        // of any node (review S8: the restarted lowest id brought an offline group
        // back by its startup policy).
        // Not this node's own word when it comes back from a view without quorum: that
        // view's plan is no newer than what it knew before, however high its number (a
        // restarted coordinator that committed a view of itself alone took its own
        // plan, which knows nothing, for the newest: sim seed 1849).
        let newest = newest(members, stale.then_some(local), &standing);
        if (current == Placement::Unplaced || stale && owner_gone)
            && holder.is_none()
            && newest.offline & bit != 0
        {
            current = Placement::Offline;
        }
        // Nor does it start by its startup policy a group that the newest view placed
        // and no member holds: its owner is not among the members, and the group fails
        // over as from a node that left. A restarted lowest id that left out, through a
        // held cut, the owner of a group with a home elsewhere, kept that group waiting
        // for its home for as long as the cut held (sim `a_node_rejoining_…`, seed 1).
        // (A concurrent group runs on every node of its list, whatever its fallover: it
        // waits, which places it everywhere again. Taken offline, it stayed stopped
        // everywhere after the cut healed: review F3.)
        if current == Placement::Unplaced && holder.is_none() && newest.placed & bit != 0 {
            current = match (spec.policy.startup, spec.policy.fallover) {
                (Startup::All, _) | (_, Fallover::Next) => Placement::Waiting,
                (_, Fallover::Never) => Placement::Offline,
            };
        }
        plan.set(g, spec.policy.place(eligible, joined, current));
    }
    plan
}

/// What the member of `members` (but `skip`) with the newest installed view reports
/// (nothing when there is no such member).
fn newest(
    members: NodeSet,
    skip: Option<NodeId>,
    standing: impl Fn(NodeId) -> Standing,
) -> Standing {
    members
        .iter()
        .filter(|id| Some(*id) != skip)
        .map(&standing)
        .max_by_key(|s| s.installed)
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
