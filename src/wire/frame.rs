//! The v1 frame (DESIGN §3): one format for every path.
//!
//! ```text
//! off size field
//!   0    2 magic 0x4857 ("HW")
//!   2    1 version = 1
//!   3    1 kind
//!   4    2 cluster id
//!   6    1 sender node id (1..=64)
//!   7    1 path id
//!   8    4 sender incarnation
//!  12    4 sequence number (per sender, per path, wraps)
//!  16    8 sender CLOCK_MONOTONIC ns (diagnostics only)
//!  24    2 payload length n
//!  26    n payload
//! 26+n  16 auth tag (HMAC-SHA256, truncated) — only when the cluster has a key
//!  end   4 CRC32 (IEEE) over everything before
//! ```
//!
//! Whether a tag is present is a property of the cluster, not of the frame, so views are
//! made with `keyed`. Validation order (STYLE §2): minimum length → magic → version →
//! bounded payload length → exact length ([`Frame::check_len`]), then CRC
//! ([`Frame::check_crc`]) and tag ([`Frame::check_tag`]). Semantics (cluster id, known
//! node, replay) are the core's.

use super::auth::{AuthKey, TAG_LEN};

/// "HW".
pub const MAGIC: u16 = 0x4857;
/// The only version this code speaks. 2: the node-state block grew the `placed` and
/// `joining` words (a node of version 1 drops these frames as `bad_version`, and this
/// one its frames: mixed versions do not talk; README "Upgrades").
pub const VERSION: u8 = 2;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 26;
/// Bytes of the trailing CRC32.
pub const CRC_LEN: usize = 4;
/// Largest payload accepted; bounds all length arithmetic before it happens.
pub const PAYLOAD_MAX: usize = 1024;
/// Largest possible frame.
pub const FRAME_MAX: usize = HEADER_LEN + PAYLOAD_MAX + TAG_LEN + CRC_LEN;

mod field {
    use core::ops::Range;
    pub(super) const MAGIC: Range<usize> = 0..2;
    pub(super) const VERSION: usize = 2;
    pub(super) const KIND: usize = 3;
    pub(super) const CLUSTER: Range<usize> = 4..6;
    pub(super) const NODE: usize = 6;
    pub(super) const PATH: usize = 7;
    pub(super) const INCARNATION: Range<usize> = 8..12;
    pub(super) const SEQ: Range<usize> = 12..16;
    pub(super) const TIMESTAMP: Range<usize> = 16..24;
    pub(super) const PAYLOAD_LEN: Range<usize> = 24..26;
    pub(super) const PAYLOAD: usize = 26;
}

/// What a frame carries. Unknown codes are values, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: heartbeat.
    Heartbeat,
    /// 2: membership view proposal.
    ViewPropose,
    /// 3: view acknowledgement.
    ViewAck,
    /// 4: view commit.
    ViewCommit,
    /// 5: resource group state.
    GroupState,
    /// 6: operator command.
    Command,
    /// 7: reply to a command.
    Reply,
    /// 8: configuration offer.
    ConfigOffer,
    /// 9: a sentinel's death notice for the daemon incarnation it watched.
    DeathNotice,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for Kind {
    fn from(v: u8) -> Kind {
        match v {
            1 => Kind::Heartbeat,
            2 => Kind::ViewPropose,
            3 => Kind::ViewAck,
            4 => Kind::ViewCommit,
            5 => Kind::GroupState,
            6 => Kind::Command,
            7 => Kind::Reply,
            8 => Kind::ConfigOffer,
            9 => Kind::DeathNotice,
            other => Kind::Unknown(other),
        }
    }
}

impl From<Kind> for u8 {
    fn from(k: Kind) -> u8 {
        match k {
            Kind::Heartbeat => 1,
            Kind::ViewPropose => 2,
            Kind::ViewAck => 3,
            Kind::ViewCommit => 4,
            Kind::GroupState => 5,
            Kind::Command => 6,
            Kind::Reply => 7,
            Kind::ConfigOffer => 8,
            Kind::DeathNotice => 9,
            Kind::Unknown(v) => v,
        }
    }
}

/// Why a frame was rejected by the wire layer. One variant per drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the header and CRC, or than its declared payload needs.
    Short,
    /// Longer than its declared payload needs, or a payload length above [`PAYLOAD_MAX`].
    Overlong,
    /// The first two bytes are not "HW".
    BadMagic,
    /// A version this code does not speak.
    BadVersion,
    /// The CRC32 does not match.
    BadCrc,
    /// The authentication tag does not match the cluster key.
    BadTag,
}

/// Total frame length for a payload of `payload_len` bytes.
pub const fn buffer_len(payload_len: usize, keyed: bool) -> usize {
    HEADER_LEN + payload_len + if keyed { TAG_LEN } else { 0 } + CRC_LEN
}

/// A view over the bytes of one frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
    keyed: bool,
}

impl<'a> Frame<&'a [u8]> {
    /// The payload, borrowed for as long as the buffer itself (a message parsed from it
    /// can outlive this view).
    pub fn payload_ref(&self) -> &'a [u8] {
        &self.buffer[field::PAYLOAD..field::PAYLOAD + self.payload_len()]
    }
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without any check. Accessors may panic until [`Self::check_len`]
    /// has succeeded.
    pub const fn new_unchecked(buffer: T, keyed: bool) -> Frame<T> {
        Frame { buffer, keyed }
    }

    /// Wraps `buffer` and checks its structure ([`Self::check_len`]).
    pub fn new_checked(buffer: T, keyed: bool) -> Result<Frame<T>, FrameError> {
        let frame = Self::new_unchecked(buffer, keyed);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks, in this order: minimum length, magic, version, payload length bound, exact
    /// length. After it succeeds no accessor panics.
    pub fn check_len(&self) -> Result<(), FrameError> {
        let data = self.buffer.as_ref();
        // DESIGN §3: header and CRC are always present.
        if data.len() < HEADER_LEN + CRC_LEN {
            return Err(FrameError::Short);
        }
        if u16::from_be_bytes([data[0], data[1]]) != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if data[field::VERSION] != VERSION {
            return Err(FrameError::BadVersion);
        }
        // Bound the count before any arithmetic on it.
        let payload_len = usize::from(u16::from_be_bytes([data[24], data[25]]));
        if payload_len > PAYLOAD_MAX {
            return Err(FrameError::Overlong);
        }
        let total = buffer_len(payload_len, self.keyed);
        match data.len().cmp(&total) {
            core::cmp::Ordering::Less => Err(FrameError::Short),
            core::cmp::Ordering::Greater => Err(FrameError::Overlong),
            core::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// Checks the trailing CRC32 (IEEE) over everything before it.
    pub fn check_crc(&self) -> Result<(), FrameError> {
        let data = self.buffer.as_ref();
        let (body, crc) = data.split_at(data.len() - CRC_LEN);
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) == want {
            Ok(())
        } else {
            Err(FrameError::BadCrc)
        }
    }

    /// Checks the tag with `key`. A cluster without a key has no tag: always `Ok`.
    pub fn check_tag(&self, key: Option<&AuthKey>) -> Result<(), FrameError> {
        match key {
            None => Ok(()),
            Some(key) if key.verify(self.authenticated(), self.tag()) => Ok(()),
            Some(_) => Err(FrameError::BadTag),
        }
    }

    fn authenticated(&self) -> &[u8] {
        &self.buffer.as_ref()[..field::PAYLOAD + self.payload_len()]
    }

    fn tag(&self) -> &[u8] {
        let start = field::PAYLOAD + self.payload_len();
        let len = if self.keyed { TAG_LEN } else { 0 };
        &self.buffer.as_ref()[start..start + len]
    }

    fn read_u16(&self, r: core::ops::Range<usize>) -> u16 {
        let d = &self.buffer.as_ref()[r];
        u16::from_be_bytes([d[0], d[1]])
    }

    fn read_u32(&self, r: core::ops::Range<usize>) -> u32 {
        let d = &self.buffer.as_ref()[r];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// Frame kind.
    pub fn kind(&self) -> Kind {
        Kind::from(self.buffer.as_ref()[field::KIND])
    }
    /// Cluster id.
    pub fn cluster(&self) -> u16 {
        self.read_u16(field::CLUSTER)
    }
    /// Sender node id.
    pub fn node(&self) -> u8 {
        self.buffer.as_ref()[field::NODE]
    }
    /// Path id the sender sent this on.
    pub fn path(&self) -> u8 {
        self.buffer.as_ref()[field::PATH]
    }
    /// Sender incarnation.
    pub fn incarnation(&self) -> u32 {
        self.read_u32(field::INCARNATION)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        self.read_u32(field::SEQ)
    }
    /// Sender's CLOCK_MONOTONIC at send, ns.
    pub fn timestamp_ns(&self) -> u64 {
        let d = &self.buffer.as_ref()[field::TIMESTAMP];
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }
    /// Declared payload length.
    pub fn payload_len(&self) -> usize {
        usize::from(self.read_u16(field::PAYLOAD_LEN))
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..field::PAYLOAD + self.payload_len()]
    }
    /// The header as a value.
    pub fn header(&self) -> HeaderRepr {
        HeaderRepr {
            kind: self.kind(),
            cluster: self.cluster(),
            node: self.node(),
            path: self.path(),
            incarnation: self.incarnation(),
            seq: self.seq(),
            timestamp_ns: self.timestamp_ns(),
        }
    }
}

/// Where the frame ends inside a buffer that may carry link-layer padding after it
/// (Ethernet pads frames to 60 bytes). Returns the frame's length if the buffer holds a
/// complete frame header with a bounded payload length, so the caller can slice off the
/// padding; the slice must still go through [`Frame::new_checked`].
pub fn padded_len(data: &[u8], keyed: bool) -> Option<usize> {
    if data.len() < HEADER_LEN + CRC_LEN {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([data[24], data[25]]));
    if payload_len > PAYLOAD_MAX {
        return None;
    }
    let total = buffer_len(payload_len, keyed);
    (total <= data.len()).then_some(total)
}

/// The header fields of a frame as a validated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    /// Frame kind.
    pub kind: Kind,
    /// Cluster id.
    pub cluster: u16,
    /// Sender node id.
    pub node: u8,
    /// Path id.
    pub path: u8,
    /// Sender incarnation.
    pub incarnation: u32,
    /// Sequence number.
    pub seq: u32,
    /// Sender CLOCK_MONOTONIC ns.
    pub timestamp_ns: u64,
}

/// The caller's buffer cannot hold the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall;

impl HeaderRepr {
    /// Emits a complete frame into `buf`: header, `payload_len` bytes written by
    /// `write_payload` (which gets exactly that many bytes), tag (when `key` is given) and
    /// CRC. Returns the frame length.
    pub fn emit(
        &self,
        buf: &mut [u8],
        payload_len: usize,
        key: Option<&AuthKey>,
        write_payload: impl FnOnce(&mut [u8]),
    ) -> Result<usize, BufferTooSmall> {
        assert!(
            payload_len <= PAYLOAD_MAX,
            "payload {payload_len} above PAYLOAD_MAX"
        );
        let total = buffer_len(payload_len, key.is_some());
        let buf = buf.get_mut(..total).ok_or(BufferTooSmall)?;
        buf[field::MAGIC].copy_from_slice(&MAGIC.to_be_bytes());
        buf[field::VERSION] = VERSION;
        buf[field::KIND] = u8::from(self.kind);
        buf[field::CLUSTER].copy_from_slice(&self.cluster.to_be_bytes());
        buf[field::NODE] = self.node;
        buf[field::PATH] = self.path;
        buf[field::INCARNATION].copy_from_slice(&self.incarnation.to_be_bytes());
        buf[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        buf[field::TIMESTAMP].copy_from_slice(&self.timestamp_ns.to_be_bytes());
        let len16 = u16::try_from(payload_len).expect("invariant: payload_len <= PAYLOAD_MAX");
        buf[field::PAYLOAD_LEN].copy_from_slice(&len16.to_be_bytes());
        let body_end = field::PAYLOAD + payload_len;
        write_payload(&mut buf[field::PAYLOAD..body_end]);
        let mut crc_at = body_end;
        if let Some(key) = key {
            let mut tag = [0u8; TAG_LEN];
            key.sign(&buf[..body_end], &mut tag);
            buf[body_end..body_end + TAG_LEN].copy_from_slice(&tag);
            crc_at += TAG_LEN;
        }
        let crc = crc32fast::hash(&buf[..crc_at]);
        buf[crc_at..crc_at + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> HeaderRepr {
        HeaderRepr {
            kind: Kind::Heartbeat,
            cluster: 0x0102,
            node: 3,
            path: 1,
            incarnation: 0xdead_beef,
            seq: 7,
            timestamp_ns: 0x0001_0203_0405_0607,
        }
    }

    /// Golden bytes of an unkeyed frame with a 2-byte payload, written by hand from the
    /// table in DESIGN §3; the CRC is crc32(IEEE) of the first 28 bytes.
    const GOLDEN: [u8; 32] = [
        0x48, 0x57, 0x02, 0x01, 0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00,
        0x07, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x00, 0x02, 0xaa, 0xbb, 0x6b, 0xe2,
        0x9d, 0xdf,
    ];

    #[test]
    fn the_version_line_names_this_wire_version() {
        let line = crate::cli::VERSION_LINE;
        assert!(line.ends_with(&format!(" (wire {VERSION})")), "{line}");
    }

    #[test]
    fn emit_matches_golden() {
        let mut buf = [0xa5u8; 64];
        let n = header()
            .emit(&mut buf, 2, None, |p| p.copy_from_slice(&[0xaa, 0xbb]))
            .unwrap();
        assert_eq!(n, 32);
        assert_eq!(&buf[..28], &GOLDEN[..28]);
        assert_eq!(&buf[28..32], &crc32fast::hash(&GOLDEN[..28]).to_be_bytes());
        assert_eq!(buf[..32], GOLDEN, "full golden frame");
        assert_eq!(buf[32], 0xa5, "nothing written past the frame");
    }

    #[test]
    fn parse_golden() {
        let f = Frame::new_checked(&GOLDEN[..], false).unwrap();
        f.check_crc().unwrap();
        assert_eq!(f.header(), header());
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn each_check_has_its_error() {
        let g = GOLDEN;
        assert_eq!(
            Frame::new_checked(&g[..29], false).unwrap_err(),
            FrameError::Short
        );
        let mut m = g;
        m[0] = 0;
        assert_eq!(
            Frame::new_checked(&m[..], false).unwrap_err(),
            FrameError::BadMagic
        );
        let mut v = g;
        v[2] = 1;
        assert_eq!(
            Frame::new_checked(&v[..], false).unwrap_err(),
            FrameError::BadVersion
        );
        let mut big = g;
        big[24] = 0xff;
        assert_eq!(
            Frame::new_checked(&big[..], false).unwrap_err(),
            FrameError::Overlong
        );
        assert_eq!(
            Frame::new_checked(&g[..31], false).unwrap_err(),
            FrameError::Short
        );
        let mut long = [0u8; 33];
        long[..32].copy_from_slice(&g);
        assert_eq!(
            Frame::new_checked(&long[..], false).unwrap_err(),
            FrameError::Overlong
        );
        let mut c = g;
        c[27] ^= 1;
        let f = Frame::new_checked(&c[..], false).unwrap();
        assert_eq!(f.check_crc().unwrap_err(), FrameError::BadCrc);
        // A keyed view of an unkeyed frame is too short for its tag.
        assert_eq!(
            Frame::new_checked(&g[..], true).unwrap_err(),
            FrameError::Short
        );
    }

    #[test]
    fn keyed_round_trip_and_wrong_key() {
        let key = AuthKey::new(b"0123456789abcdef").unwrap();
        let other = AuthKey::new(b"0123456789abcdeX").unwrap();
        let mut buf = [0u8; 128];
        let n = header()
            .emit(&mut buf, 2, Some(&key), |p| p.fill(9))
            .unwrap();
        assert_eq!(n, 32 + TAG_LEN);
        let f = Frame::new_checked(&buf[..n], true).unwrap();
        f.check_crc().unwrap();
        f.check_tag(Some(&key)).unwrap();
        assert_eq!(f.check_tag(Some(&other)).unwrap_err(), FrameError::BadTag);
    }

    #[test]
    fn padded_len_strips_ethernet_padding() {
        let mut padded = [0u8; 60];
        padded[..32].copy_from_slice(&GOLDEN);
        assert_eq!(padded_len(&padded, false), Some(32));
        assert_eq!(padded_len(&padded[..31], false), None);
    }

    #[test]
    fn too_small_buffer() {
        let mut buf = [0u8; 31];
        assert_eq!(
            header().emit(&mut buf, 2, None, |_| {}),
            Err(BufferTooSmall)
        );
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn emit_parse_round_trip(kind: u8, cluster: u16, node: u8, path: u8, inc: u32,
                                     seq: u32, ts: u64,
                                     payload in proptest::collection::vec(any::<u8>(), 0..200),
                                     keyed: bool) {
                let key = AuthKey::new(b"proptest-key-0123").unwrap();
                let key = keyed.then_some(&key);
                let h = HeaderRepr { kind: Kind::from(kind), cluster, node, path,
                                     incarnation: inc, seq, timestamp_ns: ts };
                let mut buf = [0u8; FRAME_MAX];
                let n = h.emit(&mut buf, payload.len(), key, |p| p.copy_from_slice(&payload)).unwrap();
                let f = Frame::new_checked(&buf[..n], keyed).unwrap();
                prop_assert!(f.check_crc().is_ok());
                prop_assert!(f.check_tag(key).is_ok());
                prop_assert_eq!(f.header(), h);
                prop_assert_eq!(f.payload(), &payload[..]);
            }

            #[test]
            fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1200),
                                           keyed: bool) {
                let key = AuthKey::new(b"proptest-key-0123").unwrap();
                if let Ok(f) = Frame::new_checked(&data[..], keyed) {
                    let _ = f.check_crc();
                    let _ = f.check_tag(keyed.then_some(&key));
                    let _ = f.header();
                    let _ = f.payload();
                }
                let _ = padded_len(&data, keyed);
            }
        }
    }
}
