//! What the sentinel needs from the kernel (DESIGN §4 "The sentinel"): a fork that keeps
//! the daemon as its child, the daemon's life tied to the sentinel's (`PR_SET_PDEATHSIG`),
//! a page both processes share for the daemon's progress word and its death knell (a
//! robust futex), and reaping.

use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicIsize, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::sys::cvt;

/// Which side of [`fork`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The sentinel; the daemon is this pid.
    Parent(i32),
    /// The daemon.
    Child,
}

/// Forks. Call while single-threaded (the sentinel's one thread, its knell waiter, lives
/// only while it watches a daemon): the child continues with a copy of everything and
/// runs the daemon.
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
    /// The daemon's robust-list head (`struct robust_list_head`) and the one entry on its
    /// list, whose futex is `knell`. Written by the daemon, read by the kernel at its exit.
    knell_head: RobustListHead,
    knell_entry: AtomicUsize,
    /// The death knell: a robust futex the daemon owns while it lives (see
    /// [`SharedPage::arm_knell`]).
    knell: AtomicU32,
}

/// `struct robust_list_head` (linux/futex.h): a pointer, a `long` and a pointer, each the
/// size of a `usize` on Linux.
#[derive(Debug)]
#[repr(C)]
struct RobustListHead {
    next: AtomicUsize,
    futex_offset: AtomicIsize,
    list_op_pending: AtomicUsize,
}

/// What [`SharedPage::wait_knell`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knell {
    /// The daemon is dying: the kernel marked its futex at the start of its exit, before
    /// its memory is torn down (which takes long: locked memory is unlocked page by page).
    /// It runs no code of its own any more; [`exit_status`] says why it exits.
    Died,
    /// The daemon released the knell: it exits of its own accord (the pidfd says how).
    Released,
    /// Nothing yet (the wait timed out, was woken, or the daemon has not armed it).
    Pending,
}

/// The knell's value once released: no thread id (they stay below 2^22).
const KNELL_RELEASED: u32 = libc::FUTEX_TID_MASK;

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

impl SharedPage {
    /// In the daemon (its only thread, right after the fork): arms the death knell. The
    /// knell's futex holds this thread's id and sits on the thread's robust list
    /// (`set_robust_list(2)`), so when the process dies for any reason (SIGKILL, a crash,
    /// the OOM killer) the kernel marks it `FUTEX_OWNER_DIED` and wakes the sentinel
    /// waiting on it, at the start of the exit: before the memory teardown the pidfd has to
    /// wait for. Fails under qemu-user, which has no robust futexes (the pidfd still tells).
    pub fn arm_knell(&self) -> io::Result<()> {
        let w = self.words();
        let entry = &raw const w.knell_entry as usize;
        let futex = &raw const w.knell as usize;
        let head = &raw const w.knell_head;
        // A circular list of one entry: head → entry → head.
        w.knell_head.next.store(entry, Ordering::Relaxed);
        // The futex follows the entry in `Words`: a small positive offset.
        let offset = isize::try_from(futex - entry).expect("invariant: knell follows its entry");
        w.knell_head.futex_offset.store(offset, Ordering::Relaxed);
        w.knell_head.list_op_pending.store(0, Ordering::Relaxed);
        w.knell_entry.store(head as usize, Ordering::Relaxed);
        // SAFETY: gettid takes no arguments and cannot fail.
        let tid = unsafe { libc::gettid() };
        w.knell
            .store(u32::try_from(tid).unwrap_or(0), Ordering::Release);
        // SAFETY: set_robust_list(2) takes the head's address and its size; the head and
        // its entry live in this shared page, mapped until this process exits, and are
        // only ever read by the kernel at this thread's exit. It replaces any list libc
        // registered for this thread: the daemon uses no robust pthread mutexes.
        let r =
            unsafe { libc::syscall(libc::SYS_set_robust_list, head, size_of::<RobustListHead>()) };
        if r != 0 {
            let e = io::Error::last_os_error();
            w.knell.store(0, Ordering::Release);
            return Err(e);
        }
        futex_wake(&w.knell);
        Ok(())
    }

    /// In the daemon's thread that armed the knell, when it ends of its own accord (the
    /// page's drop does it): releases the knell, so the sentinel takes the exit as the
    /// pidfd tells it, and unregisters the robust list before its page goes away.
    pub fn release_knell(&self) {
        let w = self.words();
        // SAFETY: set_robust_list(2) with no list (NULL is accepted): the kernel then walks
        // nothing at this thread's exit.
        unsafe {
            libc::syscall(
                libc::SYS_set_robust_list,
                std::ptr::null::<RobustListHead>(),
                size_of::<RobustListHead>(),
            )
        };
        w.knell.store(KNELL_RELEASED, Ordering::Release);
        futex_wake(&w.knell);
    }

    /// In the sentinel (a thread of its own: a futex cannot be polled): waits up to
    /// `limit` for the knell. Wakes at once when the daemon dies or releases it, and when
    /// [`SharedPage::end_knell_waits`] is called.
    pub fn wait_knell(&self, limit: Duration) -> Knell {
        let knell = &self.words().knell;
        let v = knell.load(Ordering::Acquire);
        if v & libc::FUTEX_OWNER_DIED != 0 {
            return Knell::Died;
        }
        if v == KNELL_RELEASED {
            return Knell::Released;
        }
        // Armed: say a waiter sleeps, so the kernel wakes it at the daemon's death. Lost
        // to a change (the daemon died or released it meanwhile): look again.
        let waiting = v | libc::FUTEX_WAITERS;
        if v != 0
            && v != waiting
            && knell
                .compare_exchange(v, waiting, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Knell::Pending;
        }
        let wait = if v == 0 { 0 } else { waiting };
        let ts = crate::sys::timespec(limit);
        // SAFETY: FUTEX_WAIT (shared: the page is mapped in two processes) on an aligned
        // u32 of the live shared page, with a relative timeout; it only reads the word.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                knell.as_ptr(),
                libc::FUTEX_WAIT,
                wait,
                &raw const ts,
            )
        };
        match knell.load(Ordering::Acquire) {
            v if v & libc::FUTEX_OWNER_DIED != 0 => Knell::Died,
            KNELL_RELEASED => Knell::Released,
            _ => Knell::Pending,
        }
    }

    /// Whether the knell tolled: the daemon died (or is dying) without releasing it. It
    /// tolls at the start of the exit, so it has when the pidfd says the exit is done.
    pub fn knell_tolled(&self) -> bool {
        self.words().knell.load(Ordering::Acquire) & libc::FUTEX_OWNER_DIED != 0
    }

    /// In the sentinel, once the daemon is gone: ends the waits on the knell. The knell
    /// is marked released, then woken: a thread in [`SharedPage::wait_knell`] returns, and
    /// one about to wait does not sleep (a wake alone is lost on a thread that has not yet
    /// begun its wait; the changed word makes its wait return at once). Needed where the
    /// knell never tolls: the daemon died before arming it, or robust futexes are missing.
    /// A knell that tolled stays tolled: its waiter, woken by the kernel but not yet
    /// running, must still see it (it fences: the sentinel's loop does not).
    pub fn end_knell_waits(&self) {
        let knell = &self.words().knell;
        let _ = knell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v & libc::FUTEX_OWNER_DIED == 0).then_some(KNELL_RELEASED)
        });
        futex_wake(knell);
    }
}

/// Wakes every waiter on `word` (a shared futex).
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on an aligned u32 that lives as long as the call; it touches
    // no memory of ours.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// Why process `pid` (a child not yet reaped, that is exiting or has exited) exits: the
/// exit code `/proc/<pid>/stat` shows (field 52, the kernel sets it before the exit's
/// teardown). `None` when it cannot be read.
pub fn exit_status(pid: i32) -> Option<Exit> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command, is in parentheses and may hold spaces: count after its end.
    let (_, rest) = stat.rsplit_once(')')?;
    let code: i32 = rest.split_whitespace().nth(49)?.parse().ok()?;
    Some(if code & 0x7f != 0 {
        Exit::Signal(code & 0x7f)
    } else {
        Exit::Code((code >> 8) & 0xff)
    })
}

// SAFETY: the page is only accessed through atomics (`words`), from any thread: the
// sentinel's knell waiter shares it with the sentinel's loop.
unsafe impl Sync for SharedPage {}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // The daemon's thread that armed the knell: it ends of its own accord.
        // SAFETY: gettid takes no arguments and cannot fail.
        let tid = unsafe { libc::gettid() };
        let owner = self.words().knell.load(Ordering::Acquire) & KNELL_RELEASED;
        if i32::try_from(owner).is_ok_and(|o| o == tid) {
            self.release_knell();
        }
        // SAFETY: unmaps exactly the page `new` mapped; nothing borrows it any more.
        unsafe { libc::munmap(self.words.as_ptr().cast(), PAGE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forks a child that arms the knell, says so in the progress word, then does what
    /// `then` says with it (only system calls: the test harness has threads).
    fn armed_child(then: fn(&SharedPage)) -> (SharedPage, i32) {
        let page = SharedPage::new().expect("shared page");
        match fork().expect("fork") {
            Forked::Child => {
                let code = i32::from(page.arm_knell().is_err());
                page.words().progress.store(1, Ordering::Release);
                if code == 0 {
                    then(&page);
                }
                // SAFETY: _exit in a forked child: no destructors, no atexit handlers.
                unsafe { libc::_exit(code) }
            }
            Forked::Parent(pid) => {
                let end = std::time::Instant::now() + Duration::from_secs(5);
                while page.progress() == 0 && std::time::Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert_eq!(page.progress(), 1, "the child armed the knell");
                (page, pid)
            }
        }
    }

    /// Waits (bounded) for the knell to say something other than `Pending`.
    fn knell_of(page: &SharedPage) -> Knell {
        for _ in 0..50 {
            match page.wait_knell(Duration::from_millis(100)) {
                Knell::Pending => {}
                k => return k,
            }
        }
        Knell::Pending
    }

    fn reap(pid: i32) -> Exit {
        for _ in 0..5000 {
            if let Some(e) = try_wait(pid).expect("waitpid") {
                return e;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("child {pid} not reaped in 5 s");
    }

    #[test]
    fn a_knell_never_armed_ends_the_wait_at_once() {
        let page = SharedPage::new().expect("shared page");
        page.end_knell_waits();
        let t = std::time::Instant::now();
        assert_eq!(page.wait_knell(Duration::from_secs(10)), Knell::Released);
        assert!(t.elapsed() < Duration::from_secs(5), "no wait");
    }

    #[test]
    fn robust_futex_knell_tolls_for_a_kill_and_says_it_was_sigkill() {
        let (page, pid) = armed_child(|_| {
            loop {
                // SAFETY: pause(2) takes nothing; the child waits here to be killed.
                unsafe { libc::pause() };
            }
        });
        // SAFETY: kill(2) of the child this test forked.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        assert_eq!(knell_of(&page), Knell::Died);
        assert_eq!(exit_status(pid), Some(Exit::Signal(libc::SIGKILL)));
        assert_eq!(reap(pid), Exit::Signal(libc::SIGKILL));
        // The sentinel's loop ends the waits once it saw the knell: its waiter, not yet
        // running, must still find it tolled (it fences; with the knell overwritten as
        // released, the fence waited for the daemon's whole exit).
        page.end_knell_waits();
        assert_eq!(page.wait_knell(Duration::from_millis(10)), Knell::Died);
    }

    #[test]
    fn robust_futex_knell_tolls_for_an_exit_without_release_and_not_for_a_release() {
        let (page, pid) = armed_child(|_| {
            // SAFETY: _exit in a forked child.
            unsafe { libc::_exit(3) }
        });
        assert_eq!(knell_of(&page), Knell::Died);
        assert_eq!(reap(pid), Exit::Code(3));

        let (page, pid) = armed_child(SharedPage::release_knell);
        assert_eq!(knell_of(&page), Knell::Released);
        assert_eq!(reap(pid), Exit::Code(0));
    }
}
