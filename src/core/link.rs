//! One (peer, path) pair: its up/down state, replay window and quality statistics.

use core::time::Duration;

use super::time::Instant;

/// State of a (peer, path) link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing valid ever arrived on it.
    Never,
    /// A valid frame arrived within the path timeout.
    Up,
    /// Silent for longer than the path timeout.
    Down,
}

impl LinkState {
    /// Status name.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Never => "never",
            LinkState::Up => "up",
            LinkState::Down => "down",
        }
    }
}

/// Width of the replay window: a frame up to this many sequence numbers older than the
/// newest accepted one is still accepted once (reordering); anything older is a replay.
pub const REPLAY_WINDOW: u32 = 64;

/// Anti-replay sliding window over 32-bit wrapping sequence numbers (the IPsec scheme,
/// RFC 4303 §3.4.3, with RFC 1982 serial-number comparison).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest accepted sequence number; `None` before the first frame.
    top: Option<u32>,
    /// Bit i set: `top - i` was accepted.
    seen: u64,
}

/// Outcome of offering a sequence number to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// New and ahead of everything: `gap` numbers were skipped (lost or still in flight).
    Ahead {
        /// Skipped numbers.
        gap: u32,
    },
    /// Inside the window and not seen before: a late (reordered) frame.
    Late,
    /// Seen before, or too old to tell.
    Replay,
}

impl ReplayWindow {
    /// Classifies `seq` without changing anything.
    pub fn check(&self, seq: u32) -> SeqCheck {
        let Some(top) = self.top else {
            return SeqCheck::Ahead { gap: 0 };
        };
        let ahead = seq.wrapping_sub(top);
        if ahead != 0 && ahead < 1 << 31 {
            return SeqCheck::Ahead { gap: ahead - 1 };
        }
        let behind = top.wrapping_sub(seq);
        if behind >= REPLAY_WINDOW || self.seen & (1u64 << behind) != 0 {
            SeqCheck::Replay
        } else {
            SeqCheck::Late
        }
    }

    /// Records `seq` as accepted. Call only after [`Self::check`] said it was not a replay.
    ///
    /// # Panics
    /// If `seq` is a replay (a caller bug).
    pub fn accept(&mut self, seq: u32) {
        match self.check(seq) {
            SeqCheck::Ahead { .. } => {
                let shift = self.top.map_or(REPLAY_WINDOW, |top| seq.wrapping_sub(top));
                self.seen = if shift >= REPLAY_WINDOW {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.top = Some(seq);
            }
            SeqCheck::Late => {
                let top = self.top.expect("invariant: Late implies a top");
                self.seen |= 1u64 << top.wrapping_sub(seq);
            }
            SeqCheck::Replay => panic!("accept of replayed seq {seq} (top {:?})", self.top),
        }
    }
}

/// One (peer, path) link.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Up, down or never heard.
    pub state: LinkState,
    /// Kernel arrival time of the last valid frame.
    pub heard_at: Option<Instant>,
    /// Start of the current silence for the timeout: `heard_at`, pushed later by local
    /// pauses (DESIGN §4). The link is down at `silence_from + timeout`.
    pub silence_from: Instant,
    /// When it went down.
    pub down_at: Option<Instant>,
    /// Replay protection for the peer's current incarnation.
    pub replay: ReplayWindow,
    /// Whether the peer's last heartbeat on this path said it hears us.
    pub peer_hears_us: Option<bool>,
    /// Valid frames accepted.
    pub received: u64,
    /// Sequence numbers skipped and never seen late.
    pub lost: u64,
    /// Last round-trip time measured from an echo.
    pub rtt: Option<Duration>,
    /// Interarrival jitter (RFC 3550 §6.4.1 estimator), ns.
    pub jitter_ns: u64,
    /// Last (arrival − sender timestamp), ns, for the jitter estimator.
    pub last_transit_ns: Option<i128>,
    /// The peer's last sender timestamp and when it arrived, echoed back for its RTT.
    pub echo_src: Option<(u64, Instant)>,
}

impl Link {
    /// A link never heard, silent since `now`.
    pub fn new(now: Instant) -> Link {
        Link {
            state: LinkState::Never,
            heard_at: None,
            silence_from: now,
            down_at: None,
            replay: ReplayWindow::default(),
            peer_hears_us: None,
            received: 0,
            lost: 0,
            rtt: None,
            jitter_ns: 0,
            last_transit_ns: None,
            echo_src: None,
        }
    }

    /// Records a frame's sequence number and the loss statistics.
    pub fn record_seq(&mut self, seq: u32) {
        match self.replay.check(seq) {
            SeqCheck::Ahead { gap } => self.lost += u64::from(gap),
            SeqCheck::Late => self.lost = self.lost.saturating_sub(1),
            SeqCheck::Replay => unreachable!("record_seq of replay {seq}"),
        }
        self.replay.accept(seq);
        self.received += 1;
    }

    /// Updates the jitter estimate with one frame's transit (arrival − sender stamp).
    pub fn record_transit(&mut self, arrival: Instant, sender_ns: u64) {
        let transit = i128::from(arrival.as_nanos()) - i128::from(sender_ns);
        if let Some(prev) = self.last_transit_ns {
            let d = (transit - prev).unsigned_abs();
            let j = u128::from(self.jitter_ns);
            // J += (|D| - J) / 16, in integers.
            let next = if d >= j {
                j + (d - j) / 16
            } else {
                j - (j - d) / 16
            };
            self.jitter_ns = u64::try_from(next).unwrap_or(u64::MAX);
        }
        self.last_transit_ns = Some(transit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_new_rejects_seen_and_old() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check(10), SeqCheck::Ahead { gap: 0 });
        w.accept(10);
        assert_eq!(w.check(10), SeqCheck::Replay);
        assert_eq!(w.check(13), SeqCheck::Ahead { gap: 2 });
        w.accept(13);
        assert_eq!(w.check(11), SeqCheck::Late);
        w.accept(11);
        assert_eq!(w.check(11), SeqCheck::Replay);
        assert_eq!(w.check(12), SeqCheck::Late);
        w.accept(100);
        assert_eq!(w.check(36), SeqCheck::Replay, "older than the window");
        assert_eq!(w.check(37), SeqCheck::Late, "oldest inside the window");
    }

    #[test]
    fn window_wraps() {
        let mut w = ReplayWindow::default();
        w.accept(u32::MAX - 1);
        assert_eq!(w.check(1), SeqCheck::Ahead { gap: 2 });
        w.accept(1);
        assert_eq!(w.check(u32::MAX), SeqCheck::Late);
        assert_eq!(w.check(u32::MAX - 1), SeqCheck::Replay);
    }

    #[test]
    fn loss_counts_gaps_minus_late_arrivals() {
        let mut l = Link::new(Instant::from_nanos(0));
        for s in [1, 2, 5, 4] {
            l.record_seq(s);
        }
        assert_eq!(l.received, 4);
        assert_eq!(l.lost, 1, "3 never arrived, 4 arrived late");
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut l = Link::new(Instant::from_nanos(0));
        l.record_transit(Instant::from_nanos(1000), 0);
        l.record_transit(Instant::from_nanos(2160), 1000); // D = 160
        assert_eq!(l.jitter_ns, 10);
        l.record_transit(Instant::from_nanos(3000), 2000); // D = 160 again
        assert_eq!(l.jitter_ns, 19);
    }
}
