//! Maintenance mode (`heartwire maintenance on|off`, Pacemaker's maintenance-mode): the
//! cluster keeps its membership but starts, stops and monitors nothing, so an operator can
//! upgrade or restart daemons, or work on an application by hand, without a failover.
//!
//! The mode is cluster-wide and carried as an **epoch** in every node's state block: odd
//! while in maintenance. `maintenance on` moves it to the next odd number, `off` to the
//! next even one, and a node adopts any higher epoch it hears, so every node converges on
//! the latest toggle, and a node that joins (or whose daemon restarts) learns it from the
//! first state block it hears. A peer's epoch is believed only up to
//! [`EPOCH_JUMP_MAX`] above this node's: a forged or corrupt block cannot put the cluster
//! in maintenance for good, and a counter never runs past its end.
//!
//! What freezing means is decided where the state lives: `groups` starts and stops
//! nothing (but a node that loses its authority still releases: a node without authority
//! holds nothing, in maintenance too), the coordinator places nothing anew (a group stays
//! where it is held, or where it was placed), and the daemon runs no monitor.

/// How far above this node's epoch a peer's is believed (a toggle is one step; this many
/// toggles while a node was away is more than any operator makes).
pub const EPOCH_JUMP_MAX: u64 = 1024;

/// What a peer's epoch did to this node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Not newer: nothing changed.
    Same,
    /// Newer: adopted.
    Adopted,
    /// Further ahead than [`EPOCH_JUMP_MAX`]: ignored and counted.
    Implausible,
}

/// This node's view of the maintenance mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct Maintenance {
    epoch: u64,
    implausible: u64,
}

/// Whether `epoch` is one of maintenance (odd).
pub fn is_on(epoch: u64) -> bool {
    epoch % 2 == 1
}

impl Maintenance {
    /// At `epoch` (0 for a fresh start; the persisted one after a restart in maintenance).
    pub fn new(epoch: u64) -> Maintenance {
        Maintenance {
            epoch,
            implausible: 0,
        }
    }

    /// Whether the cluster is in maintenance.
    pub fn on(&self) -> bool {
        is_on(self.epoch)
    }

    /// The epoch carried in this node's state block.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Peers' epochs ignored for being implausibly far ahead.
    pub fn implausible(&self) -> u64 {
        self.implausible
    }

    /// The epoch an operator's `on` or `off` asks for: this one when the mode is already
    /// that, else the next (the end of the counter, which no toggling reaches, stays).
    pub fn target(&self, on: bool) -> u64 {
        if self.on() == on {
            self.epoch
        } else {
            self.epoch.checked_add(1).unwrap_or(self.epoch)
        }
    }

    /// A peer reported `theirs`.
    pub fn hear(&mut self, theirs: u64) -> Heard {
        if theirs <= self.epoch {
            return Heard::Same;
        }
        if theirs - self.epoch > EPOCH_JUMP_MAX {
            self.implausible += 1;
            return Heard::Implausible;
        }
        self.epoch = theirs;
        Heard::Adopted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggles_move_the_epoch_by_parity_and_peers_converge_on_the_highest() {
        let mut a = Maintenance::new(0);
        assert!(!a.on());
        assert_eq!(a.target(false), 0, "already off");
        assert_eq!(a.hear(a.target(true)), Heard::Adopted);
        assert_eq!((a.epoch(), a.on()), (1, true));
        assert_eq!(a.target(true), 1, "already on");
        let mut b = Maintenance::new(0);
        assert_eq!(b.hear(a.epoch()), Heard::Adopted);
        assert!(b.on());
        assert_eq!(b.hear(b.target(false)), Heard::Adopted);
        assert_eq!(a.hear(b.epoch()), Heard::Adopted);
        assert!(!a.on());
        assert_eq!(
            a.hear(1),
            Heard::Same,
            "an older toggle (a late copy of `on`) is history"
        );
        assert!(!a.on());
    }

    #[test]
    fn an_implausible_epoch_is_ignored_and_counted() {
        let mut a = Maintenance::new(4);
        assert_eq!(a.hear(u64::MAX), Heard::Implausible);
        assert_eq!((a.epoch(), a.implausible()), (4, 1));
        assert_eq!(a.hear(4 + EPOCH_JUMP_MAX), Heard::Adopted);
        let end = Maintenance::new(u64::MAX);
        assert_eq!(end.target(false), u64::MAX, "the counter does not wrap");
    }
}
