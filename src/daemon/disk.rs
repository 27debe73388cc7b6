//! The disk heartbeat path (DESIGN §3): a servant process per disk does the I/O, as sbd
//! does, and talks to the loop over a datagram socket pair.
//!
//! Why a process: disk I/O blocks, and a hung disk leaves the caller in uninterruptible
//! sleep, where not even SIGKILL reaches it. Only a separate process keeps that away from
//! the loop: the loop's sends to a hung servant meet a full socket and are counted and
//! dropped, no frames come back, and the path goes silent at its timeout like any other
//! broken wire. io_uring or Linux AIO would keep the loop free too, but a request stuck in
//! the kernel would then pin the daemon itself at exit (ring teardown waits for it); a
//! servant can be abandoned. The servant is this same binary (`heartwire disk-servant`,
//! started through /proc/self/exe), so a static install stays one file.
//!
//! Protocol, one datagram each:
//! - loop → servant: `H` + frame (a heartbeat: written to this node's heartbeat slot,
//!   read back and compared, then every slot is read), `M` + frame (a view or command
//!   frame: written to this node's cell of every other node's mailbox row; group-state
//!   frames are not sent, see `paths.rs`);
//! - servant → loop: `F` + frame (a slot whose content changed since the last read),
//!   `G` + u32 (torn or foreign slots seen, counted as `garbage`), `R` + text (the layout
//!   is ready), `E` + text (an error; fatal ones end the servant).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::time::Duration;

use heartwire_hal::HalError;
use heartwire_hal::disk::{AlignedBuf, DirectDisk};

use crate::wire::disk::{Header, HeaderError, Slot, emit_slot, parse_slot};
use crate::wire::frame::FRAME_MAX;

/// Send buffer of the loop's end: room for a few frames (the kernel doubles the value and
/// counts about 1 KiB per datagram). Beyond that the servant is not keeping up.
const SEND_BUFFER: usize = 8 * 1024;

/// The loop's end of a disk path.
#[derive(Debug)]
pub(crate) struct DiskPath {
    sock: UnixDatagram,
    child: Child,
    device: String,
}

/// What the servant said.
pub(crate) enum FromServant {
    /// A frame read from a slot, now in the caller's buffer.
    Frame(usize),
    /// Torn or foreign slots seen.
    Garbage(u32),
    /// An informational or error line to log.
    Line {
        /// An error (else informational).
        error: bool,
        /// The text.
        text: String,
    },
    /// The servant has gone (its socket closed).
    Gone,
}

impl DiskPath {
    /// Starts the servant for `device` (cluster `cluster`, this node `node`, layout of
    /// `slots` slots, the path's nodes `nodes` as ids).
    pub(crate) fn spawn(
        device: &str,
        cluster: u16,
        node: u8,
        slots: u16,
        nodes: &[u8],
    ) -> Result<DiskPath, HalError> {
        let err = |op, source| HalError {
            op,
            dev: device.to_owned(),
            source,
        };
        let (ours, theirs) = UnixDatagram::pair().map_err(|e| err("socketpair", e))?;
        ours.set_nonblocking(true)
            .map_err(|e| err("O_NONBLOCK", e))?;
        heartwire_hal::disk::limit_send_buffer(ours.as_fd(), SEND_BUFFER)
            .map_err(|e| err("SO_SNDBUF", e))?;
        let theirs_out: OwnedFd = theirs
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| err("dup", e))?;
        let ids: Vec<String> = nodes.iter().map(u8::to_string).collect();
        let child = heartwire_hal::process::clean_command("/proc/self/exe")
            .arg("disk-servant")
            .args(["--device", device])
            .args(["--cluster", &cluster.to_string()])
            .args(["--node", &node.to_string()])
            .args(["--slots", &slots.to_string()])
            .args(["--nodes", &ids.join(",")])
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(theirs_out))
            .spawn()
            .map_err(|e| err("start disk servant", e))?;
        Ok(DiskPath {
            sock: ours,
            child,
            device: device.to_owned(),
        })
    }

    /// Hands a frame to the servant. `WouldBlock` when it has not kept up (hung disk).
    pub(crate) fn send(&self, frame: &[u8], heartbeat: bool) -> io::Result<usize> {
        let mut msg = [0u8; FRAME_MAX + 1];
        msg[0] = if heartbeat { b'H' } else { b'M' };
        msg[1..=frame.len()].copy_from_slice(frame);
        self.sock.send(&msg[..=frame.len()]).map(|n| n - 1)
    }

    /// The servant's next message, its frame (if any) copied into `buf`. `WouldBlock`
    /// when there is none.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<FromServant> {
        let mut msg = [0u8; FRAME_MAX + 64];
        let n = self.sock.recv(&mut msg)?;
        if n == 0 {
            return Ok(FromServant::Gone);
        }
        let body = &msg[1..n];
        Ok(match msg[0] {
            b'F' if body.len() <= buf.len() => {
                buf[..body.len()].copy_from_slice(body);
                FromServant::Frame(body.len())
            }
            b'G' if body.len() == 4 => FromServant::Garbage(u32::from_be_bytes(
                body.try_into().expect("invariant: 4 bytes"),
            )),
            kind => FromServant::Line {
                error: kind != b'R',
                text: String::from_utf8_lossy(body).into_owned(),
            },
        })
    }

    /// The servant's pid (status, and the lab's fault injection).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The device path.
    pub(crate) fn device(&self) -> &str {
        &self.device
    }
}

impl AsFd for DiskPath {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Drop for DiskPath {
    fn drop(&mut self) {
        // Our own child, by its pid. A servant stuck in the kernel dies when its I/O
        // returns; nobody waits for it here.
        let _ = self.child.kill();
        let _ = self.child.try_wait();
    }
}

/// What the servant is told on its command line.
#[derive(Debug, Clone)]
pub struct ServantArgs {
    /// Device path.
    pub device: String,
    /// Cluster id.
    pub cluster: u16,
    /// This node's id.
    pub node: u8,
    /// Slots of the layout.
    pub slots: u16,
    /// Node ids on the path.
    pub nodes: Vec<u8>,
}

/// The servant process's body: returns its exit code (0 when the loop went away, 2 when
/// the disk cannot be used).
pub fn servant_main(args: &ServantArgs) -> i32 {
    let sock = match io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixDatagram::from)
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("heartwire disk-servant: stdin is not the loop's socket: {e}");
            return 2;
        }
    };
    let say = |kind: u8, text: &str| {
        let mut m = Vec::with_capacity(text.len() + 1);
        m.push(kind);
        m.extend_from_slice(text.as_bytes());
        let _ = sock.send(&m);
    };
    match Servant::open(args) {
        Ok(mut s) => {
            say(b'R', &s.describe());
            s.serve(&sock, &say);
            0
        }
        Err(e) => {
            say(b'E', &e);
            2
        }
    }
}

struct Servant {
    disk: DirectDisk,
    header: Header,
    node: u8,
    nodes: Vec<u8>,
    sector: usize,
    /// One sector for writes.
    out: AlignedBuf,
    /// The heartbeat slots, then this node's mailbox row.
    slots_buf: AlignedBuf,
    mailbox_buf: AlignedBuf,
    /// Last frame seen per (heartbeat slot | mailbox cell) of each sender, to report
    /// only changes.
    last: Vec<Vec<u8>>,
}

impl Servant {
    fn open(a: &ServantArgs) -> Result<Servant, String> {
        let disk = DirectDisk::open(&a.device).map_err(|e| e.to_string())?;
        let sector = disk.sector_size();
        let mut first = AlignedBuf::new(sector, sector);
        disk.read_at(0, first.as_mut_slice())
            .map_err(|e| format!("{}: reading the header: {e}", a.device))?;
        let want = Header {
            cluster: a.cluster,
            slots: a.slots,
            sector: u32::try_from(sector).map_err(|_| "sector size".to_owned())?,
        };
        let header = match Header::parse(first.as_slice()) {
            Ok(h) => h,
            Err(HeaderError::Blank) => {
                want.emit(first.as_mut_slice());
                disk.write_at(0, first.as_slice())
                    .map_err(|e| format!("{}: writing the header: {e}", a.device))?;
                want
            }
            Err(HeaderError::Foreign) => {
                return Err(format!(
                    "{}: the first sector holds data that is not a heartwire header; refusing to \
                     overwrite it (if the device is meant for heartwire, zero its first sector: \
                     dd if=/dev/zero of={} bs={sector} count=1 oflag=direct)",
                    a.device, a.device
                ));
            }
        };
        if header.cluster != a.cluster {
            return Err(format!(
                "{}: the disk belongs to cluster id {}, this is cluster {}",
                a.device, header.cluster, a.cluster
            ));
        }
        if header.sector != want.sector || header.slots < u16::from(a.node) {
            return Err(format!(
                "{}: the layout on disk ({} slots, {}-byte sectors) does not fit this node \
                 (id {}, {sector}-byte sectors)",
                a.device, header.slots, header.sector, a.node
            ));
        }
        let slots = usize::from(header.slots);
        Ok(Servant {
            disk,
            header,
            node: a.node,
            nodes: a.nodes.clone(),
            sector,
            out: AlignedBuf::new(sector, sector),
            slots_buf: AlignedBuf::new(slots * sector, sector),
            mailbox_buf: AlignedBuf::new(slots * sector, sector),
            last: vec![Vec::with_capacity(FRAME_MAX); 2 * slots],
        })
    }

    fn describe(&self) -> String {
        format!(
            "{}: cluster {} layout, {} slots, {}-byte sectors",
            self.disk.device(),
            self.header.cluster,
            self.header.slots,
            self.sector
        )
    }

    fn serve(&mut self, sock: &UnixDatagram, say: &dyn Fn(u8, &str)) {
        let mut msg = vec![0u8; FRAME_MAX + 1];
        // Wake up now and then even without heartbeats, to notice a loop that is gone.
        let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
        loop {
            let n = match sock.recv(&mut msg) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if std::os::unix::process::parent_id() == 1 {
                        return;
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let frame = &msg[1..n];
            let result = match msg[0] {
                b'H' => self.heartbeat(frame).and_then(|()| self.read_all(sock)),
                b'M' => self.mailbox(frame),
                _ => Ok(()),
            };
            if let Err(e) = result {
                say(b'E', &format!("{}: {e}", self.disk.device()));
            }
        }
    }

    fn put(&mut self, sector: u64, frame: &[u8]) -> io::Result<()> {
        if !emit_slot(frame, self.out.as_mut_slice()) {
            return Err(io::Error::other("frame larger than a sector"));
        }
        self.disk
            .write_at(sector * self.sector as u64, self.out.as_slice())
    }

    /// Writes this node's heartbeat slot and reads it back.
    fn heartbeat(&mut self, frame: &[u8]) -> io::Result<()> {
        let sector = self.header.heartbeat_sector(self.node);
        self.put(sector, frame)?;
        let mut back = AlignedBuf::new(self.sector, self.sector);
        self.disk
            .read_at(sector * self.sector as u64, back.as_mut_slice())?;
        if back.as_slice() != self.out.as_slice() {
            return Err(io::Error::other(
                "read-back of this node's slot differs from what was written",
            ));
        }
        Ok(())
    }

    /// Writes `frame` to this node's cell of every other path node's mailbox row.
    fn mailbox(&mut self, frame: &[u8]) -> io::Result<()> {
        for i in 0..self.nodes.len() {
            let r = self.nodes[i];
            if r != self.node {
                let sector = self.header.mailbox_sector(r, self.node);
                self.put(sector, frame)?;
            }
        }
        Ok(())
    }

    /// Reads every heartbeat slot and this node's mailbox row; reports changed frames.
    fn read_all(&mut self, sock: &UnixDatagram) -> io::Result<()> {
        let sector = self.sector as u64;
        self.disk.read_at(
            self.header.heartbeat_sector(1) * sector,
            self.slots_buf.as_mut_slice(),
        )?;
        self.disk.read_at(
            self.header.mailbox_sector(self.node, 1) * sector,
            self.mailbox_buf.as_mut_slice(),
        )?;
        let slots = usize::from(self.header.slots);
        let mut garbage = 0u32;
        let mut out = [0u8; FRAME_MAX + 1];
        out[0] = b'F';
        for id in self.nodes.iter().copied().filter(|id| *id != self.node) {
            let s = usize::from(id) - 1;
            for (region, last) in [(&self.slots_buf, s), (&self.mailbox_buf, slots + s)] {
                let bytes = &region.as_slice()[s * self.sector..(s + 1) * self.sector];
                match parse_slot(bytes) {
                    Slot::Empty => {}
                    Slot::Corrupt => garbage += 1,
                    Slot::Frame(f) if f != self.last[last].as_slice() => {
                        self.last[last].clear();
                        self.last[last].extend_from_slice(f);
                        out[1..=f.len()].copy_from_slice(f);
                        let _ = sock.send(&out[..=f.len()]);
                    }
                    Slot::Frame(_) => {}
                }
            }
        }
        if garbage > 0 {
            let mut g = [b'G', 0, 0, 0, 0];
            g[1..].copy_from_slice(&garbage.to_be_bytes());
            let _ = sock.send(&g);
        }
        Ok(())
    }
}
