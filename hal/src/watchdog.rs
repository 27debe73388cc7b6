//! The hardware watchdog (`/dev/watchdog`, `<linux/watchdog.h>`): self-fencing for a hung
//! node (DESIGN §4, as sbd does). Once opened the timer runs; every write restarts it;
//! if the daemon stops writing — hung, stopped, or deliberately on quorum loss — the
//! hardware resets the machine when the timeout passes. Closing after writing the magic
//! character 'V' disarms it (a clean exit); closing without it leaves it armed (drivers
//! with `nowayout` never disarm).

use std::io::{self, Write};

use crate::HalError;
use crate::sys::{ioc, ioctl_arg};

/// `WDIOC_SETTIMEOUT`: `_IOWR('W', 6, int)`.
const WDIOC_SETTIMEOUT: u32 = ioc(true, true, b'W', 6, 4);
/// `WDIOC_GETTIMEOUT`: `_IOR('W', 7, int)`.
const WDIOC_GETTIMEOUT: u32 = ioc(true, false, b'W', 7, 4);

/// An open, armed watchdog. Dropped without [`Watchdog::disarm`], it closes armed: the
/// machine resets at the timeout unless something else keeps it alive.
#[derive(Debug)]
pub struct Watchdog {
    file: Option<std::fs::File>,
    path: String,
    timeout_s: u32,
}

impl Watchdog {
    /// Opens `path` (arming the timer) and asks for `timeout_s` seconds; the driver may
    /// round it, [`Watchdog::timeout_s`] says what it took.
    pub fn open(path: &str, timeout_s: u32) -> Result<Watchdog, HalError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| HalError::new("open watchdog", path, e))?;
        let mut w = Watchdog {
            file: Some(file),
            path: path.to_owned(),
            timeout_s,
        };
        let f = w.file.as_ref().expect("invariant: just opened");
        let mut t = libc::c_int::try_from(timeout_s).unwrap_or(libc::c_int::MAX);
        if let Err(e) = ioctl_arg(f, WDIOC_SETTIMEOUT, &raw mut t) {
            // Leave it disarmed: the caller refuses to start on this error.
            w.disarm();
            return Err(HalError::new("WDIOC_SETTIMEOUT", path, e));
        }
        let mut got: libc::c_int = 0;
        let taken = ioctl_arg(f, WDIOC_GETTIMEOUT, &raw mut got).map_or(t, |_| got);
        w.timeout_s = u32::try_from(taken).unwrap_or(timeout_s);
        w.kick()?;
        Ok(w)
    }

    /// The timeout the driver runs with, in seconds.
    pub fn timeout_s(&self) -> u32 {
        self.timeout_s
    }

    /// The device path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Restarts the timer (one byte written; never blocks).
    pub fn kick(&mut self) -> Result<(), HalError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.write_all(b"\0")
            .map_err(|e| HalError::new("kick watchdog", self.path.as_str(), e))
    }

    /// Magic close: writes 'V' and closes, which disarms the timer (a clean exit).
    pub fn disarm(&mut self) {
        if let Some(mut f) = self.file.take() {
            let _ = f.write_all(b"V");
        }
    }
}

/// Halts the machine at once (reboot(2) `RB_HALT_SYSTEM`, no sync: a fenced or hung disk
/// would block the sync). Returns only on failure (no `CAP_SYS_BOOT`).
pub fn halt_now() -> io::Error {
    // SAFETY: reboot(2) takes a command constant; on success it does not return.
    unsafe { libc::reboot(libc::RB_HALT_SYSTEM) };
    io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        #[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64")))]
        {
            assert_eq!(WDIOC_SETTIMEOUT, 0xc004_5706);
            assert_eq!(WDIOC_GETTIMEOUT, 0x8004_5707);
        }
        #[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
        {
            assert_eq!(WDIOC_SETTIMEOUT, 0xc004_5706);
            assert_eq!(WDIOC_GETTIMEOUT, 0x4004_5707);
        }
    }

    #[test]
    fn a_missing_watchdog_is_a_named_error() {
        let e = Watchdog::open("/dev/watchdog-nonexistent-heartwire", 5).unwrap_err();
        assert!(e.to_string().contains("watchdog-nonexistent"), "{e}");
    }
}
