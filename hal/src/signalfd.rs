//! Signals as readable events: TERM, INT, HUP and CHLD are blocked for normal delivery and
//! read from a nonblocking signalfd inside the event loop.

use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sys::{HalError, cvt, cvt_size};

/// The signals the daemon handles in its loop.
const SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD];

/// A nonblocking signalfd for [`SIGNALS`].
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

/// A signal the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: release and exit.
    Term,
    /// SIGINT: as TERM.
    Int,
    /// SIGHUP: reload.
    Hup,
    /// SIGCHLD: a child exited.
    Chld,
    /// Anything else (not expected: only the set above is routed here).
    Other(u32),
}

fn sigset() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the live sigset_t it is given; cannot fail.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    for s in SIGNALS {
        // SAFETY: `set` was initialised above; `s` is a valid signal number.
        unsafe { libc::sigaddset(set.as_mut_ptr(), s) };
    }
    // SAFETY: initialised by sigemptyset above.
    unsafe { set.assume_init() }
}

impl SignalFd {
    /// Blocks the handled signals for this thread and opens the signalfd. Call before any
    /// other thread exists so the mask is inherited everywhere.
    pub fn new() -> Result<SignalFd, HalError> {
        let set = sigset();
        // SAFETY: `set` is a valid sigset_t; the old-mask pointer may be null; checked.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if r != 0 {
            return Err(HalError::new(
                "pthread_sigmask",
                "signals",
                io::Error::from_raw_os_error(r),
            ));
        }
        // SAFETY: -1 asks for a new fd; `set` is valid; the result is checked and owned.
        let raw = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })
            .map_err(|e| HalError::new("signalfd", "signals", e))?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SignalFd { fd })
    }

    /// Reads one pending signal; `WouldBlock` when none is pending.
    pub fn read(&self) -> io::Result<Signal> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: `fd` is live; the buffer is one signalfd_siginfo (<linux/signalfd.h>),
        // the unit the kernel writes; the result is checked before use.
        let n =
            cvt_size(unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) })?;
        if n != size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // SAFETY: the kernel wrote a whole signalfd_siginfo (checked above).
        let info = unsafe { info.assume_init() };
        let signo = i32::try_from(info.ssi_signo).unwrap_or(-1);
        Ok(match signo {
            libc::SIGTERM => Signal::Term,
            libc::SIGINT => Signal::Int,
            libc::SIGHUP => Signal::Hup,
            libc::SIGCHLD => Signal::Chld,
            _ => Signal::Other(info.ssi_signo),
        })
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
