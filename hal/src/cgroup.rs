//! Cgroup v2 directories for what the daemon starts: a child joins one between fork and
//! exec, so nothing it forks (a server that detached with `setsid`, a shell's background
//! job) leaves it; `cgroup.kill` (Linux 5.14) kills all of it in one write, with no walk
//! of `/proc`; and `cgroup.events` says, pollable, when the last of it is gone.
//!
//! No controller is enabled: the directories only group processes, so the cgroup v2 rule
//! that a cgroup with controllers for its children holds no processes never applies.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sys::cvt;

/// The cgroup v2 directory this process is in: the `cgroup2` mount of
/// `/proc/self/mountinfo` joined with the `0::` line of `/proc/self/cgroup`.
/// `NotFound` when no cgroup v2 hierarchy is mounted.
pub fn own_dir() -> io::Result<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    dir_of(&mountinfo, &own).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no cgroup v2 hierarchy is mounted (or this process is in none)",
        )
    })
}

/// [`own_dir`] from the two files' contents.
fn dir_of(mountinfo: &str, own: &str) -> Option<PathBuf> {
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    mountinfo.lines().find_map(|l| {
        // id parent major:minor root mount-point options [optional…] - fstype source …
        let (left, right) = l.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let mut f = left.split(' ');
        let (root, mount) = (f.nth(3)?, f.next()?);
        // A path outside the mount's root is not reachable through this mount.
        let rel = if root == "/" {
            path
        } else {
            let r = path.strip_prefix(root)?;
            if !(r.is_empty() || r.starts_with('/')) {
                return None;
            }
            r
        };
        Some(Path::new(&unescape(mount)).join(rel.trim_start_matches('/')))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One cgroup v2 directory, its control files open (a kill or a look opens nothing).
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    procs: File,
    kill: File,
    events: File,
}

impl Cgroup {
    /// Opens cgroup directory `path`, creating it if needed (its parent must exist).
    /// Fails when the kernel has no `cgroup.kill` (before Linux 5.14).
    pub fn create(path: &Path) -> io::Result<Cgroup> {
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let write = |name: &str| OpenOptions::new().write(true).open(path.join(name));
        let kill = write("cgroup.kill").map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}/cgroup.kill: {e} (it needs Linux 5.14)", path.display()),
            )
        })?;
        Ok(Cgroup {
            path: path.to_owned(),
            procs: write("cgroup.procs")?,
            kill,
            events: File::open(path.join("cgroup.events"))?,
        })
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SIGKILL to every process in it and below it, in one write; returns at once (see
    /// [`Cgroup::wait_empty`]).
    pub fn kill(&self) -> io::Result<()> {
        (&self.kill).write_all(b"1")
    }

    /// Whether a process is in it or below it (`populated` of `cgroup.events`).
    pub fn populated(&self) -> io::Result<bool> {
        let mut buf = [0u8; 128];
        let n = self.events.read_at(&mut buf, 0)?;
        let text = std::str::from_utf8(&buf[..n]).map_err(|_| io::ErrorKind::InvalidData)?;
        text.lines()
            .find_map(|l| l.strip_prefix("populated "))
            .map(|v| v.trim() == "1")
            .ok_or_else(|| io::ErrorKind::InvalidData.into())
    }

    /// Waits until nothing is in it or below it, for at most `limit`: `Ok(false)` if
    /// something still is then. Sleeps in poll(2) on `cgroup.events` (the kernel wakes it
    /// when the file changes), for a process that may block.
    pub fn wait_empty(&self, limit: Duration) -> io::Result<bool> {
        let end = Instant::now() + limit;
        loop {
            // Reading it also re-arms the poll below.
            if !self.populated()? {
                return Ok(true);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut p = libc::pollfd {
                fd: self.events.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            };
            let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            // SAFETY: `p` is one live pollfd on the stack, for the length 1 given; the fd
            // is open for the whole call (owned by `self`); the result is checked.
            cvt(unsafe { libc::poll(&raw mut p, 1, ms) })?;
        }
    }

    /// `cgroup.events`, for the event loop to poll (priority readiness when it changes;
    /// read [`Cgroup::populated`] after each).
    pub fn events_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }

    /// The processes in it and below it (for the log); a directory that cannot be read
    /// adds nothing.
    pub fn members(&self) -> Vec<i32> {
        fn walk(dir: &Path, out: &mut Vec<i32>) {
            if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path, &mut out);
        out
    }

    /// Makes the process `cmd` starts join this cgroup between fork and exec, so that it
    /// and everything it forks are in it from their first instruction. The spawn fails
    /// (with the kernel's error) if it cannot join. `self` must outlive the spawn.
    pub fn join_on_exec(&self, cmd: &mut Command) {
        let fd = self.procs.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and makes one
        // async-signal-safe call, write(2), of a static buffer to `fd` — the parent's
        // `cgroup.procs`, open (and inherited) for as long as `self` lives, which the
        // caller keeps across the spawn; "0" names the writing process. It allocates
        // nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                if n == 1 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
    }

    /// Removes the directory and every directory below it, deepest first; a cgroup that
    /// still holds a process stays (EBUSY), and so do its ancestors.
    pub fn remove(self) -> io::Result<()> {
        fn rm(dir: &Path) -> io::Result<()> {
            for e in std::fs::read_dir(dir)?.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path())?;
                }
            }
            std::fs::remove_dir(dir)
        }
        let path = self.path.clone();
        drop(self);
        rm(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_directory_is_the_mount_joined_with_the_path() {
        let mi = "24 30 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            dir_of(mi, "0::/system.slice/heartwire.service\n"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/heartwire.service"
            ))
        );
        assert_eq!(dir_of(mi, "0::/\n"), Some(PathBuf::from("/sys/fs/cgroup/")));
    }

    #[test]
    fn a_hybrid_host_uses_its_unified_mount_and_v1_lines_are_ignored() {
        let mi = "30 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                  35 25 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let own = "4:memory:/x\n1:cpu:/\n0::/\n";
        assert_eq!(
            dir_of(mi, own),
            Some(PathBuf::from("/sys/fs/cgroup/unified/"))
        );
    }

    #[test]
    fn a_mount_of_a_subtree_takes_the_path_relative_to_its_root() {
        let mi = "40 1 0:22 /lxc/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            dir_of(mi, "0::/lxc/c1/app\n"),
            Some(PathBuf::from("/sys/fs/cgroup/app"))
        );
        assert_eq!(dir_of(mi, "0::/elsewhere\n"), None);
    }

    #[test]
    fn no_cgroup2_mount_or_no_unified_line_is_none() {
        let v1 = "30 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(dir_of(v1, "0::/\n"), None);
        let v2 = "24 30 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(dir_of(v2, "1:cpu:/\n"), None);
    }

    /// As root, on a host with cgroup v2 (CI's): what a child forks, even into a new
    /// session, stays in the cgroup it joined, one kill ends it all, and the wait sees it.
    #[test]
    fn a_detached_grandchild_stays_in_the_cgroup_and_one_kill_ends_it() {
        let dir = own_dir()
            .expect("cgroup v2")
            .join(format!("hw-test.{}", std::process::id()));
        let cg = Cgroup::create(&dir).expect("create");
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "sleep 100 & setsid sleep 100 & exit 0"]);
        cg.join_on_exec(&mut cmd);
        assert!(cmd.status().expect("spawn").success());
        assert!(cg.populated().unwrap());
        assert_eq!(cg.members().len(), 2, "{:?}", cg.members());
        let t = Instant::now();
        cg.kill().unwrap();
        assert!(cg.wait_empty(Duration::from_secs(5)).unwrap());
        assert!(cg.members().is_empty());
        eprintln!("killed and gone in {:?}", t.elapsed());
        cg.remove().unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
