//! The node's side of maintenance mode (see `maintenance` for the mode itself): the
//! operator's toggle, a peer's epoch, a daemon that restarts in maintenance, and what a
//! stopping node leaves behind.

use super::Node;
use crate::core::event::Event;
use crate::core::time::Instant;

impl Node {
    /// Whether the cluster is in maintenance, as this node knows it.
    pub fn maintenance(&self) -> bool {
        self.maintenance.on()
    }

    /// The maintenance epoch this node carries (persisted by the daemon while in
    /// maintenance, so a restarted daemon starts in it).
    pub fn maintenance_epoch(&self) -> u64 {
        self.maintenance.epoch()
    }

    /// Peers' maintenance epochs ignored as implausibly far ahead.
    pub fn maintenance_implausible(&self) -> u64 {
        self.maintenance.implausible()
    }

    /// Starts this node at maintenance `epoch` holding `groups` (bitmap) online: a daemon
    /// that stopped in maintenance left them running, and this is how the one that
    /// replaces it knows. Call before the first frame or timeout.
    ///
    /// # Panics
    /// If a bit names no group, or the node already ran.
    pub fn resume_maintenance(&mut self, now: Instant, epoch: u64, groups: u64) {
        assert_eq!(
            self.generation, 0,
            "resume_maintenance before the node runs"
        );
        self.maintenance = super::Maintenance::new(epoch);
        for g in (0..64).filter(|g| groups & (1 << g) != 0) {
            self.groups.adopt(now, g);
        }
        self.groups_dirty = true;
        self.membership_dirty = true;
    }

    /// The epoch a `maintenance on` (`on`) or `off` asked of this node moves the cluster
    /// to: the op to ask is `Op::Maintenance(node.maintenance_target(on))`.
    pub fn maintenance_target(&self, on: bool) -> u64 {
        self.maintenance.target(on)
    }

    /// A maintenance epoch from a command or a peer's state block: adopted when newer
    /// (and plausible).
    pub(super) fn hear_maintenance(&mut self, now: Instant, epoch: u64) {
        if self.maintenance.hear(epoch) == super::Heard::Adopted {
            self.maintenance_changed(now);
        }
    }

    /// The mode changed (a toggle here, or a newer epoch heard): every decision is taken
    /// again under it, and the change is published at once.
    ///
    /// Leaving maintenance counts as installing the view afresh for the acquire rule: a
    /// node outside the view may have held a group all along (it was frozen, and the
    /// plan kept its groups on it), so a gainer waits one lease plus the margin for it
    /// to have released, as after any view change.
    pub(super) fn maintenance_changed(&mut self, now: Instant) {
        if !self.maintenance.on() {
            self.installed_at = self.installed_at.max(now);
        }
        self.groups_dirty = true;
        self.membership_dirty = true;
        self.push_event(
            now,
            Event::Maintenance {
                on: self.maintenance.on(),
            },
        );
    }

    /// Whether every member of the installed view reports this node's maintenance epoch
    /// or a newer one (a `maintenance on|off` asked here is then done).
    pub(super) fn maintenance_agreed(&self) -> bool {
        let view = self.membership.view();
        let epoch = self.maintenance.epoch();
        self.peers
            .iter()
            .filter(|p| p.id != self.local && view.members.contains(p.id))
            .all(|p| p.report.is_some_and(|r| r.maintenance >= epoch))
    }
}
