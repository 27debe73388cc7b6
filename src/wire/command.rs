//! The payload of an operator command frame (kind 6, DESIGN §7): `move`, `online`,
//! `offline` and the hand-over of a leaving node, sent by the node the operator asked, on
//! every path, to every node. Every node keeps it as a *pin* until a committed view
//! carries it out or it expires; whichever node coordinates applies it to the placement
//! it proposes. Completion is seen through the same view and group-state frames that make
//! the change happen, so there is no reply to lose (kind 7 stays unused).
//!
//! ```text
//! off size field
//!   0    4 id: the sender's command number in this incarnation (1, 2, ...); copies on
//!          other paths and retransmissions carry the same id and are applied once.
//!          Bit 31 set: a command the node asked itself for a fatal failure (an
//!          `offline`); those count on their own from 2^31 + 1, the operator's from 1,
//!          and a receiver compares an id only with the last of its own kind
//!   4    1 op: 1 move, 2 online, 3 offline, 4 evacuate, 5 cleanup, 6 maintenance
//!   5    1 node: move's target, evacuate's leaving node; 0 for online, offline and
//!          cleanup; for maintenance 1 (on) or 0 (off), matching the epoch's parity
//!   6    4 valid for (ms): how long receivers keep the pin
//!  10    8 groups: bit g for group g; for maintenance the epoch it moves to
//! ```

/// Payload length.
pub const LEN: usize = 18;

/// Op code: move the groups to `node`.
pub const OP_MOVE: u8 = 1;
/// Op code: bring the groups online.
pub const OP_ONLINE: u8 = 2;
/// Op code: take the groups offline everywhere.
pub const OP_OFFLINE: u8 = 3;
/// Op code: `node` is leaving; hand its groups to the next node of each list.
pub const OP_EVACUATE: u8 = 4;
/// Op code: forget the groups' failures everywhere and retry releases stuck in error;
/// placement is left to the policies.
pub const OP_CLEANUP: u8 = 5;
/// Op code: maintenance mode on (`node` 1) or off (`node` 0), cluster-wide; no groups.
pub const OP_MAINTENANCE: u8 = 6;

/// A command payload as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRepr {
    /// Per-incarnation command number.
    pub id: u32,
    /// One of the `OP_*` codes.
    pub op: u8,
    /// Target or leaving node id (0: none).
    pub node: u8,
    /// How long the pin lasts, in ms.
    pub valid_ms: u32,
    /// Group bitmap.
    pub groups: u64,
}

/// The payload is not [`LEN`] bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCommandLength;

impl CommandRepr {
    /// Parses a payload of exactly [`LEN`] bytes (field values are checked by the core,
    /// which knows the config).
    pub fn parse(p: &[u8]) -> Result<CommandRepr, BadCommandLength> {
        let p: &[u8; LEN] = p.try_into().map_err(|_| BadCommandLength)?;
        Ok(CommandRepr {
            id: u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
            op: p[4],
            node: p[5],
            valid_ms: u32::from_be_bytes([p[6], p[7], p[8], p[9]]),
            groups: u64::from_be_bytes(p[10..18].try_into().expect("invariant: 8 bytes")),
        })
    }

    /// Writes the payload into the first [`LEN`] bytes of `p`.
    ///
    /// # Panics
    /// If `p` is shorter than [`LEN`] (a caller bug).
    pub fn emit(&self, p: &mut [u8]) {
        p[..4].copy_from_slice(&self.id.to_be_bytes());
        p[4] = self.op;
        p[5] = self.node;
        p[6..10].copy_from_slice(&self.valid_ms.to_be_bytes());
        p[10..18].copy_from_slice(&self.groups.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_errors() {
        let c = CommandRepr {
            id: 0x0102_0304,
            op: OP_MOVE,
            node: 2,
            valid_ms: 30_000,
            groups: 0b101,
        };
        let mut p = [0xa5u8; LEN];
        c.emit(&mut p);
        assert_eq!(
            p,
            [
                1, 2, 3, 4, 1, 2, 0, 0, 0x75, 0x30, 0, 0, 0, 0, 0, 0, 0, 0b101
            ]
        );
        assert_eq!(CommandRepr::parse(&p), Ok(c));
        assert_eq!(CommandRepr::parse(&p[..LEN - 1]), Err(BadCommandLength));
        assert_eq!(CommandRepr::parse(&[0u8; LEN + 1]), Err(BadCommandLength));
    }
}
