//! Signals to processes and process groups, and pidfds for children.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

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

/// Sends signal `sig` to every process of process group `pgid`.
pub fn signal_group(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        // 0 is our own group and 1 would be init's: never what a caller of this means.
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: kill(2) takes plain integers; -pgid (pgid > 1) addresses exactly that
    // process group; checked.
    cvt(unsafe { libc::kill(-pgid, sig) })?;
    Ok(())
}

/// A pidfd for process `pid` (Linux 5.3+): readable once the process has exited, so the
/// event loop learns of a child's exit without blocking or racing on SIGCHLD.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if pid <= 0 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: pidfd_open(2) takes a pid and flags (0) and returns a new descriptor or -1;
    // the result is checked and owned at once below.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: `fd` is a fresh descriptor returned by the kernel that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
