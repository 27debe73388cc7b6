//! What this host has: interfaces and addresses, read once over rtnetlink (RTM_GETLINK /
//! RTM_GETADDR dumps). For the operator's tools (`init`, `verify`, `snapshot`), never the
//! event loop: the read waits (bounded) for the kernel's answer.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use crate::linkmon::attr;
use crate::netlink::{NLMSG_HDR, route_socket, send_dump};
use crate::sys::{HalError, cvt_size};

const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_LOWER_UP: u32 = 0x1_0000;
/// How long to wait for each part of a dump.
const WAIT: Duration = Duration::from_secs(2);

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Name.
    pub name: String,
    /// Interface index.
    pub index: i32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Up and the lower layer has carrier (IFF_LOWER_UP).
    pub carrier: bool,
    /// The loopback interface.
    pub loopback: bool,
    /// Hardware address, when it is a 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: u32,
}

/// One address on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    /// Interface index.
    pub index: i32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// Every interface of this network namespace.
pub fn links() -> Result<Vec<Link>, HalError> {
    let mut out = Vec::new();
    dump(libc::RTM_GETLINK, IFINFOMSG, "RTM_GETLINK", &mut |m| {
        if let Some(l) = parse_link(m) {
            out.push(l);
        }
    })?;
    Ok(out)
}

/// Every address of this network namespace.
pub fn addresses() -> Result<Vec<Addr>, HalError> {
    let mut out = Vec::new();
    dump(libc::RTM_GETADDR, IFADDRMSG, "RTM_GETADDR", &mut |m| {
        if let Some(a) = parse_addr(m) {
            out.push(a);
        }
    })?;
    Ok(out)
}

/// Sends one dump request and hands the body of every answer message to `each`.
fn dump(
    kind: u16,
    body_len: usize,
    what: &'static str,
    each: &mut dyn FnMut(&[u8]),
) -> Result<(), HalError> {
    let err = |op, e| HalError::new(op, what, e);
    let fd = route_socket().map_err(|e| err("socket NETLINK_ROUTE", e))?;
    send_dump(&fd, kind, body_len).map_err(|e| err("sendto", e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !crate::sys::wait_readable(fd.as_fd(), WAIT).map_err(|e| err("poll", e))? {
            return Err(err("poll", io::Error::from(io::ErrorKind::TimedOut)));
        }
        // SAFETY: `fd` is live; `buf` is a writable buffer of the given length.
        let n = cvt_size(unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        })
        .map_err(|e| err("recv", e))?;
        if walk(&buf[..n], each).map_err(|e| err("dump", e))? {
            return Ok(());
        }
    }
}

/// Walks the messages of one datagram; true at the dump's end.
fn walk(mut msg: &[u8], each: &mut dyn FnMut(&[u8])) -> io::Result<bool> {
    while msg.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
        if len < NLMSG_HDR || len > msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated message",
            ));
        }
        let kind = u16::from_ne_bytes([msg[4], msg[5]]);
        let body = &msg[NLMSG_HDR..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR if body.len() >= 4 => {
                let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            _ => each(body),
        }
        msg = msg.get((len + 3) & !3..).unwrap_or_default();
    }
    Ok(false)
}

fn parse_link(body: &[u8]) -> Option<Link> {
    if body.len() < IFINFOMSG {
        return None;
    }
    let index = i32::from_ne_bytes(body[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(body[8..12].try_into().ok()?);
    let attrs = &body[IFINFOMSG..];
    let name = attr(attrs, IFLA_IFNAME)?;
    let name = name.split(|b| *b == 0).next()?;
    Some(Link {
        name: String::from_utf8_lossy(name).into_owned(),
        index,
        up: flags & IFF_UP != 0,
        carrier: flags & IFF_UP != 0 && flags & IFF_LOWER_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        mac: attr(attrs, IFLA_ADDRESS).and_then(|m| m.try_into().ok()),
        mtu: attr(attrs, IFLA_MTU)
            .and_then(|m| m.try_into().ok())
            .map_or(0, u32::from_ne_bytes),
    })
}

fn parse_addr(body: &[u8]) -> Option<Addr> {
    if body.len() < IFADDRMSG {
        return None;
    }
    let family = i32::from(body[0]);
    let prefix = body[1];
    let index = i32::from_ne_bytes(body[4..8].try_into().ok()?);
    let attrs = &body[IFADDRMSG..];
    let raw = attr(attrs, IFA_LOCAL).or_else(|| attr(attrs, IFA_ADDRESS))?;
    let addr = match family {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?)),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?)),
        _ => return None,
    };
    Some(Addr {
        index,
        addr,
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host has a loopback interface with 127.0.0.1/8 (every Linux namespace does
    /// once `lo` is up; the test namespace's is).
    #[test]
    fn dumps_this_hosts_loopback() {
        let links = links().expect("RTM_GETLINK");
        let lo = links.iter().find(|l| l.loopback).expect("a loopback link");
        assert_eq!(lo.name, "lo");
        assert!(lo.mtu > 0);
        let addrs = addresses().expect("RTM_GETADDR");
        if lo.up {
            assert!(
                addrs
                    .iter()
                    .any(|a| a.index == lo.index && a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST)),
                "{addrs:?}"
            );
        }
    }

    #[test]
    fn malformed_dumps_are_errors_not_panics() {
        assert!(walk(&[0xff; 20], &mut |_| {}).is_err());
        let mut err = vec![0u8; NLMSG_HDR + 4];
        err[0] = u8::try_from(err.len()).unwrap();
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[NLMSG_HDR..].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            walk(&err, &mut |_| {}).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
        assert_eq!(parse_link(&[0u8; 8]), None);
        assert_eq!(
            parse_addr(&[2, 24, 0, 0, 1, 0, 0, 0]),
            None,
            "no address attribute"
        );
    }
}
