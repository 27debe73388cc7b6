//! The heartbeat path endpoints, opened from the config and driven by the loop: raw
//! Ethernet and UDP sockets, serial lines (COBS framing, a partial write finished before
//! the next frame), and disk servants (see [`super::disk`]).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use heartwire_hal::packet::PacketSocket;
use heartwire_hal::serial::SerialLine;
use heartwire_hal::udp::UdpSocket;
use heartwire_hal::{HalError, RxMeta};

use super::disk::{DiskPath, FromServant};
use crate::config::PathIo;
use crate::wire::cobs::{self, Deframed, Deframer};
use crate::wire::ethernet::cluster_mac;
use crate::wire::frame::Kind;

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
    /// A serial line.
    Serial(Box<SerialPath>),
    /// A shared disk, through its servant.
    Disk(DiskPath),
    /// This node is not on the path.
    Absent,
}

/// A serial line with its receive reassembly and its unfinished transmission.
#[derive(Debug)]
pub(crate) struct SerialPath {
    line: SerialLine,
    deframer: Deframer,
    chunk: [u8; 512],
    pos: usize,
    len: usize,
    /// The encoded frame being written, and how much of it is out.
    tx: [u8; cobs::ENCODED_MAX + 1],
    tx_len: usize,
    tx_done: usize,
}

/// What one receive produced.
pub(crate) enum Rx {
    /// A frame for the core.
    Frame(RxMeta),
    /// Our own transmission seen by the packet tap: skip.
    Own,
    /// Bytes or slots that are no frame (line noise, a half frame, a torn slot): count.
    Garbage(u32),
    /// A block longer than any frame: count.
    Overlong,
    /// The disk servant has something to say (logged).
    Note {
        /// An error (else informational).
        error: bool,
        /// The text.
        text: String,
    },
}

impl PathSocket {
    /// Opens the path of `io` for cluster `cluster_id`; `node` is this node's id and
    /// `members` the ids of the nodes on the path (for the disk layout).
    pub(crate) fn open(
        io: &PathIo,
        cluster_id: u16,
        node: u8,
        members: &[u8],
    ) -> Result<PathSocket, HalError> {
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
            PathIo::Serial { device, baud } => Ok(PathSocket::Serial(Box::new(SerialPath {
                line: SerialLine::open(device, *baud)?,
                deframer: Deframer::default(),
                chunk: [0; 512],
                pos: 0,
                len: 0,
                tx: [0; cobs::ENCODED_MAX + 1],
                tx_len: 0,
                tx_done: 0,
            }))),
            PathIo::Disk { device, slots } => Ok(PathSocket::Disk(DiskPath::spawn(
                device, cluster_id, node, *slots, members,
            )?)),
            PathIo::Absent => Ok(PathSocket::Absent),
        }
    }

    /// Opens an Ethernet path for sending only, for the sentinel's death notice, opened
    /// before any death: a packet socket bound with protocol 0 (nothing is ever queued for
    /// reading, so it costs the heartbeats nothing). `None` for the other kinds, opened at
    /// the notice: a UDP socket is cheap to open and, bound beforehand, would hold an
    /// ephemeral port for the sentinel's life (a port a daemon or an application may need);
    /// the daemon holds a serial line until its end; a disk's servant dies with the daemon.
    pub(crate) fn open_sender(
        io: &PathIo,
        cluster_id: u16,
    ) -> Option<Result<PathSocket, HalError>> {
        match io {
            PathIo::Ether {
                interface,
                ethertype,
            } => Some(
                PacketSocket::open_sender(interface, *ethertype).map(|sock| PathSocket::Ether {
                    sock,
                    group: cluster_mac(cluster_id),
                }),
            ),
            PathIo::Udp { .. } | PathIo::Serial { .. } | PathIo::Disk { .. } | PathIo::Absent => {
                None
            }
        }
    }

    /// Receives one frame into `buf`.
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> io::Result<Rx> {
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
            PathSocket::Serial(s) => s.recv(buf),
            PathSocket::Disk(d) => Ok(match d.recv(buf)? {
                FromServant::Frame(len) => Rx::Frame(RxMeta {
                    len,
                    truncated: false,
                    rx_realtime_ns: None,
                }),
                FromServant::Garbage(n) => Rx::Garbage(n),
                FromServant::Line { error, text } => Rx::Note { error, text },
                FromServant::Gone => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the disk servant exited (see its error above)",
                    ));
                }
            }),
            PathSocket::Absent => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Sends `frame` to every node (`to = None`) or to node index `to`.
    pub(crate) fn send(&mut self, to: Option<usize>, frame: &[u8]) -> io::Result<usize> {
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
            (PathSocket::Serial(s), _) => s.send(frame),
            (PathSocket::Disk(d), _) => match frame.get(3).copied() {
                // A mailbox cell holds one frame: a group-state frame would overwrite the
                // view ack it follows. The heartbeat slot carries the same state block.
                Some(k) if k == u8::from(Kind::GroupState) => Ok(frame.len()),
                Some(k) => d.send(frame, k == u8::from(Kind::Heartbeat)),
                None => Err(io::ErrorKind::InvalidInput.into()),
            },
            (PathSocket::Absent, _) => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Finishes an interrupted serial write, if any (called every loop turn).
    pub(crate) fn flush(&mut self) {
        if let PathSocket::Serial(s) = self {
            let _ = s.flush();
        }
    }

    /// Interface, local address or device, for status.
    pub(crate) fn device(&self) -> String {
        match self {
            PathSocket::Ether { sock, .. } => sock.ifname().to_owned(),
            PathSocket::Udp { sock, .. } => sock
                .local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string()),
            PathSocket::Serial(s) => s.line.device().to_owned(),
            PathSocket::Disk(d) => d.device().to_owned(),
            PathSocket::Absent => "-".into(),
        }
    }

    /// The disk servant's pid, for a disk path.
    pub(crate) fn servant_pid(&self) -> Option<u32> {
        match self {
            PathSocket::Disk(d) => Some(d.pid()),
            _ => None,
        }
    }

    /// Whether the kernel stamps each frame's arrival (raw Ethernet and UDP): such a path
    /// needs reading only when it polls readable.
    pub(crate) fn stamped(&self) -> bool {
        matches!(self, PathSocket::Ether { .. } | PathSocket::Udp { .. })
    }

    /// Whether ethernet padding may follow the frame.
    pub(crate) fn is_ether(&self) -> bool {
        matches!(self, PathSocket::Ether { .. })
    }

    /// The fd to poll, if the path has one here.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            PathSocket::Ether { sock, .. } => Some(sock.as_fd()),
            PathSocket::Udp { sock, .. } => Some(sock.as_fd()),
            PathSocket::Serial(s) => Some(s.line.as_fd()),
            PathSocket::Disk(d) => Some(d.as_fd()),
            PathSocket::Absent => None,
        }
    }
}

impl SerialPath {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Rx> {
        loop {
            while self.pos < self.len {
                let b = self.chunk[self.pos];
                self.pos += 1;
                match self.deframer.push_byte(b, buf) {
                    Some(Deframed::Frame(len)) => {
                        return Ok(Rx::Frame(RxMeta {
                            len,
                            truncated: false,
                            rx_realtime_ns: None,
                        }));
                    }
                    Some(Deframed::Garbage) => return Ok(Rx::Garbage(1)),
                    Some(Deframed::Overlong) => return Ok(Rx::Overlong),
                    None => {}
                }
            }
            let n = self.line.read(&mut self.chunk)?;
            if n == 0 {
                // The other side of a pty hung up; a real line never says EOF.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.pos = 0;
            self.len = n;
        }
    }

    /// Encodes and writes one frame. A frame that finds the previous one still partly
    /// unwritten is dropped (`WouldBlock`): heartbeats are never queued.
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        self.flush()?;
        if self.tx_done < self.tx_len {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = cobs::encode(frame, &mut self.tx).ok_or(io::ErrorKind::InvalidInput)?;
        self.tx_len = n;
        self.tx_done = 0;
        let result = self.flush();
        if self.tx_done == 0 {
            if let Err(e) = result {
                // Nothing went out: forget it rather than send it late.
                self.tx_len = 0;
                return Err(e);
            }
        }
        // Started: the rest goes out on the next turns.
        Ok(frame.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.tx_done < self.tx_len {
            match self.line.write(&self.tx[self.tx_done..self.tx_len]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.tx_done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
