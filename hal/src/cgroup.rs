//! Cgroup v2 directories for what the daemon starts: a child is born in one
//! (`CLONE_INTO_CGROUP`, Linux 5.7), so nothing it forks (a server that detached with
//! `setsid`, a shell's background job) leaves it; a kill reads its members and SIGKILLs
//! them, with no walk of `/proc`; and `cgroup.events` says, pollable, when the last of it
//! is gone.
//!
//! Not `cgroup.kill`: on Linux 6.18 (and since the kill sequence counter came in), a child
//! cloned into a cgroup that was ever killed that way is killed at birth (the kernel
//! compares the kill count of the parent's cgroup with the target's), so one fence would
//! make an application unstartable. A kill loop converges as well: each round kills
//! every member, and only a member that forked before it died adds one more round.
//!
//! No controller is enabled: the directories only group processes, so the cgroup v2 rule
//! that a cgroup with controllers for its children holds no processes never applies.

use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sys::cvt;

/// How long [`Cgroup::kill_until_empty`] lets the killed exit before it walks the tree for
/// what the first round missed.
const FIRST_LOOK: Duration = Duration::from_millis(1);

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

/// One cgroup v2 directory, its `cgroup.events` open.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    /// The directory itself (what `clone3` takes).
    dir: File,
    events: File,
    /// `cgroup.procs`, open for the first round of a kill (no path walk, no open).
    procs: File,
}

/// Rounds of a kill before it gives up on a cgroup that keeps forking.
const KILL_ROUNDS: usize = 64;

/// SIGKILL to each of `pids` not in `killed` (which it joins; one already gone counts);
/// returns how many.
fn kill_new(pids: impl IntoIterator<Item = i32>, killed: &mut Vec<i32>) -> io::Result<usize> {
    let mut n = 0;
    for pid in pids {
        if killed.contains(&pid) {
            continue;
        }
        match crate::process::signal(pid, libc::SIGKILL) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
        killed.push(pid);
        n += 1;
    }
    Ok(n)
}

impl Cgroup {
    /// Opens cgroup directory `path`, creating it if needed (its parent must exist).
    pub fn create(path: &Path) -> io::Result<Cgroup> {
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        Ok(Cgroup {
            path: path.to_owned(),
            dir: OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(path)?,
            events: File::open(path.join("cgroup.events"))?,
            procs: File::open(path.join("cgroup.procs"))?,
        })
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SIGKILL to every process in it and below it, round after round until a round
    /// finds none (a process that forked before it died adds a round); returns without
    /// waiting for them to be gone (see [`Cgroup::wait_empty`]). `Ok(false)`: it still
    /// had members after [`KILL_ROUNDS`] rounds.
    pub fn kill(&self) -> io::Result<bool> {
        let mut killed = Vec::new();
        for _ in 0..KILL_ROUNDS {
            if self.kill_round(&mut killed)? == 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One round of [`Cgroup::kill`]: SIGKILL to each member not in `killed` (which it
    /// joins); returns how many.
    pub fn kill_round(&self, killed: &mut Vec<i32>) -> io::Result<usize> {
        kill_new(self.members(), killed)
    }

    /// SIGKILL to each process in this cgroup itself, not below it, that is not in
    /// `killed` (which it joins): the quick first round of a kill whose cgroups are all
    /// known and open (a walk of the tree reads every directory: about 100 µs for three);
    /// [`Cgroup::kill_until_empty`] on the top one finds the rest.
    pub fn kill_members_here(&self, killed: &mut Vec<i32>) -> io::Result<()> {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        let mut at = 0;
        loop {
            let n = self.procs.read_at(&mut buf, at)?;
            if n == 0 {
                break;
            }
            text.push_str(std::str::from_utf8(&buf[..n]).map_err(|_| io::ErrorKind::InvalidData)?);
            at += n as u64;
        }
        kill_new(
            text.lines().filter_map(|l| l.trim().parse::<i32>().ok()),
            killed,
        )?;
        Ok(())
    }

    /// Kills on (rounds of [`Cgroup::kill_round`] after `killed`, at each change of
    /// `cgroup.events`) until it is empty, for at most `limit`: `Ok(false)` if something
    /// is still in it then.
    pub fn kill_until_empty(&self, killed: &mut Vec<i32>, limit: Duration) -> io::Result<bool> {
        let now = Instant::now();
        let end = now + limit;
        // The first round is out: the killed get the CPU before the tree is walked. A walk
        // reads every directory (about 100 µs), and the killed need a CPU to exit — the
        // fence's thread, at a real-time priority above theirs, held one through its walk
        // while the other was busy with the dying daemon's teardown (the killed gone 0.4
        // ms after the fault instead of 0.2). What the first round missed (below a cgroup
        // an application made; forked just then) is found by the walk at most
        // `FIRST_LOOK` later.
        if !self.populated()? {
            return Ok(true);
        }
        self.wait_change((now + FIRST_LOOK).min(end))?;
        loop {
            if !self.populated()? {
                return Ok(true);
            }
            if self.kill_round(killed)? == 0 && !self.wait_change(end)? {
                return Ok(!self.populated()?);
            }
        }
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
            // Reading it also re-arms the poll.
            if !self.populated()? {
                return Ok(true);
            }
            if !self.wait_change(end)? {
                return Ok(!self.populated()?);
            }
        }
    }

    /// Sleeps until `cgroup.events` changes (read it after), or `end`: `Ok(false)` at `end`.
    fn wait_change(&self, end: Instant) -> io::Result<bool> {
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
        // SAFETY: `p` is one live pollfd on the stack, for the length 1 given; the fd is
        // open for the whole call (owned by `self`); the result is checked.
        let n = match cvt(unsafe { libc::poll(&raw mut p, 1, ms) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 1,
            r => r?,
        };
        Ok(n > 0)
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

    /// Starts `program` (a path: no search) with `argv` (its first element included) and
    /// exactly the environment `env` (`KEY=value`), born in this cgroup: `clone3` with
    /// `CLONE_INTO_CGROUP` (Linux 5.7). A child that joined one after its fork would
    /// migrate, and a migration takes the kernel's cgroup writer lock, which waits an RCU
    /// grace period: 2 to 12 ms on this VM, during which the caller's spawn — the event
    /// loop — waits. The child starts clean (an empty signal mask, every signal at its
    /// default, the CPUs this process had before it pinned itself), in a process group of
    /// its own, stdin on /dev/null, stdout and stderr on `out`.
    ///
    /// Returns once the child is cloned, not once it has exec'd: the exec (a page-cache
    /// miss on the program under a loaded disk, a child born frozen) is the child's time,
    /// not the caller's. Whether it exec'd is [`Spawned::exec`]'s to say, by the child's end
    /// at the latest.
    pub fn spawn(
        &self,
        program: &CStr,
        argv: &[CString],
        env: &[CString],
        out: BorrowedFd<'_>,
    ) -> io::Result<Spawned> {
        let null = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|a| a.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let (argv, envp) = (null(argv), null(env));
        let devnull = File::open("/dev/null")?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given; checked; each
        // is owned at once below.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: fresh descriptors from pipe2 that nothing else owns.
        let (err_r, err_w) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut pidfd: libc::c_int = -1;
        let mut args = CloneArgs {
            flags: CLONE_PIDFD | CLONE_INTO_CGROUP,
            pidfd: (&raw mut pidfd) as u64,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: u64::try_from(self.dir.as_raw_fd()).map_err(|_| io::ErrorKind::InvalidInput)?,
            ..CloneArgs::default()
        };
        let child = Child {
            program: program.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            stdin: devnull.as_raw_fd(),
            out: out.as_raw_fd(),
            err: err_w.as_raw_fd(),
        };
        // SAFETY: clone3(2) with a live, initialised clone_args of the size given; no
        // CLONE_VM and no stack: the child runs on a copy of this address space, as after
        // fork. In the child (return 0) only `child.exec()` runs, which makes
        // async-signal-safe calls on values prepared above and never returns.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &raw mut args,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if ret == 0 {
            child.exec();
        }
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let pid = i32::try_from(ret).map_err(|_| io::ErrorKind::InvalidData)?;
        // SAFETY: CLONE_PIDFD stored a fresh pidfd for the child here, owned by nobody else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        // Its process group now, as the child does it too: this returns before the child
        // has run, and a kill of the group (a stop, a timeout, the daemon's exit) must not
        // miss a child that did not get that far (EACCES once it exec'd: it did it then).
        // SAFETY: setpgid(2) on our own child's pid; no memory is passed.
        let _ = unsafe { libc::setpgid(pid, pid) };
        // Its CPUs now too: pinned with a real-time daemon, it could not run on the
        // daemon's CPU before the daemon's turn ends (best effort, as in the child).
        let _ = crate::sched::restore_affinity_of(pid);
        Ok(Spawned {
            pid,
            pidfd,
            exec: ExecReport(err_r),
        })
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

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), as of Linux 5.7 (88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A child [`Cgroup::spawn`] started.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid, which is also its process group.
    pub pid: i32,
    /// Its pidfd (readable once it exited).
    pub pidfd: OwnedFd,
    /// Whether its exec worked.
    pub exec: ExecReport,
}

/// Whether a spawned child's exec worked: the read end of a close-on-exec pipe that the
/// child writes exec's errno to when the exec fails (then it exits 127).
#[derive(Debug)]
pub struct ExecReport(File);

impl ExecReport {
    /// `Some(Ok(()))`: it exec'd (or was killed before it tried); `Some(Err(e))`: its exec failed with `e`; `None`: not
    /// known yet (it has not got that far). Known for sure once the child has exited.
    /// Never waits.
    pub fn outcome(&mut self) -> Option<io::Result<()>> {
        let mut errno = [0u8; 4];
        loop {
            match self.0.read(&mut errno) {
                Ok(0) => return Some(Ok(())),
                // The four bytes are written with one write, under PIPE_BUF: all or nothing.
                Ok(4) => return Some(Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))),
                Ok(n) => {
                    return Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{n} bytes of an exec error"),
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// What the child of [`Cgroup::spawn`] needs, prepared before the clone.
struct Child {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stdin: libc::c_int,
    out: libc::c_int,
    err: libc::c_int,
}

impl Child {
    /// In the cloned child: a clean start, then exec; on failure exec's errno goes to
    /// the parent through `err` and the child exits 127.
    fn exec(&self) -> ! {
        let _ = crate::process::reset_signals();
        // Not confined to a CPU the daemon pinned itself to (best effort, as above).
        let _ = crate::sched::restore_affinity();
        // The C library refuses the signals it reserves for itself (32, 33 in glibc);
        // the kernel does not, and an ignored one would survive exec.
        let dfl = [0u64; 4];
        for sig in 1..=64 {
            // SAFETY: rt_sigaction(2) with an all-zero kernel sigaction (SIG_DFL, no
            // flags, empty mask) of the kernel's size, no old action wanted, and the
            // kernel's sigset size (8); async-signal-safe. SIGKILL and SIGSTOP refuse.
            let _ = unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    dfl.as_ptr(),
                    std::ptr::null::<u64>(),
                    8,
                )
            };
        }
        // SAFETY: each call below is async-signal-safe and takes plain integers or
        // pointers prepared by the parent before the clone, alive in this copy of its
        // memory: setpgid(0, 0) makes a group of its own; dup2 puts the descriptors on
        // 0, 1 and 2 (clearing close-on-exec there); execve replaces the process or
        // returns -1; write and _exit report that and end it.
        unsafe {
            libc::setpgid(0, 0);
            libc::dup2(self.stdin, 0);
            libc::dup2(self.out, 1);
            libc::dup2(self.out, 2);
            libc::execve(self.program, self.argv, self.envp);
            let errno = *libc::__errno_location();
            libc::write(self.err, (&raw const errno).cast(), 4);
            libc::_exit(127)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test's cgroup, killed and removed however the test ends.
    struct Scratch(PathBuf);

    impl Scratch {
        /// A fresh cgroup named `name.<pid>` below this process's own (which needs cgroup
        /// v2, as root), removed however the test ends.
        fn cgroup(name: &str) -> (Scratch, Cgroup) {
            let dir = own_dir()
                .expect("cgroup v2")
                .join(format!("{name}.{}", std::process::id()));
            let scratch = Scratch(dir.clone());
            (scratch, Cgroup::create(&dir).expect("create"))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if !self.0.is_dir() {
                return;
            }
            if let Ok(cg) = Cgroup::create(&self.0) {
                let _ = cg.kill();
                let _ = cg.wait_empty(Duration::from_secs(5));
                let _ = cg.remove();
            }
        }
    }

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
    fn clone3_a_detached_grandchild_stays_in_the_cgroup_and_one_kill_ends_it() {
        let (scratch, cg) = Scratch::cgroup("hw-test");
        let c = |s: &str| CString::new(s).unwrap();
        let argv = [
            c("/bin/sh"),
            c("-c"),
            c("sleep 100 & setsid sleep 100 & exit 0"),
        ];
        let (_r, w) = std::io::pipe().unwrap();
        let Spawned { pid, .. } = cg.spawn(&argv[0], &argv, &[], w.as_fd()).expect("spawn");
        let mut status = 0;
        // SAFETY: test-only blocking waitpid for the shell just spawned.
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert_eq!(status, 0);
        assert!(cg.populated().unwrap());
        assert_eq!(cg.members().len(), 2, "{:?}", cg.members());
        let t = Instant::now();
        assert!(cg.kill().unwrap());
        assert!(cg.wait_empty(Duration::from_secs(5)).unwrap());
        assert!(cg.members().is_empty());
        // A cgroup once killed takes new children (cgroup.kill's would be killed at birth).
        let Spawned { pid, .. } = cg
            .spawn(&argv[0], &argv, &[], w.as_fd())
            .expect("spawn again");
        // SAFETY: as above.
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert_eq!(status, 0, "the second child was killed at birth");
        assert_eq!(cg.members().len(), 2, "{:?}", cg.members());
        assert!(cg.kill().unwrap());
        assert!(cg.wait_empty(Duration::from_secs(5)).unwrap());
        eprintln!("killed and gone in {:?}", t.elapsed());
        cg.remove().unwrap();
        assert!(!scratch.0.exists());
    }

    /// As root with cgroup v2: the quick round kills the cgroup's own members and not
    /// those of a cgroup below it; the kill to empty finds those.
    #[test]
    fn clone3_a_round_here_kills_its_own_members_and_the_kill_to_empty_the_rest() {
        let (_scratch, top) = Scratch::cgroup("hw-here");
        let below = Cgroup::create(&top.path().join("below")).expect("create below");
        let c = |s: &str| CString::new(s).unwrap();
        let argv = [c("/bin/sleep"), c("100")];
        let (_r, w) = std::io::pipe().unwrap();
        let Spawned { pid: here, .. } = top.spawn(&argv[0], &argv, &[], w.as_fd()).expect("spawn");
        let Spawned { pid: deep, .. } =
            below.spawn(&argv[0], &argv, &[], w.as_fd()).expect("spawn");
        let mut killed = Vec::new();
        top.kill_members_here(&mut killed).unwrap();
        assert_eq!(killed, vec![here]);
        let mut status = 0;
        // SAFETY: test-only blocking waitpid for the child just killed.
        unsafe { libc::waitpid(here, &raw mut status, 0) };
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
        assert_eq!(top.members(), vec![deep], "the member below is alive");
        assert!(
            top.kill_until_empty(&mut killed, Duration::from_secs(5))
                .unwrap()
        );
        assert_eq!(killed, vec![here, deep]);
        // SAFETY: as above.
        unsafe { libc::waitpid(deep, &raw mut status, 0) };
        drop(below);
        top.remove().unwrap();
    }

    /// As root with cgroup v2: a child spawned into the cgroup is born there (it and what
    /// it forks are members before anything could migrate them), its output reaches the
    /// pipe, its signals start clean; a program that cannot be exec'd exits 127, and the
    /// exec report says why.
    #[test]
    fn clone3_a_child_is_born_in_the_cgroup_and_a_bad_program_is_reported() {
        let (_scratch, cg) = Scratch::cgroup("hw-spawn");
        let (mut r, w) = std::io::pipe().unwrap();
        let c = |s: &str| CString::new(s).unwrap();
        let argv = [
            c("/bin/sh"),
            c("-c"),
            c("grep -E '^Sig(Blk|Ign)' /proc/self/status; echo $X; exec sleep 100"),
        ];
        let Spawned { pid, .. } = cg
            .spawn(&argv[0], &argv, &[c("X=from-env")], w.as_fd())
            .expect("spawn");
        drop(w);
        assert!(
            cg.members().contains(&pid),
            "{:?} lacks {pid}",
            cg.members()
        );
        let mut line = String::new();
        let mut buf = [0u8; 256];
        while line.lines().count() < 3 {
            let n = r.read(&mut buf).unwrap();
            assert!(n > 0, "output ended early: {line:?}");
            line.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(line.contains("SigBlk:\t0000000000000000"), "{line}");
        assert!(line.contains("SigIgn:\t0000000000000000"), "{line}");
        assert!(line.contains("from-env"), "{line}");
        assert!(cg.kill().unwrap());
        assert!(cg.wait_empty(Duration::from_secs(5)).unwrap());
        // A program that cannot be exec'd: the spawn returns (it does not wait for the
        // exec), the child exits 127, and the report says why.
        let (_r, w) = std::io::pipe().unwrap();
        let Spawned { pid, mut exec, .. } = cg
            .spawn(&c("/nonexistent/prog"), &[c("prog")], &[], w.as_fd())
            .expect("spawn of a program that is not there");
        let mut status = 0;
        // SAFETY: test-only blocking waitpid for the child just spawned.
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert_eq!(libc::WEXITSTATUS(status), 127);
        let err = exec.outcome().expect("known at the end").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        cg.remove().unwrap();
    }

    /// As root with cgroup v2: the spawn does not wait for the child's exec. A child born
    /// into a frozen cgroup cannot exec until it is thawed; the spawn returns before that,
    /// with the exec not known yet, and the report says it exec'd once it did. (A spawn
    /// that waited for the exec would return only after the thaw.)
    #[test]
    fn clone3_the_spawn_returns_before_the_exec_and_the_report_comes_after() {
        let (_scratch, cg) = Scratch::cgroup("hw-spawn-frozen");
        let freeze = cg.path().join("cgroup.freeze");
        std::fs::write(&freeze, "1").expect("freeze");
        let thawed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Bounds the test if the spawn waited for the exec: it thaws the cgroup, late.
        let thaw = {
            let (freeze, thawed) = (freeze.clone(), std::sync::Arc::clone(&thawed));
            let (done, wait) = std::sync::mpsc::channel::<()>();
            let t = std::thread::spawn(move || {
                if wait.recv_timeout(Duration::from_secs(5)).is_err() {
                    thawed.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = std::fs::write(&freeze, "0");
                }
            });
            (done, t)
        };
        let c = |s: &str| CString::new(s).unwrap();
        let argv = [c("/bin/true")];
        let (_r, w) = std::io::pipe().unwrap();
        let Spawned { pid, mut exec, .. } = cg
            .spawn(&argv[0], &argv, &[], w.as_fd())
            .expect("spawn into a frozen cgroup");
        assert!(
            !thawed.load(std::sync::atomic::Ordering::SeqCst),
            "the spawn returned only once the cgroup was thawed: it waited for the exec"
        );
        let _ = thaw.0.send(());
        thaw.1.join().unwrap();
        assert!(cg.members().contains(&pid));
        assert!(exec.outcome().is_none(), "a frozen child has not exec'd");
        assert!(
            crate::process::group_alive(pid).unwrap(),
            "the child's process group exists before the child ran (a kill of it must not miss)"
        );
        std::fs::write(&freeze, "0").expect("thaw");
        let mut status = 0;
        // SAFETY: test-only blocking waitpid for the child just spawned (thawed).
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        assert!(matches!(exec.outcome(), Some(Ok(()))));
        cg.remove().unwrap();
    }

    /// As root with cgroup v2: a process that pinned itself to one CPU (real-time mode's
    /// `cpu`) starts its children on the CPUs it had before, born in a cgroup or forked
    /// the std way: an application is not confined to the daemon's CPU.
    #[test]
    fn clone3_children_of_a_pinned_process_get_its_cpus_from_before_the_pin() {
        if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
            eprintln!("skipped: one CPU, nothing to pin away from");
            return;
        }
        let (_scratch, cg) = Scratch::cgroup("hw-affinity");
        // On a thread of its own: the pin is the calling thread's, the test harness's
        // other threads keep theirs.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let allowed = |status: &str| {
                        status
                            .lines()
                            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                            .map(|v| v.trim().to_owned())
                            .expect("Cpus_allowed_list")
                    };
                    let before =
                        allowed(&std::fs::read_to_string("/proc/thread-self/status").unwrap());
                    crate::sched::set_affinity(0).expect("pin to CPU 0");
                    let pinned =
                        allowed(&std::fs::read_to_string("/proc/thread-self/status").unwrap());
                    assert_eq!(pinned, "0");
                    let c = |s: &str| CString::new(s).unwrap();
                    let argv = [
                        c("/bin/grep"),
                        c("Cpus_allowed_list"),
                        c("/proc/self/status"),
                    ];
                    let (mut r, w) = std::io::pipe().unwrap();
                    let Spawned { pid, .. } =
                        cg.spawn(&argv[0], &argv, &[], w.as_fd()).expect("spawn");
                    drop(w);
                    let mut born = String::new();
                    r.read_to_string(&mut born).unwrap();
                    let mut status = 0;
                    // SAFETY: test-only blocking waitpid for the child just spawned.
                    unsafe { libc::waitpid(pid, &raw mut status, 0) };
                    let forked = crate::process::clean_command("/bin/grep")
                        .args(["Cpus_allowed_list", "/proc/self/status"])
                        .output()
                        .expect("grep");
                    assert_eq!(
                        allowed(&born),
                        before,
                        "born in the cgroup (pinned: {pinned})"
                    );
                    assert_eq!(
                        allowed(&String::from_utf8_lossy(&forked.stdout)),
                        before,
                        "forked the std way (pinned: {pinned})"
                    );
                })
                .join()
                .unwrap();
        });
        cg.remove().unwrap();
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
