//! Serial framing (DESIGN §3): each frame is COBS-encoded (Consistent Overhead Byte
//! Stuffing, Cheshire & Baker 1999) and followed by one `0x00`, the only zero on the line.
//! A receiver that starts mid-frame, or loses bytes to line noise, resynchronises at the
//! next zero; whatever garbage it collected before fails the COBS decode or the frame's
//! CRC and is counted.
//!
//! Overhead: one byte per started 254 bytes of frame, plus the delimiter.
//!
//! [`Deframer`] is the receive side: bytes in (any chunking), decoded frames out, in a
//! fixed buffer — no heap.

use super::frame::FRAME_MAX;

/// Largest encoded frame (without the delimiter).
pub const ENCODED_MAX: usize = encoded_len(FRAME_MAX);

/// Encoded length of `n` bytes (without the delimiter).
pub const fn encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// Encodes `src` into `dst` and appends the `0x00` delimiter; returns the bytes written.
/// `None` when `dst` is shorter than `encoded_len(src.len()) + 1`.
pub fn encode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    if dst.len() < encoded_len(src.len()) + 1 {
        return None;
    }
    let mut code_at = 0;
    let mut out = 1;
    let mut code: u8 = 1;
    for &b in src {
        if b == 0 {
            dst[code_at] = code;
            code_at = out;
            out += 1;
            code = 1;
            continue;
        }
        dst[out] = b;
        out += 1;
        code += 1;
        if code == 0xff {
            dst[code_at] = code;
            code_at = out;
            out += 1;
            code = 1;
        }
    }
    dst[code_at] = code;
    dst[out] = 0;
    Some(out + 1)
}

/// Why an encoded block did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CobsError {
    /// A zero inside the block, or a code byte pointing past its end.
    Malformed,
    /// The decoded frame would not fit the output.
    TooLong,
}

/// Decodes one block (without its delimiter) into `dst`; returns the decoded length.
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, CobsError> {
    let mut i = 0;
    let mut out = 0;
    while i < src.len() {
        let code = usize::from(src[i]);
        if code == 0 || i + code > src.len() {
            return Err(CobsError::Malformed);
        }
        let run = &src[i + 1..i + code];
        if run.contains(&0) {
            return Err(CobsError::Malformed);
        }
        dst.get_mut(out..out + run.len())
            .ok_or(CobsError::TooLong)?
            .copy_from_slice(run);
        out += run.len();
        i += code;
        // A code below 0xff stands for a zero after its run, except at the very end.
        if code < 0xff && i < src.len() {
            *dst.get_mut(out).ok_or(CobsError::TooLong)? = 0;
            out += 1;
        }
    }
    Ok(out)
}

/// What the deframer found in the bytes pushed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deframed {
    /// A frame of this many bytes, decoded into the caller's buffer.
    Frame(usize),
    /// A block that did not decode (noise, a half frame): counted, skipped.
    Garbage,
    /// A block longer than any frame: skipped up to the next delimiter.
    Overlong,
}

/// Reassembles delimited COBS blocks from a byte stream.
#[derive(Debug)]
pub struct Deframer {
    buf: [u8; ENCODED_MAX],
    len: usize,
    /// The current block overflowed: discard until the next delimiter.
    skipping: bool,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer {
            buf: [0; ENCODED_MAX],
            len: 0,
            skipping: false,
        }
    }
}

impl Deframer {
    /// Feeds one byte. At a delimiter that ends a block, returns the block's outcome; a
    /// frame is decoded into `frame` (its first `n` bytes). Partial blocks wait.
    pub fn push_byte(&mut self, b: u8, frame: &mut [u8]) -> Option<Deframed> {
        if b != 0 {
            if self.skipping {
                return None;
            }
            if self.len == self.buf.len() {
                self.skipping = true;
                self.len = 0;
                return None;
            }
            self.buf[self.len] = b;
            self.len += 1;
            return None;
        }
        if self.skipping {
            self.skipping = false;
            return Some(Deframed::Overlong);
        }
        if self.len == 0 {
            // Back-to-back delimiters (idle fill, or a resync): nothing to report.
            return None;
        }
        let len = core::mem::take(&mut self.len);
        Some(match decode(&self.buf[..len], frame) {
            Ok(n) => Deframed::Frame(n),
            Err(CobsError::Malformed) => Deframed::Garbage,
            Err(CobsError::TooLong) => Deframed::Overlong,
        })
    }

    /// Feeds `input`, calling `out` with each block's outcome and, for a frame, its bytes
    /// (decoded into `frame`). For tests: any chunking must give the same blocks.
    #[cfg(test)]
    pub(crate) fn push(
        &mut self,
        input: &[u8],
        frame: &mut [u8],
        out: &mut dyn FnMut(Deframed, &[u8]),
    ) {
        for &b in input {
            match self.push_byte(b, frame) {
                Some(Deframed::Frame(n)) => out(Deframed::Frame(n), &frame[..n]),
                Some(r) => out(r, &[]),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(data: &[u8]) -> Vec<u8> {
        let mut enc = vec![0u8; encoded_len(data.len()) + 1];
        let n = encode(data, &mut enc).unwrap();
        assert_eq!(enc[n - 1], 0);
        assert!(!enc[..n - 1].contains(&0), "a zero inside {enc:?}");
        let mut dec = vec![0u8; data.len() + 1];
        let m = decode(&enc[..n - 1], &mut dec).unwrap();
        dec.truncate(m);
        dec
    }

    #[test]
    fn known_vectors() {
        // From the COBS paper / Wikipedia examples.
        let mut out = [0u8; 16];
        let n = encode(&[0x00], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x01, 0x01, 0x00]);
        let n = encode(&[0x11, 0x22, 0x00, 0x33], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x03, 0x11, 0x22, 0x02, 0x33, 0x00]);
        let n = encode(&[], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x01, 0x00]);
    }

    #[test]
    fn long_runs_without_zero() {
        for len in [253, 254, 255, 508, 509, 1000] {
            let data: Vec<u8> = (0..len)
                .map(|i: usize| u8::try_from(i % 255 + 1).unwrap())
                .collect();
            assert_eq!(roundtrip(&data), data, "len {len}");
        }
    }

    #[test]
    fn malformed_blocks_are_rejected() {
        let mut dst = [0u8; 16];
        assert_eq!(decode(&[0x05, 1, 2], &mut dst), Err(CobsError::Malformed));
        assert_eq!(decode(&[0x00], &mut dst), Err(CobsError::Malformed));
        assert_eq!(decode(&[0x03, 1, 0], &mut dst), Err(CobsError::Malformed));
        let mut small = [0u8; 1];
        assert_eq!(decode(&[0x03, 1, 2], &mut small), Err(CobsError::TooLong));
    }

    #[test]
    fn deframer_resyncs_after_noise_and_half_frames() {
        let frame_a = [1u8, 0, 2, 3, 0, 0, 4];
        let frame_b = [9u8; 40];
        let mut line = Vec::new();
        // Noise before anything: the receiver joined mid-stream.
        line.extend_from_slice(&[0x42, 0x17, 0x99]);
        line.push(0);
        let mut enc = [0u8; 64];
        let n = encode(&frame_a, &mut enc).unwrap();
        line.extend_from_slice(&enc[..n]);
        // Half a frame, then a cut: its tail never comes.
        let m = encode(&frame_b, &mut enc).unwrap();
        line.extend_from_slice(&enc[..m / 2]);
        line.push(0);
        line.extend_from_slice(&enc[..m]);
        let mut d = Deframer::default();
        let mut frame = [0u8; FRAME_MAX];
        let mut got = Vec::new();
        // Any chunking gives the same result.
        for chunk in line.chunks(3) {
            d.push(chunk, &mut frame, &mut |r, bytes| {
                got.push((r, bytes.to_vec()))
            });
        }
        let frames: Vec<_> = got
            .iter()
            .filter(|(r, _)| matches!(r, Deframed::Frame(_)))
            .map(|(_, b)| b.clone())
            .collect();
        assert_eq!(frames, vec![frame_a.to_vec(), frame_b.to_vec()]);
        let garbage = got.iter().filter(|(r, _)| *r == Deframed::Garbage).count();
        assert_eq!(garbage, 2, "the noise and the half frame: {got:?}");
    }

    #[test]
    fn deframer_skips_overlong_blocks() {
        let mut d = Deframer::default();
        let mut frame = [0u8; FRAME_MAX];
        let mut got = Vec::new();
        let long = vec![7u8; ENCODED_MAX + 10];
        d.push(&long, &mut frame, &mut |r, _| got.push(r));
        d.push(&[0, 0x02, 0x05, 0], &mut frame, &mut |r, b| {
            got.push(r);
            assert!(matches!(r, Deframed::Overlong) || b == [5]);
        });
        assert_eq!(got, vec![Deframed::Overlong, Deframed::Frame(1)]);
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..1200)) {
            prop_assert_eq!(roundtrip(&data), data);
        }

        #[test]
        fn deframer_never_panics(noise in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let mut d = Deframer::default();
            let mut frame = [0u8; FRAME_MAX];
            d.push(&noise, &mut frame, &mut |_, _| {});
        }
    }
}
