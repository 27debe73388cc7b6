//! The sentinel (DESIGN §4 "The sentinel"): `heartwire run` becomes a small watcher that
//! forks the daemon and stays its parent. It knows for certain when the daemon dies (its
//! death knell, a robust futex on a page both share that the kernel marks at the start of
//! the daemon's exit, before its memory is torn down; else its pidfd, at the end) and when
//! it stops making progress (the loop stores the time of every turn on that page; no
//! system call on the daemon's side), and then, before anything else:
//!
//! 1. kills the daemon (a hung one: SIGKILL, and waits for it to be gone);
//! 2. fences this node — removes every configured service address, SIGKILLs every
//!    process the daemon started (the `HW_CLUSTER`/`HW_NODE` sweep a restarted daemon
//!    runs) and waits for them to be gone, unmounts the filesystems of the groups no
//!    reservation guards (halting the node if that fails: nothing else can stop their
//!    writes), and leaves reservations to the gainer's preempt;
//! 3. tells the peers: a death notice naming the dead incarnation on every Ethernet, UDP
//!    and serial path (keyed clusters only: it lets a peer take over at once), so they
//!    take over without waiting for a timeout and a lease;
//! 4. starts a new daemon [`RESTART_DELAY`] later (`after_crash = "restart"`, at most
//!    [`RESTARTS_MAX`] in [`RESTART_WINDOW`]) or exits with the daemon's status
//!    (`"exit"`).
//!
//! Steps 2 and 3 are done by whichever thread knows of the end first: at a knell, the
//! thread that waited on it, already running (waking the loop to do them cost 0.2 ms);
//! the notice's sockets and its key are ready before any death ([`Notice`]).
//!
//! The hardware watchdog, when one is configured, is the sentinel's: it opens (arms) it
//! before the first daemon and kicks it every third of its timeout while the daemon makes
//! progress (or is starting), also across a restart; not while a daemon is hung, nor after
//! the daemon said it halts the node. A frozen host runs neither and is reset. A clean
//! end disarms it; a sentinel that gives up (`after_crash = "exit"`, too many restarts)
//! leaves it armed: the node resets unless the service manager starts heartwire again.
//!
//! In maintenance (the marker is there) nothing is fenced: the next daemon resumes what
//! this one held. A daemon that exits by itself with status 0 has released (or was told
//! to keep its groups in maintenance); one that fails before its loop turned held nothing
//! yet: the sentinel exits with its status in both cases. SIGTERM, SIGINT and SIGHUP are
//! passed on to the daemon. The daemon dies with the sentinel (`PR_SET_PDEATHSIG`): a
//! kill -9 of the service's main process ends both, as before, and the restarted
//! service's start-up sweep fences what they left.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use heartwire_hal::process::{SIGKILL, signal};
use heartwire_hal::sentinel::{
    Exit, Forked, Knell, SharedPage, die_with, exit_status, fork, try_wait,
};
use heartwire_hal::signalfd::{Signal, SignalFd};
use heartwire_hal::{clock, process, sched};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::paths::PathSocket;
use super::resources::Resources;
use super::watchdog::Armed;
use crate::config::{Config, PathIo, ResourceKind};
use crate::core::Instant;
use crate::core::sentinel::{HangRule, Hung, Verdict, Watch};
use crate::wire::auth::AuthKey;
use crate::wire::frame::FRAME_MAX;
use crate::wire::notice::Cause;

/// At most this many restarts within [`RESTART_WINDOW`]; then the sentinel exits (a
/// daemon that keeps dying needs the operator, not a loop).
pub const RESTARTS_MAX: usize = 5;
/// See [`RESTARTS_MAX`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// How long after the death notice a new daemon starts (systemd's `RestartSec` is
/// 100 ms by default too): see the restart in [`run`].
pub const RESTART_DELAY: Duration = Duration::from_millis(100);
/// How long a killed daemon, or a killed process of it, may take to be gone.
const GONE_WAIT: Duration = Duration::from_secs(2);
/// Copies of the death notice sent on each path (a lost frame costs a timeout).
const NOTICE_COPIES: usize = 3;

const PID: Token = Token(0);
const OOM_ADJ: &str = "/proc/self/oom_score_adj";
const SIGNALS: Token = Token(1);
/// The knell waiter's wake-up (see [`knell_waiter`]).
const KNELL: Token = Token(2);
/// The knell waiter's waits are bounded by this (it ends when the knell tolls or is
/// released: see [`SharedPage::end_knell_waits`]).
const KNELL_LOOK: Duration = Duration::from_millis(100);
/// The knell waiter's stack: it waits on a futex and then fences, which may parse the
/// config file (the sentinel's memory is locked: a default 2 MiB thread stack would be
/// locked whole).
const KNELL_STACK: usize = 512 * 1024;

/// What the daemon's end was.
enum End {
    /// It exited by itself with this status and needs no fencing: 0 (released, or kept
    /// its groups in maintenance), or a failure before its loop first turned.
    Quiet(i32),
    /// It died holding whatever it held, or hung and was killed.
    Crash(Cause),
    /// As `Crash`, known from its death knell: it runs no code of its own any more, but
    /// its exit (the teardown of its memory) is still under way.
    Dying(Cause),
}

/// How [`turns`] stopped watching.
enum Seen {
    /// The daemon's death knell tolled: the knell's thread fences ([`Heard::fence`]);
    /// which [`End`] it was is known once it did ([`watch`] says).
    Knell,
    /// The daemon ended so (known from its pidfd, or killed for a hang).
    End(End),
}

/// Runs the sentinel: forks the daemon (`daemon` is its body in the child, returning the
/// exit status) and watches it until it ends for good; returns the exit status.
pub fn run(
    cfg: &Config,
    socket: &Path,
    mut ready_pipe: Option<File>,
    daemon: &mut dyn FnMut(Option<File>, SharedPage, &Config) -> i32,
) -> i32 {
    let mut fencer = match Fence::open(cfg, socket) {
        Ok(fence) => Mutex::new(Fencer {
            fence,
            notice: Notice::open(cfg),
            done: None,
        }),
        Err(e) => {
            ::log::error!("sentinel: cannot prepare the fence of this node: {e}");
            return 1;
        }
    };
    let signals = match SignalFd::new() {
        Ok(s) => s,
        Err(e) => {
            ::log::error!("sentinel: {e}");
            return 1;
        }
    };
    // Refuse to start rather than run a daemon nobody can watch (Linux < 5.3).
    let me = i32::try_from(std::process::id()).expect("invariant: pids fit i32");
    if let Err(e) = process::pidfd_open(me) {
        let e = format!(
            "sentinel: pidfd_open: {e}: the sentinel needs Linux 5.3 or later (set [sentinel] \
             enabled = false on this kernel)"
        );
        ::log::error!("{e}");
        if let Some(mut p) = ready_pipe.take() {
            use std::io::Write;
            let _ = writeln!(p, "{e}");
        }
        return 1;
    }
    let now = Instant::from_nanos(clock::monotonic_ns());
    let mut dog = match Armed::open(
        cfg,
        socket,
        now,
        "by the sentinel while the daemon progresses",
    ) {
        Ok(d) => d,
        Err(e) => {
            ::log::error!("sentinel: {e}");
            if let Some(mut p) = ready_pipe.take() {
                use std::io::Write;
                let _ = writeln!(p, "{e}");
            }
            return 1;
        }
    };
    let mut restarts: VecDeque<StdInstant> = VecDeque::new();
    // The config the daemon runs: the one `run` loaded, then what a reload installed (the
    // file, when the daemon's published hash says it runs that).
    let mut running = cfg.clone();
    // The OOM score the service was started with: the daemon (and so its applications)
    // goes back to it; only the sentinel is out of the OOM killer's reach.
    let oom = std::fs::read_to_string(OOM_ADJ).unwrap_or_else(|_| "0".into());
    harden(cfg);
    loop {
        let shared = match SharedPage::new() {
            Ok(s) => s,
            Err(e) => {
                ::log::error!("sentinel: shared page: {e}");
                return 1;
            }
        };
        let pid = match fork() {
            Ok(Forked::Parent(pid)) => pid,
            Ok(Forked::Child) => {
                // The sentinel's watchdog descriptor: closed here without the magic
                // character, so the daemon neither kicks nor disarms it.
                drop(dog.take());
                // Unlocked: the sentinel forks single-threaded.
                fencer
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .notice
                    .close();
                if let Err(e) = die_with(me) {
                    ::log::error!("daemon: {e}");
                    std::process::exit(1);
                }
                if let Err(e) = shared.arm_knell() {
                    ::log::info!(
                        "daemon: no death knell ({e}): the sentinel learns of this daemon's \
                         death from its pidfd, once its memory is freed"
                    );
                }
                if let Err(e) = std::fs::write(OOM_ADJ, oom.trim()) {
                    ::log::debug!("daemon: {OOM_ADJ}: {e}");
                }
                let code = daemon(ready_pipe.take(), shared, &running);
                std::process::exit(code);
            }
            Err(e) => {
                ::log::error!("sentinel: fork: {e}");
                return 1;
            }
        };
        // Only the first daemon tells the operator's terminal it is ready.
        drop(ready_pipe.take());
        ::log::info!(
            "sentinel {me}: watching daemon {pid}: fences this node when it dies or makes no \
             progress for {:?}",
            cfg.sentinel.hang_timeout
        );
        let rule = HangRule::new(cfg.sentinel.hang_timeout, cfg.spec.lease());
        let knell_priority = cfg.realtime.map(|rt| rt.priority.saturating_add(1).min(99));
        let (end, held) = watch(
            (pid, knell_priority),
            &shared,
            &signals,
            rule,
            dog.as_mut(),
            (&fencer, cfg),
        );
        let cause = match end {
            End::Quiet(code) => {
                // Released (or in maintenance), or never held anything.
                if let Some(d) = dog.as_mut() {
                    d.disarm();
                }
                return code;
            }
            End::Crash(cause) | End::Dying(cause) => cause,
        };
        let gone = clock::monotonic_ns();
        let known_by = if matches!(end, End::Dying(_)) {
            "its death knell, at the start of its exit"
        } else {
            "its pidfd, at the end of its exit"
        };
        if let Some(d) = dog.as_mut() {
            // The fence gets a whole watchdog timeout; one that hangs longer ends in a
            // reset, which fences too.
            d.kick(Instant::from_nanos(clock::monotonic_ns()), true);
        }
        let incarnation = shared.words().incarnation.load(Ordering::Relaxed);
        let ran = shared.words().config_hash.load(Ordering::Relaxed);
        let mut held_paths = Vec::new();
        // Fenced already by the knell's thread, as a rule; else now.
        let mut f = fencer.lock().unwrap_or_else(PoisonError::into_inner);
        match f.once(cfg, incarnation, &|| cause, gone) {
            None => ::log::warn!(
                "sentinel: daemon {pid} is gone ({cause}) in maintenance: nothing fenced, the \
                 next daemon resumes what it held"
            ),
            Some(Fenced { what: Err(e), .. }) => {
                ::log::error!("sentinel: daemon {pid} is gone ({cause}) and {e}: halting now");
                let e = heartwire_hal::watchdog::halt_now();
                ::log::error!("sentinel: halt failed: {e}");
                return 1;
            }
            Some(done) => {
                held_paths = std::mem::take(&mut done.opened);
                let what = done.what.as_deref().unwrap_or_default();
                ::log::warn!(
                    "sentinel: daemon {pid} is gone ({}; known from {known_by}): fenced this \
                     node in {} µs: {what}",
                    done.cause,
                    (done.fenced_at - done.gone) / 1000
                );
                // CLOCK_MONOTONIC, as the events' `at=` (the bench breaks the takeover down).
                let secs = |ns: u64| format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
                ::log::info!(
                    "sentinel: gone_at={} fenced_at={}{}{}",
                    secs(done.gone),
                    secs(done.fenced_at),
                    done.first_copy
                        .map_or(String::new(), |t| format!(" first_notice_at={}", secs(t))),
                    done.notified_at.map_or(String::new(), |t| format!(
                        " notified_at={} ({} µs from the daemon's end to the last notice sent)",
                        secs(t),
                        (t - done.gone) / 1000
                    ))
                );
            }
        }
        // The next daemon's end is fenced anew.
        f.done = None;
        drop(f);
        // Off the critical path now: each last copy of a packet socket waits a grace period.
        drop(held);
        drop(held_paths);
        // A daemon whose knell tolled may still be freeing its memory: reaped now, and
        // before a new daemon starts (it still holds its ports and lines until it is gone).
        reap(pid);
        let armed = dog.as_ref().map_or(String::new(), |d| {
            format!(
                "; {} stays armed and resets this node unless heartwire starts again",
                d.describe()
            )
        });
        if !cfg.sentinel.restart {
            ::log::warn!("sentinel: after_crash = \"exit\": exiting{armed}");
            return 1;
        }
        let now = StdInstant::now();
        restarts.retain(|t| now.duration_since(*t) < RESTART_WINDOW);
        if restarts.len() >= RESTARTS_MAX {
            ::log::error!(
                "sentinel: the daemon died {RESTARTS_MAX} times within {RESTART_WINDOW:?}: not \
                 starting it again (see the log above); this node is fenced{armed}"
            );
            return 1;
        }
        restarts.push_back(now);
        // The new daemon's start (locking its memory, probing cgroups, cleaning up) takes
        // CPU that the peers' takeover may need on a small host (the peers may share it,
        // as in the lab): it waits a little. The node is fenced; nothing waits for it.
        if stop_asked(&signals, RESTART_DELAY) {
            ::log::warn!(
                "sentinel: asked to stop while the daemon was down: not starting it again; \
                 this node is fenced"
            );
            if let Some(d) = dog.as_mut() {
                d.disarm();
            }
            return 0;
        }
        let f = fencer.get_mut().unwrap_or_else(PoisonError::into_inner);
        f.fence.refresh(true);
        match f.fence.now.cfg.as_ref() {
            Some(c) if c.spec.config_hash == ran && ran != running.spec.config_hash => {
                ::log::info!(
                    "sentinel: the daemon ran config {ran:016x} (reloaded from {}): the next \
                     one starts with it",
                    c.file.display()
                );
                running = c.clone();
            }
            _ if ran != 0 && ran != running.spec.config_hash => ::log::warn!(
                "sentinel: the daemon ran config {ran:016x}, which {} no longer holds: the next \
                 one starts with {:016x}, the last config it ran that the sentinel knows",
                running.file.display(),
                running.spec.config_hash
            ),
            _ => {}
        }
        ::log::warn!("sentinel: starting a new daemon");
    }
}

/// Makes the sentinel hard to lose: out of the OOM killer's reach, its memory locked, and
/// in real-time mode one priority above the daemon (a daemon spinning at its priority must
/// not starve its watcher) and on another CPU than the daemon's. Each step is best effort.
/// The daemon, forked after this, sets its own priority and CPU.
fn harden(cfg: &Config) {
    if let Err(e) = std::fs::write(OOM_ADJ, "-1000") {
        ::log::debug!("sentinel: oom_score_adj: {e}");
    }
    if let Some(rt) = cfg.realtime {
        if let Err(e) = sched::lock_memory() {
            ::log::warn!("sentinel: {e}");
        }
        if let Err(e) = sched::set_fifo(rt.priority.saturating_add(1).min(99)) {
            ::log::warn!("sentinel: {e}");
        }
        // Off the daemon's CPU when it is pinned and there is another: a daemon spinning
        // there does not delay its watcher.
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if let (Some(cpu), true) = (rt.cpu, cpus > 1) {
            let other = u16::try_from((usize::from(cpu) + 1) % cpus).unwrap_or(0);
            if let Err(e) = sched::set_affinity(other) {
                ::log::warn!("sentinel: {e}");
            }
        }
    }
}

/// Watches daemon `pid` until it ends; passes signals on; kicks the watchdog while the
/// daemon progresses. Returns how it ended and the copies of its packet sockets (to be
/// closed once the fence and the notice are done).
///
/// Its death is known from its death knell (a thread waits on it: see [`knell_waiter`],
/// at `knell_priority`), or else from its pidfd. The knell tolls at the start of the
/// daemon's exit; the pidfd only once the exit is done, after the daemon's memory is torn
/// down (0.5 ms for 5 MB locked, here).
fn watch(
    (pid, knell_priority): (i32, Option<u8>),
    shared: &SharedPage,
    signals: &SignalFd,
    rule: HangRule,
    dog: Option<&mut Armed>,
    (fencer, cfg): (&Mutex<Fencer>, &Config),
) -> (End, Vec<std::os::fd::OwnedFd>) {
    // A daemon the sentinel cannot watch is not left running unwatched.
    let give_up = |what: &str, e: std::io::Error| {
        ::log::error!("sentinel: {what}: {e}: killing daemon {pid}");
        let _ = signal(pid, SIGKILL);
        let end = wait_gone(pid).map_or(End::Crash(Cause::Hung), |exit| end_of(exit, 1));
        (end, Vec::new())
    };
    let pidfd = match process::pidfd_open(pid) {
        Ok(f) => f,
        Err(e) => return give_up("pidfd", e),
    };
    let setup = || -> std::io::Result<(Poll, mio::Waker)> {
        use std::os::fd::{AsFd, AsRawFd};
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&pidfd.as_raw_fd()), PID, Interest::READABLE)?;
        poll.registry().register(
            &mut SourceFd(&signals.as_fd().as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        let waker = mio::Waker::new(poll.registry(), KNELL)?;
        Ok((poll, waker))
    };
    let (mut poll, waker) = match setup() {
        Ok(p) => p,
        Err(e) => return give_up("poll", e),
    };
    // Set before the loop kills a hung daemon: the cause its knell's thread reports.
    let killed_hung = AtomicBool::new(false);
    let heard = Heard {
        pid,
        shared,
        fencer,
        cfg,
        killed_hung: &killed_hung,
    };
    let (seen, held) = std::thread::scope(|scope| {
        let waiter = std::thread::Builder::new()
            .name("knell".into())
            .stack_size(KNELL_STACK)
            .spawn_scoped(scope, || {
                knell_waiter(&heard, &waker, knell_priority);
            });
        if let Err(e) = &waiter {
            ::log::warn!(
                "sentinel: no thread for the death knell ({e}): daemon {pid}'s death is known \
                 from its pidfd, once its memory is freed"
            );
        }
        let seen = turns(&heard, &pidfd, &mut poll, signals, rule, dog);
        shared.end_knell_waits();
        // Joined, not left to the scope: the sentinel forks the next daemon single-threaded.
        // After a knell, this waits for its thread's fence and notice.
        if let Ok(w) = waiter {
            let _ = w.join();
        }
        seen
    });
    let end = match seen {
        Seen::Knell => match &fencer.lock().unwrap_or_else(PoisonError::into_inner).done {
            Some(done) => End::Dying(done.cause),
            // The knell's thread fenced nothing: in maintenance, or it had no thread.
            // Fenced now (`run`), not after the daemon's whole exit.
            None if shared.progress() != 0 => End::Dying(heard.cause()),
            // It never turned, held nothing: its exit says what it was.
            None => wait_gone(pid).map_or(End::Crash(Cause::Signalled(0)), |exit| {
                end_of(exit, shared.progress())
            }),
        },
        Seen::End(end) => end,
    };
    (end, held)
}

/// What the knell's thread needs to fence at the knell (see [`Heard::fence`]).
struct Heard<'a> {
    pid: i32,
    shared: &'a SharedPage,
    fencer: &'a Mutex<Fencer>,
    cfg: &'a Config,
    /// The loop killed the daemon for a hang: the notice's cause.
    killed_hung: &'a AtomicBool,
}

impl Heard<'_> {
    /// The knell tolled at `at`: the daemon runs no code of its own any more. This thread,
    /// running already, fences the node and sends the notice itself (see
    /// [`Fencer::once`]); it wakes the loop first, which kicks the watchdog and then finds
    /// the fence done. Waking the loop to fence cost the takeover 0.2 ms (p50): the loop's
    /// CPU was, as a rule, the one the dying daemon was tearing its memory down on, in
    /// the kernel, where a kernel without full preemption lets nothing else run.
    fn fence(&self, at: u64, waker: &mio::Waker) {
        // Its exit tears its (locked) memory down, in the kernel, on its CPU: at the
        // normal policy, what the fence kills (at real-time priority 1) and the peers'
        // takeover (in the lab, on the same host) may have that CPU at its next
        // rescheduling point.
        if let Err(e) = sched::set_normal(self.pid) {
            ::log::debug!("sentinel: {e}");
        }
        if let Err(e) = waker.wake() {
            ::log::error!("sentinel: waking the loop for the death knell: {e}");
        }
        // A daemon that never turned held nothing (the loop learns its exit from the
        // pidfd). Else this is a crash: a daemon releases its knell before any exit of
        // its own.
        if self.shared.progress() == 0 {
            return;
        }
        let incarnation = self.shared.words().incarnation.load(Ordering::Relaxed);
        // Its exit status is read once the kill and the address removal are out, while the
        // killed exit: read at the knell, `/proc/<pid>/stat` took 90 µs (25 µs later) —
        // the read holds a reference to the dying daemon's memory, and the reader that
        // drops the last one tears that memory down itself.
        self.fencer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .once(self.cfg, incarnation, &|| self.cause(), at);
    }

    /// Why the daemon, whose knell tolled, is gone: hung (the loop killed it), or what
    /// its exit status says.
    fn cause(&self) -> Cause {
        if self.killed_hung.load(Ordering::Acquire) {
            return Cause::Hung;
        }
        // Not readable: a signal not known.
        exit_status(self.pid).map_or(Cause::Signalled(0), cause_of)
    }
}

/// The fence and the death notice, done once per daemon's end by whichever thread knows
/// of it first: the knell's (see [`Heard::fence`]), or the loop (a death known from the
/// pidfd, a daemon without a knell). The loop holds the lock only to look at the config
/// file ([`Fence::refresh`]: a stat, a parse after a change).
struct Fencer {
    fence: Fence,
    notice: Notice,
    /// What the current daemon's end did; `None` until it is fenced.
    done: Option<Fenced>,
}

/// What one daemon's end did.
struct Fenced {
    /// When the end was known (CLOCK_MONOTONIC ns).
    gone: u64,
    cause: Cause,
    /// What the fence did, or why the node must halt.
    what: Result<String, String>,
    fenced_at: u64,
    /// When the notice's first and last copies went out (none without a key, an
    /// incarnation, or after a failed fence).
    first_copy: Option<u64>,
    notified_at: Option<u64>,
    /// Sockets the notice had to open: closed off the critical path.
    opened: Vec<PathSocket>,
}

impl Fencer {
    /// Fences this node and sends the death notice for `incarnation` (0: the daemon never
    /// had one, nothing to notify) for an end known at `gone`, unless that is done;
    /// `None` in maintenance (nothing is fenced: the next daemon resumes what this one
    /// held).
    fn once(
        &mut self,
        cfg: &Config,
        incarnation: u32,
        cause: &dyn Fn() -> Cause,
        gone: u64,
    ) -> Option<&mut Fenced> {
        if self.done.is_none() {
            if self.fence.in_maintenance() {
                return None;
            }
            // The cause is read while the killed exit (the fence waits for them anyway).
            let mut read = None;
            let what = self.fence.fence(&mut || read = Some(cause()));
            let fenced_at = clock::monotonic_ns();
            let cause = read.unwrap_or_else(cause);
            // The notice before any log line: they are writes the peers need not wait for.
            let (mut opened, mut first_copy, mut notified_at) = (Vec::new(), None, None);
            if what.is_ok() && incarnation != 0 {
                (opened, first_copy) = self.notice.send(cfg, incarnation, cause);
                notified_at = Some(clock::monotonic_ns());
            }
            self.done = Some(Fenced {
                gone,
                cause,
                what,
                fenced_at,
                first_copy,
                notified_at,
                opened,
            });
        }
        self.done.as_mut()
    }
}

/// The sentinel's thread that waits on the daemon's death knell (a futex cannot be
/// polled); when it tolls, it wakes the sentinel's loop and fences ([`Heard::fence`]);
/// real-time at `priority` like the loop (threads do not inherit it:
/// `SCHED_RESET_ON_FORK`). Ends at the knell, when the daemon releases it, and when the
/// sentinel ends its waits (`end_knell_waits`).
fn knell_waiter(heard: &Heard, waker: &mio::Waker, priority: Option<u8>) {
    let shared = heard.shared;
    if let Some(p) = priority {
        if let Err(e) = sched::set_fifo(p) {
            ::log::warn!("sentinel: the death knell's thread: {e}");
        }
    }
    loop {
        match shared.wait_knell(KNELL_LOOK) {
            Knell::Died => {
                heard.fence(clock::monotonic_ns(), waker);
                return;
            }
            Knell::Released => return,
            Knell::Pending => {}
        }
    }
}

/// The watching loop of [`watch`].
fn turns(
    heard: &Heard,
    pidfd: &std::os::fd::OwnedFd,
    poll: &mut Poll,
    signals: &SignalFd,
    rule: HangRule,
    mut dog: Option<&mut Armed>,
) -> (Seen, Vec<std::os::fd::OwnedFd>) {
    let (pid, shared) = (heard.pid, heard.shared);
    let mut events = Events::with_capacity(4);
    // Copies of the daemon's packet sockets: closing the last copy of one waits a grace
    // period, so the daemon's exit (and the pidfd's word of it) does not wait for them.
    let mut held: Vec<std::os::fd::OwnedFd> = Vec::new();
    let mut held_generation = 0;
    // The daemon's last turn and lease end (0: none yet, nothing held on a lease), and
    // the moment the rule kills it unless it turns again (`None` while it starts).
    let deadline = || {
        let w = shared.words();
        let last = shared.progress();
        let by = w.fence_by.load(Ordering::Relaxed);
        (last != 0).then(|| {
            rule.deadline(
                Instant::from_nanos(last),
                (by != 0).then(|| Instant::from_nanos(by)),
            )
        })
    };
    // The kill rule and the recheck a late wake grants (`core::sentinel::Watch`).
    let mut watch = Watch::new(rule);
    loop {
        let now = Instant::from_nanos(clock::monotonic_ns());
        // Wake when the watch says (just before the kill deadline and at it, a
        // recheck's end), for the watchdog's next kick, and to look at the config now
        // and then.
        let wake = watch
            .wake_at(now, deadline())
            .min(dog.as_ref().map_or(Instant::MAX, |d| d.kick_at()))
            .min(now.saturating_add(REFRESH_EVERY));
        let _ = poll.poll(&mut events, Some(wake.saturating_since(now)));
        // The knell (its waiter woke this loop; it tolls before the pidfd says anything):
        // the daemon is exiting without having released it (a signal, a crash). It runs
        // no code of its own any more; fenced by the knell's thread (or after this loop
        // returns, by [`run`]), reaped later.
        // Nothing else here: this loop's CPU may be the one the killed processes need.
        if shared.knell_tolled() {
            if let Some(d) = dog.as_mut() {
                // The fence under way gets a whole watchdog timeout.
                d.kick(Instant::from_nanos(clock::monotonic_ns()), true);
            }
            return (Seen::Knell, held);
        }
        if let Ok(Some(exit)) = try_wait(pid) {
            return (Seen::End(end_of(exit, shared.progress())), held);
        }
        let (generation, fds) = shared.published_fds();
        if generation != held_generation {
            held_generation = generation;
            held = fds
                .iter()
                .filter_map(|fd| heartwire_hal::sentinel::take_fd(pidfd, *fd).ok())
                .collect();
        }
        for ev in &events {
            if ev.token() == SIGNALS {
                pass_signals(pid, signals);
            }
        }
        let now = Instant::from_nanos(clock::monotonic_ns());
        match watch.verdict(now, wake, shared.progress(), deadline()) {
            Verdict::Wait => {}
            // This sentinel woke late: the host (a VM the hypervisor paused) may have
            // stopped the daemon with it, and the daemon runs as soon as the host does.
            Verdict::Recheck { late_by, for_ } => ::log::info!(
                "sentinel: woke {} µs late: the daemon's silence may be the host's; \
                 looking again in {} µs",
                late_by.as_micros(),
                for_.as_micros()
            ),
            Verdict::Kill(why) => {
                if let Some(d) = dog.as_mut() {
                    // The fence the kill sets off (on the knell's thread) gets a whole
                    // watchdog timeout.
                    d.kick(now, true);
                }
                heard.killed_hung.store(true, Ordering::Release);
                return (Seen::End(kill_hung(pid, shared, now, rule, why)), held);
            }
        }
        if !watch.rechecking() {
            // Not while the knell's thread fences (it holds the lock): this loop must not
            // wait, and the fence looks at the file itself.
            if let Ok(mut f) = heard.fencer.try_lock() {
                f.fence.refresh(false);
            }
        }
        // Progressing, or starting: kick; not once the daemon halts the node.
        if shared.words().halting.load(Ordering::Relaxed) == 0 {
            if let Some(d) = dog.as_mut() {
                d.kick(now, false);
            }
        }
    }
}

/// Kills daemon `pid`, hung for `why` at `now`, and waits for it to be gone.
fn kill_hung(pid: i32, shared: &SharedPage, now: Instant, rule: HangRule, why: Hung) -> End {
    let _ = signal(pid, SIGKILL);
    let ms = |ns: u64| ns / 1_000_000;
    let idle = now.as_nanos().saturating_sub(shared.progress());
    match why {
        Hung::LeaseOver => ::log::error!(
            "sentinel: daemon {pid} made no progress for {} ms and its lease ended {} ms ago \
             without it fencing what it holds: killed it",
            ms(idle),
            ms(now
                .as_nanos()
                .saturating_sub(shared.words().fence_by.load(Ordering::Relaxed)))
        ),
        Hung::NoProgress => ::log::error!(
            "sentinel: daemon {pid} made no progress for {} ms (hang_timeout {:?}): killed it",
            ms(idle),
            rule.hang
        ),
    }
    if wait_gone(pid).is_none() {
        ::log::error!(
            "sentinel: daemon {pid} is still there {GONE_WAIT:?} after SIGKILL (stuck in the \
             kernel): it never runs again, fencing anyway"
        );
    }
    End::Crash(Cause::Hung)
}

/// What an exit means (see [`End`]); `progress` is the daemon's last progress word.
fn end_of(exit: Exit, progress: u64) -> End {
    match exit {
        Exit::Code(0) => End::Quiet(0),
        Exit::Code(c) if progress == 0 => End::Quiet(c),
        exit => End::Crash(cause_of(exit)),
    }
}

/// The death notice's cause for an exit that was a crash.
fn cause_of(exit: Exit) -> Cause {
    match exit {
        Exit::Code(c) => Cause::Exited(u8::try_from(c).unwrap_or(u8::MAX)),
        Exit::Signal(s) => Cause::Signalled(u8::try_from(s).unwrap_or(u8::MAX)),
    }
}

/// Reaps `pid`, waiting up to [`GONE_WAIT`]; `None` when it is still there then, or was
/// reaped before.
fn wait_gone(pid: i32) -> Option<Exit> {
    let end = StdInstant::now() + GONE_WAIT;
    while StdInstant::now() < end {
        match try_wait(pid) {
            Ok(Some(exit)) => return Some(exit),
            // Reaped already (ECHILD): nothing left to wait for.
            Err(_) => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    None
}

/// Reaps daemon `pid`, gone or going: waits as long as it takes (a watchdog, when there
/// is one, is not kicked meanwhile: an exit stuck in the kernel for its whole timeout
/// resets the host), and says so when it takes longer than [`GONE_WAIT`].
fn reap(pid: i32) {
    let mut waited = Duration::ZERO;
    loop {
        match try_wait(pid) {
            Ok(Some(exit)) => {
                ::log::debug!("sentinel: daemon {pid} reaped: {exit:?}");
                return;
            }
            // Reaped already (by the pidfd's path, or after a kill for a hang).
            Err(_) => return,
            Ok(None) => {}
        }
        if wait_gone(pid).is_some() {
            return;
        }
        waited += GONE_WAIT;
        ::log::error!(
            "sentinel: daemon {pid} is still exiting after {waited:?} (stuck in the kernel): \
             no new daemon until it is gone"
        );
    }
}

/// Waits `limit` (no daemon runs); whether SIGTERM or SIGINT came meanwhile.
fn stop_asked(signals: &SignalFd, limit: Duration) -> bool {
    use std::os::fd::AsFd;
    let end = StdInstant::now() + limit;
    let mut hup = false;
    let stop = loop {
        let left = end.saturating_duration_since(StdInstant::now());
        while let Ok(s) = signals.read() {
            match s {
                Signal::Term | Signal::Int => return true,
                Signal::Hup => hup = true,
                Signal::Chld | Signal::Other(_) => {}
            }
        }
        if left.is_zero() {
            break false;
        }
        if heartwire_hal::wait_readable(signals.as_fd(), left).is_err() {
            // No way to wait on the signals: sleep the pause out, deaf to them.
            std::thread::sleep(left);
        }
    };
    if hup {
        // A reload asked for meanwhile: pending again (blocked here), so the next
        // daemon gets it, as it would have without the pause.
        let me = i32::try_from(std::process::id()).expect("invariant: pids fit i32");
        let _ = signal(me, libc_sig::HUP);
    }
    stop
}

/// Passes pending SIGTERM, SIGINT and SIGHUP on to the daemon.
fn pass_signals(pid: i32, signals: &SignalFd) {
    while let Ok(s) = signals.read() {
        let n = match s {
            Signal::Term => libc_sig::TERM,
            Signal::Int => libc_sig::INT,
            Signal::Hup => libc_sig::HUP,
            Signal::Chld | Signal::Other(_) => continue,
        };
        let _ = signal(pid, n);
    }
}

/// Signal numbers passed on (Linux values).
mod libc_sig {
    pub(super) const HUP: i32 = 1;
    pub(super) const INT: i32 = 2;
    pub(super) const TERM: i32 = 15;
}

/// What the sentinel fences, prepared before the daemon starts.
struct Fence {
    /// The service addresses and the process sweep (only those two parts are used).
    resources: Resources,
    /// Mount points of the filesystems no reservation guards (the config it started
    /// with and the file as it is now).
    unguarded: Vec<String>,
    /// The maintenance marker.
    marker: PathBuf,
    file: PathBuf,
    node: String,
    /// The groups the config started with.
    started: Vec<crate::config::GroupConfig>,
    /// The file as last read (parsed off the critical path, [`Fence::refresh`]): its
    /// stamp, and the service addresses it adds to those of `started`, as groups.
    now: FileNow,
}

/// The config file as the sentinel last read it.
#[derive(Default)]
struct FileNow {
    /// (mtime ns, ctime ns, length, inode) when read; `None`: not read.
    stamp: Option<(i128, i128, u64, u64)>,
    /// Groups holding the service addresses `started` lacks.
    extra: Vec<crate::config::GroupConfig>,
    /// Groups holding the resource agents `started` lacks (a reload added them).
    agents: Vec<crate::config::GroupConfig>,
    /// The file as it loaded (for the next daemon, when the last one ran it).
    cfg: Option<Config>,
    /// When the stamp was last checked.
    checked: Option<StdInstant>,
}

/// `groups` with only the resources `keep` keeps (groups left empty dropped).
fn only(
    groups: &[crate::config::GroupConfig],
    keep: impl Fn(&crate::config::Resource) -> bool,
) -> Vec<crate::config::GroupConfig> {
    groups
        .iter()
        .map(|g| crate::config::GroupConfig {
            resources: g.resources.iter().filter(|r| keep(r)).cloned().collect(),
            ..g.clone()
        })
        .filter(|g| !g.resources.is_empty())
        .collect()
}

/// How often a healthy daemon's sentinel looks whether the config file changed.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

fn stamp_of(file: &Path) -> Option<(i128, i128, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file).ok()?;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Some((
        ns(m.mtime(), m.mtime_nsec()),
        ns(m.ctime(), m.ctime_nsec()),
        m.len(),
        m.ino(),
    ))
}

impl Fence {
    fn open(cfg: &Config, socket: &Path) -> Result<Fence, String> {
        let local = cfg
            .spec
            .nodes
            .iter()
            .find(|n| n.id == cfg.local)
            .map_or_else(String::new, |n| n.name.clone());
        let mut f = Fence {
            resources: resources_of(cfg, &local)?,
            unguarded: unguarded(cfg),
            marker: super::maintenance::marker_path(socket),
            file: cfg.file.clone(),
            node: local,
            started: cfg.groups.clone(),
            now: FileNow::default(),
        };
        f.refresh(true);
        Ok(f)
    }

    /// Reads the config file again if it changed since it was last read (`force`: look
    /// now; else at most every [`REFRESH_EVERY`]): a stat, and a parse only after a
    /// change. A file that does not load keeps what was read before.
    fn refresh(&mut self, force: bool) {
        let due = self
            .now
            .checked
            .is_none_or(|t| t.elapsed() >= REFRESH_EVERY);
        if !force && !due {
            return;
        }
        self.now.checked = Some(StdInstant::now());
        let stamp = stamp_of(&self.file);
        if stamp.is_none() || stamp == self.now.stamp {
            return;
        }
        let Ok(c) = crate::config::load(&self.file, Some(&self.node)) else {
            return;
        };
        self.now.stamp = stamp;
        let known = |ip: &crate::config::IpResource| {
            self.started.iter().flat_map(|g| &g.resources).any(|r| {
                matches!(&r.kind, ResourceKind::Ip(k)
                    if (k.address, k.prefix, &k.interface, &k.standby)
                        == (ip.address, ip.prefix, &ip.interface, &ip.standby))
            })
        };
        let started_agent = |r: &crate::config::Resource| {
            self.started
                .iter()
                .flat_map(|g| &g.resources)
                .any(|k| k.kind == r.kind)
        };
        self.now.extra = only(
            &c.groups,
            |r| matches!(&r.kind, ResourceKind::Ip(ip) if !known(ip)),
        );
        self.now.agents = only(&c.groups, |r| {
            matches!(&r.kind, ResourceKind::Application(a) if a.agent.is_some())
                && !started_agent(r)
        });
        for m in unguarded(&c) {
            if !self.unguarded.contains(&m) {
                self.unguarded.push(m);
            }
        }
        self.now.cfg = Some(c);
    }

    fn in_maintenance(&self) -> bool {
        self.marker.exists()
    }

    /// Fences this node (see the module docs), running `meanwhile` once the kill and
    /// the address removal are out; says what it did, or why the node must halt. The config file as it is now is fenced too (a reload may have added
    /// addresses or filesystems).
    fn fence(&mut self, meanwhile: &mut dyn FnMut()) -> Result<String, String> {
        let t0 = StdInstant::now();
        // The kill first (with cgroups one write): the processes die while the addresses
        // go.
        let stale = self.resources.kill_stale_processes();
        // Their exits at the lowest real-time priority: the fence waits for them, and as
        // ordinary processes they waited for a CPU behind the dying daemon's teardown
        // (killed gone 0.63 / 1.01 ms after the fault p50 / p99, now 0.44 / 0.53 ms).
        for pid in stale.pids() {
            if let Err(e) = heartwire_hal::sched::hasten_exit(pid) {
                ::log::debug!("sentinel: {e}");
            }
        }
        let t1 = StdInstant::now();
        let mut addresses = self.resources.remove_stale();
        // The file as it is now: usually a stat (it was read when it changed).
        self.refresh(true);
        let extra = std::mem::take(&mut self.now.extra);
        addresses.extend(self.resources.remove_addresses_of(&extra));
        self.now.extra = extra;
        let t2 = StdInstant::now();
        meanwhile();
        let (killed, left) = self.resources.wait_stale_gone(stale, GONE_WAIT);
        if !left.is_empty() {
            ::log::error!(
                "sentinel: still there {GONE_WAIT:?} after SIGKILL (stuck in the kernel): {left:?}"
            );
        }
        let t3a = StdInstant::now();
        // What agents started outside the cgroup (an address IPaddr2 added, a service an
        // init script handed to systemd): their stops, bounded, before any notice.
        let stop_failed = |e: String| {
            format!("a resource agent's stop failed, its resource may still run here: {e}")
        };
        let mut agents = super::probe::stop_all(&self.started).map_err(stop_failed)?;
        agents.extend(super::probe::stop_all(&self.now.agents).map_err(stop_failed)?);
        let t3 = StdInstant::now();
        let mut unmounted = Vec::new();
        for mp in &self.unguarded {
            if crate::storage::filesystem::mounted(mp)?.is_none() {
                continue;
            }
            crate::storage::filesystem::unmount(mp, Duration::ZERO, &mut |l| {
                ::log::info!("sentinel: {l}");
            })
            .map_err(|e| format!("{mp} (no reservation guards it) could not be unmounted: {e}"))?;
            unmounted.push(mp.as_str());
        }
        let us = |a: StdInstant, b: StdInstant| b.duration_since(a).as_micros();
        let t4 = StdInstant::now();
        Ok(format!(
            "killed [{}] ({} µs), removed [{}] ({} µs), waited for the killed ({} µs), \
             stopped agents [{}] ({} µs), unmounted [{}] ({} µs)",
            killed
                .iter()
                .map(|(_, w)| w.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            us(t0, t1),
            addresses.join(", "),
            us(t1, t2),
            us(t2, t3a),
            agents.join(", "),
            us(t3a, t3),
            unmounted.join(", "),
            us(t3, t4)
        ))
    }
}

/// The death notice, ready before any daemon dies: the cluster's key and, per Ethernet
/// path, a socket that only sends ([`PathSocket::open_sender`]). Opened at the death, a
/// packet socket (its binding, its multicast membership) came between the fence and the
/// peers' takeover. UDP and serial paths are opened at the notice (see `open_sender`),
/// and so is a socket whose sends all fail (its interface was replaced since): the new
/// one takes its place.
struct Notice {
    key: Option<AuthKey>,
    /// By path index.
    socks: Vec<Option<PathSocket>>,
}

impl Notice {
    fn open(cfg: &Config) -> Notice {
        let socks = cfg
            .io
            .iter()
            .zip(&cfg.spec.paths)
            .map(
                |(io, p)| match PathSocket::open_sender(io, cfg.spec.cluster_id)? {
                    Ok(s) => Some(s),
                    Err(e) => {
                        ::log::info!(
                            "sentinel: path {}: the death notice's socket is opened at the \
                         notice: {e}",
                            p.name
                        );
                        None
                    }
                },
            )
            .collect();
        let key = cfg.key.as_deref().and_then(|k| AuthKey::new(k).ok());
        // The first frame a process seals pays for the CPU feature detection of its
        // checksum (`cpuid`, a trap to the hypervisor under one: 77 µs here, at the
        // death): paid now, with a notice nobody receives.
        if let Some(k) = &key {
            let mut buf = [0u8; FRAME_MAX];
            let at = Instant::from_nanos(clock::monotonic_ns());
            crate::core::node::death_notice(
                &cfg.spec,
                k,
                (cfg.local, 0),
                0,
                at,
                Cause::Hung,
                &mut buf,
            );
        }
        Notice { key, socks }
    }

    /// Closes the sockets (in the forked daemon: they are the sentinel's).
    fn close(&mut self) {
        self.socks.clear();
    }

    /// Sends the death notice for `incarnation` on every Ethernet, UDP and serial path
    /// (a disk path's servant died with the daemon; one path is enough). Returns the
    /// sockets it had to open, to be closed off the critical path (a packet socket's
    /// close waits a grace period), and when its first copy went out.
    fn send(
        &mut self,
        cfg: &Config,
        incarnation: u32,
        cause: Cause,
    ) -> (Vec<PathSocket>, Option<u64>) {
        let mut opened = Vec::new();
        let mut first = None;
        let Some(key) = self.key.as_ref() else {
            ::log::info!(
                "sentinel: no death notice (the cluster has no key): the peers take over \
                 after their timeout"
            );
            return (opened, first);
        };
        let mut buf = [0u8; FRAME_MAX];
        let mut sent = Vec::new();
        for (i, (io, p)) in cfg.io.iter().zip(&cfg.spec.paths).enumerate() {
            if matches!(io, PathIo::Disk { .. } | PathIo::Absent) {
                continue;
            }
            let now = Instant::from_nanos(clock::monotonic_ns());
            let len = crate::core::node::death_notice(
                &cfg.spec,
                key,
                (cfg.local, incarnation),
                i,
                now,
                cause,
                &mut buf,
            );
            let targets: Vec<Option<usize>> = if matches!(io, PathIo::Udp { .. }) {
                (0..cfg.spec.nodes.len())
                    .filter(|&n| {
                        cfg.spec.nodes[n].id != cfg.local && p.nodes.contains(cfg.spec.nodes[n].id)
                    })
                    .map(Some)
                    .collect()
            } else {
                vec![None]
            };
            let copies = |sock: &mut PathSocket, first: &mut Option<u64>| {
                let mut ok = 0;
                for _ in 0..NOTICE_COPIES {
                    for to in &targets {
                        if sock.send(*to, &buf[..len]).is_ok() {
                            ok += 1;
                            first.get_or_insert_with(clock::monotonic_ns);
                        }
                    }
                    sock.flush();
                }
                ok
            };
            let mut ok = self
                .socks
                .get_mut(i)
                .and_then(Option::as_mut)
                .map_or(0, |sock| copies(sock, &mut first));
            if ok == 0 {
                // No members: they lay out a disk's slots, and disk paths are skipped.
                let fresh = PathSocket::open_sender(io, cfg.spec.cluster_id).unwrap_or_else(|| {
                    PathSocket::open(&notice_io(io), cfg.spec.cluster_id, cfg.local.get(), &[])
                });
                match fresh {
                    Ok(mut sock) => {
                        ok = copies(&mut sock, &mut first);
                        match self.socks.get_mut(i) {
                            // A send-only socket: the next death finds it ready (the one it
                            // replaces is closed off the critical path).
                            Some(slot) if matches!(io, PathIo::Ether { .. }) => {
                                opened.extend(slot.replace(sock));
                            }
                            _ => opened.push(sock),
                        }
                    }
                    Err(e) => {
                        ::log::warn!("sentinel: path {}: no death notice: {e}", p.name);
                        continue;
                    }
                }
            }
            sent.push(format!("{} ({ok} sent)", p.name));
        }
        ::log::warn!(
            "sentinel: death notice for incarnation {incarnation:08x} sent on [{}]",
            sent.join(", ")
        );
        (opened, first)
    }
}

/// How the notice opens path `io`: as the daemon did, but a UDP path from a port of the
/// kernel's choosing on the node's address. The dying daemon may still hold its own port
/// (its descriptors close after the knell tolls: `do_exit` tears the memory down first),
/// and peers do not look at a frame's source port.
fn notice_io(io: &PathIo) -> PathIo {
    match io {
        PathIo::Udp { bind, peers } => PathIo::Udp {
            bind: std::net::SocketAddr::new(bind.ip(), 0),
            peers: peers.clone(),
        },
        other => other.clone(),
    }
}

/// The address and process half of the daemon's resources for `cfg`.
fn resources_of(cfg: &Config, local: &str) -> Result<Resources, String> {
    Resources::open(
        &cfg.groups,
        &[],
        &cfg.spec.name,
        local,
        (cfg.spec.cluster_id, cfg.local.get()),
        &[],
    )
    .map_err(|e| e.to_string())
}

/// Mount points of the filesystems of groups without a reservation (those with a
/// release bound).
fn unguarded(cfg: &Config) -> Vec<String> {
    cfg.groups
        .iter()
        .zip(&cfg.spec.groups)
        .filter(|(_, s)| s.release_bound.is_some())
        .flat_map(|(g, _)| &g.resources)
        .filter_map(|r| match &r.kind {
            ResourceKind::Filesystem(fs) => Some(fs.mountpoint.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dying daemon may still hold its UDP port when the knell tolls: the notice's
    /// socket is bound to another port of the same address (the demo's notice went out on
    /// its Ethernet paths only, "u1: no death notice", before this). Plain sockets: qemu-user
    /// (the cross targets) lacks the receive timestamps a heartwire path socket turns on.
    #[test]
    fn the_notice_binds_beside_a_udp_port_the_dying_daemon_still_holds() {
        let held = std::net::UdpSocket::bind("127.0.0.1:0").expect("the daemon's socket");
        let own = held.local_addr().expect("its address");
        let io = PathIo::Udp {
            bind: own,
            peers: vec![None, Some("127.0.0.1:9".parse().expect("a peer"))],
        };
        assert!(
            std::net::UdpSocket::bind(own).is_err(),
            "the daemon's own port is taken"
        );
        let PathIo::Udp { bind, peers } = notice_io(&io) else {
            panic!("a UDP path stays UDP");
        };
        assert_eq!((bind.ip(), peers.len()), (own.ip(), 2));
        std::net::UdpSocket::bind(bind).expect("the notice's socket binds beside it");
    }
}
