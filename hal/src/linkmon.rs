//! Carrier monitoring over rtnetlink: a NETLINK_ROUTE socket subscribed to RTMGRP_LINK,
//! plus one RTM_GETLINK dump at open so the current state arrives through the same
//! socket as later changes. Read from the event loop (nonblocking); parsing is a pure
//! function over the received bytes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::netlink::{NLMSG_HDR, kernel_addr, route_socket, send_dump};
use crate::sys::{HalError, cvt, cvt_size};

const IFINFOMSG: usize = 16;
const NLMSG_DONE: u16 = 3;
const IFLA_IFNAME: u16 = 3;
const RTMGRP_LINK: u32 = 1;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;

/// One interface's state as rtnetlink reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState<'a> {
    /// Interface name.
    pub name: &'a str,
    /// Interface index.
    pub index: i32,
    /// Administratively up and the lower layer has carrier (IFF_UP and IFF_LOWER_UP).
    pub carrier: bool,
    /// The interface was removed (RTM_DELLINK).
    pub removed: bool,
}

/// A link-event subscription.
#[derive(Debug)]
pub struct LinkMonitor {
    fd: OwnedFd,
    /// The initial dump has been read to its end.
    pub dumped: bool,
}

impl LinkMonitor {
    /// Opens the subscription and asks for a dump of every link.
    pub fn open() -> Result<LinkMonitor, HalError> {
        let err = |op, e| HalError::new(op, "rtnetlink links", e);
        let fd = route_socket().map_err(|e| err("socket NETLINK_ROUTE", e))?;
        let (mut sa, salen) = kernel_addr();
        sa.nl_groups = RTMGRP_LINK;
        // SAFETY: `fd` is live; `sa` is a sockaddr_nl of the given size, read only.
        cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), salen) })
            .map_err(|e| err("bind RTMGRP_LINK", e))?;
        send_dump(&fd, libc::RTM_GETLINK, IFINFOMSG).map_err(|e| err("RTM_GETLINK dump", e))?;
        Ok(LinkMonitor { fd, dumped: false })
    }

    /// Reads one datagram (one or more messages) into `buf`; `WouldBlock` when none.
    /// Returns its length; hand it to [`parse`].
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `fd` is live; `buf` is a writable buffer of the given length.
        cvt_size(unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        })
    }
}

impl AsFd for LinkMonitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Parses the messages of one datagram: calls `out` for each link message; returns
/// whether the dump's end (NLMSG_DONE) was among them. Malformed tails are ignored.
pub fn parse(mut msg: &[u8], out: &mut dyn FnMut(LinkState<'_>)) -> bool {
    let mut done = false;
    while msg.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
        if len < NLMSG_HDR || len > msg.len() {
            break;
        }
        let kind = u16::from_ne_bytes([msg[4], msg[5]]);
        let body = &msg[NLMSG_HDR..len];
        if kind == NLMSG_DONE {
            done = true;
        } else if (kind == libc::RTM_NEWLINK || kind == libc::RTM_DELLINK)
            && body.len() >= IFINFOMSG
        {
            let index = i32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
            let flags = u32::from_ne_bytes([body[8], body[9], body[10], body[11]]);
            if let Some(name) = attr(&body[IFINFOMSG..], IFLA_IFNAME) {
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                if let Ok(name) = core::str::from_utf8(name) {
                    out(LinkState {
                        name,
                        index,
                        carrier: flags & IFF_UP != 0 && flags & IFF_LOWER_UP != 0,
                        removed: kind == libc::RTM_DELLINK,
                    });
                }
            }
        }
        let next = (len + 3) & !3;
        msg = msg.get(next..).unwrap_or_default();
    }
    done
}

/// The payload of attribute `ty` in a run of rtattrs.
pub(crate) fn attr(mut a: &[u8], ty: u16) -> Option<&[u8]> {
    while a.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([a[0], a[1]]));
        let t = u16::from_ne_bytes([a[2], a[3]]);
        if len < 4 || len > a.len() {
            return None;
        }
        if t == ty {
            return Some(&a[4..len]);
        }
        a = a.get((len + 3) & !3..).unwrap_or_default();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_msg(kind: u16, index: i32, flags: u32, name: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        let alen = 4 + name.len() + 1;
        attr.extend(u16::try_from(alen).unwrap().to_ne_bytes());
        attr.extend(IFLA_IFNAME.to_ne_bytes());
        attr.extend(name.as_bytes());
        attr.push(0);
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let len = NLMSG_HDR + IFINFOMSG + attr.len();
        let mut m = Vec::new();
        m.extend(u32::try_from(len).unwrap().to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend([0u8; 4]);
        m.extend(index.to_ne_bytes());
        m.extend(flags.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(attr);
        m
    }

    #[test]
    fn parses_links_and_the_dump_end() {
        let mut d = link_msg(libc::RTM_NEWLINK, 3, IFF_UP | IFF_LOWER_UP, "eth0");
        d.extend(link_msg(libc::RTM_NEWLINK, 4, IFF_UP, "eth1"));
        d.extend(link_msg(libc::RTM_DELLINK, 5, 0, "eth2"));
        let mut done_msg = vec![0u8; NLMSG_HDR + 4];
        done_msg[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done_msg[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        d.extend(done_msg);
        let mut got = Vec::new();
        let done = parse(&d, &mut |l| {
            got.push((l.name.to_owned(), l.index, l.carrier, l.removed))
        });
        assert!(done);
        assert_eq!(
            got,
            vec![
                ("eth0".to_owned(), 3, true, false),
                ("eth1".to_owned(), 4, false, false),
                ("eth2".to_owned(), 5, false, true),
            ]
        );
        // Truncated input: nothing panics, nothing is invented.
        let mut n = 0;
        parse(&d[..30], &mut |_| n += 1);
        assert_eq!(n, 0);
    }

    #[test]
    fn a_live_dump_lists_the_loopback() {
        let mut m = LinkMonitor::open().unwrap();
        let mut buf = vec![0u8; 32 * 1024];
        let mut lo = None;
        for _ in 0..1000 {
            match m.recv(&mut buf) {
                Ok(n) => {
                    if parse(&buf[..n], &mut |l| {
                        if l.name == "lo" {
                            lo = Some(l.carrier);
                        }
                    }) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(lo.is_some(), "the dump names lo");
    }
}
