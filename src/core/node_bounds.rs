//! What a peer can make this node believe (issue 21). Every counter a frame carries is
//! checked against what this node already knows before the frame changes anything; a
//! frame that fails is dropped as [`DropReason::Implausible`] (counted, and logged by the
//! daemon like every drop).
//!
//! - **View numbers** (a view message's, and the highest seen, installed and agreed
//!   views of a state block) grow by one per proposal: at most [`VIEW_JUMP_MAX`] above the highest this
//!   node has seen, and never above [`VIEW_MAX`]. A node that has seen no number yet (it
//!   just started) takes any number up to [`VIEW_MAX`]. One forged frame with a view
//!   number near `u64::MAX` used to make the next coordinator overflow (debug builds
//!   panicked; release builds wrapped to 0, which every member refuses for ever).
//! - **State generations** grow by one per change of the sender's state block: at most
//!   [`GENERATION_JUMP_MAX`] above the one held from that incarnation (a forged huge one
//!   would make every genuine later report look old).
//! - **Restart stamps**: a new incarnation of a peer that is up must be stamped later
//!   than the current one's newest frame (`Node::classify_incarnation`), but not later
//!   than that frame plus the time since it arrived plus [`RESTART_SLACK`] (both clocks
//!   are monotonic and run at about the same rate). A stamp of `u64::MAX` used to pass
//!   as a restart and make the genuine incarnation "past" until its node restarted.
//!
//! A keyless cluster takes frames from anyone on the segment; these bounds limit what
//! one frame can do, not what a stream of forged frames can (DESIGN §3: use a key).

use core::time::Duration;

use super::{Body, Node, Valid};
use crate::core::event::DropReason;
use crate::core::membership::VIEW_MAX;
use crate::core::time::Instant;

/// Largest step above the highest view number this node has seen that a frame may carry.
pub(super) const VIEW_JUMP_MAX: u64 = 1 << 20;

/// Largest step of a peer's state generation within one incarnation.
pub(super) const GENERATION_JUMP_MAX: u64 = 1 << 20;

/// How much later than the current incarnation's newest frame (plus the time since it
/// arrived) a restarted peer's first frame may be stamped.
pub(super) const RESTART_SLACK: Duration = Duration::from_secs(1);

impl Node {
    /// Whether valid frame `v` stays within what its sender can plausibly say, given what
    /// this node knows at `now`.
    pub(super) fn plausible(&self, now: Instant, v: &Valid<'_>) -> Result<(), DropReason> {
        let p = &self.peers[v.peer];
        let current = p.incarnation == Some(v.header.incarnation);
        if !current && p.incarnation.is_some() {
            // A restart claim: stamped no later than the clocks allow.
            if let Some(arrived) = p.last_heard() {
                let elapsed =
                    u64::try_from(now.saturating_since(arrived).as_nanos()).unwrap_or(u64::MAX);
                let slack = u64::try_from(RESTART_SLACK.as_nanos()).unwrap_or(u64::MAX);
                let limit = p
                    .newest_sent_ns
                    .saturating_add(elapsed)
                    .saturating_add(slack);
                if p.newest_sent_ns != 0 && v.header.timestamp_ns > limit {
                    return Err(DropReason::Implausible);
                }
            }
        }
        let view_ok = |n: u64| self.plausible_view(n);
        let ok = match v.body {
            Body::View(_, view) => view_ok(view.number),
            Body::Heartbeat(hb) => {
                view_ok(hb.state.view)
                    && view_ok(hb.state.installed)
                    && view_ok(hb.state.agreed_number)
                    && (!current || self.plausible_generation(v.peer, hb.state.generation))
            }
            Body::State(s) => {
                view_ok(s.view)
                    && view_ok(s.installed)
                    && view_ok(s.agreed_number)
                    && (!current || self.plausible_generation(v.peer, s.generation))
            }
            Body::Compact(c) => !current || self.plausible_generation(v.peer, c.generation),
            Body::Offer(_) | Body::Command(..) | Body::Notice(_) => true,
        };
        if ok {
            Ok(())
        } else {
            Err(DropReason::Implausible)
        }
    }

    /// Whether view number `n` is one a peer may report.
    fn plausible_view(&self, n: u64) -> bool {
        let known = self.membership.highest_number();
        n <= VIEW_MAX && (known == 0 || n <= known.saturating_add(VIEW_JUMP_MAX))
    }

    /// Whether `generation` may follow the report held from peer `idx`'s incarnation.
    fn plausible_generation(&self, idx: usize, generation: u64) -> bool {
        self.peers[idx]
            .report
            .is_none_or(|r| generation <= r.generation.saturating_add(GENERATION_JUMP_MAX))
    }
}
