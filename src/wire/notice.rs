//! The payload of a death notice (kind 9, DESIGN §4 "The sentinel"): sent by a node's
//! sentinel, in the name of the daemon incarnation it watched (the frame header's
//! incarnation), after that daemon died or hung and the sentinel fenced the host. A peer
//! that accepts it treats the incarnation as down *and fenced*: its groups are taken
//! over without waiting for its lease. Only keyed clusters send or accept one.
//!
//! ```text
//! off size field
//!   0    1 cause: 1 the daemon exited, 2 it was killed by a signal, 3 it hung (made
//!          no progress for hang_timeout) and the sentinel killed it
//!   1    1 detail: the exit code, or the signal number (0: a signal not known, when
//!          the sentinel could not read the exit status); 0 for a hang
//! ```
//!
//! Replays are harmless: a notice only ever says that one incarnation is dead, and
//! incarnations are never reused.

/// Payload length.
pub const LEN: usize = 2;

/// Why the daemon is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// It exited with this code without releasing (an error).
    Exited(u8),
    /// A signal killed it (kill -9, abort, the OOM killer); 0 when which is not known
    /// (the sentinel could not read the exit status).
    Signalled(u8),
    /// It made no progress for `hang_timeout`; the sentinel killed it.
    Hung,
}

/// A notice payload that is not [`LEN`] bytes, or has an unknown cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadNotice;

impl Cause {
    /// Parses a payload of exactly [`LEN`] bytes.
    pub fn parse(p: &[u8]) -> Result<Cause, BadNotice> {
        let [cause, detail]: [u8; LEN] = p.try_into().map_err(|_| BadNotice)?;
        match (cause, detail) {
            (1, d) => Ok(Cause::Exited(d)),
            (2, d) => Ok(Cause::Signalled(d)),
            (3, 0) => Ok(Cause::Hung),
            _ => Err(BadNotice),
        }
    }

    /// Writes the payload into the first [`LEN`] bytes of `p`.
    ///
    /// # Panics
    /// If `p` is shorter than [`LEN`] (a caller bug).
    pub fn emit(self, p: &mut [u8]) {
        let b = match self {
            Cause::Exited(d) => [1, d],
            Cause::Signalled(d) => [2, d],
            Cause::Hung => [3, 0],
        };
        p[..LEN].copy_from_slice(&b);
    }
}

impl core::fmt::Display for Cause {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Cause::Exited(c) => write!(f, "its daemon exited with code {c}"),
            Cause::Signalled(0) => f.write_str("its daemon was killed by a signal not known"),
            Cause::Signalled(s) => write!(f, "its daemon was killed by signal {s}"),
            Cause::Hung => f.write_str("its daemon hung and was killed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_errors() {
        for (c, b) in [
            (Cause::Exited(3), [1, 3]),
            (Cause::Signalled(9), [2, 9]),
            (Cause::Hung, [3, 0]),
        ] {
            let mut p = [0xa5u8; LEN];
            c.emit(&mut p);
            assert_eq!(p, b);
            assert_eq!(Cause::parse(&p), Ok(c));
        }
        assert_eq!(
            Cause::Signalled(0).to_string(),
            "its daemon was killed by a signal not known"
        );
        assert_eq!(Cause::parse(&[3, 1]), Err(BadNotice));
        assert_eq!(Cause::parse(&[0, 0]), Err(BadNotice));
        assert_eq!(Cause::parse(&[4, 0]), Err(BadNotice));
        assert_eq!(Cause::parse(&[1]), Err(BadNotice));
        assert_eq!(Cause::parse(&[1, 0, 0]), Err(BadNotice));
    }
}
