//! The payload of view-propose (kind 2), view-ack (3) and view-commit (4) frames
//! (DESIGN §5): the view number, the member set, and the placement of every resource
//! group in that view. Placement rides in the view so every member installs the same one
//! at the same moment, with no extra round trip.
//!
//! ```text
//! off size field
//!   0    8 view number
//!   8    8 members: bit (id-1) set for each member node id
//!  16    1 group count g (<= MAX_GROUPS)
//!  17    g placement code per group: 0 unplaced, 1..=64 online on that node,
//!          0xFD waiting (was online, no node of its list could take it),
//!          0xFE concurrent (on every eligible member), 0xFF offline
//! ```

use super::state::MAX_GROUPS;

/// Bytes before the placement codes.
pub const FIXED_LEN: usize = 17;

/// Placement code: never placed.
pub const UNPLACED: u8 = 0;
/// Placement code: was online, and no node of its list could take it over.
pub const WAITING: u8 = 0xFD;
/// Placement code: online on every eligible member (concurrent access).
pub const CONCURRENT: u8 = 0xFE;
/// Placement code: offline.
pub const OFFLINE: u8 = 0xFF;

/// A view as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewRepr {
    /// View number.
    pub number: u64,
    /// Member bitmap.
    pub members: u64,
    /// Number of valid entries in `plan`.
    pub groups: u8,
    /// Placement code per group.
    pub plan: [u8; MAX_GROUPS],
}

/// Why a view payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewError {
    /// Shorter than the fixed part, or not matching the group count.
    BadLength,
    /// Group count above [`MAX_GROUPS`].
    TooManyGroups,
}

impl ViewRepr {
    /// Parses a payload.
    pub fn parse(p: &[u8]) -> Result<ViewRepr, ViewError> {
        if p.len() < FIXED_LEN {
            return Err(ViewError::BadLength);
        }
        let groups = p[16];
        let g = usize::from(groups);
        if g > MAX_GROUPS {
            return Err(ViewError::TooManyGroups);
        }
        if p.len() != FIXED_LEN + g {
            return Err(ViewError::BadLength);
        }
        let mut plan = [0u8; MAX_GROUPS];
        plan[..g].copy_from_slice(&p[FIXED_LEN..]);
        Ok(ViewRepr {
            number: u64::from_be_bytes(p[..8].try_into().expect("invariant: 8 bytes")),
            members: u64::from_be_bytes(p[8..16].try_into().expect("invariant: 8 bytes")),
            groups,
            plan,
        })
    }

    /// Payload length when emitted.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + usize::from(self.groups)
    }

    /// Writes the payload into `p`, which must be [`Self::buffer_len`] bytes.
    ///
    /// # Panics
    /// If `p` has another length or `groups` exceeds [`MAX_GROUPS`] (caller bugs).
    pub fn emit(&self, p: &mut [u8]) {
        let g = usize::from(self.groups);
        assert!(g <= MAX_GROUPS, "groups {g}");
        assert_eq!(p.len(), self.buffer_len(), "view payload length");
        p[..8].copy_from_slice(&self.number.to_be_bytes());
        p[8..16].copy_from_slice(&self.members.to_be_bytes());
        p[16] = self.groups;
        p[FIXED_LEN..].copy_from_slice(&self.plan[..g]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_errors() {
        let mut plan = [0u8; MAX_GROUPS];
        plan[..3].copy_from_slice(&[2, OFFLINE, CONCURRENT]);
        let v = ViewRepr {
            number: 0x0102,
            members: 0b1011,
            groups: 3,
            plan,
        };
        let mut p = [0xa5u8; 20];
        v.emit(&mut p);
        assert_eq!(
            p,
            [
                0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0b1011, 3, 2, 0xFF, 0xFE
            ]
        );
        assert_eq!(ViewRepr::parse(&p), Ok(v));
        assert_eq!(ViewRepr::parse(&p[..19]), Err(ViewError::BadLength));
        assert_eq!(ViewRepr::parse(&p[..16]), Err(ViewError::BadLength));
        let mut many = [0u8; FIXED_LEN];
        many[16] = 65;
        assert_eq!(ViewRepr::parse(&many), Err(ViewError::TooManyGroups));
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120)) {
                if let Ok(v) = ViewRepr::parse(&data) {
                    let mut out = vec![0u8; v.buffer_len()];
                    v.emit(&mut out);
                    prop_assert_eq!(out, data);
                }
            }
        }
    }
}
