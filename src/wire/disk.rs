//! The shared-disk heartbeat layout (DESIGN §3): a header sector, one heartbeat slot per
//! node, and a mailbox of one slot per (recipient, sender) pair. Every slot holds one
//! ordinary frame (with its own CRC and tag) wrapped in a slot header with a second CRC,
//! so a torn or stale sector is recognised before the frame is even looked at.
//!
//! ```text
//! sector                      content
//! 0                           header
//! 1 ..= slots                 heartbeat slot of node id s (its newest heartbeat)
//! 1 + slots + (r-1)*slots     mailbox row of recipient r: one slot per sender id s,
//!   + (s-1)                   holding the newest other frame (view, group state,
//!                             command) s sent; a node cut off from every network still
//!                             reads what the others tell it here
//! ```
//!
//! Header sector (rest zero):
//!
//! ```text
//! off size field
//!   0    8 magic "HWDISK" 0x00 0x01
//!   8    2 cluster id
//!  10    2 slots (highest node id the layout covers)
//!  12    4 sector size the layout was made with
//!  16    4 CRC32 over bytes 0..16
//! ```
//!
//! Slot sector (rest zero; an all-zero sector is an empty slot):
//!
//! ```text
//! off size field
//!   0    4 magic "HWS1"
//!   4    2 frame length n
//!   6    n frame
//! 6+n    4 CRC32 over bytes 0..6+n
//! ```
//!
//! A disk whose first sector is all zero is blank and gets a header; a disk holding
//! anything else that is not this cluster's header is refused, never overwritten.

/// Header magic.
pub const MAGIC: [u8; 8] = *b"HWDISK\x00\x01";
/// Slot magic.
pub const SLOT_MAGIC: [u8; 4] = *b"HWS1";
/// Slot bytes before the frame.
pub const SLOT_HEADER: usize = 6;
/// Slot bytes besides the frame.
pub const SLOT_OVERHEAD: usize = SLOT_HEADER + 4;

/// The disk header as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Cluster id.
    pub cluster: u16,
    /// Highest node id covered.
    pub slots: u16,
    /// Sector size.
    pub sector: u32,
}

/// Why a header sector was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// All zero: a blank disk.
    Blank,
    /// Not a heartwire header (magic or CRC wrong).
    Foreign,
}

impl Header {
    /// Parses the first sector.
    pub fn parse(s: &[u8]) -> Result<Header, HeaderError> {
        if s.len() < 20 {
            return Err(HeaderError::Foreign);
        }
        if s.iter().all(|b| *b == 0) {
            return Err(HeaderError::Blank);
        }
        if s[..8] != MAGIC || be_u32(&s[16..20]) != crc32fast::hash(&s[..16]) {
            return Err(HeaderError::Foreign);
        }
        Ok(Header {
            cluster: u16::from_be_bytes([s[8], s[9]]),
            slots: u16::from_be_bytes([s[10], s[11]]),
            sector: be_u32(&s[12..16]),
        })
    }

    /// Writes the header sector into `s` (zeroing the rest).
    ///
    /// # Panics
    /// If `s` is shorter than 20 bytes (a caller bug).
    pub fn emit(&self, s: &mut [u8]) {
        s.fill(0);
        s[..8].copy_from_slice(&MAGIC);
        s[8..10].copy_from_slice(&self.cluster.to_be_bytes());
        s[10..12].copy_from_slice(&self.slots.to_be_bytes());
        s[12..16].copy_from_slice(&self.sector.to_be_bytes());
        let crc = crc32fast::hash(&s[..16]);
        s[16..20].copy_from_slice(&crc.to_be_bytes());
    }

    /// Sector of node `id`'s heartbeat slot.
    pub fn heartbeat_sector(&self, id: u8) -> u64 {
        u64::from(id)
    }

    /// Sector of the mailbox slot that `sender` writes for `recipient`.
    pub fn mailbox_sector(&self, recipient: u8, sender: u8) -> u64 {
        let slots = u64::from(self.slots);
        1 + slots + (u64::from(recipient) - 1) * slots + (u64::from(sender) - 1)
    }

    /// Sectors the layout spans.
    pub fn sectors(&self) -> u64 {
        let slots = u64::from(self.slots);
        1 + slots + slots * slots
    }
}

/// Slots a layout for nodes up to `max_id` gets: rounded up to a multiple of 8, so
/// adding a node with a nearby id does not need a new layout.
pub fn slots_for(max_id: u8) -> u16 {
    u16::from(max_id).div_ceil(8) * 8
}

/// What a slot sector holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<'a> {
    /// Nothing written yet.
    Empty,
    /// A frame.
    Frame(&'a [u8]),
    /// Magic, length or CRC wrong: a torn or foreign write.
    Corrupt,
}

/// Parses a slot sector.
pub fn parse_slot(s: &[u8]) -> Slot<'_> {
    if s.len() < SLOT_OVERHEAD {
        return Slot::Corrupt;
    }
    if s[..SLOT_HEADER].iter().all(|b| *b == 0) {
        return Slot::Empty;
    }
    if s[..4] != SLOT_MAGIC {
        return Slot::Corrupt;
    }
    let n = usize::from(u16::from_be_bytes([s[4], s[5]]));
    let end = SLOT_HEADER + n;
    if end + 4 > s.len() || be_u32(&s[end..end + 4]) != crc32fast::hash(&s[..end]) {
        return Slot::Corrupt;
    }
    Slot::Frame(&s[SLOT_HEADER..end])
}

/// Writes `frame` as a slot into sector buffer `s` (zeroing the rest); `false` when it
/// does not fit.
pub fn emit_slot(frame: &[u8], s: &mut [u8]) -> bool {
    let Ok(n) = u16::try_from(frame.len()) else {
        return false;
    };
    let end = SLOT_HEADER + frame.len();
    if end + 4 > s.len() {
        return false;
    }
    s.fill(0);
    s[..4].copy_from_slice(&SLOT_MAGIC);
    s[4..6].copy_from_slice(&n.to_be_bytes());
    s[SLOT_HEADER..end].copy_from_slice(frame);
    let crc = crc32fast::hash(&s[..end]);
    s[end..end + 4].copy_from_slice(&crc.to_be_bytes());
    true
}

fn be_u32(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header {
            cluster: 77,
            slots: slots_for(2),
            sector: 512,
        };
        assert_eq!(h.slots, 8);
        let mut s = [0xffu8; 512];
        h.emit(&mut s);
        assert_eq!(&s[..8], b"HWDISK\x00\x01");
        assert!(s[20..].iter().all(|b| *b == 0));
        assert_eq!(Header::parse(&s), Ok(h));
        assert_eq!(h.heartbeat_sector(1), 1);
        assert_eq!(h.heartbeat_sector(8), 8);
        assert_eq!(h.mailbox_sector(1, 1), 9);
        assert_eq!(h.mailbox_sector(1, 2), 10);
        assert_eq!(h.mailbox_sector(2, 1), 17);
        assert_eq!(h.mailbox_sector(8, 8), 72);
        assert_eq!(h.sectors(), 73);
        assert_eq!(slots_for(64), 64);
        assert_eq!(slots_for(9), 16);
    }

    #[test]
    fn header_rejects_blank_and_foreign() {
        assert_eq!(Header::parse(&[0u8; 512]), Err(HeaderError::Blank));
        let mut s = [0u8; 512];
        s[0] = 0xeb; // an x86 boot sector, a filesystem, anything else
        assert_eq!(Header::parse(&s), Err(HeaderError::Foreign));
        Header {
            cluster: 1,
            slots: 8,
            sector: 512,
        }
        .emit(&mut s);
        s[9] ^= 1;
        assert_eq!(Header::parse(&s), Err(HeaderError::Foreign), "CRC");
    }

    #[test]
    fn slots_round_trip_and_reject_torn_writes() {
        let mut s = [0u8; 512];
        assert_eq!(parse_slot(&s), Slot::Empty);
        let frame = [7u8; 100];
        assert!(emit_slot(&frame, &mut s));
        assert_eq!(parse_slot(&s), Slot::Frame(&frame));
        let mut torn = s;
        torn[50] ^= 0x10;
        assert_eq!(parse_slot(&torn), Slot::Corrupt);
        let mut long = s;
        long[4] = 0xff;
        assert_eq!(parse_slot(&long), Slot::Corrupt);
        assert!(!emit_slot(&[0u8; 503], &mut s), "does not fit 512");
        assert!(emit_slot(&[0u8; 502], &mut s));
    }

    proptest! {
        #[test]
        fn arbitrary_sectors_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_slot(&data);
            let _ = Header::parse(&data);
        }
    }
}
