//! View churn: how often this node installs a new view. Under a fault held steady the
//! membership must settle (issue 19: "view churn bounded"); `status` shows the rate so an
//! operator sees a flapping view before the groups do.
//!
//! Counted in fixed buckets, no allocation: the rate is over the last full bucket and the
//! current one.

use core::time::Duration;

use super::time::Instant;

/// One bucket.
pub const BUCKET: Duration = Duration::from_secs(10);

/// View changes: the total, and per bucket.
#[derive(Debug, Clone, Copy)]
pub struct Churn {
    total: u64,
    start: Instant,
    current: u32,
    last: Option<u32>,
}

impl Churn {
    /// Nothing counted yet; the first bucket starts `now`.
    pub fn new(now: Instant) -> Churn {
        Churn {
            total: 0,
            start: now,
            current: 0,
            last: None,
        }
    }

    /// A view was installed at `now`.
    pub fn record(&mut self, now: Instant) {
        *self = self.rolled(now);
        self.total += 1;
        self.current = self.current.saturating_add(1);
    }

    /// View changes since the start.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// View changes per second over the last full bucket and the current one (over the
    /// current one alone before a bucket has passed), and the span that covers.
    pub fn per_second(&self, now: Instant) -> (f64, Duration) {
        let c = self.rolled(now);
        let into = now.saturating_since(c.start);
        let (count, span) = match c.last {
            Some(last) => (u64::from(last) + u64::from(c.current), BUCKET + into),
            None => (u64::from(c.current), into),
        };
        if span.is_zero() {
            return (0.0, span);
        }
        (count as f64 / span.as_secs_f64(), span)
    }

    /// This count with the buckets moved on to `now`.
    fn rolled(&self, now: Instant) -> Churn {
        let elapsed = now.saturating_since(self.start);
        let k = elapsed.as_nanos() / BUCKET.as_nanos();
        if k == 0 {
            return *self;
        }
        let k32 = u32::try_from(k).unwrap_or(u32::MAX);
        Churn {
            total: self.total,
            start: self.start.saturating_add(BUCKET.saturating_mul(k32)),
            current: 0,
            last: Some(if k == 1 { self.current } else { 0 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn the_rate_covers_the_last_full_bucket_and_the_current_one() {
        let mut c = Churn::new(at(0));
        assert_eq!(c.per_second(at(0)).0, 0.0, "nothing yet, no span");
        for ms in [100, 200, 300, 400, 500] {
            c.record(at(ms));
        }
        let (rate, span) = c.per_second(at(5_000));
        assert_eq!(
            (rate, span),
            (1.0, Duration::from_secs(5)),
            "5 in the first 5 s"
        );
        c.record(at(12_000));
        let (rate, span) = c.per_second(at(15_000));
        assert_eq!(span, Duration::from_secs(15));
        assert!((rate - 6.0 / 15.0).abs() < 1e-9, "{rate}");
        // Quiet for two buckets: the old changes have aged out, the total stays.
        let (rate, _) = c.per_second(at(40_000));
        assert_eq!(rate, 0.0);
        assert_eq!(c.total(), 6);
    }
}
