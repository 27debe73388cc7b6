//! UDP heartbeat sockets: std's socket for bind and send, plus `recvmsg` for the kernel
//! receive timestamp that std does not expose.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket as StdUdp};
use std::os::fd::{AsFd, BorrowedFd};

use crate::sys::{self, HalError, RxMeta};

/// A nonblocking UDP socket bound to one local address, with SO_TIMESTAMPNS on.
#[derive(Debug)]
pub struct UdpSocket {
    sock: StdUdp,
}

/// One received datagram's metadata.
#[derive(Debug, Clone, Copy)]
pub struct UdpRx {
    /// Length, truncation and kernel timestamp.
    pub meta: RxMeta,
    /// Who sent it.
    pub src: Option<SocketAddr>,
}

impl UdpSocket {
    /// Binds `addr`, nonblocking, with kernel receive timestamps.
    pub fn bind(addr: SocketAddr) -> Result<UdpSocket, HalError> {
        let err = |op, e| HalError::new(op, addr.to_string(), e);
        let sock = StdUdp::bind(addr).map_err(|e| err("bind UDP", e))?;
        sock.set_nonblocking(true)
            .map_err(|e| err("O_NONBLOCK", e))?;
        sys::enable_rx_timestamps(sock.as_fd()).map_err(|e| err("SO_TIMESTAMPNS", e))?;
        Ok(UdpSocket { sock })
    }

    /// Sends one datagram. Never blocks: a full queue returns `WouldBlock`.
    pub fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.sock.send_to(buf, to)
    }

    /// Receives one datagram into `buf`. `WouldBlock` when the queue is empty.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<UdpRx> {
        let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let meta = sys::recv_timestamped(self.sock.as_fd(), buf, &mut addr)?;
        // SAFETY: the storage was zero-initialised and recvmsg wrote a sockaddr of the
        // socket's family into it; every byte pattern is a valid sockaddr_storage.
        let ss = unsafe { addr.assume_init() };
        Ok(UdpRx {
            meta,
            src: to_socket_addr(&ss),
        })
    }

    /// The bound local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller
            // than sockaddr_storage and valid for any byte pattern.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const _ as *const libc::sockaddr_in).cast()) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6, as above.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const _ as *const libc::sockaddr_in6).cast()) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                0,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
