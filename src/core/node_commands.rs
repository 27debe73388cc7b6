//! The node's side of operator commands (see `operator` for the protocol): asking,
//! taking a command from the wire, pins, progress, and stopping.

use core::time::Duration;

use super::{Asked, Node, Outgoing, push_event_to, push_out};
use crate::core::event::Event;
use crate::core::membership::View;
use crate::core::operator::{Command, CommandState, Op, Pin, Refusal, Running};
use crate::core::placement::{NodeSet, Placement};
use crate::core::spec::NodeId;
use crate::core::time::Instant;

/// How long the `offline` a fatal failure asks is pinned while no view carries it out
/// (an operator's command has the client's timeout).
const FATAL_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The ids of the commands a node asks for fatal failures have this bit set, those of
/// the operator's not: each kind counts on its own, and a receiver takes a command whose
/// id is above the last of its kind from that incarnation. With one count, a newer id of
/// one kind taken first would have made the other's resends look old, and dropped them.
pub(super) const FATAL_IDS: u32 = 1 << 31;

impl Node {
    /// Asks this node to carry out an operator command within `timeout`. The command goes
    /// to every node at once; follow it with [`Node::command_state`].
    pub fn command(
        &mut self,
        now: Instant,
        command: Command,
        timeout: Duration,
    ) -> Result<CommandState, Refusal> {
        self.command_with(now, command, timeout, false)
    }

    /// [`Node::command`], with `force`: `maintenance off` even while configured nodes are
    /// outside the view (the operator knows they are down for good: powered off, so
    /// nothing they were running still runs).
    ///
    /// Without it that is refused ([`Refusal::Absent`]): a daemon stopped in maintenance
    /// leaves its resources running, so the usual rule — an outsider's lease ran out, so
    /// it released — does not hold for it, and ending maintenance would let the others
    /// take its groups over while they still run there.
    pub fn command_with(
        &mut self,
        now: Instant,
        command: Command,
        timeout: Duration,
        force: bool,
    ) -> Result<CommandState, Refusal> {
        if self.groups.leaving() {
            return Err(Refusal::Leaving);
        }
        if self.asked.is_some_and(|a| a.state == CommandState::Pending) {
            return Err(Refusal::Busy);
        }
        let view = self.membership.view();
        let may_act = self.membership.is_quorate(view.members) && self.groups.authority();
        if self.maintenance.on() && !matches!(command.op, Op::Maintenance(_)) {
            return Err(Refusal::Maintenance);
        }
        if let Op::Maintenance(epoch) = command.op {
            let configured: NodeSet = self.spec.nodes.iter().map(|n| n.id).collect();
            let absent = NodeSet::from_bits(configured.bits() & !view.members.bits());
            if !crate::core::maintenance::is_on(epoch) && !absent.is_empty() && !force {
                return Err(Refusal::Absent(absent));
            }
        }
        command.check(&self.spec.groups, view.members, may_act)?;
        self.ask(now, command, timeout);
        Ok(self.asked.map_or(CommandState::Done, |a| a.state))
    }

    /// Stops this node: it releases every group and acquires none from now on. Groups the
    /// installed view places here are handed to the next node of their lists
    /// (`takeover`) or taken offline everywhere, by a command asked of this node within
    /// `timeout` — unless the node has no quorum, when it just releases. Returns that
    /// command, if one went out. The daemon exits once [`Node::stopped`].
    ///
    /// In maintenance nothing is released and no command goes out: the daemon exits and
    /// leaves every resource as it is (the mode's purpose: restart or upgrade it) — but
    /// only while this node has authority and every member of its view reports the mode.
    /// Otherwise (cut off, or the others have not heard of the mode) they may take its
    /// groups over once it is gone, so it releases them as a stop out of maintenance does.
    pub fn stop(&mut self, now: Instant, takeover: bool, timeout: Duration) -> Option<Command> {
        self.groups.leave();
        if self.maintenance.on() && self.groups.authority() && self.maintenance_agreed() {
            self.keeps_resources = true;
            self.asked = None;
            return None;
        }
        let view = self.membership.view();
        let mine = (0..self.spec.groups.len())
            .filter(|g| view.plan.get(*g) == Placement::Online(self.local))
            .fold(0u64, |acc, g| acc | 1 << g);
        let op = if takeover {
            Op::Evacuate(self.local)
        } else {
            Op::Offline
        };
        let command = Command { op, groups: mine };
        let may_act = self.membership.is_quorate(view.members) && self.groups.authority();
        self.asked = None;
        let issued = (mine != 0
            && command
                .check(&self.spec.groups, view.members, may_act)
                .is_ok())
        .then(|| self.ask(now, command, timeout))
        .map(|()| command);
        self.groups_dirty = true;
        self.settle(now);
        issued
    }

    /// How the last command asked of this node stands.
    pub fn command_state(&self) -> Option<CommandState> {
        self.asked.map(|a| a.state)
    }

    /// Whether a stopping node is done: every group released (or stuck in error) and its
    /// hand-over command done or expired; or, stopped in maintenance, at once.
    pub fn stopped(&self) -> bool {
        self.groups.leaving()
            && (self.keeps_resources || self.groups.released())
            && self.asked.is_none_or(|a| a.state != CommandState::Pending)
    }

    /// Whether this node, stopped in maintenance, leaves every resource to the next
    /// daemon here (see [`Node::stop`]).
    pub fn keeps_resources(&self) -> bool {
        self.keeps_resources
    }

    /// Whether this node is stopping.
    pub fn leaving(&self) -> bool {
        self.groups.leaving()
    }

    /// Operator pins per group.
    pub fn pins(&self) -> &[Option<Pin>] {
        &self.pins
    }

    /// Where group `g` runs as this node knows it: itself, and every member of the
    /// installed view by its report for that view or a newer one. A member whose report
    /// is older counts as holding what it last reported, and online nowhere.
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn running(&self, g: usize) -> Running {
        let view = self.membership.view();
        let bit = 1u64 << g;
        let mut r = Running::default();
        if self.groups.holds() & bit != 0 {
            r.held.insert(self.local);
        }
        if self.groups.online() & bit != 0 {
            r.online.insert(self.local);
        }
        if self.groups.failed() & bit != 0 {
            r.failed.insert(self.local);
        }
        r.candidates = self.spec.groups[g]
            .policy
            .nodes
            .iter()
            .copied()
            .filter(|n| view.members.contains(*n))
            .collect();
        for p in self.peers.iter().filter(|p| p.id != self.local) {
            let Some(rep) = p.report.filter(|_| view.members.contains(p.id)) else {
                continue;
            };
            if rep.holds & bit != 0 {
                r.held.insert(p.id);
            }
            if rep.failed & bit != 0 {
                r.failed.insert(p.id);
            }
            if rep.installed >= view.number && rep.online & bit != 0 {
                r.online.insert(p.id);
            }
        }
        r
    }

    fn ask(&mut self, now: Instant, command: Command, timeout: Duration) {
        self.command_id += 1;
        let id = self.command_id;
        self.asked = Some(self.send_command(now, command, timeout, id, command.op.resets()));
        self.settle(now);
    }

    /// Sends `command` as `id` to every node and takes it here (resetting the groups'
    /// marks here if `resets`): what follows it until done.
    fn send_command(
        &mut self,
        now: Instant,
        command: Command,
        timeout: Duration,
        id: u32,
        resets: bool,
    ) -> Asked {
        let repr = command.to_repr(id, timeout);
        push_out(&mut self.out, &mut self.overflows, Outgoing::Command(repr));
        self.take_command_with(now, self.local, command, timeout, resets);
        Asked {
            command,
            repr,
            deadline: now.saturating_add(timeout),
            resend_at: now.saturating_add(self.resend_interval()),
            state: CommandState::Pending,
        }
    }

    /// While a command is not yet in a view it is sent again at this interval (its
    /// copies go on every path at once, so this only covers loss on all of them).
    fn resend_interval(&self) -> Duration {
        self.spec.lease().max(Duration::from_millis(1))
    }

    /// A command from `from` (this node itself when asked here), valid for `valid`:
    /// resets failure marks if the op does, and pins each group the installed view does
    /// not already place as asked.
    pub(super) fn take_command(
        &mut self,
        now: Instant,
        from: NodeId,
        cmd: Command,
        valid: Duration,
    ) {
        self.take_command_with(now, from, cmd, valid, cmd.op.resets());
    }

    /// [`Node::take_command`]; `resets`: whether it resets the groups' marks here.
    fn take_command_with(
        &mut self,
        now: Instant,
        from: NodeId,
        cmd: Command,
        valid: Duration,
        resets: bool,
    ) {
        let until = now.saturating_add(valid);
        let plan = self.membership.view().plan;
        // A later command for a group of the one asked here takes its place on every node
        // (the pins below): the operator is told so, not left to wait for the deadline.
        // (Only by another op: the same op for the group carries this one out too.) A
        // command that names other groups as well goes on for those, as a narrower one.
        if let Some(a) = self.asked.as_mut().filter(|a| {
            a.state == CommandState::Pending
                && a.command.groups & cmd.groups != 0
                && a.command.op != cmd.op
        }) {
            let rest = a.command.groups & !cmd.groups;
            if rest == 0 {
                a.state = CommandState::Superseded(from, cmd.op);
            } else {
                a.command.groups = rest;
                a.repr.groups = rest;
            }
        }
        // The operator acted on these groups after a fatal failure here: what waits to be
        // asked for them is dropped (it would undo an `online` after the fix).
        if resets {
            self.fatal &= !cmd.groups;
        }
        if let Op::Maintenance(epoch) = cmd.op {
            self.hear_maintenance(now, epoch);
        }
        let Node {
            groups,
            events,
            overflows,
            pins,
            ..
        } = self;
        for g in cmd.group_indexes() {
            if resets {
                groups.reset(now, g, &mut |e| push_event_to(events, overflows, now, e));
            }
            pins[g] = (!cmd.op.satisfied_by(plan.get(g))).then_some(Pin { op: cmd.op, until });
        }
        self.push_event(
            now,
            Event::Command {
                from,
                op: cmd.op,
                groups: cmd.groups,
            },
        );
    }

    /// A view was installed: pins it carries out (or that lapsed) are dropped.
    pub(super) fn clear_pins(&mut self, now: Instant, view: View) {
        for (g, pin) in self.pins.iter_mut().enumerate() {
            if pin.is_some_and(|p| p.op.satisfied_by(view.plan.get(g)) || now >= p.until) {
                *pin = None;
            }
        }
    }

    /// Moves the commands asked of this node along (the operator's, and the one it asked
    /// itself for a fatal failure): done, expired, or sent again while no view carries
    /// them yet. Then asks for fatal failures that wait (see [`Node::fatal_group`]).
    pub(super) fn progress_command(&mut self, now: Instant) {
        if let Some(a) = self.asked.filter(|a| a.state == CommandState::Pending) {
            self.asked = Some(self.progress(now, a));
        }
        if let Some(a) = self
            .fatal_asked
            .filter(|a| a.state == CommandState::Pending)
        {
            self.fatal_asked = Some(self.progress(now, a));
        }
        self.ask_fatal(now);
    }

    fn progress(&mut self, now: Instant, mut a: Asked) -> Asked {
        let plan = self.membership.view().plan;
        let done = match a.command.op {
            Op::Maintenance(epoch) => {
                self.maintenance.epoch() >= epoch && self.maintenance_agreed()
            }
            _ => a.command.done(&plan, |g| self.running(g)),
        };
        if done {
            a.state = CommandState::Done;
        } else if now >= a.deadline {
            a.state = CommandState::Expired;
        } else if now >= a.resend_at {
            let carried = a
                .command
                .group_indexes()
                .all(|g| a.command.op.satisfied_by(plan.get(g)));
            if !carried {
                push_out(
                    &mut self.out,
                    &mut self.overflows,
                    Outgoing::Command(a.repr),
                );
            }
            a.resend_at = now.saturating_add(self.resend_interval());
        }
        a
    }

    /// Group `group`'s resource `resource` failed here in a way that says it cannot run
    /// anywhere with this config (an agent's "not configured", OCF 6): the group is
    /// released here at once, and this node asks `offline` of it on every node — as an
    /// operator would, so it stays offline, whoever coordinates, until `online` (or a
    /// `move`) after the config is fixed. Trying it on each node in turn would fail the
    /// same way on each, and fence or stop nothing better (Pacemaker stops such a
    /// resource everywhere). The command waits while this node may not act (no quorum,
    /// maintenance) and goes out when it may; a node that is stopping asks nothing (its
    /// groups are handed over or taken offline anyway).
    ///
    /// Only a start or a monitor can be fatal: a *stop* that says "not configured" is a
    /// failed stop (the group goes to `error` here and the node fences, as for any failed
    /// stop), never a new `offline` — the daemon reports it through `resource_done` as a
    /// failure, and the simulator models fatal failures of starts alone.
    ///
    /// # Panics
    /// If `group` is not a group index.
    pub fn fatal_group(&mut self, now: Instant, group: usize, resource: u8) {
        self.push_event(
            now,
            Event::GroupFatal {
                group: u8::try_from(group).expect("invariant: <= 64 groups"),
                resource,
            },
        );
        self.fatal |= 1 << group;
        // Pinned here, and asked of the others, before this node's failure mark goes out
        // (`fail_group` publishes it): a coordinator that hears the mark has the command
        // already, or is this node, and places the group offline, not on the next node.
        if !Op::Offline.satisfied_by(self.membership.view().plan.get(group)) {
            self.pins[group] = Some(Pin {
                op: Op::Offline,
                until: now.saturating_add(FATAL_COMMAND_TIMEOUT),
            });
        }
        self.ask_fatal(now);
        self.fail_group(now, group);
    }

    /// Asks `offline` for the groups whose failure was fatal, once this node may act. One
    /// still pending is replaced by one for its groups and the new ones (a second group
    /// failing a moment later, as one bad config does, is not left to wait for it).
    fn ask_fatal(&mut self, now: Instant) {
        let view = self.membership.view();
        let may_act = self.membership.is_quorate(view.members) && self.groups.authority();
        if self.fatal == 0 || !may_act || self.maintenance.on() || self.leaving() {
            return;
        }
        let pending = self
            .fatal_asked
            .filter(|a| a.state == CommandState::Pending)
            .map_or(0, |a| a.command.groups);
        let command = Command {
            op: Op::Offline,
            groups: core::mem::take(&mut self.fatal) | pending,
        };
        // Its own id space (see `FATAL_IDS`). This node keeps its own failure mark until
        // the group's failure is forgotten: a second guard behind the `offline` pin, which
        // every coordinator applies whatever the marks (no test fails with it reset:
        // DESIGN §4, "Resource agents run as applications").
        self.fatal_command_id += 1;
        let id = FATAL_IDS | self.fatal_command_id;
        self.fatal_asked = Some(self.send_command(now, command, FATAL_COMMAND_TIMEOUT, id, false));
        self.groups_dirty = true;
        self.membership_dirty = true;
    }

    /// When a command asked of this node next needs a look.
    pub(super) fn command_deadline(&self) -> Option<Instant> {
        [self.asked, self.fatal_asked]
            .into_iter()
            .flatten()
            .filter(|a| a.state == CommandState::Pending)
            .map(|a| a.resend_at.min(a.deadline))
            .min()
    }
}
