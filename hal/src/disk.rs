//! Shared disks for the disk heartbeat path: O_DIRECT (no page cache between the nodes)
//! and O_DSYNC (a write is on the medium before it returns), sector-aligned buffers, the
//! sector size from the device.
//!
//! These calls block — a hung disk hangs them. Only the disk servant process calls them,
//! never the event loop (DESIGN §2).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};

use crate::sys::{HalError, cvt, setsockopt_int};

/// Sector size assumed for a regular file: the largest logical block size in use, so
/// O_DIRECT alignment holds whatever device the file lives on.
pub const FILE_SECTOR: usize = 4096;

/// A block device or file opened for direct, synchronous I/O.
#[derive(Debug)]
pub struct DirectDisk {
    file: File,
    sector: usize,
    device: String,
}

impl DirectDisk {
    /// Opens `device` read-write with O_DIRECT and O_DSYNC.
    pub fn open(device: &str) -> Result<DirectDisk, HalError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(device)
            .map_err(|e| HalError::new("open O_DIRECT", device, e))?;
        let meta = file
            .metadata()
            .map_err(|e| HalError::new("stat", device, e))?;
        let sector = if meta.file_type().is_block_device() {
            let mut size: libc::c_int = 0;
            // SAFETY: BLKSSZGET writes one int (the logical sector size) through the
            // pointer, which points at a live c_int; the fd is open for the call.
            cvt(unsafe { libc::ioctl(file.as_raw_fd(), libc::BLKSSZGET, &mut size) })
                .map_err(|e| HalError::new("BLKSSZGET", device, e))?;
            usize::try_from(size).map_err(|_| {
                HalError::new("BLKSSZGET", device, io::ErrorKind::InvalidData.into())
            })?
        } else if meta.file_type().is_file() {
            FILE_SECTOR
        } else {
            return Err(HalError::new(
                "open shared disk",
                device,
                io::Error::other("neither a block device nor a regular file"),
            ));
        };
        Ok(DirectDisk {
            file,
            sector,
            device: device.to_owned(),
        })
    }

    /// Logical sector size.
    pub fn sector_size(&self) -> usize {
        self.sector
    }

    /// The device path.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Reads exactly `buf.len()` bytes at byte `offset` (both sector multiples, `buf`
    /// from an [`AlignedBuf`]).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Writes all of `buf` at byte `offset` (same alignment rules as `read_at`).
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
}

/// Caps the kernel send buffer of the loop's end of a servant socket at `bytes`, so a
/// servant that stopped reading (a hung disk) makes sends fail with `WouldBlock` after a
/// few frames instead of after hundreds (a connected Unix datagram pair has no queue
/// length limit, only this one).
pub fn limit_send_buffer(fd: std::os::fd::BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let v =
        libc::c_int::try_from(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, v)
}

/// A heap buffer whose usable part starts on an `align` boundary (O_DIRECT needs the
/// memory, the offset and the length aligned to the sector size). Safe code only: an
/// oversized `Vec` and an offset into it.
#[derive(Debug)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes aligned to `align` (a power of two).
    pub fn new(len: usize, align: usize) -> AlignedBuf {
        assert!(align.is_power_of_two(), "alignment {align}");
        let raw = vec![0u8; len + align];
        let start = raw.as_ptr().align_offset(align);
        assert!(start < align, "align_offset failed");
        AlignedBuf { raw, start, len }
    }

    /// The aligned bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The aligned bytes, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_io_on_a_file_round_trips() {
        let path = std::env::temp_dir().join(format!("hw-hal-disk-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 4 * FILE_SECTOR]).unwrap();
        let d = DirectDisk::open(path.to_str().unwrap()).unwrap();
        assert_eq!(d.sector_size(), FILE_SECTOR);
        let mut b = AlignedBuf::new(FILE_SECTOR, FILE_SECTOR);
        assert_eq!(b.as_slice().as_ptr() as usize % FILE_SECTOR, 0);
        b.as_mut_slice()[..5].copy_from_slice(b"hello");
        d.write_at(2 * FILE_SECTOR as u64, b.as_slice()).unwrap();
        let mut r = AlignedBuf::new(FILE_SECTOR, FILE_SECTOR);
        d.read_at(2 * FILE_SECTOR as u64, r.as_mut_slice()).unwrap();
        assert_eq!(&r.as_slice()[..5], b"hello");
        std::fs::remove_file(&path).unwrap();
        assert!(DirectDisk::open("/dev/null").is_err(), "a character device");
    }
}
