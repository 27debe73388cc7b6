//! rtnetlink (NETLINK_ROUTE): adding and removing service addresses, and setting a link
//! up or down (the lab's "pull the cable").
//!
//! Written by hand rather than with the `rtnetlink` crate, which needs an async runtime:
//! two fixed-size messages, built on the stack. The kernel handles an rtnetlink request
//! inside `sendto` (under the RTNL lock) and queues the acknowledgement before the call
//! returns, so reading it with `MSG_DONTWAIT` never waits; a missing ack is an error.

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::{HalError, cvt, cvt_size};

pub(crate) const NLMSG_HDR: usize = 16;
const IFADDRMSG: usize = 8;
const NLMSG_ERROR: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Address flag: skip duplicate address detection (an IPv6 service address must be
/// usable, and announced, at once — as keepalived does).
const IFA_F_NODAD: u8 = 0x02;
/// Largest request: header, ifaddrmsg, two 16-byte address attributes.
const REQUEST_MAX: usize = NLMSG_HDR + IFADDRMSG + 2 * (4 + 16);

/// A NETLINK_ROUTE socket for address changes.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

/// Which address operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Del,
}

impl Rtnl {
    /// Opens the socket (nonblocking, no multicast groups: only our own acks arrive).
    pub fn open() -> Result<Rtnl, HalError> {
        let fd =
            route_socket().map_err(|e| HalError::new("socket NETLINK_ROUTE", "rtnetlink", e))?;
        Ok(Rtnl { fd, seq: 1 })
    }

    /// Adds `addr/prefix` to interface `ifindex`. An address already there is
    /// `ErrorKind::AlreadyExists`.
    pub fn add_address(&mut self, ifindex: i32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        self.request(Op::Add, ifindex, addr, prefix)
    }

    /// Removes `addr/prefix` from interface `ifindex`. An address not there is
    /// `ErrorKind::AddrNotAvailable` (EADDRNOTAVAIL) or `NotFound`.
    pub fn del_address(&mut self, ifindex: i32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        self.request(Op::Del, ifindex, addr, prefix)
    }

    /// Sets interface `ifindex` administratively up or down (RTM_NEWLINK, IFF_UP).
    pub fn set_link(&mut self, ifindex: i32, up: bool) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut buf = [0u8; REQUEST_MAX];
        let len = build_link_request(&mut buf, self.seq, ifindex, up);
        self.transact(&buf[..len])
    }

    fn request(&mut self, op: Op, ifindex: i32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut buf = [0u8; REQUEST_MAX];
        let len = build_addr_request(&mut buf, op, self.seq, ifindex, addr, prefix);
        self.transact(&buf[..len])
    }

    /// Sends one request and reads its acknowledgement.
    fn transact(&mut self, req: &[u8]) -> io::Result<()> {
        let (sa, salen) = kernel_addr();
        // SAFETY: `fd` is live; `req` is an initialised slice; `sa` is a sockaddr_nl on
        // the stack with its true size, read by the kernel only.
        cvt_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&raw const sa).cast(),
                salen,
            )
        })?;
        let mut ack = [0u8; 256];
        // SAFETY: `fd` is live; `ack` is a writable buffer of the given length.
        let n = cvt_size(unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                ack.as_mut_ptr().cast(),
                ack.len(),
                libc::MSG_DONTWAIT,
            )
        })?;
        parse_ack(&ack[..n], self.seq)
    }
}

/// A nonblocking NETLINK_ROUTE socket.
pub(crate) fn route_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; the result is checked and
    // becomes an OwnedFd immediately below.
    let raw = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_ROUTE,
        )
    })?;
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Asks the kernel for a dump of every object of `kind` (RTM_GETLINK, RTM_GETADDR);
/// `body_len` is the size of the request's family header (ifinfomsg, ifaddrmsg), zeroed:
/// every family, every interface.
pub(crate) fn send_dump(fd: &OwnedFd, kind: u16, body_len: usize) -> io::Result<()> {
    let mut req = [0u8; NLMSG_HDR + 16];
    let len = NLMSG_HDR + body_len.min(16);
    let flags = u16::try_from(libc::NLM_F_REQUEST | libc::NLM_F_DUMP).expect("invariant: fits");
    req[0..4].copy_from_slice(&u32::try_from(len).expect("invariant: small").to_ne_bytes());
    req[4..6].copy_from_slice(&kind.to_ne_bytes());
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    let (to, salen) = kernel_addr();
    // SAFETY: `fd` is live; `req` and `to` are initialised and read only; `len` is
    // within `req`.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr().cast(),
            len,
            0,
            (&raw const to).cast(),
            salen,
        )
    })
    .map(|_| ())
}

/// A zeroed `sockaddr_nl` of family AF_NETLINK (the kernel as the peer), and its size.
pub(crate) fn kernel_addr() -> (libc::sockaddr_nl, libc::socklen_t) {
    let mut sa = zeroed_nl();
    sa.nl_family = u16::try_from(libc::AF_NETLINK).expect("invariant: fits u16");
    let len =
        libc::socklen_t::try_from(mem::size_of::<libc::sockaddr_nl>()).expect("invariant: fits");
    (sa, len)
}

fn zeroed_nl() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is a plain C struct (<linux/netlink.h>) valid when zeroed.
    unsafe { mem::zeroed() }
}

/// Writes an RTM_NEWADDR / RTM_DELADDR request into `buf`; returns its length.
fn build_addr_request(
    buf: &mut [u8; REQUEST_MAX],
    op: Op,
    seq: u32,
    ifindex: i32,
    addr: IpAddr,
    prefix: u8,
) -> usize {
    let (family, bytes, alen): (u8, [u8; 16], usize) = match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (u8::try_from(libc::AF_INET).expect("invariant: fits"), b, 4)
        }
        IpAddr::V6(a) => (
            u8::try_from(libc::AF_INET6).expect("invariant: fits"),
            a.octets(),
            16,
        ),
    };
    let (kind, flags) = match op {
        Op::Add => (
            libc::RTM_NEWADDR,
            libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL,
        ),
        Op::Del => (libc::RTM_DELADDR, libc::NLM_F_REQUEST | libc::NLM_F_ACK),
    };
    let attr = 4 + alen; // both multiples of 4
    let len = NLMSG_HDR + IFADDRMSG + 2 * attr;
    let u16_of = |v: usize| u16::try_from(v).expect("invariant: small");
    buf[0..4].copy_from_slice(&u32::try_from(len).expect("invariant: small").to_ne_bytes());
    buf[4..6].copy_from_slice(&kind.to_ne_bytes());
    buf[6..8].copy_from_slice(&u16::try_from(flags).expect("invariant: fits").to_ne_bytes());
    buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    buf[12..16].copy_from_slice(&0u32.to_ne_bytes());
    let m = NLMSG_HDR;
    buf[m] = family;
    buf[m + 1] = prefix;
    buf[m + 2] = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
    buf[m + 3] = 0; // RT_SCOPE_UNIVERSE
    buf[m + 4..m + 8].copy_from_slice(&ifindex.to_ne_bytes());
    let mut at = m + IFADDRMSG;
    for ty in [IFA_LOCAL, IFA_ADDRESS] {
        buf[at..at + 2].copy_from_slice(&u16_of(attr).to_ne_bytes());
        buf[at + 2..at + 4].copy_from_slice(&ty.to_ne_bytes());
        buf[at + 4..at + 4 + alen].copy_from_slice(&bytes[..alen]);
        at += attr;
    }
    len
}

/// Writes an RTM_NEWLINK request changing only IFF_UP; returns its length.
fn build_link_request(buf: &mut [u8; REQUEST_MAX], seq: u32, ifindex: i32, up: bool) -> usize {
    const IFINFOMSG: usize = 16;
    let len = NLMSG_HDR + IFINFOMSG;
    let flags = libc::NLM_F_REQUEST | libc::NLM_F_ACK;
    let iff_up = u32::try_from(libc::IFF_UP).expect("invariant: fits");
    buf[0..4].copy_from_slice(&u32::try_from(len).expect("invariant: small").to_ne_bytes());
    buf[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    buf[6..8].copy_from_slice(&u16::try_from(flags).expect("invariant: fits").to_ne_bytes());
    buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    buf[12..16].copy_from_slice(&0u32.to_ne_bytes());
    let m = NLMSG_HDR;
    buf[m..m + 4].fill(0); // AF_UNSPEC, pad, type
    buf[m + 4..m + 8].copy_from_slice(&ifindex.to_ne_bytes());
    buf[m + 8..m + 12].copy_from_slice(&(if up { iff_up } else { 0 }).to_ne_bytes());
    buf[m + 12..m + 16].copy_from_slice(&iff_up.to_ne_bytes());
    len
}

/// Reads the NLMSG_ERROR answer to request `seq`: errno 0 is success.
fn parse_ack(msg: &[u8], seq: u32) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed rtnetlink ack");
    if msg.len() < NLMSG_HDR + 4 {
        return Err(bad());
    }
    let kind = u16::from_ne_bytes([msg[4], msg[5]]);
    let got_seq = u32::from_ne_bytes(msg[8..12].try_into().map_err(|_| bad())?);
    if kind != NLMSG_ERROR || got_seq != seq {
        return Err(bad());
    }
    let errno = i32::from_ne_bytes(msg[16..20].try_into().map_err(|_| bad())?);
    if errno == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-errno))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let mut buf = [0u8; REQUEST_MAX];
        let len = build_addr_request(&mut buf, Op::Add, 7, 3, "10.1.2.3".parse().unwrap(), 24);
        assert_eq!(len, 16 + 8 + 2 * 8);
        let mut want = Vec::new();
        want.extend(40u32.to_ne_bytes());
        want.extend(libc::RTM_NEWADDR.to_ne_bytes());
        let flags = libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        want.extend(u16::try_from(flags).unwrap().to_ne_bytes());
        want.extend(7u32.to_ne_bytes());
        want.extend(0u32.to_ne_bytes());
        want.extend([2, 24, 0, 0]); // AF_INET, /24, no flags, universe scope
        want.extend(3i32.to_ne_bytes());
        for ty in [IFA_LOCAL, IFA_ADDRESS] {
            want.extend(8u16.to_ne_bytes());
            want.extend(ty.to_ne_bytes());
            want.extend([10, 1, 2, 3]);
        }
        assert_eq!(&buf[..len], &want[..]);
        let len6 = build_addr_request(&mut buf, Op::Del, 8, 3, "fd00::5".parse().unwrap(), 64);
        assert_eq!(len6, 16 + 8 + 2 * 20);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), libc::RTM_DELADDR);
        assert_eq!(buf[18], IFA_F_NODAD);
    }

    #[test]
    fn link_request_layout() {
        let mut buf = [0u8; REQUEST_MAX];
        let len = build_link_request(&mut buf, 3, 5, false);
        assert_eq!(len, 32);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), libc::RTM_NEWLINK);
        assert_eq!(i32::from_ne_bytes(buf[20..24].try_into().unwrap()), 5);
        assert_eq!(
            u32::from_ne_bytes(buf[24..28].try_into().unwrap()),
            0,
            "flags: down"
        );
        assert_eq!(
            u32::from_ne_bytes(buf[28..32].try_into().unwrap()),
            1,
            "change: IFF_UP"
        );
    }

    #[test]
    fn ack_parsing() {
        let mut m = [0u8; 36];
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m[8..12].copy_from_slice(&9u32.to_ne_bytes());
        assert!(parse_ack(&m, 9).is_ok());
        assert!(parse_ack(&m, 10).is_err(), "other sequence");
        m[16..20].copy_from_slice(&(-libc::EEXIST).to_ne_bytes());
        assert_eq!(
            parse_ack(&m, 9).unwrap_err().raw_os_error(),
            Some(libc::EEXIST)
        );
        assert!(parse_ack(&m[..10], 9).is_err(), "short");
    }
}
