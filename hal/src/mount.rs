//! mount(2) and umount2(2) for the `filesystem` resource. Blocking (a mount may fsck the
//! journal, an unmount flushes dirty pages): called only from a child process, never from
//! the event loop.

use std::ffi::CString;
use std::io;

use crate::HalError;
use crate::sys::cvt;

/// Mount flags understood in an options string (the rest is passed to the filesystem as
/// its data, as mount(8) does).
const FLAGS: &[(&str, libc::c_ulong)] = &[
    ("ro", libc::MS_RDONLY),
    ("nosuid", libc::MS_NOSUID),
    ("nodev", libc::MS_NODEV),
    ("noexec", libc::MS_NOEXEC),
    ("sync", libc::MS_SYNCHRONOUS),
    ("dirsync", libc::MS_DIRSYNC),
    ("noatime", libc::MS_NOATIME),
    ("nodiratime", libc::MS_NODIRATIME),
    ("relatime", libc::MS_RELATIME),
    ("strictatime", libc::MS_STRICTATIME),
    ("lazytime", libc::MS_LAZYTIME),
];

/// Splits a comma-separated options string into mount flags and filesystem data.
/// `rw` and `defaults` set nothing (read-write is the default).
pub fn split_options(options: &str) -> (libc::c_ulong, String) {
    let mut flags = 0;
    let mut data = Vec::new();
    for o in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if let Some((_, f)) = FLAGS.iter().find(|(n, _)| *n == o) {
            flags |= f;
        } else if o != "rw" && o != "defaults" {
            data.push(o);
        }
    }
    (flags, data.join(","))
}

fn cstr(what: &'static str, s: &str) -> Result<CString, HalError> {
    CString::new(s).map_err(|_| {
        HalError::new(
            what,
            s,
            io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
        )
    })
}

/// Mounts `device` on `target` as `fstype` with `options` (see [`split_options`]).
pub fn mount(device: &str, target: &str, fstype: &str, options: &str) -> Result<(), HalError> {
    let (flags, data) = split_options(options);
    let (src, dst, ty, data_c) = (
        cstr("mount", device)?,
        cstr("mount", target)?,
        cstr("mount", fstype)?,
        cstr("mount", &data)?,
    );
    // SAFETY: every pointer is a NUL-terminated CString alive for the call; flags are
    // plain bits; the kernel copies the strings and keeps no pointer.
    cvt(unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            ty.as_ptr(),
            flags,
            data_c.as_ptr().cast(),
        )
    })
    .map_err(|e| HalError::new("mount", format!("{device} on {target}"), e))?;
    Ok(())
}

/// Unmounts `target` (no flags: fails with EBUSY while anything holds it).
pub fn umount(target: &str) -> Result<(), HalError> {
    let t = cstr("umount", target)?;
    // SAFETY: `t` is a NUL-terminated CString alive for the call.
    cvt(unsafe { libc::umount2(t.as_ptr(), 0) }).map_err(|e| HalError::new("umount", target, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d) = split_options("rw,noatime,data=ordered, nosuid ,errors=remount-ro");
        assert_eq!(f, libc::MS_NOATIME | libc::MS_NOSUID);
        assert_eq!(d, "data=ordered,errors=remount-ro");
        assert_eq!(split_options("defaults"), (0, String::new()));
        assert_eq!(split_options("ro").0, libc::MS_RDONLY);
    }
}
