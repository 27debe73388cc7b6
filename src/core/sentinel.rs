//! The sentinel's rule (DESIGN §4 "The sentinel"): when a daemon that stopped turning is
//! killed. Pure, so that the sentinel (`daemon::sentinel`) and the simulator kill at the
//! same moment for the same reason.
//!
//! A daemon is hung when it made no progress for `hang_timeout`, or, while it holds
//! groups on a lease ([`super::Node::fence_deadline`]), when it has not turned since that
//! lease ended, an eighth of a lease after it ended: the loop's own timer fires at the
//! lease end, and a loop that did not turn since cannot have fenced what it holds. The
//! gainer waits half a lease more than the lease (the transit margin); the sentinel
//! takes an eighth of it, and its fence the rest. Seed 2809 had two owners when the
//! sentinel knew only `hang_timeout`: a daemon that stalled just before its lease ended.
//!
//! A sentinel that wakes late ([`Watch`]) has shared a stall with the daemon: the host (a
//! VM the hypervisor paused) stopped both, and the daemon runs as soon as the host does.
//! It looks again [`HangRule::recheck`] later before it kills. It also looks once just
//! before each deadline, so that a pause across the deadline always makes it late. The
//! simulator pauses whole hosts to check that such a daemon is not killed.

use std::time::Duration;

use super::Instant;

/// The lease grace is the lease divided by this.
pub const LEASE_GRACE_DIV: u32 = 8;

/// How much later than asked a sentinel's wake may come and still be on time: the
/// daemon's poll rounds its timeout up to whole milliseconds (mio).
pub const POLL_SLACK: Duration = Duration::from_millis(1);

/// Why a daemon is taken for hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hung {
    /// No progress for `hang_timeout`.
    NoProgress,
    /// No turn since its lease ended, a lease grace ago.
    LeaseOver,
}

/// When the sentinel kills a daemon that stops turning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HangRule {
    /// No progress this long.
    pub hang: Duration,
    /// This long after the end of a lease the daemon did not turn after.
    pub lease_grace: Duration,
}

impl HangRule {
    /// The rule for `hang_timeout` `hang` in a cluster whose lease is `lease`.
    pub fn new(hang: Duration, lease: Duration) -> HangRule {
        HangRule {
            hang,
            lease_grace: lease / LEASE_GRACE_DIV,
        }
    }

    /// How long a sentinel that woke late (the host stalled with it) gives the daemon to
    /// turn before it kills it: an eighth of `hang_timeout`, at least 100 µs. A daemon
    /// that runs again turns at once; one that is hung is killed that much later.
    pub fn recheck(&self) -> Duration {
        (self.hang / 8).max(Duration::from_micros(100))
    }

    /// When a daemon whose last turn was at `last`, holding groups on a lease that ends
    /// at `fence_by` (if it does), is killed unless it turns again before, and why.
    pub fn deadline(&self, last: Instant, fence_by: Option<Instant>) -> (Instant, Hung) {
        let by_hang = last.saturating_add(self.hang);
        match fence_by {
            Some(by) if by > last => {
                let by_lease = by.saturating_add(self.lease_grace);
                if by_lease < by_hang {
                    (by_lease, Hung::LeaseOver)
                } else {
                    (by_hang, Hung::NoProgress)
                }
            }
            _ => (by_hang, Hung::NoProgress),
        }
    }
}

/// What a sentinel does on one wake ([`Watch::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing: the daemon is not past its deadline, or a recheck is still running.
    Wait,
    /// The daemon is past its deadline, but the sentinel woke `late_by` after it asked
    /// to: it looks again `for_` later before it kills.
    Recheck {
        /// How much later than asked the sentinel woke.
        late_by: Duration,
        /// How long the daemon has to turn.
        for_: Duration,
    },
    /// Kill the daemon, hung for this reason.
    Kill(Hung),
}

/// A sentinel's watch over one daemon: the rule, and the one recheck it grants after it
/// woke late. Pure, so that the sentinel and the simulator decide alike: the sentinel
/// asks to wake at [`Watch::wake_at`] (or earlier, for its own work) and on each wake
/// asks [`Watch::verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    rule: HangRule,
    /// The recheck granted: (the daemon's progress word it was granted for, when it
    /// ends). A change of the word ends it: the daemon turned.
    recheck: Option<(u64, Instant)>,
}

impl Watch {
    /// A watch by `rule` over a daemon just started.
    pub fn new(rule: HangRule) -> Watch {
        Watch {
            rule,
            recheck: None,
        }
    }

    /// The rule this watch kills by.
    pub fn rule(&self) -> HangRule {
        self.rule
    }

    /// Whether a recheck is running (the sentinel puts its own work off until it ends).
    pub fn rechecking(&self) -> bool {
        self.recheck.is_some()
    }

    /// When the sentinel wakes next, asked at `now`: once just before the kill deadline,
    /// then at it (while the daemon starts, `deadline` is `None`: `hang_timeout` from
    /// now); not before a recheck ends.
    ///
    /// The early look comes a late wake's threshold (and a nanosecond: a wake exactly that
    /// late is on time) before the deadline. A sentinel that asked for the deadline itself
    /// and that a host pause stopped just after it looked woke on time when the pause
    /// ended just past the deadline, and killed a daemon that was only paused with it
    /// (the simulator's host pauses: 20 kills in 2000 seeds, seed 197 the first). Asked for
    /// the early look, it wakes late from any pause across the deadline, unless that look
    /// found the daemon silent: silent for all but the threshold of its `hang_timeout`
    /// while the host ran.
    ///
    /// A deadline nearer than the threshold leaves no room for the early look: a
    /// `hang_timeout` that short, or a lease about to end (no word from a majority for
    /// most of a lease). A pause across such a deadline that ends within the threshold
    /// after it is judged a hang; a daemon whose lease ran out in it has most likely lost
    /// what it holds with its lease, and the kill costs it a restart.
    pub fn wake_at(&self, now: Instant, deadline: Option<(Instant, Hung)>) -> Instant {
        let until = self.recheck.map_or(Instant::default(), |(_, until)| until);
        let at = match deadline {
            None => now.saturating_add(self.rule.hang),
            Some((at, _)) => {
                let early = at.saturating_sub(self.late_after() + Duration::from_nanos(1));
                if now < early { early } else { at }
            }
        };
        at.max(until)
    }

    /// A wake more than this after the moment asked for is late: the poll's slack plus a
    /// recheck. A sentinel late by less kills on that wake, no later after the deadline
    /// than a recheck would have.
    fn late_after(&self) -> Duration {
        POLL_SLACK + self.rule.recheck()
    }

    /// The verdict on a wake at `now` that the sentinel asked for at `asked`, with the
    /// daemon's progress word `progress` and its kill deadline `deadline`
    /// ([`HangRule::deadline`]; `None` while it starts).
    ///
    /// A daemon past its deadline is killed, unless the sentinel woke more than
    /// [`POLL_SLACK`] plus a recheck late: then the host may have stopped both, and the
    /// daemon gets one recheck. The recheck ends when the word changes; one that runs out
    /// is a kill, whatever the sentinel's wakes do meanwhile.
    pub fn verdict(
        &mut self,
        now: Instant,
        asked: Instant,
        progress: u64,
        deadline: Option<(Instant, Hung)>,
    ) -> Verdict {
        if self.recheck.is_some_and(|(granted, _)| granted != progress) {
            self.recheck = None;
        }
        let Some((_, why)) = deadline.filter(|(at, _)| now >= *at) else {
            return Verdict::Wait;
        };
        let late_by = now.saturating_since(asked);
        let for_ = self.rule.recheck();
        match self.recheck {
            None if late_by > self.late_after() => {
                self.recheck = Some((progress, now.saturating_add(for_)));
                Verdict::Recheck { late_by, for_ }
            }
            Some((_, until)) if now < until => Verdict::Wait,
            _ => Verdict::Kill(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    #[test]
    fn a_daemon_holding_nothing_is_hung_after_hang_timeout() {
        let r = HangRule::new(Duration::from_millis(10), Duration::from_millis(80));
        assert_eq!(r.deadline(at(100), None), (at(110), Hung::NoProgress));
    }

    #[test]
    fn a_lease_ending_before_the_hang_timeout_is_the_deadline() {
        let r = HangRule::new(Duration::from_millis(10), Duration::from_millis(80));
        // lease ends 2 ms after the last turn: killed an eighth of a lease later
        assert_eq!(
            r.deadline(at(100), Some(at(102))),
            (at(112).min(at(110)), Hung::NoProgress)
        );
        let r = HangRule::new(Duration::from_millis(40), Duration::from_millis(80));
        assert_eq!(
            r.deadline(at(100), Some(at(102))),
            (at(112), Hung::LeaseOver)
        );
    }

    #[test]
    fn a_lease_that_ended_before_the_last_turn_does_not_count() {
        // the loop turned after the lease ended: it ran its own timer and fenced
        let r = HangRule::new(Duration::from_millis(40), Duration::from_millis(80));
        assert_eq!(
            r.deadline(at(100), Some(at(100))),
            (at(140), Hung::NoProgress)
        );
        assert_eq!(
            r.deadline(at(100), Some(at(90))),
            (at(140), Hung::NoProgress)
        );
    }

    /// hang 40 ms, lease 80 ms: a recheck of 5 ms; late is more than 6 ms after asked.
    fn watch() -> Watch {
        Watch::new(HangRule::new(
            Duration::from_millis(40),
            Duration::from_millis(80),
        ))
    }

    /// The deadline of a daemon whose last turn was at `ms`, holding nothing.
    fn silent_since(ms: u64) -> Option<(Instant, Hung)> {
        Some(watch().rule().deadline(at(ms), None))
    }

    fn word(ms: u64) -> u64 {
        at(ms).as_nanos()
    }

    /// A nanosecond before `ms`.
    fn before(ms: u64) -> Instant {
        at(ms).saturating_sub(Duration::from_nanos(1))
    }

    /// The watch of a daemon silent since 100 whose sentinel woke at 150 for the look it
    /// asked for at 140 (10 ms late): granted a recheck. With the deadline.
    fn in_recheck() -> (Watch, Option<(Instant, Hung)>) {
        let mut w = watch();
        let d = silent_since(100);
        assert!(matches!(
            w.verdict(at(150), at(140), word(100), d),
            Verdict::Recheck { .. }
        ));
        (w, d)
    }

    #[test]
    fn the_sentinel_looks_just_before_the_deadline_then_at_it() {
        let w = watch();
        let d = silent_since(100);
        // 6 ms (the late threshold) and a nanosecond before the deadline at 140
        assert_eq!(w.wake_at(at(100), d), before(134));
        assert_eq!(w.wake_at(before(134), d), at(140));
        assert_eq!(w.wake_at(at(137), d), at(140));
        // a deadline nearer than the threshold: at it
        assert_eq!(
            w.wake_at(at(100), Some((at(105), Hung::LeaseOver))),
            at(105)
        );
    }

    #[test]
    fn a_host_pause_across_the_deadline_makes_the_sentinel_late() {
        // The daemon turned at 100 and the sentinel saw it; the host paused right after
        // and runs again at the deadline, the daemon not yet turned.
        let d = silent_since(100);
        let mut w = watch();
        let asked = w.wake_at(at(100), d);
        assert!(matches!(
            w.verdict(at(140), asked, word(100), d),
            Verdict::Recheck { .. }
        ));
        // Had it asked for the deadline itself, that wake would have been on time.
        let mut w = watch();
        assert_eq!(
            w.verdict(at(140), at(140), word(100), d),
            Verdict::Kill(Hung::NoProgress)
        );
    }

    #[test]
    fn a_timely_wake_past_the_deadline_kills() {
        let mut w = watch();
        let d = silent_since(100);
        assert_eq!(w.verdict(at(139), at(139), word(100), d), Verdict::Wait);
        assert_eq!(
            w.verdict(at(140), at(140), word(100), d),
            Verdict::Kill(Hung::NoProgress)
        );
        // late by the poll's slack plus a recheck, no more: on time
        let mut w = watch();
        assert_eq!(
            w.verdict(at(146), at(140), word(100), d),
            Verdict::Kill(Hung::NoProgress)
        );
    }

    #[test]
    fn a_late_wake_grants_exactly_one_recheck() {
        let mut w = watch();
        let d = silent_since(100);
        assert_eq!(
            w.verdict(at(150), at(140), word(100), d),
            Verdict::Recheck {
                late_by: Duration::from_millis(10),
                for_: Duration::from_millis(5),
            }
        );
        assert!(w.rechecking());
        // the sentinel sleeps until the recheck ends, not until the (past) deadline
        assert_eq!(w.wake_at(at(150), d), at(155));
        // woken early (a signal, the watchdog): still waiting
        assert_eq!(w.verdict(at(152), at(155), word(100), d), Verdict::Wait);
    }

    #[test]
    fn progress_during_a_recheck_cancels_it() {
        let (mut w, _) = in_recheck();
        // the daemon turned at 151, as soon as the host ran again
        let turned = silent_since(151);
        assert_eq!(
            w.verdict(at(155), at(155), word(151), turned),
            Verdict::Wait
        );
        assert!(!w.rechecking());
        assert_eq!(w.wake_at(at(155), turned), before(185));
    }

    #[test]
    fn no_progress_through_a_recheck_kills() {
        let (mut w, d) = in_recheck();
        assert_eq!(
            w.verdict(at(155), at(155), word(100), d),
            Verdict::Kill(Hung::NoProgress)
        );
    }

    #[test]
    fn a_second_late_wake_does_not_grant_another_recheck() {
        let (mut w, d) = in_recheck();
        // the host stopped again through the recheck's end: the same silence, no
        // second recheck
        assert_eq!(
            w.verdict(at(170), at(155), word(100), d),
            Verdict::Kill(Hung::NoProgress)
        );
    }

    #[test]
    fn a_new_silence_after_a_cancelled_recheck_gets_its_own() {
        let (mut w, _) = in_recheck();
        // the daemon turned at 151 and the host paused again right after
        let d = silent_since(151);
        assert!(matches!(
            w.verdict(at(200), at(191), word(151), d),
            Verdict::Recheck { .. }
        ));
        assert_eq!(
            w.verdict(at(205), at(205), word(151), d),
            Verdict::Kill(Hung::NoProgress)
        );
    }

    #[test]
    fn a_lease_deadline_is_rechecked_like_a_hang() {
        let mut w = watch();
        // holding on a lease that ends at 102: killed at 112 unless it turns
        let d = Some(w.rule().deadline(at(100), Some(at(102))));
        assert_eq!(
            w.verdict(at(120), at(112), word(100), d),
            Verdict::Recheck {
                late_by: Duration::from_millis(8),
                for_: Duration::from_millis(5),
            }
        );
        assert_eq!(
            w.verdict(at(125), at(125), word(100), d),
            Verdict::Kill(Hung::LeaseOver)
        );
    }

    #[test]
    fn a_starting_daemon_is_looked_at_every_hang_timeout() {
        let mut w = watch();
        assert_eq!(w.wake_at(at(0), None), at(40));
        assert_eq!(w.verdict(at(500), at(40), 0, None), Verdict::Wait);
    }
}
