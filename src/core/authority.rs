//! What a node does when its authority is at stake (DESIGN.md §4, issue 17 item 6): the
//! tie-breaker steps it asks the daemon for, and `on_quorum_loss`. Decided here, in the
//! core, so the simulator sees every decision; the daemon only runs the SCSI children
//! and the halt, and reports a race's outcome back ([`Node::tie_breaker_result`]).
//!
//! - A view holding a strict majority: register on the tie-breaker (the daemon renews the
//!   registration every minute while no other step comes).
//! - A view holding exactly half the configured nodes: race for it, once per set of
//!   members; until the outcome is known, `on_quorum_loss` waits (the race decides
//!   whether quorum was lost at all).
//! - A smaller view: nothing to do on the disk.
//! - Authority lost (`quorum_lost`), with no race to wait for, or a race lost: apply
//!   `on_quorum_loss` — `freeze` (keep running, rejoin when possible), `stop` (release,
//!   then exit), `halt` (halt the machine at once; the config requires a watchdog).
//! - A race lost by a node that has not had authority since it started changes nothing:
//!   it holds nothing to give up, and a node that boots alone is not registered, so it
//!   cannot win — with `halt` it halted, was reset by its watchdog and halted again until
//!   its peer came back (review F-f). It waits for its peer instead, like a node that
//!   boots into a minority (Pacemaker's `wait_for_all`).
//!
//! [`Node::tie_breaker_result`]: super::Node::tie_breaker_result

use super::placement::NodeSet;

/// What a node does besides releasing when it loses quorum (`on_quorum_loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuorumLoss {
    /// Keep running and try to rejoin.
    #[default]
    Freeze,
    /// Release, then exit the daemon.
    Stop,
    /// Halt the machine at once (the config requires a `[watchdog]`).
    Halt,
}

/// A tie-breaker step for the daemon to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieStep {
    /// In a majority view: register on the tie-breaker now, and again every minute.
    Register,
    /// In a view of exactly half the nodes (these members): race for the tie-breaker,
    /// preempting the keys of the nodes outside it; report the outcome.
    Race(NodeSet),
    /// In a minority view: no registration to keep up.
    Idle,
}

/// What the daemon must do when `on_quorum_loss` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consequence {
    /// Nothing besides the release.
    Nothing,
    /// Leave: release everything, then exit.
    Leave,
    /// Halt the machine.
    Halt,
}

/// The node's tie-breaker and `on_quorum_loss` decisions.
#[derive(Debug)]
pub struct Authority {
    policy: QuorumLoss,
    /// A `[tie_breaker]` is configured.
    tie_breaker: bool,
    configured: u32,
    /// The step to hand to the daemon.
    step: Option<TieStep>,
    /// Last step handed out (a step is issued once per change).
    last: Option<TieStep>,
    /// The members of the half view raced for, and whether the outcome is known.
    raced: Option<(NodeSet, bool)>,
    /// Authority was lost while a race for the current view was out: apply the policy
    /// if the race is lost.
    waiting: bool,
    /// This node has had authority since it started: it has something a lost race
    /// takes away.
    had_authority: bool,
}

impl Authority {
    /// A node of `configured` nodes with `policy`, with or without a tie-breaker.
    pub fn new(policy: QuorumLoss, tie_breaker: bool, configured: u32) -> Authority {
        Authority {
            policy,
            tie_breaker,
            configured,
            step: None,
            last: None,
            raced: None,
            waiting: false,
            had_authority: false,
        }
    }

    /// This node has authority now.
    pub fn on_authority(&mut self) {
        self.had_authority = true;
    }

    /// Whether it has had authority since it started.
    pub fn had_authority(&self) -> bool {
        self.had_authority
    }

    /// A view with `members` was installed. Returns whether a new race starts: until it
    /// is won, the tie-breaker is not held (a flag left from an earlier race, never
    /// dropped because the majority's word did not arrive, would make the new half
    /// quorate before its race ends — review F-b).
    pub fn on_view(&mut self, members: NodeSet) -> bool {
        if !self.tie_breaker {
            return false;
        }
        let (n, all) = (2 * members.len(), self.configured);
        let step = if n > all {
            self.raced = None;
            TieStep::Register
        } else if n == all {
            if self.raced.is_some_and(|(m, _)| m == members) {
                return false;
            }
            self.raced = Some((members, false));
            TieStep::Race(members)
        } else {
            self.raced = None;
            TieStep::Idle
        };
        if self.last != Some(step) {
            self.step = Some(step);
            self.last = Some(step);
        }
        self.waiting = false;
        matches!(step, TieStep::Race(_))
    }

    /// The next tie-breaker step to run, once.
    pub fn take_step(&mut self) -> Option<TieStep> {
        self.step.take()
    }

    /// This node lost its authority in a view with `members`: what follows now. While a
    /// race for this very view is out, nothing yet (the race decides).
    pub fn on_quorum_lost(&mut self, members: NodeSet) -> Consequence {
        if self.raced == Some((members, false)) {
            self.waiting = true;
            return Consequence::Nothing;
        }
        self.consequence()
    }

    /// The race for `members` ended: `won`. Returns whether the tie-breaker is held now
    /// (a result for a view that is no longer raced for is ignored: `None`) and what
    /// follows a lost race.
    pub fn on_race(&mut self, members: NodeSet, won: bool) -> Option<Consequence> {
        if self.raced != Some((members, false)) {
            return None;
        }
        self.raced = Some((members, true));
        self.waiting = false;
        Some(if won || !self.had_authority {
            Consequence::Nothing
        } else {
            self.consequence()
        })
    }

    /// Whether `on_quorum_loss` waits for a race.
    pub fn waiting(&self) -> bool {
        self.waiting
    }

    fn consequence(&self) -> Consequence {
        match self.policy {
            QuorumLoss::Freeze => Consequence::Nothing,
            QuorumLoss::Stop => Consequence::Leave,
            QuorumLoss::Halt => Consequence::Halt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::NodeId;

    fn set(ids: &[u8]) -> NodeSet {
        ids.iter().map(|i| NodeId::new(*i).unwrap()).collect()
    }

    #[test]
    fn majority_registers_half_races_once_minority_idles() {
        let mut a = Authority::new(QuorumLoss::Halt, true, 4);
        a.on_view(set(&[1, 2, 3]));
        assert_eq!(a.take_step(), Some(TieStep::Register));
        assert_eq!(a.take_step(), None, "once");
        a.on_view(set(&[1, 2, 3, 4]));
        assert_eq!(a.take_step(), None, "still registered");
        a.on_view(set(&[1, 2]));
        assert_eq!(a.take_step(), Some(TieStep::Race(set(&[1, 2]))));
        a.on_view(set(&[1, 2]));
        assert_eq!(a.take_step(), None, "one race per set of members");
        a.on_view(set(&[1]));
        assert_eq!(a.take_step(), Some(TieStep::Idle));
    }

    #[test]
    fn on_quorum_loss_waits_for_the_race_and_applies_only_if_it_is_lost() {
        let mut a = Authority::new(QuorumLoss::Halt, true, 2);
        a.on_authority();
        a.on_view(set(&[1]));
        assert_eq!(a.take_step(), Some(TieStep::Race(set(&[1]))));
        assert_eq!(a.on_quorum_lost(set(&[1])), Consequence::Nothing);
        assert!(a.waiting());
        assert_eq!(a.on_race(set(&[1]), false), Some(Consequence::Halt));
        assert_eq!(a.on_race(set(&[1]), true), None, "one outcome per race");
        let mut won = Authority::new(QuorumLoss::Stop, true, 2);
        won.on_view(set(&[2]));
        assert_eq!(won.on_race(set(&[2]), true), Some(Consequence::Nothing));
        assert_eq!(won.on_race(set(&[1]), false), None, "not this view's race");
        // Without a tie-breaker, a loss applies the policy at once.
        let mut plain = Authority::new(QuorumLoss::Stop, false, 3);
        plain.on_view(set(&[1]));
        assert_eq!(plain.take_step(), None);
        assert_eq!(plain.on_quorum_lost(set(&[1])), Consequence::Leave);
        let mut freeze = Authority::new(QuorumLoss::Freeze, false, 3);
        assert_eq!(freeze.on_quorum_lost(set(&[1])), Consequence::Nothing);
    }

    /// Review F-f: a node that boots alone (two nodes, tie-breaker, `halt`) is not
    /// registered and loses its race; it has held nothing, so it waits for its peer
    /// instead of halting (and being reset, and halting again). Once it had authority, a
    /// lost race halts it as before.
    #[test]
    fn a_race_lost_before_any_authority_changes_nothing() {
        let mut a = Authority::new(QuorumLoss::Halt, true, 2);
        a.on_view(set(&[1]));
        assert_eq!(a.take_step(), Some(TieStep::Race(set(&[1]))));
        assert_eq!(a.on_race(set(&[1]), false), Some(Consequence::Nothing));
        a.on_view(set(&[1, 2]));
        a.on_authority();
        a.on_view(set(&[1]));
        assert_eq!(a.on_race(set(&[1]), false), Some(Consequence::Halt));
    }
}
