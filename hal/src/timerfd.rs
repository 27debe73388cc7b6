//! An absolute CLOCK_MONOTONIC timerfd: the event loop's only clock source. mio's poll
//! timeout rounds up to whole milliseconds (LAB-NOTES.md), so deadlines are armed here and
//! the poll waits forever.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sys::{HalError, cvt, cvt_size};

/// A nonblocking one-shot timer on CLOCK_MONOTONIC with absolute deadlines.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// Creates the timer, disarmed.
    pub fn new() -> Result<TimerFd, HalError> {
        // SAFETY: timerfd_create with constant flags; the result is checked and owned below.
        let raw = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })
        .map_err(|e| HalError::new("timerfd_create", "CLOCK_MONOTONIC", e))?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(TimerFd { fd })
    }

    /// Arms the timer to fire once at the absolute CLOCK_MONOTONIC time `deadline_ns`, or
    /// disarms it with `None`. A deadline in the past fires at once.
    pub fn set(&self, deadline_ns: Option<u64>) -> io::Result<()> {
        // A zero it_value disarms; an absolute deadline of 0 would too, so use 1 ns.
        let ns = deadline_ns.map_or(0, |d| d.max(1));
        // SAFETY: itimerspec is a plain C struct valid when zeroed.
        let mut spec: libc::itimerspec = unsafe { mem::zeroed() };
        spec.it_value = crate::sys::timespec(std::time::Duration::from_nanos(ns));
        // SAFETY: `fd` is a live timerfd; `spec` is a valid itimerspec the kernel only
        // reads; the old-value pointer may be null; the result is checked.
        cvt(unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Consumes the expiration count so the fd stops being readable. Returns how many
    /// expirations there were (0 if it had not fired).
    pub fn drain(&self) -> u64 {
        let mut count = 0u64;
        // SAFETY: `fd` is live; the buffer is the 8-byte u64 the timerfd ABI writes.
        let r = cvt_size(unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&raw mut count).cast(),
                mem::size_of::<u64>(),
            )
        });
        match r {
            Ok(8) => count,
            _ => 0,
        }
    }
}

impl AsFd for TimerFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
