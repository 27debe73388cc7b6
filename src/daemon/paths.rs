//! The heartbeat path sockets, opened from the config and driven by the loop.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use heartwire_hal::packet::PacketSocket;
use heartwire_hal::udp::UdpSocket;
use heartwire_hal::{HalError, RxMeta};

use crate::config::PathIo;
use crate::wire::ethernet::cluster_mac;

/// One open path.
#[derive(Debug)]
pub(crate) enum PathSocket {
    /// Raw Ethernet, sending to the cluster multicast address.
    Ether {
        /// The socket.
        sock: PacketSocket,
        /// Destination: the cluster's multicast MAC.
        group: [u8; 6],
    },
    /// UDP unicast.
    Udp {
        /// The socket.
        sock: UdpSocket,
        /// Peer addresses by node index.
        peers: Vec<Option<SocketAddr>>,
    },
}

/// What one receive produced.
pub(crate) enum Rx {
    /// A datagram for the core.
    Frame(RxMeta),
    /// Our own transmission seen by the packet tap: skip.
    Own,
}

impl PathSocket {
    /// Opens the path of `io` for cluster `cluster_id`.
    pub(crate) fn open(io: &PathIo, cluster_id: u16) -> Result<PathSocket, HalError> {
        match io {
            PathIo::Ether {
                interface,
                ethertype,
            } => {
                let sock = PacketSocket::open(interface, *ethertype)?;
                let group = cluster_mac(cluster_id);
                sock.join_multicast(group)?;
                Ok(PathSocket::Ether { sock, group })
            }
            PathIo::Udp { bind, peers } => Ok(PathSocket::Udp {
                sock: UdpSocket::bind(*bind)?,
                peers: peers.clone(),
            }),
        }
    }

    /// Receives one datagram into `buf`.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Rx> {
        match self {
            PathSocket::Ether { sock, .. } => {
                let rx = sock.recv(buf)?;
                Ok(if rx.outgoing {
                    Rx::Own
                } else {
                    Rx::Frame(rx.meta)
                })
            }
            PathSocket::Udp { sock, .. } => Ok(Rx::Frame(sock.recv(buf)?.meta)),
        }
    }

    /// Sends `frame` to every node (`to = None`) or to node index `to`.
    pub(crate) fn send(&self, to: Option<usize>, frame: &[u8]) -> io::Result<usize> {
        match (self, to) {
            (PathSocket::Ether { sock, group }, _) => sock.send_to(*group, frame),
            (PathSocket::Udp { sock, peers }, Some(i)) => {
                let addr = peers
                    .get(i)
                    .copied()
                    .flatten()
                    .ok_or(io::ErrorKind::AddrNotAvailable)?;
                sock.send_to(frame, addr)
            }
            (PathSocket::Udp { .. }, None) => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    /// Interface or local address, for status.
    pub(crate) fn device(&self) -> String {
        match self {
            PathSocket::Ether { sock, .. } => sock.ifname().to_owned(),
            PathSocket::Udp { sock, .. } => sock
                .local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string()),
        }
    }

    /// Whether ethernet padding may follow the frame.
    pub(crate) fn is_ether(&self) -> bool {
        matches!(self, PathSocket::Ether { .. })
    }
}

impl AsFd for PathSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            PathSocket::Ether { sock, .. } => sock.as_fd(),
            PathSocket::Udp { sock, .. } => sock.as_fd(),
        }
    }
}
