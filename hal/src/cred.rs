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

/// Largest buffer offered to the group database for one entry (a group with thousands of
/// members needs more than the first guess).
const GROUP_BUF_MAX: usize = 1 << 20;

/// One lookup in the group database (`getgrnam_r` / `getgrgid_r` behind `call`): the
/// entry's gid and name, `None` when there is no such group.
fn group_lookup(
    call: &dyn Fn(&mut libc::group, &mut [libc::c_char], &mut *mut libc::group) -> libc::c_int,
) -> io::Result<Option<(u32, String)>> {
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: libc::group is a plain C struct (pointers and an integer) valid when
        // zeroed; it is only read after the call filled it.
        let mut grp: libc::group = unsafe { mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = call(&mut grp, &mut buf, &mut result);
        if rc == libc::ERANGE && buf.len() < GROUP_BUF_MAX {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: on success gr_name points to a NUL-terminated string inside `buf`,
        // which is alive and unchanged here.
        let name = unsafe { std::ffi::CStr::from_ptr(grp.gr_name) };
        return Ok(Some((grp.gr_gid, name.to_string_lossy().into_owned())));
    }
}

/// The id of group `name` in the group database (`/etc/group`, or NSS with glibc); a
/// number is taken as the id itself. `None`: no such group.
pub fn group_id(name: &str) -> io::Result<Option<u32>> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Some(gid));
    }
    let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    let found = group_lookup(&|grp, buf, result| {
        // SAFETY: `cname` is NUL-terminated and alive; `grp`, `buf` (pointer and length
        // of one live slice) and `result` are writable for the call; the return value is
        // checked by the caller.
        unsafe { libc::getgrnam_r(cname.as_ptr(), grp, buf.as_mut_ptr(), buf.len(), result) }
    })?;
    Ok(found.map(|(gid, _)| gid))
}

/// The name of group `gid` in the group database; `None`: no such group.
pub fn group_name(gid: u32) -> io::Result<Option<String>> {
    let found = group_lookup(&|grp, buf, result| {
        // SAFETY: `grp`, `buf` (pointer and length of one live slice) and `result` are
        // writable for the call; the return value is checked by the caller.
        unsafe { libc::getgrgid_r(gid, grp, buf.as_mut_ptr(), buf.len(), result) }
    })?;
    Ok(found.map(|(_, name)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_name_and_number() {
        assert_eq!(group_id("root").unwrap(), Some(0));
        assert_eq!(group_name(0).unwrap().as_deref(), Some("root"));
        assert_eq!(group_id("4711").unwrap(), Some(4711));
        assert_eq!(group_id("no-such-group-hw").unwrap(), None);
        assert!(group_id("a\0b").is_err());
    }
}
