//! Credentials: who is on the other end of a Unix socket (SO_PEERCRED), and who we are.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::sys::cvt;

/// The process at the other end of a Unix stream socket, as the kernel recorded it at
/// connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// Reads SO_PEERCRED of a connected Unix socket.
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    // SAFETY: ucred is a plain C struct valid when zeroed.
    let mut cred: libc::ucred = unsafe { mem::zeroed() };
    let mut len = libc::socklen_t::try_from(mem::size_of::<libc::ucred>()).expect("invariant");
    // SAFETY: `fd` is live; pointer and length describe `cred`, writable for the call;
    // the result is checked and the length verified below.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    })?;
    if usize::try_from(len).ok() != Some(mem::size_of::<libc::ucred>()) {
        return Err(io::ErrorKind::InvalidData.into());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}
