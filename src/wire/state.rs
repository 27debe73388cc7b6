//! The node-state block (DESIGN §3, §5): where the sender stands in membership and which
//! resource groups it may hold. It opens every heartbeat payload and is the whole payload
//! of a group-state frame (kind 5), which a node sends on every path the moment its
//! holdings change, so a gainer waiting for a release confirmation does not wait for the
//! next heartbeat.
//!
//! ```text
//! off size field
//!   0    8 view: the highest view number the sender has seen, proposed or acked
//!   8    8 installed: the number of the view the sender runs in
//!  16    8 agreed number: the newest view the sender proposed, acked or installed
//!  24    8 agreed members: that view's members (bit id-1); a member of the view whose
//!          number equals its own installed view keeps its lease (DESIGN §5)
//!  32    8 holds: bit g set while the sender may hold group g (acquiring, online,
//!          releasing, or stuck in error)
//!  40    8 failed: bit g set when group g failed on the sender and must go elsewhere
//!  48    8 online: bit g set while every resource of group g runs on the sender (a
//!          subset of holds; `status` and operator commands read where groups run)
//!  56    8 generation: bumped on every change of installed, agreed, holds, failed,
//!          online or lost (orders reports that overtook each other)
//!  64    8 lost: bit n set while the sender has lost network n (every adapter of it
//!          without carrier, or it hears no peer there while others hear each other);
//!          groups that need network n are placed elsewhere (DESIGN §4)
//!  72    8 maintenance epoch: odd while the cluster is in maintenance (nothing is
//!          started, stopped or monitored); each `maintenance on|off` moves it to the
//!          next odd or even number, and every node adopts the highest it hears
//!  80    8 offline: bit g set while the sender's installed view places group g offline
//!          (the operator's `offline`, or `fallover = never` after a failure); a
//!          coordinator that knows no placement of g (it restarted) keeps it offline
//!          when the member with the newest view says so
//!  88    8 race: the members (bit id-1) of the half view whose tie-breaker race the
//!          sender runs or ran (review S3: one racer per half, the view's lowest member);
//!          0 when it runs none
//!  96    8 race outcome: 0 running, 1 won, 2 lost (any other value rejects the block);
//!          the other members of that view take the outcome from this word
//! 104    8 placed: bit g set while the sender's installed view places group g on a
//!          node (or all of them, or waits for one): it ran, or was to run. A
//!          coordinator that knows no placement of g (it restarted) and finds it held by
//!          no member fails it over when the member with the newest view says so (its
//!          owner is not among the members: a restarted lowest id that left out, through
//!          a held cut, the owner of a group whose other node it is, waited for that
//!          group's home node for as long as the cut held)
//! 112    8 joining: the nodes (bit id-1) that came up at the sender less than a lease
//!          ago; the members of one view hold off a rejoining node together, each
//!          until the last of them has seen it up for a lease (DESIGN §5 "Joining nodes")
//! ```

/// Payload length.
pub const LEN: usize = 120;

/// [`StateRepr::race_outcome`]: the race is still running.
pub const RACE_RUNNING: u64 = 0;
/// [`StateRepr::race_outcome`]: the sender won the race (its half holds the tie-breaker).
pub const RACE_WON: u64 = 1;
/// [`StateRepr::race_outcome`]: the sender lost the race.
pub const RACE_LOST: u64 = 2;

/// Most resource groups a cluster may configure (one bit each in `holds`).
pub const MAX_GROUPS: usize = 64;

/// A node-state block as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateRepr {
    /// Highest view number seen, proposed or acked.
    pub view: u64,
    /// Number of the installed view.
    pub installed: u64,
    /// Number of the newest view agreed to.
    pub agreed_number: u64,
    /// Members of the newest view agreed to.
    pub agreed: u64,
    /// Groups the sender may hold.
    pub holds: u64,
    /// Groups that failed on the sender.
    pub failed: u64,
    /// Groups fully online on the sender.
    pub online: u64,
    /// Generation of `holds` and `failed`.
    pub generation: u64,
    /// Networks the sender lost (bit = network index).
    pub lost: u64,
    /// Maintenance epoch (odd: in maintenance).
    pub maintenance: u64,
    /// Groups the sender's installed view places offline.
    pub offline: u64,
    /// Members of the half view whose tie-breaker race the sender runs or ran (0: none).
    pub race: u64,
    /// [`RACE_RUNNING`], [`RACE_WON`] or [`RACE_LOST`].
    pub race_outcome: u64,
    /// Groups the sender's installed view places on a node or waits to place.
    pub placed: u64,
    /// Nodes that came up at the sender less than a lease ago.
    pub joining: u64,
}

/// Why a node-state block was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// Shorter than [`LEN`] (or, for a group-state frame, not exactly it).
    Length,
    /// A race outcome that is none of [`RACE_RUNNING`], [`RACE_WON`], [`RACE_LOST`].
    RaceOutcome,
}

impl StateRepr {
    /// Parses the first [`LEN`] bytes of `p`.
    pub fn parse(p: &[u8]) -> Result<StateRepr, StateError> {
        let p: &[u8; LEN] = p
            .get(..LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(StateError::Length)?;
        let word = |i: usize| {
            u64::from_be_bytes(p[8 * i..8 * i + 8].try_into().expect("invariant: 8 bytes"))
        };
        let race_outcome = word(12);
        if race_outcome > RACE_LOST {
            return Err(StateError::RaceOutcome);
        }
        Ok(StateRepr {
            view: word(0),
            installed: word(1),
            agreed_number: word(2),
            agreed: word(3),
            holds: word(4),
            failed: word(5),
            online: word(6),
            generation: word(7),
            lost: word(8),
            maintenance: word(9),
            offline: word(10),
            race: word(11),
            race_outcome,
            placed: word(13),
            joining: word(14),
        })
    }

    /// Parses a group-state payload, which is exactly one block.
    pub fn parse_exact(p: &[u8]) -> Result<StateRepr, StateError> {
        if p.len() != LEN {
            return Err(StateError::Length);
        }
        StateRepr::parse(p)
    }

    /// Writes the block into the first [`LEN`] bytes of `p`.
    ///
    /// # Panics
    /// If `p` is shorter than [`LEN`] (a caller bug).
    pub fn emit(&self, p: &mut [u8]) {
        let words = [
            self.view,
            self.installed,
            self.agreed_number,
            self.agreed,
            self.holds,
            self.failed,
            self.online,
            self.generation,
            self.lost,
            self.maintenance,
            self.offline,
            self.race,
            self.race_outcome,
            self.placed,
            self.joining,
        ];
        for (chunk, w) in p[..LEN].chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_errors() {
        let s = StateRepr {
            view: 1,
            installed: 2,
            agreed_number: 3,
            agreed: 4,
            holds: 5,
            failed: 6,
            online: 7,
            generation: 8,
            lost: 9,
            maintenance: 10,
            offline: 11,
            race: 12,
            race_outcome: RACE_LOST,
            placed: 14,
            joining: 15,
        };
        let mut p = [0xa5u8; LEN];
        s.emit(&mut p);
        for i in 0..12 {
            let mut want = [0u8; 8];
            want[7] = u8::try_from(i + 1).unwrap();
            assert_eq!(p[8 * i..8 * i + 8], want, "word {i}");
        }
        assert_eq!(StateRepr::parse(&p), Ok(s));
        assert_eq!(StateRepr::parse_exact(&p), Ok(s));
        assert_eq!(p[96..104], [0, 0, 0, 0, 0, 0, 0, 2], "race outcome");
        assert_eq!(p[104..112], [0, 0, 0, 0, 0, 0, 0, 14], "placed");
        assert_eq!(p[112..120], [0, 0, 0, 0, 0, 0, 0, 15], "joining");
        assert_eq!(StateRepr::parse(&p[..LEN - 1]), Err(StateError::Length));
        assert_eq!(
            StateRepr::parse_exact(&[0u8; LEN + 1]),
            Err(StateError::Length)
        );
        p[103] = 3;
        assert_eq!(StateRepr::parse(&p), Err(StateError::RaceOutcome));
    }
}
