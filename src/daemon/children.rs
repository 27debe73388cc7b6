//! Child processes: application start/stop/monitor commands (DESIGN §2, §6), and the
//! check of a configuration offer (DESIGN §7).
//!
//! Each child runs `/bin/sh -c COMMAND` (or a program with its arguments) in its own
//! process group, started clean (empty signal mask, default signal dispositions, an
//! environment of `PATH` and the caller's variables) — born in the cgroup the job names
//! (`hal::cgroup::Cgroup::spawn`), else forked the std way (`hal::process::clean_command`) —
//! with stdin from /dev/null and stdout+stderr into one pipe. The loop polls the pipe (lines go to the
//! log) and a pidfd (readable once the child exited; reaped then with a non-blocking
//! wait). A child past its timeout has its whole process group killed with SIGKILL and
//! counts as failed. Spawning is the only wait. Born in a cgroup, the spawn returns once
//! the child is cloned: its exec (a program read from a loaded disk, a child born in a
//! frozen cgroup) is not the loop's wait, and an exec that failed is known when the child
//! exits ([`Exit::NotStarted`]). Forked the std way, the spawn returns once it has exec'd.
//!
//! **Output outlives the command.** A start command that backgrounds its server
//! (`server &`, the init-script norm) exits at once while the server keeps the pipe's
//! write end as its stdout. The child is reported finished when it exits, but its slot
//! keeps reading (and logging) the pipe until every holder closed it: closing our read
//! end instead would make the server's next write fail with EPIPE or kill it with
//! SIGPIPE. While the daemon runs, nothing it started dies of its own output.
//!
//! **A child that does not die is abandoned.** SIGKILL does not end a process stuck in
//! the kernel (a umount or an SG_IO waiting in uninterruptible sleep on a lost path), and
//! a killed process that another process traces cannot be reaped until its tracer lets
//! go. [`ABANDON_AFTER`] after the kill such a child is reported finished as
//! [`Exit::Abandoned`] (a failure: its operation's group goes to `error`), with its pid and
//! kernel state in the log; its slot stays taken so that it is reaped if it ever ends.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use heartwire_hal::cgroup::{Cgroup, ExecReport, Spawned};
use heartwire_hal::process::{CHILD_PATH, SIGKILL, clean_command, pidfd_open, signal_group};
use heartwire_hal::sentinel::{Exit as Ended, try_wait};
use mio::unix::SourceFd;
use mio::unix::pipe::{self, Receiver};
use mio::{Interest, Registry, Token};

use super::token::CHILD_BASE;
use crate::core::Instant;

/// Most children at once, counting the finished ones whose output is still open (a
/// backgrounded server holds its slot for as long as it runs).
pub(crate) const CHILDREN_MAX: usize = 256;

pub(crate) use crate::core::spec::ABANDON_AFTER;

/// Longest output line logged (longer lines are cut).
const LINE_MAX: usize = 512;

/// Most output kept of a child whose output is wanted (`Job::keep_output`).
const KEPT_MAX: usize = 64 * 1024;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Exit code.
    Code(i32),
    /// Killed by a signal (not by us).
    Signal(i32),
    /// Killed by us at its timeout.
    TimedOut,
    /// Killed at its timeout and still not ended [`ABANDON_AFTER`] later.
    Abandoned,
    /// Its program could not be exec'd (this errno): it never ran.
    NotStarted(i32),
}

impl Exit {
    /// Whether it exited 0.
    pub(crate) fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl core::fmt::Display for Exit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
            Exit::TimedOut => write!(f, "timed out (killed)"),
            Exit::Abandoned => write!(f, "timed out and abandoned (does not end when killed)"),
            Exit::NotStarted(errno) => {
                write!(f, "not started: {}", io::Error::from_raw_os_error(*errno))
            }
        }
    }
}

/// How to start a child.
pub(crate) enum Run<'a> {
    /// `/bin/sh -c` this.
    Shell(&'a str),
    /// This program with these arguments (no shell).
    Exec(&'a [OsString]),
}

/// What to run.
pub(crate) struct Job<'a> {
    /// The command.
    pub(crate) run: Run<'a>,
    /// Extra environment.
    pub(crate) env: &'a [(&'a str, String)],
    /// Limit.
    pub(crate) timeout: Duration,
    /// Name in the log.
    pub(crate) label: String,
    /// Keep stdout and stderr (up to 64 KiB) for the caller instead of logging them.
    pub(crate) keep_output: bool,
    /// The cgroup it joins before exec (the node's, see `cgroups`).
    pub(crate) cgroup: Option<&'a Cgroup>,
}

/// A child that exited.
pub(crate) struct Finished<P> {
    /// What it was for.
    pub(crate) purpose: P,
    /// Its name in the log.
    pub(crate) label: String,
    /// How it ended.
    pub(crate) exit: Exit,
    /// Its output, when kept.
    pub(crate) output: Vec<u8>,
    /// Its pid, which is also its process group (what a backgrounded server started by
    /// it is left in).
    pub(crate) pid: i32,
}

struct Running<P> {
    /// The process and its pidfd; `None` once it exited while its output stays open.
    proc: Option<(i32, OwnedFd)>,
    /// Whether its exec worked (born in a cgroup; forked the std way, the spawn said).
    exec: Option<ExecReport>,
    out: Receiver,
    purpose: P,
    label: String,
    deadline: Instant,
    timed_out: bool,
    /// Reported as [`Exit::Abandoned`]; reaped quietly if it ever ends.
    abandoned: bool,
    line: Vec<u8>,
    kept: Option<Vec<u8>>,
}

/// The running children; `P` says what each one is for.
pub(crate) struct Children<P> {
    slots: Vec<Option<Running<P>>>,
    /// Token of slot 0's pidfd.
    base: usize,
}

impl<P> core::fmt::Debug for Children<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let running = self.slots.iter().flatten().map(|r| r.label.as_str());
        f.debug_list().entries(running).finish()
    }
}

impl<P: Copy> Children<P> {
    /// Room for [`CHILDREN_MAX`] children, tokens from [`CHILD_BASE`].
    pub(crate) fn new() -> Children<P> {
        Children::with_tokens(CHILD_BASE, CHILDREN_MAX)
    }

    /// Room for `slots` children whose tokens start at `base` (two per slot).
    pub(crate) fn with_tokens(base: usize, slots: usize) -> Children<P> {
        Children {
            slots: (0..slots).map(|_| None).collect(),
            base,
        }
    }

    /// Whether `token` belongs to one of these children.
    pub(crate) fn owns(&self, token: Token) -> bool {
        (self.base..self.base + 2 * self.slots.len()).contains(&token.0)
    }

    /// Starts `job` for `purpose`.
    pub(crate) fn spawn(
        &mut self,
        registry: &Registry,
        now: Instant,
        job: Job<'_>,
        purpose: P,
    ) -> io::Result<()> {
        let Job {
            run,
            env,
            timeout,
            label,
            keep_output,
            cgroup,
        } = job;
        let slot =
            self.slots.iter().position(Option::is_none).ok_or_else(|| {
                io::Error::other(format!("more than {} children", self.slots.len()))
            })?;
        let (tx, out) = pipe::new()?;
        tx.set_nonblocking(false)?;
        let tx = OwnedFd::from(tx);
        let (pid, pidfd, exec, shown) = match cgroup {
            Some(c) => {
                let (child, shown) = spawn_in(c, &run, env, tx.as_fd())?;
                (child.pid, child.pidfd, Some(child.exec), shown)
            }
            None => {
                let (pid, pidfd, shown) = spawn_clean(&run, env, tx)?;
                (pid, pidfd, None, shown)
            }
        };
        let (t_exit, t_out) = (Token(self.base + 2 * slot), Token(self.base + 2 * slot + 1));
        registry.register(
            &mut SourceFd(&pidfd.as_raw_fd()),
            t_exit,
            Interest::READABLE,
        )?;
        let mut out = out;
        registry.register(&mut out, t_out, Interest::READABLE)?;
        ::log::debug!("{label}: started pid {pid}: {shown}");
        self.slots[slot] = Some(Running {
            proc: Some((pid, pidfd)),
            exec,
            out,
            purpose,
            label,
            deadline: now.saturating_add(timeout),
            timed_out: false,
            abandoned: false,
            line: Vec::with_capacity(LINE_MAX),
            kept: keep_output.then(Vec::new),
        });
        Ok(())
    }

    /// Handles a readiness event for `token`; returns the child that finished, if one did.
    /// Its output, when kept, comes with it (`Job::keep_output`).
    pub(crate) fn on_event(&mut self, registry: &Registry, token: Token) -> Option<Finished<P>> {
        let i = token.0.checked_sub(self.base)?;
        let slot = i / 2;
        let r = self.slots.get_mut(slot)?.as_mut()?;
        let open = drain_output(r);
        if r.proc.is_none() {
            // Only the output of a finished child was left: free the slot at its end.
            if !open {
                flush_line(r);
                let mut r = self.slots[slot]
                    .take()
                    .expect("invariant: slot checked above");
                let _ = registry.deregister(&mut r.out);
            }
            return None;
        }
        if i % 2 == 1 {
            return None;
        }
        let (pid, pidfd) = r.proc.as_ref().expect("invariant: checked above");
        let pid = *pid;
        let status = match try_wait(pid) {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                ::log::error!("{}: wait failed: {e}", r.label);
                return None;
            }
        };
        let logged = r.kept.is_none();
        let _ = registry.deregister(&mut SourceFd(&pidfd.as_fd().as_raw_fd()));
        r.proc = None;
        if r.abandoned {
            ::log::warn!("{}: abandoned pid {pid} ended at last", r.label);
            let mut r = self.slots[slot]
                .take()
                .expect("invariant: slot checked above");
            let _ = registry.deregister(&mut r.out);
            return None;
        }
        let open = drain_output(r);
        // Exec's own error (the child wrote its errno); the report's other errors say
        // nothing of the child. Logged as the finish is (`{exit}`).
        let not_started = match r.exec.take().and_then(|mut e| e.outcome()) {
            Some(Err(e)) => e.raw_os_error(),
            _ => None,
        };
        let exit = match (r.timed_out, not_started, status) {
            (true, _, _) => Exit::TimedOut,
            (false, Some(errno), _) => Exit::NotStarted(errno),
            (false, None, Ended::Code(c)) => Exit::Code(c),
            (false, None, Ended::Signal(s)) => Exit::Signal(s),
        };
        let finished = Finished {
            purpose: r.purpose,
            label: r.label.clone(),
            exit,
            output: r.kept.take().unwrap_or_default(),
            pid,
        };
        if open && logged && !r.timed_out {
            // Something it started still holds the pipe: keep logging what it writes.
            ::log::debug!(
                "{}: exited; its output stays open (a process it started)",
                r.label
            );
        } else {
            flush_line(r);
            let mut r = self.slots[slot]
                .take()
                .expect("invariant: slot checked above");
            let _ = registry.deregister(&mut r.out);
        }
        Some(finished)
    }

    /// Kills every child past its deadline (their exit arrives through the pidfd) and
    /// returns one that was killed [`ABANDON_AFTER`] ago and has not ended: it is
    /// abandoned (call again until `None`).
    pub(crate) fn on_timer(&mut self, now: Instant) -> Option<Finished<P>> {
        for r in self.slots.iter_mut().flatten() {
            let Some(pid) = r.pid() else { continue };
            if !r.timed_out && r.deadline <= now {
                r.timed_out = true;
                r.deadline = now.saturating_add(ABANDON_AFTER);
                ::log::warn!("{}: timed out; killing its process group", r.label);
                if let Err(e) = signal_group(pid, SIGKILL) {
                    ::log::error!("{}: kill failed: {e}", r.label);
                }
            }
        }
        let r = self
            .slots
            .iter_mut()
            .flatten()
            .find(|r| r.timed_out && !r.abandoned && r.proc.is_some() && r.deadline <= now)?;
        r.abandoned = true;
        let pid = r.pid().unwrap_or(0);
        ::log::error!(
            "{}: pid {pid} still there {} s after SIGKILL ({}): abandoned; it keeps its \
             slot and is reaped if it ever ends",
            r.label,
            ABANDON_AFTER.as_secs(),
            heartwire_hal::process::describe_state(pid)
        );
        Some(Finished {
            purpose: r.purpose,
            label: r.label.clone(),
            exit: Exit::Abandoned,
            output: r.kept.take().unwrap_or_default(),
            pid,
        })
    }

    /// The earliest deadline of a running child: its timeout, or once killed, when it
    /// is abandoned.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter(|r| !r.abandoned && r.proc.is_some())
            .map(|r| r.deadline)
            .min()
    }

    /// Kills every child whose purpose matches (e.g. a monitor of a resource being
    /// stopped); their exits still arrive and are to be ignored by the caller.
    pub(crate) fn kill_where(&mut self, f: impl Fn(&P) -> bool) {
        for r in self.slots.iter_mut().flatten().filter(|r| f(&r.purpose)) {
            if let Some(pid) = r.pid() {
                let _ = signal_group(pid, SIGKILL);
            }
        }
    }

    /// Kills every child (daemon exit).
    pub(crate) fn kill_all(&mut self) {
        self.kill_where(|_| true);
    }
}

impl<P> Running<P> {
    /// The pid (and process group) of a child that has not exited.
    fn pid(&self) -> Option<i32> {
        self.proc.as_ref().map(|(pid, _)| *pid)
    }
}

/// Starts `run` the std way (fork and exec) in this process's cgroup, clean
/// (`clean_command`), in its own process group, stdout and stderr on `tx`.
fn spawn_clean(
    run: &Run<'_>,
    env: &[(&str, String)],
    tx: OwnedFd,
) -> io::Result<(i32, OwnedFd, String)> {
    let (mut cmd, shown) = match run {
        Run::Shell(command) => {
            let mut c = clean_command("/bin/sh");
            c.arg("-c").arg(command);
            (c, (*command).to_owned())
        }
        Run::Exec(argv) => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| io::Error::other("empty argument list"))?;
            let mut c = clean_command(program);
            c.args(args);
            let shown: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
            (c, shown.join(" "))
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(tx.try_clone()?))
        .stderr(Stdio::from(tx))
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn()?;
    drop(cmd); // closes our copies of the pipe's write end
    let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    // The pid is waited for by number (`try_wait`); std's handle does nothing on drop.
    drop(child);
    Ok((pid, pidfd_open(pid)?, shown))
}

/// Starts `run` born in cgroup `cgroup` (`Cgroup::spawn`), as clean as [`spawn_clean`]:
/// an environment of `PATH` ([`CHILD_PATH`], where a bare program name is looked up)
/// and `env`. Returns the child (whose exec is still to come) and how it is shown.
fn spawn_in(
    cgroup: &Cgroup,
    run: &Run<'_>,
    env: &[(&str, String)],
    tx: BorrowedFd<'_>,
) -> io::Result<(Spawned, String)> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |b: &[u8]| CString::new(b).map_err(|_| io::Error::other("a NUL byte in an argument"));
    let (argv, shown): (Vec<CString>, String) = match run {
        Run::Shell(command) => (
            vec![c(b"/bin/sh")?, c(b"-c")?, c(command.as_bytes())?],
            (*command).to_owned(),
        ),
        Run::Exec(argv) => {
            let shown: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
            (
                argv.iter()
                    .map(|a| c(a.as_bytes()))
                    .collect::<io::Result<_>>()?,
                shown.join(" "),
            )
        }
    };
    let first = argv
        .first()
        .ok_or_else(|| io::Error::other("empty argument list"))?;
    let program = if first.as_bytes().contains(&b'/') {
        first.clone()
    } else {
        let found = CHILD_PATH
            .split(':')
            .map(|d| std::path::Path::new(d).join(std::ffi::OsStr::from_bytes(first.as_bytes())))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} is not in {CHILD_PATH}", first.to_string_lossy()),
                )
            })?;
        c(found.as_os_str().as_bytes())?
    };
    let mut vars = vec![c(format!("PATH={CHILD_PATH}").as_bytes())?];
    for (k, v) in env {
        vars.push(c(format!("{k}={v}").as_bytes())?);
    }
    Ok((cgroup.spawn(&program, &argv, &vars, tx)?, shown))
}

/// Reads what the child (or what it left running) wrote so far and logs complete lines;
/// returns false once the pipe is at its end (every holder closed it).
fn drain_output<P>(r: &mut Running<P>) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match r.out.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) if r.kept.is_some() => {
                let kept = r.kept.as_mut().expect("invariant: checked");
                let room = KEPT_MAX.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\n' {
                        flush_line(r);
                    } else if r.line.len() < LINE_MAX {
                        r.line.push(b);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

fn flush_line<P>(r: &mut Running<P>) {
    if !r.line.is_empty() {
        ::log::info!("{}: {}", r.label, String::from_utf8_lossy(&r.line));
        r.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    /// Runs `argv` as a child of a thread that blocks what the daemon blocks, and returns
    /// its output.
    fn run_kept(argv: &[&str], env: &[(&str, String)]) -> String {
        // The daemon's mask: TERM, INT, HUP and CHLD blocked for its signalfd.
        let _signals = heartwire_hal::signalfd::SignalFd::new().unwrap();
        let mut poll = Poll::new().unwrap();
        let mut children: Children<u8> = Children::with_tokens(10, 2);
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        let job = Job {
            run: Run::Exec(&argv),
            env,
            timeout: Duration::from_secs(10),
            label: "probe".into(),
            keep_output: true,
            cgroup: None,
        };
        children
            .spawn(poll.registry(), Instant::from_nanos(0), job, 7)
            .unwrap();
        let mut events = Events::with_capacity(8);
        for _ in 0..200 {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            for e in &events {
                if let Some(f) = children.on_event(poll.registry(), e.token()) {
                    assert_eq!(f.exit, Exit::Code(0));
                    return String::from_utf8(f.output).unwrap();
                }
            }
        }
        panic!("the child did not exit within 10 s");
    }

    #[test]
    fn children_start_with_no_blocked_or_ignored_signal() {
        let out = run_kept(
            &["/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"],
            &[],
        );
        let mask = |name: &str| {
            let line = out.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.rsplit('\t').next().unwrap(), 16).unwrap()
        };
        assert_eq!(
            mask("SigBlk:"),
            0,
            "a child must be stoppable with SIGTERM: {out}"
        );
        // Signals 32-34 belong to the C library (thread cancellation, setxid, timers): its
        // sigaction refuses them, and the child's libc sets them up itself.
        let libc_own = 0b111 << 31;
        assert_eq!(mask("SigIgn:") & !libc_own, 0, "nothing ignored: {out}");
    }

    /// As root with cgroup v2 (`clone3_`: skipped under qemu-user): born in a cgroup, a
    /// child whose program cannot be exec'd is started (the spawn does not wait for its
    /// exec) and ends as not started, with exec's error.
    #[test]
    fn clone3_a_program_that_cannot_be_execd_ends_as_not_started() {
        use std::os::unix::fs::PermissionsExt;
        /// The test's file and cgroup, removed however it ends.
        struct Scratch(std::path::PathBuf, Cgroup);
        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
                let _ = self.1.kill();
                let _ = self.1.wait_empty(Duration::from_secs(5));
                let _ = std::fs::remove_dir(self.1.path());
            }
        }
        let name = format!("hw-children.{}", std::process::id());
        let dir = heartwire_hal::cgroup::own_dir()
            .expect("cgroup v2")
            .join(&name);
        let scratch = Scratch(
            std::env::temp_dir().join(&name),
            Cgroup::create(&dir).unwrap(),
        );
        std::fs::create_dir_all(&scratch.0).unwrap();
        let program = scratch.0.join("not-a-program");
        std::fs::write(&program, "plain text\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cg = &scratch.1;
        let mut poll = Poll::new().unwrap();
        let mut children: Children<u8> = Children::with_tokens(10, 2);
        let argv = [program.clone().into_os_string()];
        let job = Job {
            run: Run::Exec(&argv),
            env: &[],
            timeout: Duration::from_secs(10),
            label: "not-a-program".into(),
            keep_output: true,
            cgroup: Some(cg),
        };
        children
            .spawn(poll.registry(), Instant::from_nanos(0), job, 7)
            .expect("the spawn leaves the exec to the child");
        let mut events = Events::with_capacity(8);
        let mut exit = None;
        for _ in 0..200 {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            if let Some(f) = events
                .iter()
                .find_map(|e| children.on_event(poll.registry(), e.token()))
            {
                exit = Some(f.exit);
                break;
            }
        }
        let Some(Exit::NotStarted(errno)) = exit else {
            panic!("{exit:?}: not a child that was not started");
        };
        let err = io::Error::from_raw_os_error(errno);
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    }

    #[test]
    fn children_start_with_a_clean_environment() {
        let out = run_kept(&["/usr/bin/env"], &[("HW_NODE", "a".into())]);
        let mut vars: Vec<&str> = out.lines().collect();
        vars.sort_unstable();
        let path = format!("PATH={}", heartwire_hal::process::CHILD_PATH);
        assert_eq!(vars, ["HW_NODE=a", path.as_str()]);
    }
}
