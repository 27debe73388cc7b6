//! The heartbeat payload (DESIGN §3): the sender's node-state block (membership and group
//! holdings, see [`super::state`]), its config hash, an echo of one peer's timestamp for
//! RTT, and which nodes the sender hears on each path, so a one-way failure is seen from
//! both ends.
//!
//! ```text
//! off size field
//!   0  120 node-state block (view, installed, agreed, holds, failed, online, generation,
//!          lost, maintenance, offline, race, race outcome, placed, joining)
//! 120    8 config hash
//! 128    8 refused: the nodes the sender hears but keeps out of its views (bit id-1:
//!          their current incarnation runs another config), so a third node does not
//!          take two nodes that hear each other but refuse each other for a pair
//! 136    1 echo node id (0: no echo)
//! 137    1 path count k (<= MAX_PATHS)
//! 138    8 echo: the echoed node's sender timestamp, as it arrived here
//! 146    4 echo: ns the echo was held here between arrival and this send
//! 150  8*k heard: for path i, bit (id-1) set when the sender currently hears node id on i
//! ```
//!
//! RTT at the echoed node = its arrival time − echoed timestamp − hold (one clock: its own).
//!
//! **Compact form** ([`CompactRepr`], serial lines): a 115200-baud line moves 11.5 bytes
//! per millisecond, so a full heartbeat frame (about 200 bytes with tag) would take 17 ms.
//! On a serial path most heartbeats are compact, 10 bytes of payload; every
//! [`FULL_EVERY`]th is full, and a changed state block goes out at once as a group-state
//! frame (kind 5) anyway. A compact heartbeat renews the sender's state block only when
//! its generation matches the one the receiver holds.
//!
//! ```text
//! off size field
//!   0    8 generation of the sender's state block
//!   8    1 path count k (<= MAX_PATHS)
//!   9    1 hears-you: bit i set when the sender hears the receiver (the other end of the
//!          point-to-point line) on path i
//! ```

use super::MAX_PATHS;
use super::state::{self, StateError, StateRepr};

/// Bytes before the heard bitmaps.
pub const FIXED_LEN: usize = 150;

/// Length of a compact heartbeat payload.
pub const COMPACT_LEN: usize = 10;

/// On a serial path, one heartbeat in this many is full.
pub const FULL_EVERY: u32 = 8;

mod field {
    use core::ops::Range;
    pub(super) const CONFIG_HASH: Range<usize> = 120..128;
    pub(super) const REFUSED: Range<usize> = 128..136;
    pub(super) const ECHO_NODE: usize = 136;
    pub(super) const PATH_COUNT: usize = 137;
    pub(super) const ECHO_TS: Range<usize> = 138..146;
    pub(super) const ECHO_HOLD: Range<usize> = 146..150;
    pub(super) const HEARD: usize = 150;
    const _: () = assert!(CONFIG_HASH.start == super::state::LEN);
}

/// A compact heartbeat payload (serial lines; see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactRepr {
    /// Generation of the sender's state block.
    pub generation: u64,
    /// Number of paths `hears_you` covers.
    pub path_count: u8,
    /// Bit i: the sender hears the receiver on path i.
    pub hears_you: u8,
}

impl CompactRepr {
    /// Parses a payload of exactly [`COMPACT_LEN`] bytes.
    pub fn parse(p: &[u8]) -> Result<CompactRepr, HeartbeatError> {
        if p.len() != COMPACT_LEN {
            return Err(HeartbeatError::BadLength);
        }
        let path_count = p[8];
        if usize::from(path_count) > MAX_PATHS {
            return Err(HeartbeatError::TooManyPaths);
        }
        Ok(CompactRepr {
            generation: be_u64(&p[..8]),
            path_count,
            hears_you: p[9],
        })
    }

    /// Writes the payload into `p` ([`COMPACT_LEN`] bytes).
    ///
    /// # Panics
    /// If `p` has another length (a caller bug).
    pub fn emit(&self, p: &mut [u8]) {
        assert_eq!(p.len(), COMPACT_LEN, "compact heartbeat buffer length");
        p[..8].copy_from_slice(&self.generation.to_be_bytes());
        p[8] = self.path_count;
        p[9] = self.hears_you;
    }

    /// Whether the sender hears the receiver on `path`.
    pub fn hears(&self, path: usize) -> bool {
        path < usize::from(self.path_count) && self.hears_you & (1 << path) != 0
    }
}

/// Why a heartbeat payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatError {
    /// Shorter than the fixed part.
    Short,
    /// Path count above [`MAX_PATHS`].
    TooManyPaths,
    /// Length does not match the path count.
    BadLength,
    /// The node-state block holds a value no sender writes (a race outcome above 2).
    BadState,
}

/// An echoed timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    /// Whose timestamp this is.
    pub node: u8,
    /// That node's sender timestamp, as received.
    pub timestamp_ns: u64,
    /// How long the echoing node held it before sending.
    pub hold_ns: u32,
}

/// A heartbeat payload as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatRepr {
    /// The sender's membership and holdings.
    pub state: StateRepr,
    /// Sender's config hash.
    pub config_hash: u64,
    /// The nodes the sender hears but keeps out of its views (bit id-1).
    pub refused: u64,
    /// Echo for RTT measurement.
    pub echo: Option<Echo>,
    /// Number of valid entries in `heard`.
    pub path_count: u8,
    /// Per path, the bitmap of node ids (bit id-1) the sender hears.
    pub heard: [u64; MAX_PATHS],
}

impl HeartbeatRepr {
    /// Parses a payload.
    pub fn parse(p: &[u8]) -> Result<HeartbeatRepr, HeartbeatError> {
        if p.len() < FIXED_LEN {
            return Err(HeartbeatError::Short);
        }
        let path_count = p[field::PATH_COUNT];
        let k = usize::from(path_count);
        // Bound the count before computing a length from it.
        if k > MAX_PATHS {
            return Err(HeartbeatError::TooManyPaths);
        }
        if p.len() != FIXED_LEN + 8 * k {
            return Err(HeartbeatError::BadLength);
        }
        let echo_node = p[field::ECHO_NODE];
        let echo = (echo_node != 0).then(|| Echo {
            node: echo_node,
            timestamp_ns: be_u64(&p[field::ECHO_TS]),
            hold_ns: be_u32(&p[field::ECHO_HOLD]),
        });
        let mut heard = [0u64; MAX_PATHS];
        for (i, h) in heard.iter_mut().enumerate().take(k) {
            let at = field::HEARD + 8 * i;
            *h = be_u64(&p[at..at + 8]);
        }
        Ok(HeartbeatRepr {
            state: StateRepr::parse(p).map_err(|e| match e {
                StateError::Length => HeartbeatError::Short,
                StateError::RaceOutcome => HeartbeatError::BadState,
            })?,
            config_hash: be_u64(&p[field::CONFIG_HASH]),
            refused: be_u64(&p[field::REFUSED]),
            echo,
            path_count,
            heard,
        })
    }

    /// Payload length when emitted.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + 8 * usize::from(self.path_count)
    }

    /// Writes the payload into `p`, which must be exactly [`Self::buffer_len`] long.
    ///
    /// # Panics
    /// If `p` has another length or `path_count` exceeds [`MAX_PATHS`] (caller bugs).
    pub fn emit(&self, p: &mut [u8]) {
        assert!(
            usize::from(self.path_count) <= MAX_PATHS,
            "path_count {}",
            self.path_count
        );
        assert_eq!(p.len(), self.buffer_len(), "heartbeat buffer length");
        self.state.emit(&mut p[..state::LEN]);
        p[field::CONFIG_HASH].copy_from_slice(&self.config_hash.to_be_bytes());
        p[field::REFUSED].copy_from_slice(&self.refused.to_be_bytes());
        let echo = self.echo.unwrap_or(Echo {
            node: 0,
            timestamp_ns: 0,
            hold_ns: 0,
        });
        p[field::ECHO_NODE] = echo.node;
        p[field::PATH_COUNT] = self.path_count;
        p[field::ECHO_TS].copy_from_slice(&echo.timestamp_ns.to_be_bytes());
        p[field::ECHO_HOLD].copy_from_slice(&echo.hold_ns.to_be_bytes());
        for i in 0..usize::from(self.path_count) {
            let at = field::HEARD + 8 * i;
            p[at..at + 8].copy_from_slice(&self.heard[i].to_be_bytes());
        }
    }

    /// Whether the sender hears node `id` on path `path`.
    pub fn hears(&self, path: usize, id: u8) -> bool {
        path < usize::from(self.path_count)
            && (1..=64).contains(&id)
            && self.heard[path] & (1u64 << (id - 1)) != 0
    }
}

fn be_u64(d: &[u8]) -> u64 {
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn be_u32(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HeartbeatRepr {
        let mut heard = [0u64; MAX_PATHS];
        heard[0] = 0b101;
        heard[1] = 1 << 63;
        HeartbeatRepr {
            state: StateRepr {
                view: 5,
                installed: 4,
                agreed_number: 4,
                agreed: 0b11,
                holds: 1,
                failed: 2,
                online: 1,
                generation: 9,
                lost: 4,
                maintenance: 3,
                offline: 6,
                race: 0b11,
                race_outcome: state::RACE_WON,
                placed: 0b1001,
                joining: 0b100,
            },
            config_hash: 0x1122_3344_5566_7788,
            refused: 0b111,
            echo: Some(Echo {
                node: 2,
                timestamp_ns: 0x0a0b,
                hold_ns: 0x0c0d,
            }),
            path_count: 2,
            heard,
        }
    }

    const GOLDEN: [u8; 166] = [
        0, 0, 0, 0, 0, 0, 0, 5, // view
        0, 0, 0, 0, 0, 0, 0, 4, // installed
        0, 0, 0, 0, 0, 0, 0, 4, // agreed number
        0, 0, 0, 0, 0, 0, 0, 3, // agreed members
        0, 0, 0, 0, 0, 0, 0, 1, // holds
        0, 0, 0, 0, 0, 0, 0, 2, // failed
        0, 0, 0, 0, 0, 0, 0, 1, // online
        0, 0, 0, 0, 0, 0, 0, 9, // generation
        0, 0, 0, 0, 0, 0, 0, 4, // lost
        0, 0, 0, 0, 0, 0, 0, 3, // maintenance epoch
        0, 0, 0, 0, 0, 0, 0, 6, // offline
        0, 0, 0, 0, 0, 0, 0, 3, // race
        0, 0, 0, 0, 0, 0, 0, 1, // race outcome
        0, 0, 0, 0, 0, 0, 0, 0b1001, // placed
        0, 0, 0, 0, 0, 0, 0, 0b100, // joining
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // config hash
        0, 0, 0, 0, 0, 0, 0, 7, // refused
        2, 2, // echo node, path count
        0, 0, 0, 0, 0, 0, 0x0a, 0x0b, // echo ts
        0, 0, 0x0c, 0x0d, // hold
        0, 0, 0, 0, 0, 0, 0, 0b101, // heard[0]
        0x80, 0, 0, 0, 0, 0, 0, 0, // heard[1]
    ];

    #[test]
    fn golden() {
        let mut buf = [0xa5u8; 166];
        sample().emit(&mut buf);
        assert_eq!(buf, GOLDEN);
        assert_eq!(HeartbeatRepr::parse(&GOLDEN).unwrap(), sample());
    }

    #[test]
    fn hears() {
        let hb = sample();
        assert!(hb.hears(0, 1));
        assert!(!hb.hears(0, 2));
        assert!(hb.hears(0, 3));
        assert!(hb.hears(1, 64));
        assert!(!hb.hears(2, 1), "path beyond count");
        assert!(!hb.hears(0, 0), "node 0 does not exist");
    }

    #[test]
    fn errors() {
        assert_eq!(
            HeartbeatRepr::parse(&GOLDEN[..FIXED_LEN - 1]),
            Err(HeartbeatError::Short)
        );
        assert_eq!(
            HeartbeatRepr::parse(&GOLDEN[..GOLDEN.len() - 1]),
            Err(HeartbeatError::BadLength)
        );
        let mut many = GOLDEN;
        many[field::PATH_COUNT] = 9;
        assert_eq!(
            HeartbeatRepr::parse(&many),
            Err(HeartbeatError::TooManyPaths)
        );
        let mut odd = GOLDEN;
        odd[8 * 12 + 7] = 3;
        assert_eq!(HeartbeatRepr::parse(&odd), Err(HeartbeatError::BadState));
    }

    #[test]
    fn compact_golden_and_errors() {
        let c = CompactRepr {
            generation: 0x0102,
            path_count: 3,
            hears_you: 0b101,
        };
        let mut p = [0u8; COMPACT_LEN];
        c.emit(&mut p);
        assert_eq!(p, [0, 0, 0, 0, 0, 0, 1, 2, 3, 0b101]);
        assert_eq!(CompactRepr::parse(&p), Ok(c));
        assert!(c.hears(0) && !c.hears(1) && c.hears(2) && !c.hears(5));
        assert_eq!(CompactRepr::parse(&p[..9]), Err(HeartbeatError::BadLength));
        p[8] = 9;
        assert_eq!(CompactRepr::parse(&p), Err(HeartbeatError::TooManyPaths));
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn round_trip(view: u64, hash: u64, echo in proptest::option::of((1u8..=64, any::<u64>(), any::<u32>())),
                          heard in proptest::collection::vec(any::<u64>(), 0..=MAX_PATHS)) {
                let mut h = [0u64; MAX_PATHS];
                h[..heard.len()].copy_from_slice(&heard);
                let repr = HeartbeatRepr {
                    state: StateRepr { view, installed: view / 2, agreed_number: view / 3, agreed: hash, holds: !view, failed: view ^ hash, online: hash >> 3, generation: 7, lost: view >> 5, maintenance: hash >> 9, offline: hash >> 11, race: view >> 13, race_outcome: hash % 3, placed: hash >> 17, joining: view >> 19 },
                    config_hash: hash,
                    refused: view ^ 1,
                    echo: echo.map(|(node, timestamp_ns, hold_ns)| Echo { node, timestamp_ns, hold_ns }),
                    path_count: u8::try_from(heard.len()).unwrap(), heard: h,
                };
                let mut buf = vec![0u8; repr.buffer_len()];
                repr.emit(&mut buf);
                prop_assert_eq!(HeartbeatRepr::parse(&buf).unwrap(), repr);
            }

            #[test]
            fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = HeartbeatRepr::parse(&data);
            }
        }
    }
}
