//! SCSI devices: SG_IO pass-through for `/dev/sg*` and `/dev/sd*`, and the block layer's
//! persistent-reservation ioctls (`IOC_PR_*`) as a second path (DESIGN §6).
//!
//! [`cdb`] builds the commands and parses their data, [`sense`] turns status, sense and
//! the SG host/driver codes into one [`ScsiError`]. Everything here *waits for the
//! device* (SG_IO is synchronous, and so are the PR ioctls): it is called from a process
//! that may block — the daemon's reservation servant — never from the event loop.
//!
//! Two paths, because neither covers every case: SG_IO needs a SCSI device node and
//! `CAP_SYS_RAWIO`-free commands (PR IN/OUT are allowed on an fd open for writing); the
//! `IOC_PR_*` ioctls work on any block device whose driver implements `pr_ops` (SCSI,
//! NVMe, dm-multipath) but cannot read keys, and Linux's `IOC_PR_REGISTER` always sets
//! APTPL, which some targets (tgtd) refuse. They return a *positive SCSI status* on a
//! SCSI failure, not -1/errno (LAB-NOTES): [`pr_ioctl`] maps both.

pub mod cdb;
pub mod sense;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

pub use self::cdb::{Capabilities, Inquiry, Keys, PrIn, PrOut, PrType, Reservation};
pub use self::sense::{ScsiError, Sense};
use crate::HalError;
use crate::sys::{cvt, ioctl_arg};

/// Why a command failed: the OS refused it, or the device answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The system call failed (no such device, not a SCSI device, permission).
    #[error("{0}")]
    Os(#[from] HalError),
    /// The device (or the transport) failed the command.
    #[error("{op} on {dev}: {err}")]
    Scsi {
        /// The command.
        op: &'static str,
        /// The device.
        dev: String,
        /// What happened.
        err: ScsiError,
    },
}

impl CmdError {
    /// The SCSI error, if the device answered.
    pub fn scsi(&self) -> Option<&ScsiError> {
        match self {
            CmdError::Scsi { err, .. } => Some(err),
            CmdError::Os(_) => None,
        }
    }

    /// The device does not take this kind of request (ENOTTY, EINVAL: no SG_IO on this
    /// node, or no `pr_ops` in its driver).
    pub fn unsupported(&self) -> bool {
        match self {
            CmdError::Os(h) => matches!(
                h.source.raw_os_error(),
                Some(libc::ENOTTY | libc::EINVAL | libc::EOPNOTSUPP)
            ),
            CmdError::Scsi { .. } => false,
        }
    }
}

/// Data direction of a command.
#[derive(Debug)]
pub enum Data<'a> {
    /// None.
    None,
    /// To the device.
    Out(&'a [u8]),
    /// From the device.
    In(&'a mut [u8]),
}

/// `struct sg_io_hdr` of `<scsi/sg.h>` (interface 'S').
#[repr(C)]
struct SgIoHdr {
    interface_id: libc::c_int,
    dxfer_direction: libc::c_int,
    cmd_len: libc::c_uchar,
    mx_sb_len: libc::c_uchar,
    iovec_count: libc::c_ushort,
    dxfer_len: libc::c_uint,
    dxferp: *mut libc::c_void,
    cmdp: *const libc::c_uchar,
    sbp: *mut libc::c_uchar,
    timeout: libc::c_uint,
    flags: libc::c_uint,
    pack_id: libc::c_int,
    usr_ptr: *mut libc::c_void,
    status: libc::c_uchar,
    masked_status: libc::c_uchar,
    msg_status: libc::c_uchar,
    sb_len_wr: libc::c_uchar,
    host_status: libc::c_ushort,
    driver_status: libc::c_ushort,
    resid: libc::c_int,
    duration: libc::c_uint,
    info: libc::c_uint,
}

const SG_IO: u32 = 0x2285;
const SG_DXFER_NONE: libc::c_int = -1;
const SG_DXFER_TO_DEV: libc::c_int = -2;
const SG_DXFER_FROM_DEV: libc::c_int = -3;
/// Sense buffer size: fixed format is 18 bytes, descriptor format up to 252.
const SENSE_MAX: usize = 96;

/// A SCSI device opened for pass-through.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
    path: String,
}

impl Device {
    /// Opens `path` read-write (PERSISTENT RESERVE OUT needs write access).
    pub fn open(path: &str) -> Result<Device, HalError> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| HalError::new("open SCSI device", path, e))?;
        Ok(Device {
            fd: f.into(),
            path: path.to_owned(),
        })
    }

    /// The path it was opened as.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs one command; returns the bytes transferred. `timeout` is the SG layer's (the
    /// kernel aborts the command then; it is reported as [`ScsiError::Timeout`]).
    pub fn execute(
        &self,
        op: &'static str,
        cdb: &[u8],
        data: Data<'_>,
        timeout: Duration,
    ) -> Result<usize, CmdError> {
        let mut sense = [0u8; SENSE_MAX];
        let (dir, ptr, len) = match data {
            Data::None => (SG_DXFER_NONE, core::ptr::null_mut(), 0usize),
            Data::Out(b) => (SG_DXFER_TO_DEV, b.as_ptr().cast_mut().cast(), b.len()),
            Data::In(b) => (SG_DXFER_FROM_DEV, b.as_mut_ptr().cast(), b.len()),
        };
        let bad = |what| HalError::new(op, self.path.as_str(), io::Error::other(what));
        let mut h = SgIoHdr {
            interface_id: libc::c_int::from(b'S'),
            dxfer_direction: dir,
            cmd_len: u8::try_from(cdb.len()).map_err(|_| bad("CDB longer than 255 bytes"))?,
            mx_sb_len: u8::try_from(SENSE_MAX).expect("invariant: 96"),
            iovec_count: 0,
            dxfer_len: u32::try_from(len).map_err(|_| bad("transfer above 4 GiB"))?,
            dxferp: ptr,
            cmdp: cdb.as_ptr(),
            sbp: sense.as_mut_ptr(),
            timeout: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            flags: 0,
            pack_id: 0,
            usr_ptr: core::ptr::null_mut(),
            status: 0,
            masked_status: 0,
            msg_status: 0,
            sb_len_wr: 0,
            host_status: 0,
            driver_status: 0,
            resid: 0,
            duration: 0,
            info: 0,
        };
        // The request argument is `c_ulong` in glibc and `c_int` in musl.
        #[allow(clippy::unnecessary_cast, trivial_numeric_casts)]
        let request = SG_IO as _;
        // SAFETY: `h` is a complete sg_io_hdr on the stack; its pointers (CDB, data
        // buffer of `dxfer_len` bytes in the stated direction, sense buffer of
        // `mx_sb_len` bytes) stay valid and unaliased for the whole synchronous call.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), request, &raw mut h) })
            .map_err(|e| HalError::new(op, self.path.as_str(), e))?;
        let written = usize::from(h.sb_len_wr).min(SENSE_MAX);
        sense::decode(h.status, h.host_status, h.driver_status, &sense[..written]).map_err(
            |err| CmdError::Scsi {
                op,
                dev: self.path.clone(),
                err,
            },
        )?;
        let resid = usize::try_from(h.resid).unwrap_or(0);
        Ok(len.saturating_sub(resid))
    }

    /// TEST UNIT READY.
    pub fn test_unit_ready(&self, timeout: Duration) -> Result<(), CmdError> {
        self.execute(
            "TEST UNIT READY",
            &cdb::test_unit_ready(),
            Data::None,
            timeout,
        )
        .map(drop)
    }

    /// Standard INQUIRY.
    pub fn inquiry(&self, timeout: Duration) -> Result<Inquiry, CmdError> {
        let mut buf = [0u8; 96];
        let n = self.execute("INQUIRY", &cdb::inquiry(96), Data::In(&mut buf), timeout)?;
        cdb::parse_inquiry(&buf[..n]).map_err(|_| self.short("INQUIRY"))
    }

    /// PERSISTENT RESERVE IN, READ KEYS (up to 64 keys).
    pub fn read_keys(&self, timeout: Duration) -> Result<Keys, CmdError> {
        let mut buf = [0u8; 8 + 64 * 8];
        let alloc = u16::try_from(buf.len()).expect("invariant: 520");
        let n = self.execute(
            "READ KEYS",
            &cdb::pr_in(PrIn::ReadKeys, alloc),
            Data::In(&mut buf),
            timeout,
        )?;
        cdb::parse_keys(&buf[..n]).map_err(|_| self.short("READ KEYS"))
    }

    /// PERSISTENT RESERVE IN, READ RESERVATION.
    pub fn read_reservation(&self, timeout: Duration) -> Result<Option<Reservation>, CmdError> {
        let mut buf = [0u8; 24];
        let n = self.execute(
            "READ RESERVATION",
            &cdb::pr_in(PrIn::ReadReservation, 24),
            Data::In(&mut buf),
            timeout,
        )?;
        cdb::parse_reservation(&buf[..n])
            .map(|(_, r)| r)
            .map_err(|_| self.short("READ RESERVATION"))
    }

    /// PERSISTENT RESERVE IN, REPORT CAPABILITIES.
    pub fn report_capabilities(&self, timeout: Duration) -> Result<Capabilities, CmdError> {
        let mut buf = [0u8; 8];
        let n = self.execute(
            "REPORT CAPABILITIES",
            &cdb::pr_in(PrIn::ReportCapabilities, 8),
            Data::In(&mut buf),
            timeout,
        )?;
        cdb::parse_capabilities(&buf[..n]).map_err(|_| self.short("REPORT CAPABILITIES"))
    }

    /// PERSISTENT RESERVE OUT with `sa` (`key`: this node's registered key, `sa_key`: the
    /// new key to register, or the key to preempt).
    pub fn pr_out(
        &self,
        sa: PrOut,
        ty: Option<PrType>,
        key: u64,
        sa_key: u64,
        timeout: Duration,
    ) -> Result<(), CmdError> {
        let (c, p) = cdb::pr_out(sa, ty, key, sa_key);
        let op = match sa {
            PrOut::Register => "PR REGISTER",
            PrOut::Reserve => "PR RESERVE",
            PrOut::Release => "PR RELEASE",
            PrOut::Clear => "PR CLEAR",
            PrOut::Preempt => "PR PREEMPT",
            PrOut::PreemptAndAbort => "PR PREEMPT AND ABORT",
            PrOut::RegisterAndIgnoreExistingKey => "PR REGISTER AND IGNORE EXISTING KEY",
        };
        self.execute(op, &c, Data::Out(&p), timeout).map(drop)
    }

    /// SCSI-2 RESERVE(6) of the whole unit (for targets without persistent reservations).
    pub fn reserve6(&self, timeout: Duration) -> Result<(), CmdError> {
        self.execute("RESERVE(6)", &cdb::reserve6(), Data::None, timeout)
            .map(drop)
    }

    /// SCSI-2 RELEASE(6).
    pub fn release6(&self, timeout: Duration) -> Result<(), CmdError> {
        self.execute("RELEASE(6)", &cdb::release6(), Data::None, timeout)
            .map(drop)
    }

    /// A LUN reset (`SG_SCSI_RESET`, `SG_SCSI_RESET_DEVICE`): clears SCSI-2
    /// reservations (persistent ones survive it). Waits until the reset is done.
    pub fn reset_device(&self) -> Result<(), CmdError> {
        const SG_SCSI_RESET: u32 = 0x2284;
        let mut how: libc::c_int = 1; // SG_SCSI_RESET_DEVICE
        ioctl_arg(&self.fd, SG_SCSI_RESET, &raw mut how)
            .map_err(|e| CmdError::Os(HalError::new("SG_SCSI_RESET", self.path.as_str(), e)))?;
        Ok(())
    }

    /// The block layer's persistent-reservation ioctl `op` (see [`PrIoctl`]).
    pub fn pr_ioctl(&self, op: PrIoctl) -> Result<(), CmdError> {
        pr_ioctl(&self.fd, &self.path, op)
    }

    fn short(&self, op: &'static str) -> CmdError {
        CmdError::Os(HalError::new(
            op,
            self.path.as_str(),
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the device returned too little data",
            ),
        ))
    }
}

/// One block-layer persistent-reservation request (`<linux/pr.h>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrIoctl {
    /// `IOC_PR_REGISTER` (`ignore`: PR_FL_IGNORE_KEY, register whatever is registered).
    Register {
        /// The key registered now (0: none).
        old: u64,
        /// The key to register (0: unregister).
        new: u64,
        /// Ignore `old`.
        ignore: bool,
    },
    /// `IOC_PR_RESERVE`.
    Reserve {
        /// This node's key.
        key: u64,
        /// Reservation type.
        ty: PrType,
    },
    /// `IOC_PR_RELEASE`.
    Release {
        /// This node's key.
        key: u64,
        /// Reservation type.
        ty: PrType,
    },
    /// `IOC_PR_PREEMPT` or, with `abort`, `IOC_PR_PREEMPT_ABORT`.
    Preempt {
        /// This node's key.
        key: u64,
        /// The key to preempt.
        victim: u64,
        /// Reservation type.
        ty: PrType,
        /// Abort the victim's commands too.
        abort: bool,
    },
    /// `IOC_PR_CLEAR`.
    Clear {
        /// This node's key.
        key: u64,
    },
}

/// `enum pr_type` of `<linux/pr.h>`: the block layer numbers the types 1..=6.
fn block_pr_type(t: PrType) -> u32 {
    match t {
        PrType::WriteExclusive => 1,
        PrType::ExclusiveAccess => 2,
        PrType::WriteExclusiveRegistrantsOnly => 3,
        PrType::ExclusiveAccessRegistrantsOnly => 4,
        PrType::WriteExclusiveAllRegistrants => 5,
        PrType::ExclusiveAccessAllRegistrants => 6,
    }
}

/// `_IOW('p', nr, size)`.
const fn iow(nr: u32, size: u32) -> u32 {
    crate::sys::ioc(false, true, b'p', nr, size)
}

/// `struct pr_registration` / `pr_preempt` (24 bytes) and `pr_reservation` / `pr_clear`
/// (16 bytes), as plain words: the kernel reads them in native byte order.
#[repr(C)]
struct PrArg24 {
    a: u64,
    b: u64,
    c: u32,
    d: u32,
}

#[repr(C)]
struct PrArg16 {
    a: u64,
    b: u32,
    c: u32,
}

const PR_FL_IGNORE_KEY: u32 = 1;

fn pr_ioctl(fd: &OwnedFd, dev: &str, op: PrIoctl) -> Result<(), CmdError> {
    let (name, ret) = match op {
        PrIoctl::Register { old, new, ignore } => {
            let mut a = PrArg24 {
                a: old,
                b: new,
                c: if ignore { PR_FL_IGNORE_KEY } else { 0 },
                d: 0,
            };
            ("IOC_PR_REGISTER", ioctl_arg(fd, iow(200, 24), &raw mut a))
        }
        PrIoctl::Reserve { key, ty } | PrIoctl::Release { key, ty } => {
            let mut a = PrArg16 {
                a: key,
                b: block_pr_type(ty),
                c: 0,
            };
            let (name, nr) = if matches!(op, PrIoctl::Reserve { .. }) {
                ("IOC_PR_RESERVE", 201)
            } else {
                ("IOC_PR_RELEASE", 202)
            };
            (name, ioctl_arg(fd, iow(nr, 16), &raw mut a))
        }
        PrIoctl::Preempt {
            key,
            victim,
            ty,
            abort,
        } => {
            let mut a = PrArg24 {
                a: key,
                b: victim,
                c: block_pr_type(ty),
                d: 0,
            };
            let (name, nr) = if abort {
                ("IOC_PR_PREEMPT_ABORT", 204)
            } else {
                ("IOC_PR_PREEMPT", 203)
            };
            (name, ioctl_arg(fd, iow(nr, 24), &raw mut a))
        }
        PrIoctl::Clear { key } => {
            let mut a = PrArg16 { a: key, b: 0, c: 0 };
            ("IOC_PR_CLEAR", ioctl_arg(fd, iow(205, 16), &raw mut a))
        }
    };
    match ret {
        Ok(0) => Ok(()),
        // A positive return is the SCSI status of the failed command.
        Ok(status) => Err(CmdError::Scsi {
            op: name,
            dev: dev.to_owned(),
            err: sense::decode(u8::try_from(status).unwrap_or(0xff), 0, 0, &[])
                .err()
                .unwrap_or(ScsiError::Status(0xff)),
        }),
        Err(e) => Err(CmdError::Os(HalError::new(name, dev, e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // From <linux/pr.h> on x86-64 / arm64 (dir 1 << 30).
        #[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64")))]
        {
            assert_eq!(iow(200, 24), 0x4018_70c8, "IOC_PR_REGISTER");
            assert_eq!(iow(201, 16), 0x4010_70c9, "IOC_PR_RESERVE");
            assert_eq!(iow(205, 16), 0x4010_70cd, "IOC_PR_CLEAR");
        }
        #[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
        assert_eq!(iow(200, 24), 0x8018_70c8, "IOC_PR_REGISTER");
        assert_eq!(core::mem::size_of::<PrArg24>(), 24);
        assert_eq!(core::mem::size_of::<PrArg16>(), 16);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            core::mem::size_of::<SgIoHdr>(),
            88,
            "sizeof(sg_io_hdr_t) on LP64"
        );
    }

    #[test]
    fn a_missing_device_is_a_named_error() {
        let e = Device::open("/dev/sg-nonexistent-heartwire").unwrap_err();
        assert!(
            e.to_string().contains("/dev/sg-nonexistent-heartwire"),
            "{e}"
        );
    }

    #[test]
    fn sg_io_on_a_file_is_refused_by_the_os_not_misread() {
        /// Removes the scratch directory, also when an assertion fails.
        struct Scratch(std::path::PathBuf);
        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = Scratch(std::env::temp_dir().join(format!("hw-scsi-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join("not-scsi");
        std::fs::write(&path, [0u8; 512]).unwrap();
        let dev = Device::open(path.to_str().unwrap()).unwrap();
        let e = dev.test_unit_ready(Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, CmdError::Os(_)), "{e}");
        let e = dev.pr_ioctl(PrIoctl::Clear { key: 1 }).unwrap_err();
        assert!(matches!(e, CmdError::Os(_)), "{e}");
    }
}
