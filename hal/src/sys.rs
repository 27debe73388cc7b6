//! The one syscall helper (`cvt`), the typed error, and the `recvmsg` with kernel receive
//! timestamps shared by every socket kind.

use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd};

/// An OS operation that failed, with what was being done and on which device.
#[derive(Debug, thiserror::Error)]
#[error("{op} on {dev}: {source}")]
pub struct HalError {
    /// The operation, e.g. `"bind AF_PACKET"`.
    pub op: &'static str,
    /// The device or address it was applied to.
    pub dev: String,
    /// The kernel's answer.
    #[source]
    pub source: io::Error,
}

impl HalError {
    pub(crate) fn new(op: &'static str, dev: impl Into<String>, source: io::Error) -> Self {
        HalError {
            op,
            dev: dev.into(),
            source,
        }
    }
}

/// Maps the C convention (-1 and errno) to `io::Result`.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `cvt` for calls returning `ssize_t`.
pub(crate) fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(usize::try_from(ret).expect("invariant: non-negative ssize_t fits usize"))
    }
}

/// A C `timespec` for `d`: a relative wait, or an absolute clock time given as the
/// duration since the clock's zero. Seconds beyond `time_t` saturate.
pub(crate) fn timespec(d: std::time::Duration) -> libc::timespec {
    // SAFETY: timespec is a plain C struct valid when zeroed (musl has padding fields).
    let mut ts: libc::timespec = unsafe { mem::zeroed() };
    // libc marks musl's time_t deprecated (its width changed in musl 1.2); try_from and
    // MAX follow whatever width it has.
    #[allow(deprecated)]
    let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
    ts.tv_sec = secs;
    // (u64 first: c_long is i32 on 32-bit targets, so no conversion is infallible on all.)
    ts.tv_nsec = libc::c_long::try_from(u64::from(d.subsec_nanos())).expect("invariant: < 1e9");
    ts
}

/// Waits until `fd` is readable or `limit` passed (`ppoll(2)`: to the nanosecond, where
/// poll(2) rounds to milliseconds and `SO_RCVTIMEO` to scheduler ticks). Whether it is
/// readable; a signal ends the wait early (`false`).
pub fn wait_readable(fd: BorrowedFd<'_>, limit: std::time::Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = timespec(limit);
    // SAFETY: one live pollfd on the stack for the length 1 given, a live timespec the
    // kernel only reads, no signal mask; the fd is borrowed for the whole call.
    match cvt(unsafe { libc::ppoll(&raw mut p, 1, &raw const ts, std::ptr::null()) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets an integer-valued socket option.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    setsockopt(fd, level, name, &value)
}

/// Sets a socket option whose value is a plain C struct `T`.
pub(crate) fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(mem::size_of::<T>()).expect("invariant: option size");
    // SAFETY: `fd` is a live descriptor borrowed for this call; the pointer and length
    // describe `value`, a live `T` that the kernel only reads; the return value is checked.
    cvt(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) })?;
    Ok(())
}

/// What `recv_timestamped` learnt about one datagram besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct RxMeta {
    /// Bytes written into the caller's buffer.
    pub len: usize,
    /// The datagram was longer than the buffer and was cut (MSG_TRUNC).
    pub truncated: bool,
    /// Kernel receive time, CLOCK_REALTIME ns (SO_TIMESTAMPNS), when the kernel gave one.
    pub rx_realtime_ns: Option<u64>,
}

/// Room for one `SCM_TIMESTAMPNS` control message (a `timespec`), 8-byte aligned as
/// `cmsghdr` requires.
const CMSG_WORDS: usize = 8;

/// `recvmsg` into `buf`, writing the sender's address into `addr`, and pulling the kernel
/// receive timestamp out of the control data. Never blocks on a nonblocking socket.
pub(crate) fn recv_timestamped(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    addr: &mut MaybeUninit<libc::sockaddr_storage>,
) -> io::Result<RxMeta> {
    let mut cmsg = [0u64; CMSG_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero bytes are a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = libc::socklen_t::try_from(mem::size_of::<libc::sockaddr_storage>())
        .expect("invariant: sockaddr_storage size");
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    // `size_t` in glibc, `socklen_t` in musl.
    #[allow(clippy::useless_conversion)]
    let controllen = mem::size_of_val(&cmsg)
        .try_into()
        .expect("invariant: a small control buffer");
    msg.msg_controllen = controllen;
    // SAFETY: `fd` is live for the call; `msg` points at `iov` (one live, writable slice
    // `buf`), at `addr` (sockaddr_storage, large enough for any family) and at `cmsg`
    // (aligned, its true length given); all outlive the call; the result is checked.
    let n = cvt_size(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) })?;
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0 || n > buf.len();
    Ok(RxMeta {
        len: n.min(buf.len()),
        truncated,
        rx_realtime_ns: timestamp_of(&msg),
    })
}

/// Walks the control messages `recvmsg` filled in and returns the SCM_TIMESTAMPNS value.
fn timestamp_of(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` was filled by a successful recvmsg; CMSG_FIRSTHDR only reads its
    // control pointer and length, which describe a live buffer of the caller.
    let mut cur = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cur.is_null() {
        // SAFETY: `cur` is non-null and was produced by CMSG_FIRSTHDR/CMSG_NXTHDR, which
        // only return headers lying wholly inside the control buffer.
        let hdr = unsafe { &*cur };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: for SCM_TIMESTAMPNS the kernel stores one `struct timespec`
            // (<linux/socket.h>, <asm/socket.h>) as the data of this header; CMSG_DATA
            // points inside the buffer; read_unaligned copes with any alignment.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cur).cast()) };
            let secs = u64::try_from(ts.tv_sec).ok()?;
            let nanos = u64::try_from(ts.tv_nsec).ok()?;
            return Some(secs * 1_000_000_000 + nanos);
        }
        // SAFETY: as above; CMSG_NXTHDR returns null past the end of the buffer.
        cur = unsafe { libc::CMSG_NXTHDR(msg, cur) };
    }
    None
}

/// Turns on SO_TIMESTAMPNS so every datagram carries its kernel arrival time.
pub(crate) fn enable_rx_timestamps(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Sets O_NONBLOCK on `fd`, keeping its other status flags.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFL) on a borrowed, open descriptor reads its status flags.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: F_SETFL with the flags just read plus O_NONBLOCK changes only that flag.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// `_IOC(dir, ty, nr, size)` with the direction bits of the architecture (`read`: the
/// kernel writes to the argument, `write`: it reads it).
pub(crate) const fn ioc(read: bool, write: bool, ty: u8, nr: u32, size: u32) -> u32 {
    #[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
    const BITS: (u32, u32) = (2 << 29, 4 << 29);
    #[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64")))]
    const BITS: (u32, u32) = (2 << 30, 1 << 30);
    let mut dir = 0;
    if read {
        dir |= BITS.0;
    }
    if write {
        dir |= BITS.1;
    }
    dir | (size << 16) | ((ty as u32) << 8) | nr
}

/// ioctl(2) `request` on `fd` with a pointer argument.
pub(crate) fn ioctl_arg<T>(
    fd: &impl std::os::fd::AsRawFd,
    request: u32,
    arg: *mut T,
) -> io::Result<libc::c_int> {
    // The request argument is `c_ulong` in glibc and `c_int` in musl.
    #[allow(
        clippy::unnecessary_cast,
        trivial_numeric_casts,
        clippy::cast_possible_wrap
    )]
    let request = request as _;
    // SAFETY: `arg` points at a live, initialised `repr(C)` value of the size encoded in
    // `request`, owned by the caller's frame for the duration of the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    #[test]
    fn timespec_splits_seconds_and_nanoseconds() {
        let ts = timespec(Duration::new(3, 999_999_999));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (3, 999_999_999));
        let ts = timespec(Duration::from_nanos(1));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (0, 1));
    }

    #[test]
    fn wait_readable_times_out_then_sees_data() {
        let (mut a, b) = UnixStream::pair().expect("socketpair");
        let start = Instant::now();
        assert!(!wait_readable(b.as_fd(), Duration::from_millis(5)).expect("ppoll"));
        assert!(
            start.elapsed() >= Duration::from_millis(5),
            "waited the limit out"
        );
        a.write_all(b"x").expect("write");
        assert!(wait_readable(b.as_fd(), Duration::from_secs(5)).expect("ppoll"));
    }
}
