//! Signals to processes by PID.

use std::io;

use crate::sys::cvt;

/// Sends signal `sig` to process `pid`.
pub fn signal(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        // kill(0 or negative) addresses process groups; never what a caller of this means.
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: kill(2) takes plain integers; pid > 0 addresses exactly one process; checked.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// SIGKILL.
pub const SIGKILL: i32 = libc::SIGKILL;
