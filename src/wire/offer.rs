//! The payload of a configuration-offer frame (kind 8, DESIGN §3, §7): `heartwire sync`
//! and the cluster-wide half of `heartwire verify` move a config file to every member in
//! chunks, collect each member's verdict, then commit or abort (see `core::sync`). One
//! frame kind carries all five messages; the first byte says which.
//!
//! ```text
//! off size field (every message)
//!   0    1 op: 1 chunk, 2 verdict, 3 commit, 4 abort, 5 done, 6 checking
//!   1    1 origin: the node whose offer this is (the one the operator asked)
//!   2    1 to: the node a member's answer (verdict, done, checking) is meant for (the
//!          origin); 0 for the origin's own messages, which go to every target
//!   3    1 flag: chunk: 1 verify only, 2 install; verdict: 1 accepted, 0 refused;
//!          done: 1 installed and reloaded, 0 failed; commit, abort: 0
//!   4    4 offer id: the origin's offer number in its incarnation (1, 2, ...)
//!   8    4 origin incarnation: names the offer across an origin's restart
//! chunk
//!  12    4 total length of the config (1..=CONFIG_MAX)
//!  16    4 offset of this chunk
//!  20   32 SHA-256 of the whole config
//!  52    8 targets: bit id-1 for each node asked (Ethernet multicast reaches others)
//!  60    n data (1..=CHUNK_MAX bytes; only the last chunk may be shorter)
//! verdict
//!  12    8 config hash of the offered file as the member loaded it (0 if it did not load)
//!  20    2 errors found
//!  22    2 warnings found
//!  24    n reason or findings, UTF-8 (0..=TEXT_MAX bytes)
//! commit
//!  12   32 SHA-256 of the config to install (must equal the offer's)
//! abort
//!      (nothing more)
//! done
//!  12    n what failed, UTF-8 (empty when installed)
//! checking: the member has every chunk and is checking them
//!      (nothing more)
//! ```

use super::frame::PAYLOAD_MAX;

/// Largest config file an offer carries.
pub const CONFIG_MAX: usize = 64 * 1024;
/// Data bytes per chunk (every chunk but the last is exactly this long).
pub const CHUNK_MAX: usize = 960;
/// Most chunks of one offer.
pub const CHUNKS_MAX: usize = CONFIG_MAX.div_ceil(CHUNK_MAX);
/// Longest reason text in a verdict or done message.
pub const TEXT_MAX: usize = PAYLOAD_MAX - VERDICT_TEXT;

/// Op code: a chunk of the offered config.
pub const OP_CHUNK: u8 = 1;
/// Op code: a member's verdict on an offer.
pub const OP_VERDICT: u8 = 2;
/// Op code: install the offer.
pub const OP_COMMIT: u8 = 3;
/// Op code: forget the offer.
pub const OP_ABORT: u8 = 4;
/// Op code: a member installed (or failed to install) the offer.
pub const OP_DONE: u8 = 5;
/// Op code: a member has the whole offer and is checking it.
pub const OP_CHECKING: u8 = 6;

const HEAD: usize = 12;
const CHUNK_TARGETS: usize = 52;
const CHUNK_DATA: usize = 60;
const VERDICT_TEXT: usize = 24;
const COMMIT_LEN: usize = HEAD + 32;

/// What the origin asks of the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferMode {
    /// Check the config and answer; change nothing (`verify` on every member).
    Verify,
    /// Check, stage, and install on commit (`sync`).
    Install,
}

/// Names one offer: its origin, the origin's incarnation and its offer number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferId {
    /// The node the operator asked.
    pub origin: u8,
    /// Its incarnation.
    pub incarnation: u32,
    /// Its offer number in that incarnation.
    pub id: u32,
}

/// One offer message, borrowing its variable part from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferMsg<'a> {
    /// A piece of the config.
    Chunk {
        /// Which offer.
        offer: OfferId,
        /// Verify only, or install.
        mode: OfferMode,
        /// Whole config length.
        total: u32,
        /// Where `data` goes.
        offset: u32,
        /// SHA-256 of the whole config.
        sha: [u8; 32],
        /// The nodes asked (bit id-1).
        targets: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// A member's answer to a complete offer.
    Verdict {
        /// Which offer.
        offer: OfferId,
        /// Meant for this node (the origin).
        to: u8,
        /// Accepted (no errors, and installable by reload).
        accepted: bool,
        /// Config hash the member computed.
        hash: u64,
        /// Errors found.
        errors: u16,
        /// Warnings found.
        warnings: u16,
        /// Reason or findings.
        text: &'a [u8],
    },
    /// Install the staged offer.
    Commit {
        /// Which offer.
        offer: OfferId,
        /// SHA-256 it must have.
        sha: [u8; 32],
    },
    /// Forget the offer.
    Abort {
        /// Which offer.
        offer: OfferId,
    },
    /// A member has the whole offer and is checking it (the origin stops resending it).
    Checking {
        /// Which offer.
        offer: OfferId,
        /// Meant for this node (the origin).
        to: u8,
    },
    /// A member's result of a commit.
    Done {
        /// Which offer.
        offer: OfferId,
        /// Meant for this node (the origin).
        to: u8,
        /// Installed and reloaded.
        ok: bool,
        /// What failed.
        text: &'a [u8],
    },
}

/// Why a payload is not an offer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadOffer {
    /// Shorter than its op needs.
    Short,
    /// Unknown op or flag, or a field out of range.
    Field,
}

impl<'a> OfferMsg<'a> {
    /// Parses a payload. Lengths and ranges are checked here (a chunk lies within its
    /// config, which is at most [`CONFIG_MAX`]); what an offer means is the core's business.
    pub fn parse(p: &'a [u8]) -> Result<OfferMsg<'a>, BadOffer> {
        if p.len() < HEAD {
            return Err(BadOffer::Short);
        }
        let offer = OfferId {
            origin: p[1],
            incarnation: be32(&p[8..12]),
            id: be32(&p[4..8]),
        };
        let (to, flag) = (p[2], p[3]);
        if offer.origin == 0 || offer.id == 0 {
            return Err(BadOffer::Field);
        }
        let sha = |at: usize| -> [u8; 32] { p[at..at + 32].try_into().expect("invariant: 32") };
        match p[0] {
            OP_CHUNK => {
                if p.len() <= CHUNK_DATA {
                    return Err(BadOffer::Short);
                }
                let mode = match flag {
                    1 => OfferMode::Verify,
                    2 => OfferMode::Install,
                    _ => return Err(BadOffer::Field),
                };
                let (total, offset) = (be32(&p[12..16]), be32(&p[16..20]));
                let data = &p[CHUNK_DATA..];
                let end = u64::from(offset) + data.len() as u64;
                let in_range = total != 0
                    && total as usize <= CONFIG_MAX
                    && offset as usize % CHUNK_MAX == 0
                    && data.len() <= CHUNK_MAX
                    && end <= u64::from(total)
                    && (data.len() == CHUNK_MAX || end == u64::from(total));
                let targets = u64::from_be_bytes(
                    p[CHUNK_TARGETS..CHUNK_DATA]
                        .try_into()
                        .expect("invariant: 8"),
                );
                if !in_range || to != 0 || targets == 0 {
                    return Err(BadOffer::Field);
                }
                Ok(OfferMsg::Chunk {
                    offer,
                    mode,
                    total,
                    offset,
                    sha: sha(20),
                    targets,
                    data,
                })
            }
            OP_VERDICT => {
                if p.len() < VERDICT_TEXT {
                    return Err(BadOffer::Short);
                }
                if flag > 1 || to == 0 {
                    return Err(BadOffer::Field);
                }
                Ok(OfferMsg::Verdict {
                    offer,
                    to,
                    accepted: flag == 1,
                    hash: u64::from_be_bytes(p[12..20].try_into().expect("invariant: 8")),
                    errors: u16::from_be_bytes([p[20], p[21]]),
                    warnings: u16::from_be_bytes([p[22], p[23]]),
                    text: &p[VERDICT_TEXT..],
                })
            }
            OP_COMMIT => {
                if p.len() != COMMIT_LEN {
                    return Err(BadOffer::Short);
                }
                if flag != 0 || to != 0 {
                    return Err(BadOffer::Field);
                }
                Ok(OfferMsg::Commit {
                    offer,
                    sha: sha(12),
                })
            }
            OP_ABORT if p.len() == HEAD && flag == 0 && to == 0 => Ok(OfferMsg::Abort { offer }),
            OP_CHECKING if p.len() == HEAD && flag == 0 && to != 0 => {
                Ok(OfferMsg::Checking { offer, to })
            }
            OP_DONE if flag <= 1 && to != 0 && p.len() - HEAD <= TEXT_MAX => Ok(OfferMsg::Done {
                offer,
                to,
                ok: flag == 1,
                text: &p[HEAD..],
            }),
            _ => Err(BadOffer::Field),
        }
    }

    /// Writes the message into `p` and returns its length; texts longer than
    /// [`TEXT_MAX`] and data longer than [`CHUNK_MAX`] are cut.
    ///
    /// # Panics
    /// If `p` is shorter than [`PAYLOAD_MAX`] (a caller bug).
    pub fn emit(&self, p: &mut [u8]) -> usize {
        let p = &mut p[..PAYLOAD_MAX];
        let (op, offer, to, flag) = match *self {
            OfferMsg::Chunk { offer, mode, .. } => (
                OP_CHUNK,
                offer,
                0,
                match mode {
                    OfferMode::Verify => 1,
                    OfferMode::Install => 2,
                },
            ),
            OfferMsg::Verdict {
                offer,
                to,
                accepted,
                ..
            } => (OP_VERDICT, offer, to, u8::from(accepted)),
            OfferMsg::Commit { offer, .. } => (OP_COMMIT, offer, 0, 0),
            OfferMsg::Abort { offer } => (OP_ABORT, offer, 0, 0),
            OfferMsg::Checking { offer, to } => (OP_CHECKING, offer, to, 0),
            OfferMsg::Done { offer, to, ok, .. } => (OP_DONE, offer, to, u8::from(ok)),
        };
        p[0] = op;
        p[1] = offer.origin;
        p[2] = to;
        p[3] = flag;
        p[4..8].copy_from_slice(&offer.id.to_be_bytes());
        p[8..12].copy_from_slice(&offer.incarnation.to_be_bytes());
        let put = |p: &mut [u8], at: usize, bytes: &[u8], max: usize| {
            let n = bytes.len().min(max);
            p[at..at + n].copy_from_slice(&bytes[..n]);
            at + n
        };
        match *self {
            OfferMsg::Chunk {
                total,
                offset,
                sha,
                targets,
                data,
                ..
            } => {
                p[12..16].copy_from_slice(&total.to_be_bytes());
                p[16..20].copy_from_slice(&offset.to_be_bytes());
                p[20..52].copy_from_slice(&sha);
                p[CHUNK_TARGETS..CHUNK_DATA].copy_from_slice(&targets.to_be_bytes());
                put(p, CHUNK_DATA, data, CHUNK_MAX)
            }
            OfferMsg::Verdict {
                hash,
                errors,
                warnings,
                text,
                ..
            } => {
                p[12..20].copy_from_slice(&hash.to_be_bytes());
                p[20..22].copy_from_slice(&errors.to_be_bytes());
                p[22..24].copy_from_slice(&warnings.to_be_bytes());
                put(p, VERDICT_TEXT, text, TEXT_MAX)
            }
            OfferMsg::Commit { sha, .. } => {
                p[12..44].copy_from_slice(&sha);
                COMMIT_LEN
            }
            OfferMsg::Abort { .. } | OfferMsg::Checking { .. } => HEAD,
            OfferMsg::Done { text, .. } => put(p, HEAD, text, TEXT_MAX),
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("invariant: 4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: OfferId = OfferId {
        origin: 2,
        incarnation: 0x0a0b_0c0d,
        id: 7,
    };

    fn round_trip(m: OfferMsg<'_>) -> Vec<u8> {
        let mut p = [0u8; PAYLOAD_MAX];
        let n = m.emit(&mut p);
        assert_eq!(OfferMsg::parse(&p[..n]), Ok(m));
        p[..n].to_vec()
    }

    #[test]
    fn golden_chunk() {
        let sha = [0x11; 32];
        let bytes = round_trip(OfferMsg::Chunk {
            offer: OFFER,
            mode: OfferMode::Install,
            total: 3,
            offset: 0,
            sha,
            targets: 0b110,
            data: b"abc",
        });
        assert_eq!(
            &bytes[..20],
            &[
                1, 2, 0, 2, 0, 0, 0, 7, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 3, 0, 0, 0, 0
            ]
        );
        assert_eq!(&bytes[20..52], &sha);
        assert_eq!(&bytes[52..60], &[0, 0, 0, 0, 0, 0, 0, 0b110]);
        assert_eq!(&bytes[60..], b"abc");
    }

    #[test]
    fn golden_replies() {
        let v = round_trip(OfferMsg::Verdict {
            offer: OFFER,
            to: 2,
            accepted: false,
            hash: 0x0102_0304_0506_0708,
            errors: 1,
            warnings: 258,
            text: b"no",
        });
        assert_eq!(&v[..4], &[2, 2, 2, 0]);
        assert_eq!(&v[12..], &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 1, 2, b'n', b'o']);
        let d = round_trip(OfferMsg::Done {
            offer: OFFER,
            to: 2,
            ok: true,
            text: b"",
        });
        assert_eq!(d.len(), HEAD);
        assert_eq!(&d[..4], &[5, 2, 2, 1]);
        let c = round_trip(OfferMsg::Commit {
            offer: OFFER,
            sha: [9; 32],
        });
        assert_eq!(c.len(), 44);
        assert_eq!(round_trip(OfferMsg::Abort { offer: OFFER }).len(), HEAD);
        let k = round_trip(OfferMsg::Checking {
            offer: OFFER,
            to: 2,
        });
        assert_eq!(&k[..], &[6, 2, 2, 0, 0, 0, 0, 7, 0x0a, 0x0b, 0x0c, 0x0d]);
    }

    #[test]
    fn chunks_must_tile_the_config() {
        let chunk = |total: u32, offset: u32, len: usize| {
            let data = vec![0u8; len];
            let mut p = [0u8; PAYLOAD_MAX];
            let n = OfferMsg::Chunk {
                offer: OFFER,
                mode: OfferMode::Verify,
                total,
                offset,
                sha: [0; 32],
                targets: 1,
                data: &data,
            }
            .emit(&mut p);
            OfferMsg::parse(&p[..n]).map(|_| ())
        };
        assert_eq!(chunk(2000, 0, CHUNK_MAX), Ok(()));
        assert_eq!(chunk(2000, 960, CHUNK_MAX), Ok(()));
        assert_eq!(chunk(2000, 1920, 80), Ok(()));
        assert_eq!(
            chunk(2000, 1920, 79),
            Err(BadOffer::Field),
            "short, not last"
        );
        assert_eq!(chunk(2000, 100, 80), Err(BadOffer::Field), "unaligned");
        assert!(chunk(2000, 1920, 81).is_err(), "past the end");
        assert_eq!(chunk(0, 0, 1), Err(BadOffer::Field), "empty config");
        let big = u32::try_from(CONFIG_MAX + 1).expect("fits");
        assert_eq!(chunk(big, 0, CHUNK_MAX), Err(BadOffer::Field), "too big");
        assert_eq!(chunk(10, 0, 0), Err(BadOffer::Short), "no data");
    }

    #[test]
    fn malformed_payloads() {
        assert_eq!(OfferMsg::parse(&[]), Err(BadOffer::Short));
        assert_eq!(OfferMsg::parse(&[1; 11]), Err(BadOffer::Short));
        let mut p = [0u8; PAYLOAD_MAX];
        let n = OfferMsg::Abort { offer: OFFER }.emit(&mut p);
        let mut bad = p[..n].to_vec();
        bad[0] = 9;
        assert_eq!(OfferMsg::parse(&bad), Err(BadOffer::Field), "op");
        let mut bad = p[..n].to_vec();
        bad[1] = 0;
        assert_eq!(OfferMsg::parse(&bad), Err(BadOffer::Field), "origin 0");
        let mut bad = p[..n].to_vec();
        bad[4..8].copy_from_slice(&[0; 4]);
        assert_eq!(OfferMsg::parse(&bad), Err(BadOffer::Field), "id 0");
        let mut long = p[..n].to_vec();
        long.push(0);
        assert_eq!(OfferMsg::parse(&long), Err(BadOffer::Field), "abort + 1");
        let n = OfferMsg::Verdict {
            offer: OFFER,
            to: 0,
            accepted: true,
            hash: 0,
            errors: 0,
            warnings: 0,
            text: b"",
        }
        .emit(&mut p);
        assert_eq!(
            OfferMsg::parse(&p[..n]),
            Err(BadOffer::Field),
            "verdict to 0"
        );
        p[2] = 2;
        p[3] = 2;
        assert_eq!(OfferMsg::parse(&p[..n]), Err(BadOffer::Field), "flag 2");
    }

    #[test]
    fn chunk_count_covers_the_largest_config() {
        assert_eq!(CHUNKS_MAX, 69);
    }

    // A chunk fits one payload, and the core tracks chunks in a u128.
    const _: () = assert!(CHUNK_DATA + CHUNK_MAX <= PAYLOAD_MAX && CHUNKS_MAX <= 128);
}
