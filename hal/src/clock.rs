//! Clocks. CLOCK_MONOTONIC is the cluster's time base (shared by every network namespace
//! on one host, which the lab relies on); CLOCK_REALTIME only converts kernel receive
//! timestamps, which SO_TIMESTAMPNS reports on the realtime clock.

use std::mem::MaybeUninit;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: `ts` is a live, writable timespec; clock ids passed in are constants the
    // kernel always supports, so the call cannot fail; the result is asserted anyway.
    let ret = unsafe { libc::clock_gettime(clock, ts.as_mut_ptr()) };
    assert_eq!(ret, 0, "clock_gettime({clock}) failed");
    // SAFETY: clock_gettime returned 0, so it initialised `ts`.
    let ts = unsafe { ts.assume_init() };
    let secs = u64::try_from(ts.tv_sec).expect("invariant: clock is not before the epoch");
    let nanos = u64::try_from(ts.tv_nsec).expect("invariant: tv_nsec in 0..1e9");
    secs * 1_000_000_000 + nanos
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}
