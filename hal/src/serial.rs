//! RS232 serial lines: opened through `serialport` (raw mode, 8N1, no flow control,
//! exclusive), then driven nonblocking from the event loop through plain `read`/`write`
//! (serialport's own `read` waits in `poll`, which the loop must never do).
//!
//! serialport clears O_NONBLOCK after opening (LAB-NOTES); it is set again here before
//! the descriptor is handed out. Non-standard rates such as 921600 go through termios2
//! (TCSETS2), which qemu-user does not emulate on aarch64.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use serialport::{DataBits, FlowControl, Parity, StopBits};

use crate::sys::{self, HalError};

/// An open serial line.
#[derive(Debug)]
pub struct SerialLine {
    file: File,
    device: String,
}

fn owned(port: serialport::TTYPort) -> OwnedFd {
    // SAFETY: into_raw_fd hands over the port's open descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(port.into_raw_fd()) }
}

impl SerialLine {
    /// Opens `device` at `baud` in raw mode, exclusively, nonblocking.
    pub fn open(device: &str, baud: u32) -> Result<SerialLine, HalError> {
        let port = serialport::new(device, baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .open_native()
            .map_err(|e| HalError::new("open serial line", device, io::Error::from(e)))?;
        let fd = owned(port);
        sys::set_nonblocking(fd.as_fd()).map_err(|e| HalError::new("O_NONBLOCK", device, e))?;
        Ok(SerialLine {
            file: File::from(fd),
            device: device.to_owned(),
        })
    }

    /// Reads what the line has; `WouldBlock` when nothing.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes as much of `buf` as the output queue takes; `WouldBlock` when full.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }

    /// The device path.
    pub fn device(&self) -> &str {
        &self.device
    }
}

impl AsFd for SerialLine {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Checks that `device` opens as a terminal, without waiting for carrier and without
/// making it this process's controlling terminal (for `verify`; the line is closed at
/// once). A line another process holds exclusively (the running daemon) is `EBUSY`.
pub fn probe(device: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(device)?;
    // SAFETY: `f` is an open descriptor for the duration of the call; isatty only
    // inspects it.
    if unsafe { libc::isatty(std::os::fd::AsRawFd::as_raw_fd(&f)) } == 1 {
        Ok(())
    } else {
        Err(io::Error::other("not a terminal"))
    }
}

/// A pseudo-terminal pair for tests and the lab: the master end (nonblocking) and the
/// slave end (kept open so the line stays up) with its device path, both raw.
pub fn pty_pair() -> io::Result<(File, File, String)> {
    let (master, slave) = serialport::TTYPort::pair().map_err(io::Error::from)?;
    let name = serialport::SerialPort::name(&slave).unwrap_or_default();
    let master = owned(master);
    sys::set_nonblocking(master.as_fd())?;
    Ok((File::from(master), File::from(owned(slave)), name))
}
