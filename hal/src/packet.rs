//! Raw Ethernet frames over AF_PACKET.
//!
//! One `SOCK_DGRAM` packet socket per heartbeat path, bound to one interface and one
//! EtherType, nonblocking, with kernel receive timestamps. `SOCK_DGRAM` lets the kernel
//! build and strip the 14-byte Ethernet header, so heartwire only handles its own frame
//! (DESIGN §3). Frames this host sent itself (`PACKET_OUTGOING`) are reported so the caller
//! can skip them. pnet's datalink channel is not used: it hides its fd and reads every
//! frame on the interface (LAB-NOTES.md).

use std::ffi::CString;
use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sys::{self, HalError, RxMeta, cvt};

/// Length of an Ethernet hardware address.
pub const MAC_LEN: usize = 6;

/// A bound AF_PACKET datagram socket for one interface and EtherType.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    ethertype: u16,
    ifname: String,
}

/// One received frame's metadata.
#[derive(Debug, Clone, Copy)]
pub struct PacketRx {
    /// Length, truncation and kernel timestamp.
    pub meta: RxMeta,
    /// Source MAC address.
    pub src: [u8; MAC_LEN],
    /// The frame was sent by this host (looped back to the packet tap), not received.
    pub outgoing: bool,
}

fn sockaddr_ll(ifindex: i32, ethertype: u16, dst: Option<[u8; MAC_LEN]>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is a plain C struct (<linux/if_packet.h>) valid when zeroed.
    let mut sa: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sa.sll_family = u16::try_from(libc::AF_PACKET).expect("invariant: AF_PACKET fits u16");
    sa.sll_protocol = ethertype.to_be();
    sa.sll_ifindex = ifindex;
    if let Some(mac) = dst {
        sa.sll_halen = u8::try_from(MAC_LEN).expect("invariant: 6 fits u8");
        sa.sll_addr[..MAC_LEN].copy_from_slice(&mac);
    }
    sa
}

/// Resolves an interface name to its index.
pub fn if_index(ifname: &str) -> Result<i32, HalError> {
    let c = CString::new(ifname)
        .map_err(|_| HalError::new("if_nametoindex", ifname, io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: `c` is a live NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(HalError::new(
            "if_nametoindex",
            ifname,
            io::Error::last_os_error(),
        ));
    }
    i32::try_from(idx)
        .map_err(|_| HalError::new("if_nametoindex", ifname, io::ErrorKind::InvalidData.into()))
}

impl PacketSocket {
    /// Opens a nonblocking packet socket on `ifname` that receives only `ethertype`.
    pub fn open(ifname: &str, ethertype: u16) -> Result<PacketSocket, HalError> {
        let sock = PacketSocket::bound(ifname, ethertype, ethertype)?;
        sys::enable_rx_timestamps(sock.fd.as_fd())
            .map_err(|e| HalError::new("SO_TIMESTAMPNS", ifname, e))?;
        Ok(sock)
    }

    /// Opens a nonblocking packet socket on `ifname` that only sends frames of
    /// `ethertype` (bound with protocol 0, so nothing is ever queued for reading): for
    /// gratuitous ARP and unsolicited Neighbor Advertisements.
    pub fn open_sender(ifname: &str, ethertype: u16) -> Result<PacketSocket, HalError> {
        PacketSocket::bound(ifname, 0, ethertype)
    }

    /// A socket bound to `ifname` receiving `rx_protocol` (0: nothing), sending
    /// `ethertype`. It is created with protocol 0 (receives nothing) and only then bound,
    /// so no frame of another interface can slip in between.
    fn bound(ifname: &str, rx_protocol: u16, ethertype: u16) -> Result<PacketSocket, HalError> {
        let ifindex = if_index(ifname)?;
        let err = |op, e| HalError::new(op, ifname, e);
        // SAFETY: plain socket(2) call with constant arguments; the result is checked and
        // becomes an OwnedFd immediately below.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })
        .map_err(|e| err("socket AF_PACKET", e))?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sa = sockaddr_ll(ifindex, rx_protocol, None);
        let len = socklen::<libc::sockaddr_ll>();
        // SAFETY: `fd` is live; the pointer and length describe `sa`, a sockaddr_ll on the
        // stack that the kernel only reads; the result is checked.
        cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), len) })
            .map_err(|e| err("bind AF_PACKET", e))?;
        Ok(PacketSocket {
            fd,
            ifindex,
            ethertype,
            ifname: ifname.to_owned(),
        })
    }

    /// The interface's hardware (MAC) address (SIOCGIFHWADDR).
    pub fn hw_addr(&self) -> Result<[u8; MAC_LEN], HalError> {
        // SAFETY: ifreq is a plain C struct (<net/if.h>) valid when zeroed.
        let mut req: libc::ifreq = unsafe { mem::zeroed() };
        let name = self.ifname.as_bytes();
        if name.len() >= req.ifr_name.len() {
            return Err(HalError::new(
                "SIOCGIFHWADDR",
                self.ifname.as_str(),
                io::ErrorKind::InvalidInput.into(),
            ));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name) {
            *d = libc::c_char::from_ne_bytes([*s]);
        }
        // The request argument is `c_ulong` in glibc and `c_int` in musl.
        #[allow(clippy::unnecessary_cast, trivial_numeric_casts)]
        let request = libc::SIOCGIFHWADDR as _;
        // SAFETY: `fd` is live; `req` is a NUL-terminated ifreq on the stack that the
        // kernel fills in for SIOCGIFHWADDR; the result is checked.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), request, &raw mut req) })
            .map_err(|e| HalError::new("SIOCGIFHWADDR", self.ifname.as_str(), e))?;
        // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
        let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; MAC_LEN];
        for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *d = s.to_ne_bytes()[0];
        }
        Ok(mac)
    }

    /// Makes the interface accept frames sent to the multicast address `mac`
    /// (PACKET_ADD_MEMBERSHIP), as a real NIC's filter would otherwise drop them.
    pub fn join_multicast(&self, mac: [u8; MAC_LEN]) -> Result<(), HalError> {
        // SAFETY: packet_mreq is a plain C struct (<linux/if_packet.h>) valid when zeroed.
        let mut mreq: libc::packet_mreq = unsafe { mem::zeroed() };
        mreq.mr_ifindex = self.ifindex;
        mreq.mr_type = u16::try_from(libc::PACKET_MR_MULTICAST).expect("invariant: fits");
        mreq.mr_alen = u16::try_from(MAC_LEN).expect("invariant: fits");
        mreq.mr_address[..MAC_LEN].copy_from_slice(&mac);
        sys::setsockopt(
            self.fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
        )
        .map_err(|e| HalError::new("PACKET_ADD_MEMBERSHIP", self.ifname.as_str(), e))
    }

    /// Sends one frame to `dst`. Never blocks: a full queue returns `WouldBlock`.
    pub fn send_to(&self, dst: [u8; MAC_LEN], frame: &[u8]) -> io::Result<usize> {
        let sa = sockaddr_ll(self.ifindex, self.ethertype, Some(dst));
        let len = socklen::<libc::sockaddr_ll>();
        // SAFETY: `fd` is live; `frame` is one live slice with its own length; `sa` is a
        // sockaddr_ll on the stack with its true size; the result is checked.
        sys::cvt_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&raw const sa).cast(),
                len,
            )
        })
    }

    /// Receives one frame into `buf`. `WouldBlock` when the queue is empty.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<PacketRx> {
        let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let meta = sys::recv_timestamped(self.fd.as_fd(), buf, &mut addr)?;
        // SAFETY: the storage was zero-initialised and recvmsg filled in a sockaddr_ll,
        // which is smaller than sockaddr_storage; any bytes are a valid sockaddr_ll.
        let sa: libc::sockaddr_ll = unsafe { std::ptr::read(addr.as_ptr().cast()) };
        let mut src = [0u8; MAC_LEN];
        src.copy_from_slice(&sa.sll_addr[..MAC_LEN]);
        let outgoing = sa.sll_pkttype == libc::PACKET_OUTGOING;
        Ok(PacketRx {
            meta,
            src,
            outgoing,
        })
    }

    /// The interface this socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(mem::size_of::<T>()).expect("invariant: sockaddr size fits")
}
