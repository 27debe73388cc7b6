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

use std::time::Duration;

use super::Instant;

/// The lease grace is the lease divided by this.
pub const LEASE_GRACE_DIV: u32 = 8;

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
}
