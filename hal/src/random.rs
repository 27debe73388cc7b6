//! Kernel randomness (getrandom(2)) for incarnation numbers and the core's PRNG seed.

use std::io;

use crate::sys::cvt_size;

/// Fills `buf` from the kernel's CSPRNG, retrying on EINTR and short reads.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: pointer and length describe `rest`, a live writable slice; checked.
        match cvt_size(unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) }) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A random u64.
pub fn u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_be_bytes(b))
}
