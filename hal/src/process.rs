//! Signals to processes and process groups, pidfds for children, and the clean start
//! every child gets.

use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::sys::cvt;

/// This process's parent (getppid).
pub fn parent() -> u32 {
    // SAFETY: getppid takes no arguments and cannot fail.
    let p = unsafe { libc::getppid() };
    u32::try_from(p).unwrap_or(0)
}

/// Sends signal `sig` to process `pid`.
pub fn signal(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        // kill(0 or negative) addresses process groups; never what a caller of this means.
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: kill(2) takes plain integers; pid > 0 addresses exactly one process; checked.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// SIGKILL.
pub const SIGKILL: i32 = libc::SIGKILL;

/// Sends signal `sig` to every process of process group `pgid`.
pub fn signal_group(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        // 0 is our own group and 1 would be init's: never what a caller of this means.
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: kill(2) takes plain integers; -pgid (pgid > 1) addresses exactly that
    // process group; checked.
    cvt(unsafe { libc::kill(-pgid, sig) })?;
    Ok(())
}

/// SIGKILL to every process of process group `pgid`: `Ok(false)` when it had none left.
pub fn kill_group(pgid: i32) -> io::Result<bool> {
    match signal_group(pgid, SIGKILL) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether process group `pgid` still has a member (signal 0 probes without sending;
/// EPERM means it exists but belongs to someone else).
pub fn group_alive(pgid: i32) -> io::Result<bool> {
    match signal_group(pgid, 0) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(true),
        Err(e) => Err(e),
    }
}

/// A pidfd for process `pid` (Linux 5.3+): readable once the process has exited, so the
/// event loop learns of a child's exit without blocking or racing on SIGCHLD.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if pid <= 0 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: pidfd_open(2) takes a pid and flags (0) and returns a new descriptor or -1;
    // the result is checked and owned at once below.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: `fd` is a fresh descriptor returned by the kernel that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `PATH` every child starts with (the environment is otherwise cleared; callers add
/// their own variables). `verify` looks commands up in the same list.
pub const CHILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A [`Command`] for `program` whose process starts clean: an empty signal mask, every
/// signal at its default disposition, the CPUs this process had before it pinned itself
/// ([`crate::sched::set_affinity`]), and an environment of [`CHILD_PATH`] only.
///
/// The daemon blocks TERM, INT, HUP and CHLD for its signalfd, and std's `spawn` keeps
/// the parent's mask in the child (rust-lang/rust#101077): without this, an application
/// started by the daemon could not be stopped with SIGTERM, and nor could anything it
/// starts. Ignored signals (SIG_IGN) survive exec too, so every one is reset.
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", CHILD_PATH);
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe calls (sigemptyset, sigprocmask, sigaction, sched_setaffinity) on
    // stack values and a value set before the fork; it allocates nothing and touches no
    // lock.
    unsafe {
        cmd.pre_exec(|| {
            reset_signals()?;
            // Best effort: a CPU set the host's cpuset no longer allows keeps the pin.
            let _ = crate::sched::restore_affinity();
            Ok(())
        });
    };
    cmd
}

/// Empties the signal mask and sets every catchable signal to SIG_DFL (in a forked
/// child, before exec).
pub(crate) fn reset_signals() -> io::Result<()> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the live sigset_t it is given; cannot fail.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    // SAFETY: `set` was initialised just above and outlives the call; the old mask is not
    // wanted (null); the result is checked.
    cvt(unsafe { libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut()) })?;
    // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask); the handler
    // field is then set to SIG_DFL.
    let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a live, initialised sigaction; the old action is not wanted.
        // Signals the C library reserves for itself refuse (EINVAL): nothing to reset.
        let _ = unsafe { libc::sigaction(sig, &dfl, std::ptr::null_mut()) };
    }
    Ok(())
}

/// Which side of [`detach`] this is.
#[derive(Debug)]
pub enum Detached {
    /// The process the operator started: read the daemon's first word from this pipe
    /// (EOF without one means it died), then exit.
    Parent(std::fs::File),
    /// The daemon: detached from the terminal, in its own session, cwd `/`, umask 022,
    /// stdio on /dev/null. Write its first word ("ready" or an error) here.
    Daemon(std::fs::File),
}

/// Detaches into the background the classic way: fork, setsid, fork again (so the daemon
/// can never reacquire a controlling terminal), chdir `/`, umask 022, stdio to /dev/null.
/// Call while single-threaded, before opening anything the daemon should not inherit.
pub fn detach() -> io::Result<Detached> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array, which has room for them.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both are fresh descriptors from pipe2 that nothing else owns.
    let (read, write) = unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            std::fs::File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    };
    // SAFETY: fork in a single-threaded process (documented precondition); the child
    // only makes async-signal-safe calls until the second fork, then continues normally.
    match cvt(unsafe { libc::fork() })? {
        0 => {}
        _ => {
            drop(write);
            return Ok(Detached::Parent(read));
        }
    }
    drop(read);
    // SAFETY: setsid takes no arguments; the child of a fork is never a group leader.
    cvt(unsafe { libc::setsid() })?;
    // SAFETY: as above; the intermediate process exits at once with _exit.
    if cvt(unsafe { libc::fork() })? != 0 {
        // SAFETY: _exit ends this intermediate process without running destructors.
        unsafe { libc::_exit(0) };
    }
    std::env::set_current_dir("/")?;
    // SAFETY: umask only sets the process file mode mask.
    unsafe { libc::umask(0o022) };
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for target in 0..=2 {
        // SAFETY: dup2 of a live descriptor onto 0, 1 or 2 replaces our stdio.
        cvt(unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), target) })?;
    }
    Ok(Detached::Daemon(write))
}

/// A pid file held with an exclusive `flock` for the daemon's lifetime.
#[derive(Debug)]
pub struct PidFile {
    file: std::fs::File,
    path: std::path::PathBuf,
}

/// Why a pid file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another process holds the lock.
    #[error("another heartwire is running (pid {pid}, pid file {path}); stop it first")]
    Running {
        /// Its pid as written in the file (`?` if unreadable).
        pid: String,
        /// The file.
        path: String,
    },
    /// The file could not be opened or locked.
    #[error("pid file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: io::Error,
    },
}

impl PidFile {
    /// Opens (creating) `path` and locks it; fails with the holder's pid when another
    /// process has it. Write the pid with [`PidFile::write_pid`] once it is final.
    pub fn lock(path: &std::path::Path) -> Result<PidFile, PidFileError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let io_err = |source| PidFileError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(io_err)?;
        // SAFETY: flock on a live descriptor; nonblocking, so it never waits.
        let r = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let pid = s.trim();
                return Err(PidFileError::Running {
                    pid: if pid.is_empty() {
                        "?".into()
                    } else {
                        pid.into()
                    },
                    path: path.display().to_string(),
                });
            }
            return Err(io_err(e));
        }
        Ok(PidFile {
            file,
            path: path.to_owned(),
        })
    }

    /// Writes this process's pid into the file.
    pub fn write_pid(&mut self) -> io::Result<()> {
        use std::io::{Seek, Write};
        self.file.set_len(0)?;
        self.file.seek(std::io::SeekFrom::Start(0))?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.sync_data()
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so a starting instance never sees a stale file
        // that is unlocked and ours.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the kernel says about process `pid`, for a log line about a child that does not
/// end: its state (`D` is uninterruptible sleep, stuck in the kernel; `Z` a zombie not
/// yet reaped), what it waits in (`wchan`), and its tracer when one holds it.
pub fn describe_state(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("?")
            .to_owned()
    };
    let state = field("State:");
    let tracer = field("TracerPid:");
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let mut s = format!("state {state}");
    if !wchan.is_empty() && wchan != "0" {
        s.push_str(&format!(", waiting in {wchan}"));
    }
    if tracer != "0" && tracer != "?" {
        s.push_str(&format!(", traced by pid {tracer}"));
    }
    s
}
