//! The payload of view-propose (kind 2), view-ack (3) and view-commit (4) frames
//! (DESIGN §5): the view number and the member set.
//!
//! ```text
//! off size field
//!   0    8 view number
//!   8    8 members: bit (id-1) set for each member node id
//! ```

/// Payload length.
pub const LEN: usize = 16;

/// A view as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewRepr {
    /// View number.
    pub number: u64,
    /// Member bitmap.
    pub members: u64,
}

/// The payload is not exactly [`LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadViewLength;

impl ViewRepr {
    /// Parses a payload.
    pub fn parse(p: &[u8]) -> Result<ViewRepr, BadViewLength> {
        let p: &[u8; LEN] = p.try_into().map_err(|_| BadViewLength)?;
        let (n, m) = p.split_at(8);
        Ok(ViewRepr {
            number: u64::from_be_bytes(n.try_into().expect("invariant: 8 bytes")),
            members: u64::from_be_bytes(m.try_into().expect("invariant: 8 bytes")),
        })
    }

    /// Writes the payload into `p`, which must be [`LEN`] bytes.
    ///
    /// # Panics
    /// If `p` is not [`LEN`] bytes (a caller bug).
    pub fn emit(&self, p: &mut [u8]) {
        assert_eq!(p.len(), LEN, "view payload length");
        p[..8].copy_from_slice(&self.number.to_be_bytes());
        p[8..].copy_from_slice(&self.members.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_errors() {
        let v = ViewRepr {
            number: 0x0102,
            members: 0b1011,
        };
        let mut p = [0xa5u8; LEN];
        v.emit(&mut p);
        assert_eq!(p, [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0b1011]);
        assert_eq!(ViewRepr::parse(&p), Ok(v));
        assert_eq!(ViewRepr::parse(&p[..15]), Err(BadViewLength));
        assert_eq!(ViewRepr::parse(&[0u8; 17]), Err(BadViewLength));
    }
}
