//! What a node does when its authority is at stake (DESIGN.md §4, issue 17 item 6): the
//! tie-breaker steps it asks the daemon for, and `on_quorum_loss`. Decided here, in the
//! core, so the simulator sees every decision; the daemon only runs the SCSI children
//! and the halt, and reports a race's outcome back ([`Node::tie_breaker_result`]).
//!
//! - A view holding a strict majority: register on the tie-breaker once the node has
//!   authority in it (the daemon renews the registration every minute while no other
//!   step comes). Not at the view's install: a host paused past its lease took the
//!   stale commit of a majority view that waited in its socket, registered, and, cut
//!   off a moment later, preempted the reservation its peer had won alone meanwhile:
//!   both held the groups (sim seed 5138 of 10000).
//! - A view holding exactly half the configured nodes: its lowest member races for it,
//!   once per set of members, and says how the race ended in its state block; the other
//!   members take that word (review S3: when every member raced, the second one's
//!   PREEMPT of a key its half-mate had already removed met RESERVATION CONFLICT and
//!   counted as a lost race, so a 2+2 split halted all four nodes, or left one member of
//!   the winning half without quorum). Until the outcome is known, `on_quorum_loss`
//!   waits (the race decides whether quorum was lost at all).
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
use super::spec::NodeId;

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
    /// In a view of exactly half the nodes (these members), of which this node is the
    /// lowest: race for the tie-breaker, preempting the keys of the nodes outside it;
    /// report the outcome.
    Race(NodeSet),
    /// In a minority view, or a half view another member races for: no registration to
    /// keep up.
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
    local: NodeId,
    policy: QuorumLoss,
    /// A `[tie_breaker]` is configured.
    tie_breaker: bool,
    configured: u32,
    /// The step to hand to the daemon.
    step: Option<TieStep>,
    /// Last step handed out (a step is issued once per change).
    last: Option<TieStep>,
    /// The members of the half view raced for (by this node or its lowest member), and
    /// the outcome once it is known (`Some(won)`).
    raced: Option<(NodeSet, Option<bool>)>,
    /// Authority was lost while a race for the current view was out: apply the policy
    /// if the race is lost.
    waiting: bool,
    /// This node races for its half view as soon as no node outside it is alive here
    /// ([`Authority::may_race`]).
    owed: bool,
    /// Authority was lost in a majority view (its members' word ran out): the view that
    /// follows decides — a half races first, a minority applies the policy.
    deferred: bool,
    /// This node has had authority since it started: it has something a lost race
    /// takes away.
    had_authority: bool,
    /// The installed view is a majority: register once this node has authority in it.
    register_owed: bool,
}

impl Authority {
    /// Node `local` of `configured` nodes with `policy`, with or without a tie-breaker.
    pub fn new(local: NodeId, policy: QuorumLoss, tie_breaker: bool, configured: u32) -> Authority {
        Authority {
            local,
            policy,
            tie_breaker,
            configured,
            step: None,
            last: None,
            raced: None,
            waiting: false,
            owed: false,
            deferred: false,
            had_authority: false,
            register_owed: false,
        }
    }

    /// This node has authority now (in its installed view): a majority view's
    /// registration is owed now.
    pub fn on_authority(&mut self) {
        self.had_authority = true;
        if self.register_owed {
            self.register_owed = false;
            self.issue(TieStep::Register);
        }
    }

    /// Hands `step` to the daemon, unless it is the last one handed out.
    fn issue(&mut self, step: TieStep) {
        if self.last != Some(step) {
            self.step = Some(step);
            self.last = Some(step);
        }
    }

    /// Whether it has had authority since it started.
    pub fn had_authority(&self) -> bool {
        self.had_authority
    }

    /// A view with `members` was installed. Returns whether a new race starts (this
    /// node's or its lowest member's): until it is won, the tie-breaker is not held (a
    /// flag left from an earlier race, never dropped because the majority's word did not
    /// arrive, would make the new half quorate before its race ends — review F-b).
    pub fn on_view(&mut self, members: NodeSet) -> bool {
        if !self.tie_breaker {
            return false;
        }
        let (n, all) = (2 * members.len(), self.configured);
        if n == all && self.raced.is_some_and(|(m, _)| m == members) {
            return false;
        }
        // A race this node waited for is abandoned with its view: the new view judges
        // the loss of authority as after a lost lease (`after_view`). A losing racer
        // halts before its word goes out, and its mate, left alone, waited for that
        // word for ever instead of applying `on_quorum_loss` (the four-guest SAN lab).
        if self.waiting {
            self.deferred = true;
        }
        self.owed = false;
        self.register_owed = n > all;
        if n == all {
            self.raced = Some((members, None));
            self.owed = racer(members) == Some(self.local);
        } else {
            self.raced = None;
        }
        if n <= all {
            self.issue(TieStep::Idle);
        }
        self.waiting = false;
        self.raced.is_some_and(|(m, _)| m == members)
    }

    /// Whether this node owes its half view a race it has not started.
    pub fn race_owed(&self) -> bool {
        self.owed
    }

    /// Starts the race this node owes its half view, unless a node outside the view is
    /// alive here (`outside_alive`). The race preempts the keys of every node outside,
    /// and a node that is alive may hold groups: a restarted daemon whose first proposal
    /// went unanswered committed a view of itself alone, won the race with the
    /// registration its host had kept, and took the groups of its live peer. While such
    /// a node is alive, the half view waits without quorum (its next view, or that
    /// node's silence, settles it).
    pub fn may_race(&mut self, outside_alive: bool) {
        let Some((m, None)) = self.raced.filter(|_| self.owed && !outside_alive) else {
            return;
        };
        self.owed = false;
        self.step = Some(TieStep::Race(m));
        self.last = self.step;
    }

    /// The half view whose outcome this node awaits from its racer (another member):
    /// `(members, racer)`.
    pub fn awaits_word(&self) -> Option<(NodeSet, NodeId)> {
        let (m, None) = self.raced? else {
            return None;
        };
        racer(m).filter(|r| *r != self.local).map(|r| (m, r))
    }

    /// This node's word on the race it runs, for its state block: the members raced for
    /// (0: none) and whether it is running (`None`), won or lost.
    pub fn race_word(&self) -> (u64, Option<bool>) {
        match self.raced {
            Some((m, outcome)) if racer(m) == Some(self.local) => (m.bits(), outcome),
            _ => (0, None),
        }
    }

    /// The next tie-breaker step to run, once.
    pub fn take_step(&mut self) -> Option<TieStep> {
        self.step.take()
    }

    /// This node lost its authority in a view with `members`: what follows now. While a
    /// race for this very view is out, nothing yet (the race decides). With a
    /// tie-breaker, a loss in a majority view (the lease ran out as the other half went
    /// silent, before the detector changed the view) waits for the next view
    /// ([`Authority::after_view`]): every node of a split halted at its lease's end,
    /// before any race, the winning half included.
    pub fn on_quorum_lost(&mut self, members: NodeSet) -> Consequence {
        if self.raced == Some((members, None)) {
            self.waiting = true;
            return Consequence::Nothing;
        }
        if self.tie_breaker && 2 * members.len() > self.configured {
            self.deferred = true;
            return Consequence::Nothing;
        }
        self.consequence()
    }

    /// The view with `members` was installed (after [`Authority::on_view`]): what a
    /// deferred loss of authority comes to. A half view's race decides; a minority
    /// view applies `on_quorum_loss`; a majority view may give the authority back (a
    /// later loss is judged afresh).
    pub fn after_view(&mut self, members: NodeSet) -> Consequence {
        if !std::mem::take(&mut self.deferred) {
            return Consequence::Nothing;
        }
        let (n, all) = (2 * members.len(), self.configured);
        match self.raced {
            Some((m, None)) if m == members => {
                self.waiting = true;
                Consequence::Nothing
            }
            Some((m, Some(false))) if m == members => self.consequence(),
            _ if n >= all => Consequence::Nothing,
            _ => self.consequence(),
        }
    }

    /// The race for `members` ended: `won` (this node's own race, or its racer's word).
    /// Returns what follows a lost race; `None` for a result for a view that is no longer
    /// raced for, or a second result for the same race (both ignored).
    pub fn on_race(&mut self, members: NodeSet, won: bool) -> Option<Consequence> {
        if self.raced != Some((members, None)) {
            return None;
        }
        self.raced = Some((members, Some(won)));
        self.waiting = false;
        Some(if won || !self.had_authority {
            Consequence::Nothing
        } else {
            self.consequence()
        })
    }

    /// Whether `on_quorum_loss` waits for a race (or for the view after a lost lease).
    pub fn waiting(&self) -> bool {
        self.waiting || self.deferred
    }

    fn consequence(&self) -> Consequence {
        match self.policy {
            QuorumLoss::Freeze => Consequence::Nothing,
            QuorumLoss::Stop => Consequence::Leave,
            QuorumLoss::Halt => Consequence::Halt,
        }
    }
}

/// The member of a half view that races for the tie-breaker: its lowest, which every
/// member names alike from the view alone.
pub fn racer(members: NodeSet) -> Option<NodeId> {
    members.iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::NodeId;

    fn id(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn set(ids: &[u8]) -> NodeSet {
        ids.iter().map(|i| NodeId::new(*i).unwrap()).collect()
    }

    #[test]
    fn majority_registers_half_races_once_minority_idles() {
        let mut a = Authority::new(id(1), QuorumLoss::Halt, true, 4);
        a.on_view(set(&[1, 2, 3]));
        assert_eq!(
            a.take_step(),
            None,
            "not before it has authority (seed 5138)"
        );
        a.on_authority();
        assert_eq!(a.take_step(), Some(TieStep::Register));
        assert_eq!(a.take_step(), None, "once");
        a.on_view(set(&[1, 2, 3, 4]));
        a.on_authority();
        assert_eq!(a.take_step(), None, "still registered");
        a.on_view(set(&[1, 2]));
        assert!(a.race_owed());
        a.may_race(true);
        assert_eq!(
            a.take_step(),
            Some(TieStep::Idle),
            "not while n3 or n4 is alive"
        );
        a.may_race(false);
        assert_eq!(a.take_step(), Some(TieStep::Race(set(&[1, 2]))));
        assert!(!a.race_owed());
        a.on_view(set(&[1, 2]));
        a.may_race(false);
        assert_eq!(a.take_step(), None, "one race per set of members");
        a.on_view(set(&[1]));
        assert_eq!(a.take_step(), Some(TieStep::Idle));
    }

    #[test]
    fn on_quorum_loss_waits_for_the_race_and_applies_only_if_it_is_lost() {
        let mut a = Authority::new(id(1), QuorumLoss::Halt, true, 2);
        a.on_authority();
        a.on_view(set(&[1]));
        a.may_race(false);
        assert_eq!(a.take_step(), Some(TieStep::Race(set(&[1]))));
        assert_eq!(a.on_quorum_lost(set(&[1])), Consequence::Nothing);
        assert!(a.waiting());
        assert_eq!(a.on_race(set(&[1]), false), Some(Consequence::Halt));
        assert_eq!(a.on_race(set(&[1]), true), None, "one outcome per race");
        let mut won = Authority::new(id(2), QuorumLoss::Stop, true, 2);
        won.on_view(set(&[2]));
        assert_eq!(won.on_race(set(&[2]), true), Some(Consequence::Nothing));
        assert_eq!(won.on_race(set(&[1]), false), None, "not this view's race");
        // Without a tie-breaker, a loss applies the policy at once.
        let mut plain = Authority::new(id(1), QuorumLoss::Stop, false, 3);
        plain.on_view(set(&[1]));
        assert_eq!(plain.take_step(), None);
        assert_eq!(plain.on_quorum_lost(set(&[1])), Consequence::Leave);
        let mut freeze = Authority::new(id(1), QuorumLoss::Freeze, false, 3);
        assert_eq!(freeze.on_quorum_lost(set(&[1])), Consequence::Nothing);
    }

    /// Review F-f: a node that boots alone (two nodes, tie-breaker, `halt`) is not
    /// registered and loses its race; it has held nothing, so it waits for its peer
    /// instead of halting (and being reset, and halting again). Once it had authority, a
    /// lost race halts it as before.
    #[test]
    fn a_race_lost_before_any_authority_changes_nothing() {
        let mut a = Authority::new(id(1), QuorumLoss::Halt, true, 2);
        a.on_view(set(&[1]));
        a.may_race(false);
        assert_eq!(a.take_step(), Some(TieStep::Race(set(&[1]))));
        assert_eq!(a.on_race(set(&[1]), false), Some(Consequence::Nothing));
        a.on_view(set(&[1, 2]));
        a.on_authority();
        a.on_view(set(&[1]));
        assert_eq!(a.on_race(set(&[1]), false), Some(Consequence::Halt));
    }

    /// Review S3: in a half view only its lowest member races; the others await its word
    /// and take its outcome, so a half never loses to itself and its members agree.
    #[test]
    fn only_the_lowest_member_of_a_half_races_and_the_others_take_its_word() {
        let mut one = Authority::new(id(1), QuorumLoss::Halt, true, 4);
        let mut two = Authority::new(id(2), QuorumLoss::Halt, true, 4);
        for a in [&mut one, &mut two] {
            a.on_view(set(&[1, 2, 3, 4]));
            a.on_authority();
            assert_eq!(a.take_step(), Some(TieStep::Register));
            assert!(
                a.on_view(set(&[1, 2])),
                "a new race starts for every member"
            );
            a.may_race(false);
        }
        assert_eq!(one.take_step(), Some(TieStep::Race(set(&[1, 2]))));
        assert_eq!(
            two.take_step(),
            Some(TieStep::Idle),
            "the mate does not race"
        );
        assert_eq!(one.awaits_word(), None);
        assert_eq!(two.awaits_word(), Some((set(&[1, 2]), id(1))));
        assert_eq!(
            (one.race_word(), two.race_word()),
            ((0b11, None), (0, None))
        );
        assert_eq!(two.on_quorum_lost(set(&[1, 2])), Consequence::Nothing);
        assert!(two.waiting(), "the mate waits for its racer's word");
        assert_eq!(one.on_race(set(&[1, 2]), true), Some(Consequence::Nothing));
        assert_eq!(one.race_word(), (0b11, Some(true)));
        assert_eq!(two.on_race(set(&[1, 2]), true), Some(Consequence::Nothing));
        assert_eq!(two.awaits_word(), None);
        assert!(!two.on_view(set(&[1, 2])), "one race per set of members");
        // The other half: its racer lost, and its mate applies on_quorum_loss on that word.
        let mut four = Authority::new(id(4), QuorumLoss::Halt, true, 4);
        four.on_view(set(&[1, 2, 3, 4]));
        four.on_authority();
        four.on_view(set(&[3, 4]));
        assert_eq!(four.awaits_word(), Some((set(&[3, 4]), id(3))));
        assert_eq!(four.on_race(set(&[3, 4]), false), Some(Consequence::Halt));
        assert_eq!(
            four.on_race(set(&[3, 4]), true),
            None,
            "one outcome per race"
        );
    }
}
