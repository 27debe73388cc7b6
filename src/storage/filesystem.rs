//! The `filesystem` resource's two steps, run in a child process (`heartwire filesystem
//! mount|unmount …`): a mount may replay a journal, an unmount flushes dirty pages, and
//! either can hang on a sick disk; the daemon bounds both with the resource's timeout
//! and puts the group in error when it passes, rather than waiting.
//!
//! - mount: if `fsck` is configured, `fsck -a DEVICE` first (exit 0 or 1 — "errors
//!   corrected" — goes on; anything else fails the acquisition). The mount point is made
//!   if missing. The device already mounted there is a mount this acquisition did not
//!   make — left by a daemon that crashed, or from before another node took the group
//!   over and wrote to the disk — so it is unmounted first (its holders signalled as on
//!   release), then checked and mounted afresh; something else mounted there is a
//!   failure.
//! - unmount: every process holding the mount (its cwd, root, executable, open files or
//!   mapped files under the mount point) gets SIGTERM; those left after the grace time
//!   get SIGKILL; then umount. Not mounted is success.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use heartwire_hal::process::{SIGKILL, signal};

/// SIGTERM.
const SIGTERM: i32 = 15;

/// Mounts `device` on `mountpoint` with `(fstype, options)`; a mount of it already
/// there is unmounted first (holders get SIGKILL after `grace`).
pub fn mount(
    device: &str,
    mountpoint: &str,
    (fstype, options): (&str, &str),
    fsck: bool,
    grace: Duration,
    log: &mut dyn FnMut(String),
) -> Result<(), String> {
    if let Some(source) = mounted(mountpoint)? {
        if !same_device(&source, device) {
            return Err(format!(
                "{mountpoint} already has {source} mounted on it (expected {device})"
            ));
        }
        log(format!(
            "{device} is already mounted on {mountpoint}, not by this acquisition (left by \
             an earlier run?): unmounting it first, its cache may predate another node's writes"
        ));
        unmount(mountpoint, grace, log)?;
    }
    if fsck {
        let out = heartwire_hal::process::clean_command("fsck")
            .args(["-a", device])
            .output()
            .map_err(|e| format!("fsck -a {device}: {e}"))?;
        let code = out.status.code();
        for l in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            log(format!("fsck: {l}"));
        }
        match code {
            Some(0) => {}
            Some(1) => log("fsck corrected errors".into()),
            _ => return Err(format!("fsck -a {device}: {}", out.status)),
        }
    }
    std::fs::create_dir_all(mountpoint).map_err(|e| format!("mkdir {mountpoint}: {e}"))?;
    heartwire_hal::mount::mount(device, mountpoint, fstype, options).map_err(|e| e.to_string())?;
    log(format!(
        "mounted {device} on {mountpoint} ({fstype}, {options})"
    ));
    Ok(())
}

/// Unmounts `mountpoint`, signalling the processes that hold it (SIGKILL after `grace`).
pub fn unmount(
    mountpoint: &str,
    grace: Duration,
    log: &mut dyn FnMut(String),
) -> Result<(), String> {
    if mounted(mountpoint)?.is_none() {
        log(format!("{mountpoint} is not mounted"));
        return Ok(());
    }
    let start = Instant::now();
    let mut sig = SIGTERM;
    loop {
        let holders = holders(Path::new(mountpoint));
        if holders.is_empty() {
            break;
        }
        if sig == SIGTERM && start.elapsed() >= grace {
            sig = SIGKILL;
        }
        for (pid, name) in &holders {
            if signal(*pid, sig).is_ok() {
                log(format!(
                    "sent {} to {pid} ({name}), which holds {mountpoint}",
                    if sig == SIGKILL { "SIGKILL" } else { "SIGTERM" }
                ));
            }
        }
        if sig == SIGKILL && start.elapsed() >= grace * 2 {
            // Processes in uninterruptible sleep; the umount below reports EBUSY.
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    heartwire_hal::mount::umount(mountpoint).map_err(|e| e.to_string())?;
    log(format!("unmounted {mountpoint}"));
    Ok(())
}

/// The source mounted on `mountpoint`, if any (from /proc/self/mountinfo).
pub fn mounted(mountpoint: &str) -> Result<Option<String>, String> {
    let want = Path::new(mountpoint);
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    Ok(text.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        let source = f.get(sep + 2)?;
        (Path::new(&unescape(f.get(4)?)) == want).then(|| unescape(source))
    }))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether mountinfo's `source` is `device` (the same path, or the same block device).
fn same_device(source: &str, device: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    source == device
        || matches!(
            (std::fs::metadata(source), std::fs::metadata(device)),
            (Ok(a), Ok(b)) if a.rdev() != 0 && a.rdev() == b.rdev()
        )
}

/// Processes (pid, name) that hold something under `mountpoint`: cwd, root, executable,
/// an open file or a mapped file.
pub fn holders(mountpoint: &Path) -> Vec<(i32, String)> {
    let me = std::process::id();
    let under = |p: &Path| p.starts_with(mountpoint);
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|p| p == me) {
            continue;
        }
        let base = e.path();
        let link = |n: &str| std::fs::read_link(base.join(n)).ok();
        let mut holds = ["cwd", "root", "exe"]
            .iter()
            .filter_map(|n| link(n))
            .any(|p| under(&p));
        if !holds {
            holds = std::fs::read_dir(base.join("fd"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|f| std::fs::read_link(f.path()).ok())
                .any(|p| under(&p));
        }
        if !holds {
            holds = std::fs::read_to_string(base.join("maps")).is_ok_and(|m| {
                m.lines()
                    .filter_map(|l| l.split_whitespace().nth(5))
                    .any(|p| under(&PathBuf::from(p)))
            });
        }
        if holds {
            let name = std::fs::read_to_string(base.join("comm"))
                .map_or_else(|_| "?".into(), |s| s.trim().to_owned());
            out.push((pid, name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), "/end\\");
    }

    /// Issue 17 item 3: the device already mounted where the group mounts it is a mount
    /// that predates this acquisition (a crashed run's, from before another node wrote
    /// the disk): it is unmounted and mounted afresh, not taken as is. A tmpfs shows it:
    /// the file written into the old mount is gone from the new one. Needs root, as
    /// `make test` runs.
    #[test]
    fn a_mount_left_by_an_earlier_run_is_replaced_not_reused() {
        struct Scratch(PathBuf);
        impl Drop for Scratch {
            fn drop(&mut self) {
                let mp = self.0.to_string_lossy().into_owned();
                while mounted(&mp).ok().flatten().is_some() {
                    if unmount(&mp, Duration::ZERO, &mut |_| {}).is_err() {
                        break;
                    }
                }
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        assert_eq!(
            heartwire_hal::cred::effective_uid(),
            0,
            "needs root to mount (make test runs as root)"
        );
        let id = std::process::id();
        let dir = Scratch(std::env::temp_dir().join(format!("hw-remount-{id}")));
        std::fs::create_dir_all(&dir.0).unwrap();
        let mp = dir.0.to_string_lossy().into_owned();
        let device = format!("hwfs{id}");
        heartwire_hal::mount::mount(&device, &mp, "tmpfs", "defaults").unwrap();
        std::fs::write(dir.0.join("written-before"), b"old").unwrap();
        let mut lines = vec![];
        mount(
            &device,
            &mp,
            ("tmpfs", "defaults"),
            false,
            Duration::from_millis(100),
            &mut |l| lines.push(l),
        )
        .unwrap();
        assert!(
            lines.iter().any(|l| l.contains("not by this acquisition")),
            "{lines:?}"
        );
        assert_eq!(mounted(&mp).unwrap().as_deref(), Some(device.as_str()));
        assert!(
            !dir.0.join("written-before").exists(),
            "mounted afresh, not the old mount reused"
        );
    }

    #[test]
    fn the_root_filesystem_is_mounted_and_a_scratch_dir_is_not() {
        assert!(mounted("/").unwrap().is_some());
        assert!(
            mounted("/nonexistent-heartwire-mountpoint")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_process_with_its_cwd_under_a_directory_holds_it() {
        struct Scratch(PathBuf);
        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = Scratch(std::env::temp_dir().join(format!("hw-holders-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir.0)
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let found = holders(&dir.0);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found.iter().any(|(p, n)| *p == pid && n == "sleep"),
            "{found:?}"
        );
    }
}
