//! The sentinel (DESIGN §4 "The sentinel"): `heartwire run` becomes a small watcher that
//! forks the daemon and stays its parent. It knows for certain when the daemon dies (a
//! pidfd) and when it stops making progress (the loop stores the time of every turn on a
//! page both share; no system call on the daemon's side), and then, before anything else:
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
//! 4. starts a new daemon (`after_crash = "restart"`, at most [`RESTARTS_MAX`] in
//!    [`RESTART_WINDOW`]) or exits with the daemon's status (`"exit"`).
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
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as StdInstant};

use heartwire_hal::process::{SIGKILL, signal};
use heartwire_hal::sentinel::{Exit, Forked, SharedPage, die_with, fork, try_wait};
use heartwire_hal::signalfd::{Signal, SignalFd};
use heartwire_hal::{clock, process, sched};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::paths::PathSocket;
use super::resources::Resources;
use crate::config::{Config, PathIo, ResourceKind};
use crate::core::Instant;
use crate::wire::auth::AuthKey;
use crate::wire::frame::FRAME_MAX;
use crate::wire::notice::Cause;

/// At most this many restarts within [`RESTART_WINDOW`]; then the sentinel exits (a
/// daemon that keeps dying needs the operator, not a loop).
pub const RESTARTS_MAX: usize = 5;
/// See [`RESTARTS_MAX`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// How long a killed daemon, or a killed process of it, may take to be gone.
const GONE_WAIT: Duration = Duration::from_secs(2);
/// Copies of the death notice sent on each path (a lost frame costs a timeout).
const NOTICE_COPIES: usize = 3;

const PID: Token = Token(0);
const OOM_ADJ: &str = "/proc/self/oom_score_adj";
const SIGNALS: Token = Token(1);

/// What the daemon's end was.
enum End {
    /// It exited by itself with this status and needs no fencing: 0 (released, or kept
    /// its groups in maintenance), or a failure before its loop first turned.
    Quiet(i32),
    /// It died holding whatever it held, or hung and was killed.
    Crash(Cause),
}

/// Runs the sentinel: forks the daemon (`daemon` is its body in the child, returning the
/// exit status) and watches it until it ends for good; returns the exit status.
pub fn run(
    cfg: &Config,
    socket: &Path,
    mut ready_pipe: Option<File>,
    daemon: &mut dyn FnMut(Option<File>, SharedPage) -> i32,
) -> i32 {
    let mut fence = match Fence::open(cfg, socket) {
        Ok(f) => f,
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
    let mut restarts: VecDeque<StdInstant> = VecDeque::new();
    let me = i32::try_from(std::process::id()).expect("invariant: pids fit i32");
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
                if let Err(e) = die_with(me) {
                    ::log::error!("daemon: {e}");
                    std::process::exit(1);
                }
                if let Err(e) = std::fs::write(OOM_ADJ, oom.trim()) {
                    ::log::debug!("daemon: {OOM_ADJ}: {e}");
                }
                let code = daemon(ready_pipe.take(), shared);
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
        let limits = Limits {
            hang: cfg.sentinel.hang_timeout,
            lease_grace: cfg.spec.lease() / LEASE_GRACE_DIV,
        };
        let (end, held) = watch(pid, &shared, &signals, limits);
        let cause = match end {
            End::Quiet(code) => return code,
            End::Crash(cause) => cause,
        };
        let incarnation = shared.words().incarnation.load(Ordering::Relaxed);
        let gone = clock::monotonic_ns();
        let mut held_paths = Vec::new();
        if fence.in_maintenance() {
            ::log::warn!(
                "sentinel: daemon {pid} is gone ({cause}) in maintenance: nothing fenced, the \
                 next daemon resumes what it held"
            );
        } else {
            match fence.fence() {
                Ok(what) => ::log::warn!(
                    "sentinel: daemon {pid} is gone ({cause}): fenced this node in {} µs: {what}",
                    (clock::monotonic_ns() - gone) / 1000
                ),
                Err(e) => {
                    ::log::error!("sentinel: daemon {pid} is gone ({cause}) and {e}: halting now");
                    let e = heartwire_hal::watchdog::halt_now();
                    ::log::error!("sentinel: halt failed: {e}");
                    return 1;
                }
            }
            if incarnation != 0 {
                let opened = fence.notice(cfg, incarnation, cause);
                held_paths.extend(opened);
                ::log::info!(
                    "sentinel: {} µs from the daemon's end to the last notice sent",
                    (clock::monotonic_ns() - gone) / 1000
                );
            }
        }
        // Off the critical path now: each last copy of a packet socket waits a grace period.
        drop(held);
        drop(held_paths);
        if !cfg.sentinel.restart {
            ::log::warn!("sentinel: after_crash = \"exit\": exiting");
            return 1;
        }
        let now = StdInstant::now();
        restarts.retain(|t| now.duration_since(*t) < RESTART_WINDOW);
        if restarts.len() >= RESTARTS_MAX {
            ::log::error!(
                "sentinel: the daemon died {RESTARTS_MAX} times within {RESTART_WINDOW:?}: not \
                 starting it again (see the log above); this node is fenced"
            );
            return 1;
        }
        restarts.push_back(now);
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

/// When the sentinel kills the daemon.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// No progress this long.
    hang: Duration,
    /// The daemon has not turned since its lease ended (`Words::fence_by`), this long
    /// after it ended: its own timer fires at that moment, and a loop that did not turn
    /// cannot have fenced what it holds. The gainer waits half a lease more than the
    /// lease (the transit margin); this takes an eighth of it.
    lease_grace: Duration,
}

/// The lease grace is the lease divided by this.
const LEASE_GRACE_DIV: u32 = 8;

/// Watches daemon `pid` until it ends; passes signals on. Returns how it ended and the
/// copies of its packet sockets (to be closed once the fence and the notice are done).
fn watch(
    pid: i32,
    shared: &SharedPage,
    signals: &SignalFd,
    limits: Limits,
) -> (End, Vec<std::os::fd::OwnedFd>) {
    let hang = limits.hang;
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
    let setup = || -> std::io::Result<Poll> {
        use std::os::fd::{AsFd, AsRawFd};
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&pidfd.as_raw_fd()), PID, Interest::READABLE)?;
        poll.registry().register(
            &mut SourceFd(&signals.as_fd().as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        Ok(poll)
    };
    let mut poll = match setup() {
        Ok(p) => p,
        Err(e) => return give_up("poll", e),
    };
    let mut events = Events::with_capacity(4);
    let check = (hang / 4).max(Duration::from_millis(1));
    // Copies of the daemon's packet sockets: closing the last copy of one waits a grace
    // period, so the daemon's exit (and the pidfd's word of it) does not wait for them.
    let mut held: Vec<std::os::fd::OwnedFd> = Vec::new();
    let mut held_generation = 0;
    let hang_ns = u64::try_from(hang.as_nanos()).unwrap_or(u64::MAX);
    let grace_ns = u64::try_from(limits.lease_grace.as_nanos()).unwrap_or(u64::MAX);
    let ns = |d: u64| Duration::from_nanos(d);
    loop {
        // Wake for the hang check, and at the lease deadline when one is set.
        let by = shared.words().fence_by.load(Ordering::Relaxed);
        let until_by = (by != 0)
            .then(|| {
                ns(by
                    .saturating_add(grace_ns)
                    .saturating_sub(clock::monotonic_ns()))
            })
            .map_or(check, |d| d.min(check));
        let _ = poll.poll(&mut events, Some(until_by));
        if let Ok(Some(exit)) = try_wait(pid) {
            return (end_of(exit, shared.progress()), held);
        }
        let (generation, fds) = shared.published_fds();
        if generation != held_generation {
            held_generation = generation;
            held = fds
                .iter()
                .filter_map(|fd| heartwire_hal::sentinel::take_fd(&pidfd, *fd).ok())
                .collect();
        }
        for ev in &events {
            if ev.token() == SIGNALS {
                pass_signals(pid, signals);
            }
        }
        let last = shared.progress();
        let now = clock::monotonic_ns();
        let by = shared.words().fence_by.load(Ordering::Relaxed);
        let lease_over = by != 0 && last < by && now >= by.saturating_add(grace_ns);
        if last != 0 && (now.saturating_sub(last) >= hang_ns || lease_over) {
            let _ = signal(pid, SIGKILL);
            if lease_over {
                ::log::error!(
                    "sentinel: daemon {pid} made no progress for {} ms and its lease ended {} \
                     ms ago without it fencing what it holds: killed it",
                    now.saturating_sub(last) / 1_000_000,
                    now.saturating_sub(by) / 1_000_000
                );
            } else {
                ::log::error!(
                    "sentinel: daemon {pid} made no progress for {} ms (hang_timeout \
                     {hang:?}): killed it",
                    now.saturating_sub(last) / 1_000_000
                );
            }
            if wait_gone(pid).is_none() {
                ::log::error!(
                    "sentinel: daemon {pid} is still there {GONE_WAIT:?} after SIGKILL (stuck \
                     in the kernel): it never runs again, fencing anyway"
                );
            }
            return (End::Crash(Cause::Hung), held);
        }
    }
}

/// What an exit means (see [`End`]); `progress` is the daemon's last progress word.
fn end_of(exit: Exit, progress: u64) -> End {
    match exit {
        Exit::Code(0) => End::Quiet(0),
        Exit::Code(c) if progress == 0 => End::Quiet(c),
        Exit::Code(c) => End::Crash(Cause::Exited(u8::try_from(c).unwrap_or(u8::MAX))),
        Exit::Signal(s) => End::Crash(Cause::Signalled(u8::try_from(s).unwrap_or(u8::MAX))),
    }
}

/// Reaps `pid`, waiting up to [`GONE_WAIT`].
fn wait_gone(pid: i32) -> Option<Exit> {
    let end = StdInstant::now() + GONE_WAIT;
    while StdInstant::now() < end {
        if let Ok(Some(exit)) = try_wait(pid) {
            return Some(exit);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
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
    /// Mount points of the filesystems no reservation guards.
    unguarded: Vec<String>,
    /// The maintenance marker.
    marker: PathBuf,
    file: PathBuf,
    node: String,
}

impl Fence {
    fn open(cfg: &Config, socket: &Path) -> Result<Fence, String> {
        let local = cfg
            .spec
            .nodes
            .iter()
            .find(|n| n.id == cfg.local)
            .map_or_else(String::new, |n| n.name.clone());
        Ok(Fence {
            resources: resources_of(cfg, &local)?,
            unguarded: unguarded(cfg),
            marker: super::maintenance::marker_path(socket),
            file: cfg.file.clone(),
            node: local,
        })
    }

    fn in_maintenance(&self) -> bool {
        self.marker.exists()
    }

    /// Fences this node (see the module docs); says what it did, or why the node must
    /// halt. The config file as it is now is fenced too (a reload may have added
    /// addresses or filesystems).
    fn fence(&mut self) -> Result<String, String> {
        let mut addresses = self.resources.remove_stale();
        let now = crate::config::load(&self.file, Some(&self.node)).ok();
        if let Some(c) = &now {
            addresses.extend(self.resources.remove_addresses_of(&c.groups));
        }
        let killed = self.resources.kill_stale_processes();
        let end = StdInstant::now() + GONE_WAIT;
        while killed.iter().any(|(pid, _)| alive(*pid)) && StdInstant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        let left: Vec<&str> = killed
            .iter()
            .filter(|(pid, _)| alive(*pid))
            .map(|(_, what)| what.as_str())
            .collect();
        if !left.is_empty() {
            ::log::error!(
                "sentinel: still there {GONE_WAIT:?} after SIGKILL (stuck in the kernel): {}",
                left.join(", ")
            );
        }
        let mut mounts: Vec<String> = self.unguarded.clone();
        if let Some(c) = &now {
            for m in unguarded(c) {
                if !mounts.contains(&m) {
                    mounts.push(m);
                }
            }
        }
        let mut unmounted = Vec::new();
        for mp in &mounts {
            if crate::storage::filesystem::mounted(mp)?.is_none() {
                continue;
            }
            crate::storage::filesystem::unmount(mp, Duration::ZERO, &mut |l| {
                ::log::info!("sentinel: {l}");
            })
            .map_err(|e| format!("{mp} (no reservation guards it) could not be unmounted: {e}"))?;
            unmounted.push(mp.as_str());
        }
        Ok(format!(
            "removed [{}], killed [{}], unmounted [{}]",
            addresses.join(", "),
            killed
                .iter()
                .map(|(_, w)| w.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            unmounted.join(", ")
        ))
    }

    /// Sends the death notice for `incarnation` on every Ethernet, UDP and serial path
    /// (a disk path's servant died with the daemon; one path is enough). Returns the
    /// sockets it opened, to be closed off the critical path (a packet socket's close
    /// waits a grace period).
    fn notice(&self, cfg: &Config, incarnation: u32, cause: Cause) -> Vec<PathSocket> {
        let mut opened = Vec::new();
        let Some(key) = cfg.key.as_deref().and_then(|k| AuthKey::new(k).ok()) else {
            ::log::info!(
                "sentinel: no death notice (the cluster has no key): the peers take over \
                 after their timeout"
            );
            return opened;
        };
        let mut buf = [0u8; FRAME_MAX];
        let mut sent = Vec::new();
        for (i, (io, p)) in cfg.io.iter().zip(&cfg.spec.paths).enumerate() {
            if matches!(io, PathIo::Disk { .. } | PathIo::Absent) {
                continue;
            }
            let members: Vec<u8> = p.nodes.iter().map(|n| n.get()).collect();
            let mut sock =
                match PathSocket::open(io, cfg.spec.cluster_id, cfg.local.get(), &members) {
                    Ok(s) => s,
                    Err(e) => {
                        ::log::warn!("sentinel: path {}: no death notice: {e}", p.name);
                        continue;
                    }
                };
            let now = Instant::from_nanos(clock::monotonic_ns());
            let len = crate::core::node::death_notice(
                &cfg.spec,
                &key,
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
            let mut ok = 0;
            for _ in 0..NOTICE_COPIES {
                for to in &targets {
                    ok += usize::from(sock.send(*to, &buf[..len]).is_ok());
                }
                sock.flush();
            }
            sent.push(format!("{} ({ok} sent)", p.name));
            opened.push(sock);
        }
        ::log::warn!(
            "sentinel: death notice for incarnation {incarnation:08x} sent on [{}]",
            sent.join(", ")
        );
        opened
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

/// Whether process `pid` still exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}
