//! What the sentinel needs from the kernel (DESIGN §4 "The sentinel"): a fork that keeps
//! the daemon as its child, the daemon's life tied to the sentinel's (`PR_SET_PDEATHSIG`),
//! a page both processes share for the daemon's progress word, and reaping.

use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys::cvt;

/// Which side of [`fork`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The sentinel; the daemon is this pid.
    Parent(i32),
    /// The daemon.
    Child,
}

/// Forks. Call while single-threaded (the sentinel has no threads): the child continues
/// with a copy of everything and runs the daemon.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork in a single-threaded process (documented precondition): the child's
    // copy of the heap and of every lock is consistent.
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// In the child of [`fork`]: SIGKILL this process when `parent` dies, so a daemon never
/// runs unwatched. Fails (and the caller must exit) when `parent` is already gone.
pub fn die_with(parent: i32) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes the signal as an integer; no pointers.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) })?;
    // SAFETY: getppid takes no arguments and cannot fail.
    if unsafe { libc::getppid() } == parent {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the sentinel exited before the daemon started",
        ))
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// This signal killed it.
    Signal(i32),
}

/// Reaps child `pid` if it has ended (`waitpid` with `WNOHANG`).
pub fn try_wait(pid: i32) -> io::Result<Option<Exit>> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into the integer it is given; WNOHANG never
    // blocks.
    let r = cvt(unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) })?;
    if r == 0 {
        return Ok(None);
    }
    Ok(Some(if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }))
}

/// A copy of descriptor `fd` of the process behind `pidfd` (`pidfd_getfd`, Linux 5.6+;
/// the sentinel is the daemon's parent, which ptrace rules allow).
pub fn take_fd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: pidfd_getfd(2) takes a pidfd, a descriptor number of that process and
    // flags (0); it returns a new descriptor or -1, checked and owned at once below.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(r).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: `fd` is a fresh descriptor returned by the kernel that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The words the daemon publishes to its sentinel, on a page both share.
#[derive(Debug)]
#[repr(C)]
pub struct Words {
    /// Loop turns: the daemon stores a new value every turn (a plain store, no system
    /// call); a value that stops changing is a daemon that stopped making progress.
    pub progress: AtomicU64,
    /// The daemon's incarnation, once chosen (0 before): the one a death notice names.
    pub incarnation: AtomicU32,
    /// While the daemon holds groups on a lease: when it ends (CLOCK_MONOTONIC ns; 0:
    /// nothing held on a lease). The daemon fences at that moment in its loop; a daemon
    /// that has not turned since is fenced by the sentinel.
    pub fence_by: AtomicU64,
    /// Set (1) by a daemon about to halt the node: the sentinel stops kicking the
    /// watchdog, so a halt that hangs ends in a reset.
    pub halting: AtomicU32,
    /// The hash of the config the daemon runs (at start and after each reload): the
    /// sentinel starts the next daemon with the file only when it is that config.
    pub config_hash: AtomicU64,
    /// Bumped after `fds` changed: the sentinel takes copies of them (`pidfd_getfd`).
    pub fds_generation: AtomicU32,
    /// Descriptors of the daemon's packet sockets (-1: unused). Closing the last copy of
    /// a packet socket waits for an RCU grace period (`synchronize_net`, about 10 ms
    /// each here): with the sentinel holding copies, a dying daemon's exit does not wait
    /// for them, so its death is known that much sooner.
    pub fds: [std::sync::atomic::AtomicI32; FDS],
}

/// How many descriptors the daemon can publish.
pub const FDS: usize = 32;

/// One page shared between the sentinel and the daemon it forks (`MAP_SHARED |
/// MAP_ANONYMOUS`: the fork keeps it shared). Each process unmaps its own mapping.
#[derive(Debug)]
pub struct SharedPage {
    words: NonNull<Words>,
}

const PAGE: usize = 4096;
const _: () = assert!(size_of::<Words>() <= PAGE);

impl SharedPage {
    /// Maps a zeroed page.
    pub fn new() -> io::Result<SharedPage> {
        // SAFETY: an anonymous shared mapping of one page: no file, no fixed address;
        // the result is checked against MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let words = NonNull::new(p.cast::<Words>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedPage { words })
    }

    /// The shared words.
    pub fn words(&self) -> &Words {
        // SAFETY: the mapping is page-aligned, zero-filled (a valid `Words`: atomics of
        // zero), at least `size_of::<Words>()` long, and lives until `drop`; only atomics
        // are accessed through it, so the other process's writes are no data race.
        unsafe { self.words.as_ref() }
    }

    /// The daemon's progress word, read by the sentinel.
    pub fn progress(&self) -> u64 {
        self.words().progress.load(Ordering::Relaxed)
    }

    /// In the daemon: publishes descriptors `fds` (at most [`FDS`]) for the sentinel.
    pub fn publish_fds(&self, fds: &[i32]) {
        let w = self.words();
        for (i, slot) in w.fds.iter().enumerate() {
            slot.store(fds.get(i).copied().unwrap_or(-1), Ordering::Relaxed);
        }
        w.fds_generation.fetch_add(1, Ordering::Release);
    }

    /// In the sentinel: the published descriptors, and their generation.
    pub fn published_fds(&self) -> (u32, Vec<i32>) {
        let w = self.words();
        let generation = w.fds_generation.load(Ordering::Acquire);
        let fds = w
            .fds
            .iter()
            .map(|f| f.load(Ordering::Relaxed))
            .filter(|f| *f >= 0)
            .collect();
        (generation, fds)
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the page `new` mapped; nothing borrows it any more.
        unsafe { libc::munmap(self.words.as_ptr().cast(), PAGE) };
    }
}
