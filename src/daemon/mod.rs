//! The daemon: one thread, one `mio::Poll`, one absolute CLOCK_MONOTONIC timerfd
//! (DESIGN §2, STYLE §4).
//!
//! Startup order is fixed: config (already loaded) → signals blocked → hal resources
//! (paths, control socket, timer) → real-time mode → the loop. One loop turn:
//! 1. `poll(None)` — time arrives through the timerfd, never through the poll timeout;
//! 2. read `now`;
//! 3. drain the path sockets that polled readable (or were left unfinished by the cap,
//!    [`FRAMES_PER_WAKEUP_MAX`]) until `WouldBlock`, and every path without kernel receive
//!    timestamps (serial, disk: an unstamped frame's arrival is bounded by when its path
//!    was last read empty), feeding the core with arrival times;
//! 4. if a deadline passed, `handle_timeout(now)`;
//! 5. drain `poll_action`, carrying out transmits and logging events;
//! 6. answer control requests, then re-arm the timer if the deadline moved.
//!
//! The hot path (receive → core → maybe send) allocates nothing: fixed buffers only.
//! Nothing here blocks: sockets are nonblocking, heartbeats that meet a full queue are
//! counted and dropped, never queued.

mod cgroups;
mod children;
mod commands;
mod ctl_server;
pub mod disk;
mod fencing;
pub mod log;
mod maintenance;
mod notify;
mod offers;
mod paths;
pub(crate) mod probe;
mod promise;
mod reload;
mod report;
mod resources;
pub mod sentinel;
mod token;
mod watchdog;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

use heartwire_hal::linkmon::{self, LinkMonitor};
use heartwire_hal::sentinel::SharedPage;
use heartwire_hal::signalfd::{Signal, SignalFd};
use heartwire_hal::timerfd::TimerFd;
use heartwire_hal::{HalError, clock, random, sched};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use self::commands::{Answer, Waiting};
pub use self::ctl_server::CtlError;
use self::ctl_server::CtlServer;
use self::log::RateLimit;
use self::paths::{PathSocket, Rx};
use self::report::IoCounters;
use self::resources::{Outcome, Report, Resources};
use crate::config::{Config, GroupConfig};
use crate::core::node::Halt;
use crate::core::{Action, Dest, DropReason, Instant, Node};
use crate::wire::auth::AuthKey;
use crate::wire::ethernet::MIN_PAYLOAD;
use crate::wire::frame::{FRAME_MAX, padded_len};

/// Most frames read from one socket per loop turn, so one flooded path cannot starve the
/// others or the timer; the loop comes straight back for the rest.
pub const FRAMES_PER_WAKEUP_MAX: usize = 256;

/// Events kept for `status`.
const RECENT_EVENTS: usize = 32;

/// How long a starting daemon waits for the stale processes it killed to be gone.
const STALE_GONE_WAIT: Duration = Duration::from_secs(2);

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A path, timer or signal resource failed.
    #[error("{0}")]
    Hal(#[from] HalError),
    /// A path could not be opened.
    #[error("path `{path}`: {source}")]
    Path {
        /// Path name.
        path: String,
        /// Cause.
        source: HalError,
    },
    /// The control socket.
    #[error("{0}")]
    Ctl(#[from] CtlError),
    /// The poll itself.
    #[error("event loop: {0}")]
    Poll(#[from] io::Error),
    /// The cluster key.
    #[error("cluster key: shorter than 16 bytes")]
    Key,
    /// A resource agent found its resource running here at start and could not stop it.
    #[error("{0}")]
    Orphan(String),
    /// The maintenance marker a previous run left cannot be used.
    #[error("maintenance marker {0}: remove it to start without resuming maintenance")]
    Maintenance(String),
    /// The promise file cannot be opened or read.
    #[error(
        "promise file {0}: this node's agreement to a view cannot be kept across restarts; \
         a file that cannot be read may be removed once the other nodes have formed a view \
         without this node"
    )]
    Promise(String),
}

/// Everything the loop owns.
struct Daemon {
    node: Node,
    /// Where the maintenance marker lives (see `maintenance`).
    marker: PathBuf,
    /// Where this node's newest agreement is kept (see `promise`).
    promise: promise::PromiseFile,
    groups: Vec<GroupConfig>,
    resources: Resources,
    socks: Vec<PathSocket>,
    io: Vec<IoCounters>,
    timer: TimerFd,
    signals: SignalFd,
    ctl: CtlServer,
    armed: Option<Instant>,
    started: Instant,
    recent: VecDeque<String>,
    drop_log: RateLimit,
    /// Rate limit of the warnings about drops (replays, which are routine, have their own).
    drop_warn_log: RateLimit,
    io_log: RateLimit,
    keyed: bool,
    /// A control connection waiting for an operator command.
    waiting: Option<Waiting>,
    /// A control connection waiting for a stop to finish.
    stop_waiter: Option<Waiting>,
    /// Carrier events from rtnetlink.
    links: LinkMonitor,
    /// Every interface whose carrier matters here, and its carrier (`None`: not reported
    /// yet).
    carrier: Vec<(String, Option<bool>)>,
    /// The service manager (systemd), when it started us.
    notify: Option<notify::Notifier>,
    /// When the next `WATCHDOG=1` is due.
    watchdog_at: Option<Instant>,
    /// Per control connection following the event stream, events it missed.
    stream_lost: [u64; ctl_server::CONN_MAX],
    /// The config loaded last (a reload compares the file with it). Its groups are what
    /// this node runs once no reload is pending; `groups` is what it runs now.
    config: Config,
    /// Per group, new resources a reload waits to give it until it is released here.
    pending: Vec<Option<reload::Pending>>,
    /// Configuration offers: the operator waiting, the offer staged here, its check.
    offer_io: offers::OfferIo,
    /// The hardware watchdog and the tie-breaker.
    fencing: fencing::Fencing,
    /// The page shared with the sentinel (when one watches this daemon): the loop stores
    /// the time of every turn there.
    sentinel: Option<SharedPage>,
}

/// Runs the daemon until SIGTERM or SIGINT. `ready` is called once, when every resource is
/// open and the loop is about to start (a detached daemon tells the operator's terminal).
/// How long a starting daemon waits for an address or socket that is in use to be
/// freed: a daemon whose sentinel was killed (kill -9 of `heartwire run`) dies with it,
/// but its exit — closing a packet socket waits for an RCU grace period — can outlast a
/// new `run` started at once, which then failed on `bind UDP …: Address already in use`
/// and never came up (the lab's offline-across-a-coordinator-restart test, 4 of 4 runs
/// on 2026-12-05). systemd waits for the unit's cgroup to empty before a restart; an
/// operator at a shell does not. The sentinel's own wait for a dying process is as long.
const PREDECESSOR_WAIT: Duration = Duration::from_secs(2);

/// Runs `open` until it succeeds, fails otherwise than `in_use`, or [`PREDECESSOR_WAIT`]
/// has passed; logs once what it waits for. Before the loop only: it sleeps.
fn after_predecessor<T, E: std::fmt::Display>(
    what: &str,
    mut open: impl FnMut() -> Result<T, E>,
    in_use: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let start = std::time::Instant::now();
    let mut told = false;
    loop {
        match open() {
            Err(e) if in_use(&e) && start.elapsed() < PREDECESSOR_WAIT => {
                if !std::mem::replace(&mut told, true) {
                    ::log::warn!(
                        "{what}: {e}: waiting up to {PREDECESSOR_WAIT:?} for a previous daemon to finish exiting"
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
            Ok(t) => {
                if told {
                    ::log::info!("{what}: free after {:?}", start.elapsed());
                }
                return Ok(t);
            }
        }
    }
}

/// `sentinel`: the page shared with the sentinel that forked this daemon, if one did.
pub fn run(
    cfg: Config,
    socket: PathBuf,
    ready: &mut dyn FnMut(),
    sentinel: Option<SharedPage>,
) -> Result<(), DaemonError> {
    let signals = SignalFd::new()?;
    let timer = TimerFd::new()?;
    let socks = cfg
        .io
        .iter()
        .zip(&cfg.spec.paths)
        .map(|(io, p)| {
            let members: Vec<u8> = p.nodes.iter().map(|n| n.get()).collect();
            let open = || PathSocket::open(io, cfg.spec.cluster_id, cfg.local.get(), &members);
            let in_use = |e: &HalError| e.source.kind() == io::ErrorKind::AddrInUse;
            after_predecessor(&p.name, open, in_use).map_err(|source| DaemonError::Path {
                path: p.name.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ctl = after_predecessor(
        "the control socket",
        || CtlServer::bind(&socket, cfg.control_socket_group.as_deref()),
        |e| matches!(e, ctl_server::CtlError::InUse(_)),
    )?;
    let links = LinkMonitor::open()?;
    let mut carrier: Vec<(String, Option<bool>)> = Vec::new();
    let ip_ifaces = cfg
        .groups
        .iter()
        .flat_map(|g| &g.resources)
        .flat_map(|r| match &r.kind {
            crate::config::ResourceKind::Ip(ip) => ip.interface.iter().chain(&ip.standby).collect(),
            _ => Vec::new(),
        });
    for name in cfg.adapters.iter().flatten().chain(ip_ifaces) {
        if !carrier.iter().any(|(n, _)| n == name) {
            carrier.push((name.clone(), None));
        }
    }
    let local_name = cfg.spec.nodes[cfg.spec.node_index(cfg.local).expect("invariant: local")]
        .name
        .clone();
    let peers: Vec<u8> = cfg
        .spec
        .nodes
        .iter()
        .map(|n| n.id.get())
        .filter(|id| *id != cfg.local.get())
        .collect();
    let mut resources = Resources::open(
        &cfg.groups,
        &cfg.events,
        &cfg.spec.name,
        &local_name,
        (cfg.spec.cluster_id, cfg.local.get()),
        &peers,
    )?;
    let marker = maintenance::marker_path(&socket);
    let resumed = maintenance::read(&marker, &cfg.groups).map_err(DaemonError::Maintenance)?;
    // Groups whose agent said at the probe that it cannot run anywhere with this config.
    let mut fatal = Vec::new();
    if resumed.is_none() {
        // Before joining: a previous run killed with kill -9 may have left service
        // addresses and processes (its applications). In maintenance they are the
        // service, and are kept.
        for stale in resources.remove_stale() {
            ::log::warn!(
                "removed stale service address {stale}: left by a previous run at={}",
                log::secs(heartwire_hal::clock::monotonic_ns())
            );
        }
        let at = log::secs(heartwire_hal::clock::monotonic_ns());
        let stale = resources.kill_stale_processes();
        // Gone before this node can start them again.
        let (killed, left) = resources.wait_stale_gone(stale, STALE_GONE_WAIT);
        for (_, stale) in &killed {
            ::log::warn!(
                "killed stale process {stale}: started by a previous run of this node at={at}"
            );
        }
        if !left.is_empty() {
            ::log::error!(
                "stale processes still there {STALE_GONE_WAIT:?} after SIGKILL (stuck in the \
                 kernel): {left:?}"
            );
        }
        fatal = probe::probe(&cfg.groups).map_err(DaemonError::Orphan)?;
    }
    let mut _cpu_latency = None;
    if let Some(rt) = cfg.realtime {
        if let Some(us) = rt.cpu_dma_latency_us {
            _cpu_latency = Some(sched::hold_cpu_latency(us)?);
        }
        if rt.lock_memory {
            sched::lock_memory()?;
        }
        if let Some(cpu) = rt.cpu {
            sched::set_affinity(cpu)?;
        }
        sched::set_fifo(rt.priority)?;
        ::log::info!(
            "real-time mode: SCHED_FIFO priority {}, memory locked: {}, cpu: {:?}, cpu wake-up latency request: {:?} µs",
            rt.priority,
            rt.lock_memory,
            rt.cpu,
            rt.cpu_dma_latency_us
        );
    }
    let key = cfg
        .key
        .as_deref()
        .map(AuthKey::new)
        .transpose()
        .map_err(|_| DaemonError::Key)?;
    let incarnation = loop {
        let r = u32::try_from(random::u64().map_err(DaemonError::Poll)? >> 32)
            .expect("invariant: u64 >> 32 fits u32");
        if r != 0 {
            break r;
        }
    };
    let started = Instant::from_nanos(clock::monotonic_ns());
    let keyed = key.is_some();
    let mut node = Node::new(cfg.spec.clone(), cfg.local, incarnation, key, started);
    let (promise, kept) =
        promise::PromiseFile::open(&promise::path(&socket)).map_err(DaemonError::Promise)?;
    if let Some((number, members)) = kept {
        node.resume_promise(number, members);
        ::log::info!(
            "keeping the word of the previous run (from {}): agreed to view {number}, \
             members {}",
            promise.path().display(),
            report::member_names(&node, members)
        );
    }
    if let Some(m) = &resumed {
        node.resume_maintenance(started, m.epoch, m.groups);
        resources.resume(started, m.groups);
        ::log::warn!(
            "maintenance (from {}): resuming with group(s) [{}] online here as the previous \
             run left them; nothing is started, stopped or monitored until `heartwire \
             maintenance off`",
            marker.display(),
            report::group_names(&cfg.groups, m.groups)
        );
    }
    // After what the node resumes (the kept word must be in place before it settles).
    for (g, r) in fatal {
        node.fatal_group(started, g, r);
    }
    let fencing = fencing::Fencing::open(&cfg, &socket, started, sentinel.is_some())?;
    let io = vec![
        IoCounters {
            drained_ns: heartwire_hal::clock::monotonic_ns(),
            ..IoCounters::default()
        };
        socks.len()
    ];
    let mut d = Daemon {
        node,
        marker,
        promise,
        groups: cfg.groups.clone(),
        resources,
        socks,
        io,
        timer,
        signals,
        ctl,
        armed: None,
        started,
        recent: VecDeque::with_capacity(RECENT_EVENTS),
        drop_log: RateLimit::default(),
        drop_warn_log: RateLimit::default(),
        io_log: RateLimit::default(),
        keyed,
        waiting: None,
        stop_waiter: None,
        links,
        carrier,
        notify: notify::Notifier::from_env(),
        watchdog_at: None,
        stream_lost: [0; ctl_server::CONN_MAX],
        pending: vec![None; cfg.groups.len()],
        config: cfg.clone(),
        offer_io: offers::OfferIo::new(),
        fencing,
        sentinel,
    };
    if let Some(s) = &d.sentinel {
        s.words()
            .incarnation
            .store(incarnation, std::sync::atomic::Ordering::Relaxed);
        s.words()
            .config_hash
            .store(cfg.spec.config_hash, std::sync::atomic::Ordering::Relaxed);
        // The sentinel holds copies of the packet sockets, so this process's exit does
        // not wait a grace period per socket (see `hal::sentinel::Words::fds`).
        let mut fds: Vec<i32> = d
            .socks
            .iter()
            .filter(|s| s.is_ether())
            .filter_map(|s| s.fd().map(|f| f.as_raw_fd()))
            .collect();
        fds.extend(d.resources.packet_fds());
        s.publish_fds(&fds);
    }
    ::log::info!(
        "started: cluster {} (id {}), node {} (id {}, chosen: {}), incarnation {incarnation:08x}, {} path(s), control socket {}{}, key {}",
        cfg.spec.name,
        cfg.spec.cluster_id,
        local_name,
        cfg.local.get(),
        cfg.chosen,
        d.socks.len(),
        socket.display(),
        cfg.control_socket_group
            .as_deref()
            .map_or(String::new(), |g| format!(
                " (group {g} may read status and events)"
            )),
        if keyed {
            "on"
        } else {
            "OFF (frames are not authenticated)"
        }
    );
    if !keyed {
        ::log::warn!(
            "no cluster key (key_file): anyone who can send a frame to this segment or a \
             datagram to a heartbeat port can pose as a node, move groups and split the \
             cluster; run without a key only in a lab (`heartwire verify` says how to make one)"
        );
    }
    if d.node.spec().two_node {
        ::log::warn!(
            "two_node = true: a lone survivor of the two nodes keeps quorum; with only IP paths \
             a network partition gives both nodes the groups (configure a non-IP path, or \
             a [tie_breaker] disk instead of two_node, when they are available)"
        );
    }
    if let Some(n) = &d.notify {
        // Under a sentinel, the sentinel is the service's main process.
        let main = if d.sentinel.is_some() {
            heartwire_hal::process::parent()
        } else {
            std::process::id()
        };
        n.send(&format!("READY=1\nMAINPID={main}"));
        d.watchdog_at = n.watchdog.map(|w| started.saturating_add(w));
    }
    ready();
    let result = d.run_loop();
    let last = d.stream_line(Some("stopped"));
    d.ctl.end_streams(&last);
    if let Some(n) = &d.notify {
        n.send("STOPPING=1");
    }
    drop(_cpu_latency);
    result
}

impl Daemon {
    /// Registers every source with its token. The owners keep their fds (mio's
    /// `SourceFd` only borrows the number for the call).
    fn register(&mut self, poll: &Poll) -> io::Result<()> {
        let reg = poll.registry();
        let readable = |fd: BorrowedFd<'_>, token: Token| {
            reg.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
        };
        readable(self.timer.as_fd(), token::TIMER)?;
        readable(self.signals.as_fd(), token::SIGNAL)?;
        readable(self.links.as_fd(), token::LINKS)?;
        for (i, s) in self.socks.iter().enumerate() {
            if let Some(fd) = s.fd() {
                readable(fd, Token(token::PATH_BASE + i))?;
            }
        }
        self.ctl.register(reg)
    }

    fn run_loop(&mut self) -> Result<(), DaemonError> {
        let mut poll = Poll::new()?;
        self.register(&poll)?;
        let mut events = Events::with_capacity(64);
        let mut tx_buf = [0u8; FRAME_MAX];
        let mut rx_buf = [0u8; FRAME_MAX + 64];
        let mut more = false;
        // Paths to drain this turn, one bit each: those that polled readable and those the
        // cap left unfinished. Reading the rest would only meet `WouldBlock` (3 system
        // calls of 16 per millisecond at a 1 ms interval; edge-triggered, a socket that did
        // not poll readable got nothing since it was read empty).
        const _: () = assert!(crate::wire::MAX_PATHS <= 32, "a bit per path in `ready`");
        let mut ready: u32 = !0;
        self.rearm()?;
        loop {
            let timeout = more.then_some(Duration::ZERO);
            match poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            let now_ns = clock::monotonic_ns();
            let real_ns = clock::realtime_ns();
            let now = Instant::from_nanos(now_ns);
            if let Some(s) = &self.sentinel {
                // Progress for the sentinel: a plain store to the shared page.
                s.words()
                    .progress
                    .store(now_ns, std::sync::atomic::Ordering::Relaxed);
            }
            let mut stop = false;
            let mut reports = Vec::new();
            if events.iter().count() >= events.capacity() {
                // Maybe more were ready than one poll returns: a path's readiness may be
                // in the next one, and silence is judged only after every path with
                // frames was read. Read them all.
                ready = !0;
            }
            for ev in events.iter() {
                match ev.token() {
                    token::TIMER => {
                        self.timer.drain();
                    }
                    token::SIGNAL => {
                        let (s, hup) = self.read_signals();
                        stop |= s;
                        if hup {
                            match self.reload(now) {
                                Ok(what) => ::log::info!("SIGHUP: reloaded: {what}"),
                                Err(why) => ::log::error!("SIGHUP: reload refused: {why}"),
                            }
                        }
                    }
                    token::LINKS => self.read_links(poll.registry(), now),
                    t if (token::PATH_BASE..token::PATH_BASE + self.socks.len()).contains(&t.0) => {
                        ready |= 1 << (t.0 - token::PATH_BASE);
                    }
                    t if self.offer_io.owns(t) => self.offer_checked(poll.registry(), now, t),
                    t if self.fencing.owns(t) => {
                        if let Some(o) = self.fencing.on_child_event(poll.registry(), t) {
                            self.tie_outcome(now, o);
                        }
                    }
                    t if Resources::owns_cgroup(t) => {
                        reports.extend(self.resources.on_cgroup_event(poll.registry(), now, t));
                    }
                    t if t.0 >= token::CHILD_BASE => {
                        reports.extend(self.resources.on_child_event(poll.registry(), now, t));
                    }
                    _ => {}
                }
            }
            let mut unfinished = 0;
            for i in 0..self.socks.len() {
                self.socks[i].flush();
                if (ready & (1 << i) != 0 || !self.socks[i].stamped())
                    && self.drain_path(i, now, real_ns, &mut rx_buf)
                {
                    unfinished |= 1 << i;
                }
            }
            ready = unfinished;
            more = unfinished != 0;
            if self.node.next_deadline().is_some_and(|d| d <= now) {
                self.node.handle_timeout(now);
            }
            let frozen = self.node.maintenance();
            if self
                .resources
                .next_deadline(frozen)
                .is_some_and(|d| d <= now)
            {
                reports.extend(self.resources.on_timer(poll.registry(), now, frozen));
            }
            if self.offer_io.next_deadline().is_some_and(|d| d <= now) {
                while let Some(done) = self.offer_io.on_timer(now) {
                    self.offer_finished(now, done);
                }
            }
            self.kick_watchdog(now);
            if self.fencing.next_deadline().is_some_and(|d| d <= now) {
                if let Some(o) = self.fencing.on_timer(poll.registry(), now) {
                    self.tie_outcome(now, o);
                }
            }
            for r in reports {
                self.report(now, r);
            }
            if stop && self.node.leaving() {
                ::log::warn!("second stop signal: exiting now, without waiting for the hand-over");
                self.shutdown();
                return Ok(());
            }
            if stop {
                if let Some(w) = self.waiting.take() {
                    self.respond_report(
                        poll.registry(),
                        now,
                        &w,
                        "cancelled: the node is stopping",
                    );
                }
                let issued = self.node.stop(now, true, commands::SIGNAL_STOP_TIMEOUT);
                ::log::info!(
                    "stopping on signal: {}{} (a second signal exits at once)",
                    if self.node.keeps_resources() {
                        "in maintenance, leaving every resource as it is"
                    } else if self.node.maintenance() {
                        "releasing every group: in maintenance, but this node lacks quorum or \
                         not every member has heard of the mode yet, so the others could take \
                         its groups over"
                    } else {
                        "releasing every group"
                    },
                    issued.map_or(String::new(), |c| format!(
                        ", handing over {}",
                        report::group_names(&self.groups, c.groups)
                    ))
                );
            }
            self.execute(poll.registry(), now, &mut tx_buf);
            self.serve_ctl(&poll, &events, now);
            // Commands asked on the control socket may have queued frames.
            self.execute(poll.registry(), now, &mut tx_buf);
            let stopped = self.finish_commands(poll.registry(), now);
            self.rearm()?;
            if let Some(s) = &self.sentinel {
                let by = self.node.fence_deadline().map_or(0, Instant::as_nanos);
                s.words()
                    .fence_by
                    .store(by, std::sync::atomic::Ordering::Relaxed);
            }
            if stopped {
                let stuck = self.groups_in_error();
                if self.node.maintenance() {
                    self.persist_maintenance();
                }
                if self.node.keeps_resources() {
                    ::log::warn!(
                        "stopped in maintenance: every resource is left as it is; the next \
                         start here resumes it ({})",
                        self.marker.display()
                    );
                } else if stuck.is_empty() && self.node.left_for_quorum_loss() {
                    ::log::warn!(
                        "quorum lost and every group released: exiting (on_quorum_loss = stop)"
                    );
                } else if stuck.is_empty() {
                    ::log::info!("stopped: every group released");
                } else {
                    ::log::error!(
                        "stopped with group(s) {} in error: a release failed; their addresses were removed \
                         and their applications killed (fenced), a filesystem may still be mounted here",
                        stuck.join(", ")
                    );
                }
                self.shutdown();
                return Ok(());
            }
        }
    }

    /// Reads carrier changes: logs `adapter_down` / `adapter_up`, swaps service addresses
    /// to standby interfaces in this same turn, and tells the core which networks have
    /// no carrier left.
    fn read_links(&mut self, registry: &mio::Registry, now: Instant) {
        let mut buf = [0u8; 16 * 1024];
        let mut changes: Vec<(usize, bool)> = Vec::new();
        let mut dump_done = false;
        for _ in 0..FRAMES_PER_WAKEUP_MAX {
            let n = match self.links.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    ::log::warn!("rtnetlink link events: {e}");
                    break;
                }
            };
            dump_done |= linkmon::parse(&buf[..n], &mut |l| {
                if let Some(i) = self.carrier.iter().position(|(name, _)| name == l.name) {
                    let up = l.carrier && !l.removed;
                    if self.carrier[i].1 != Some(up) {
                        changes.push((i, up));
                    }
                    self.carrier[i].1 = Some(up);
                }
            });
        }
        if dump_done && !self.links.dumped {
            self.links.dumped = true;
            for (name, state) in &mut self.carrier {
                if state.is_none() {
                    ::log::warn!("interface {name} does not exist: counted as without carrier");
                    *state = Some(false);
                }
            }
            ::log::info!(
                "carrier: {}",
                self.carrier
                    .iter()
                    .map(|(n, c)| format!("{n}={}", if *c == Some(true) { "up" } else { "down" }))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        let at = log::secs(now.as_nanos());
        for (i, up) in changes {
            let name = self.carrier[i].0.clone();
            let moved = self.resources.set_carrier(now, &name, up);
            if !self.links.dumped && up {
                continue;
            }
            let line = if up {
                format!("event=adapter_up at={at} interface={name}")
            } else if moved.is_empty() {
                format!("event=adapter_down at={at} interface={name}")
            } else {
                format!(
                    "event=adapter_down at={at} interface={name} swapped={}",
                    moved.join(",")
                )
            };
            self.log_event(
                registry,
                now,
                if up { "adapter_up" } else { "adapter_down" },
                None,
                line,
            );
        }
        let mut lost = 0u64;
        for (n, list) in self.config.adapters.iter().enumerate() {
            let all_down = !list.is_empty()
                && list.iter().all(|a| {
                    self.carrier
                        .iter()
                        .find(|(name, _)| name == a)
                        .is_some_and(|(_, c)| *c == Some(false))
                });
            if all_down {
                lost |= 1 << n;
            }
        }
        self.node.set_carrier_lost(now, lost);
    }

    /// Logs an event line, runs its `notify` commands and keeps it for `status`.
    fn log_event(
        &mut self,
        registry: &mio::Registry,
        now: Instant,
        name: &str,
        group: Option<u8>,
        line: String,
    ) {
        ::log::info!("{line}");
        self.resources.notify(registry, now, name, group, &line);
        if self.ctl.has_followers() {
            let node = report::node_name(&self.node, self.node.local());
            let (mono, wall) = (clock::monotonic_ns(), clock::realtime_ns());
            if let Some(rec) = crate::ctl::events::EventRecord::parse(&line, node, mono, wall) {
                self.ctl.broadcast(
                    &mut self.stream_lost,
                    &|lost| {
                        let mut r = rec.clone();
                        r.lost_before = lost;
                        let mut bytes = serde_json::to_vec(&r).expect("invariant: json serialises");
                        bytes.push(b'\n');
                        bytes
                    },
                    registry,
                );
            }
        }
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    /// Logs a dropped frame (the caller rate-limits): what was wrong, on which path, and
    /// whom it claimed to come from. A replay (a copy, a late frame) is routine and goes
    /// to the debug log; anything else is a warning an operator should see.
    fn log_drop(&self, path: usize, reason: DropReason, claimed: Option<u8>, suppressed: u64) {
        let spec = self.node.spec();
        let from = claimed
            .and_then(|id| spec.nodes.iter().find(|n| n.id.get() == id))
            .map_or_else(String::new, |n| format!(" claiming to be from {}", n.name));
        let hint = match reason {
            DropReason::BadTag => ": a different key_file on that node, or a forgery?",
            DropReason::Implausible => {
                ": a counter beyond what that node can have reached (forged, or a node gone wrong)"
            }
            DropReason::ForeignCluster => {
                ": another cluster on this segment (a different cluster id)"
            }
            DropReason::UnknownNode => {
                ": a node id this config does not name (a different [[node]] list?)"
            }
            DropReason::WrongPath => ": networks cross-wired between paths?",
            DropReason::BadVersion => {
                ": a heartwire of another wire version there (mixed versions do not hear each \
                 other: stop every node to upgrade across versions, README \"Upgrades\")"
            }
            DropReason::RefusedNotice => {
                ": a death notice, but this cluster has no key (a notice is only believed \
                 when authenticated; the node is failed over after its timeout)"
            }
            _ => "",
        };
        let line = format!(
            "path {}: dropped a frame{from}: {}{hint} ({suppressed} more drops not logged)",
            spec.paths[path].name,
            reason.name()
        );
        if reason == DropReason::Replay {
            ::log::debug!("{line}");
        } else {
            ::log::warn!("{line}");
        }
    }

    /// Keeps the maintenance marker in step with the mode: written (epoch and the groups
    /// not offline here: a group half acquired or half released holds some of its
    /// resources) while in maintenance, removed otherwise. A failure is logged: the
    /// mode itself goes on, but a restart would not resume it.
    fn persist_maintenance(&self) {
        let result = if self.node.maintenance() {
            let marker = maintenance::Marker {
                epoch: self.node.maintenance_epoch(),
                groups: self
                    .node
                    .groups()
                    .iter()
                    .enumerate()
                    .fold(0, |acc, (g, l)| {
                        acc | u64::from(l.phase != crate::core::Phase::Offline) << g
                    }),
            };
            maintenance::write(&self.marker, &marker, &self.groups)
        } else {
            maintenance::remove(&self.marker)
        };
        if let Err(e) = result {
            ::log::error!(
                "maintenance marker {}: {e} (a restart would not resume maintenance)",
                self.marker.display()
            );
        }
    }

    /// Reads pending signals: whether the daemon should stop, and whether to reload.
    fn read_signals(&mut self) -> (bool, bool) {
        let (mut stop, mut hup) = (false, false);
        loop {
            match self.signals.read() {
                Ok(Signal::Term | Signal::Int) => stop = true,
                Ok(Signal::Hup) => hup = true,
                Ok(Signal::Chld | Signal::Other(_)) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return (stop, hup),
            }
        }
    }

    /// This node's name.
    fn local_name(&self) -> &str {
        report::node_name(&self.node, self.node.local())
    }

    /// Reads path `i` until `WouldBlock` or the per-wakeup cap; true if the cap was hit.
    fn drain_path(&mut self, i: usize, now: Instant, real_ns: u64, buf: &mut [u8]) -> bool {
        for _ in 0..FRAMES_PER_WAKEUP_MAX {
            let meta = match self.socks[i].recv(buf) {
                Ok(Rx::Frame(m)) => m,
                Ok(Rx::Own) => continue,
                Ok(Rx::Garbage(n)) => {
                    for _ in 0..n {
                        self.node.count_drop(i, crate::core::DropReason::Garbage);
                    }
                    continue;
                }
                Ok(Rx::Overlong) => {
                    self.node.count_drop(i, crate::core::DropReason::Overlong);
                    continue;
                }
                Ok(Rx::Note { error, text }) => {
                    let path = &self.node.spec().paths[i].name;
                    if error {
                        self.io[i].rx_errors += 1;
                        if self.io_log.allow(now.as_nanos(), 1_000_000_000).is_some() {
                            ::log::error!("path {path}: {text}");
                        }
                    } else {
                        ::log::info!("path {path}: {text}");
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.io[i].drained_ns = now.as_nanos();
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.io[i].rx_errors += 1;
                    if self.io_log.allow(now.as_nanos(), 1_000_000_000).is_some() {
                        ::log::warn!(
                            "path {}: receive failed: {e}",
                            self.node.spec().paths[i].name
                        );
                    }
                    return false;
                }
            };
            if meta.truncated {
                self.node.count_drop(i, crate::core::DropReason::Overlong);
                continue;
            }
            let mut len = meta.len;
            if self.socks[i].is_ether() && len == MIN_PAYLOAD {
                len = padded_len(&buf[..len], self.keyed).unwrap_or(len);
            }
            let arrival = arrival_time(
                now.as_nanos(),
                real_ns,
                meta.rx_realtime_ns,
                self.io[i].drained_ns,
            );
            if let Err(reason) = self.node.handle_frame(now, arrival, i, &buf[..len]) {
                let limit = if reason == DropReason::Replay {
                    &mut self.drop_log
                } else {
                    &mut self.drop_warn_log
                };
                if let Some(suppressed) = limit.allow(now.as_nanos(), 1_000_000_000) {
                    self.log_drop(i, reason, buf.get(6).copied(), suppressed);
                }
            }
        }
        true
    }

    /// Hands a child's outcome to the core.
    fn report(&mut self, now: Instant, r: Report) {
        match r {
            Report::Done(req, ok, fatal) => {
                // A fatal start: the core asks `offline` before the failure it reports
                // next goes out (else a coordinator may place the group on the next node).
                if fatal {
                    self.node
                        .fatal_group(now, usize::from(req.group), req.resource);
                }
                if self.node.resource_done(now, req, ok).is_err() {
                    ::log::error!("core refused the completion of {req:?}");
                }
            }
            Report::GroupFailed(g) => self.node.fail_group(now, usize::from(g)),
            Report::GroupFatal(g, r) => self.node.fatal_group(now, usize::from(g), r),
        }
    }

    fn execute(&mut self, registry: &mio::Registry, now: Instant, buf: &mut [u8]) {
        while let Some(action) = self.node.poll_action(now, buf) {
            match action {
                Action::Transmit { path, dest, len } => {
                    let i = usize::from(path);
                    let to = match dest {
                        Dest::All => None,
                        Dest::Node(id) => self.node.spec().node_index(id),
                    };
                    if let Err(e) = self.socks[i].send(to, &buf[..len]) {
                        self.io[i].tx_errors += 1;
                        if self.io_log.allow(now.as_nanos(), 1_000_000_000).is_some() {
                            ::log::warn!(
                                "path {}: send failed: {e}",
                                self.node.spec().paths[i].name
                            );
                        }
                    }
                }
                Action::Promise { number, members } => {
                    if let Err(e) = self.promise.keep(number, members) {
                        // The frames that follow go out all the same: this node's peers
                        // need its word now; a restart before the next write would lose it.
                        ::log::error!(
                            "promise file {}: {e} (a daemon restarted here would not know \
                             it agreed to view {number})",
                            self.promise.path().display()
                        );
                    }
                }
                Action::Fence { group } => self.resources.fence(group),
                Action::Halt(why) => {
                    match why {
                        Halt::ReleaseBound { group } => ::log::error!(
                            "group {}: its release did not end within its bound after this \
                             node lost authority, or failed: halting now (another node may \
                             take it over)",
                            self.node.spec().groups[usize::from(group)].name
                        ),
                        Halt::QuorumLoss => {
                            ::log::error!("quorum lost: halting now (on_quorum_loss = halt)");
                        }
                    }
                    ::log::logger().flush();
                    if let Some(s) = &self.sentinel {
                        // The sentinel stops kicking the watchdog: a halt that hangs ends
                        // in a reset.
                        s.words()
                            .halting
                            .store(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    self.fencing.halt();
                }
                Action::Announce { group } => self.resources.reannounce(now, usize::from(group)),
                Action::TieBreaker(step) => {
                    if let Some(o) = self.fencing.step(registry, now, step) {
                        self.tie_outcome(now, o);
                    }
                }
                Action::Resource(req) => match self.resources.execute(registry, now, req) {
                    Outcome::Done(ok) => self.report(now, Report::Done(req, ok, false)),
                    Outcome::Started => {}
                },
                Action::Event { at, event } => {
                    if matches!(
                        event,
                        crate::core::Event::OfferReceived { .. }
                            | crate::core::Event::OfferCommit { .. }
                            | crate::core::Event::OfferDropped { .. }
                            | crate::core::Event::OfferSettled { .. }
                    ) {
                        self.offer_event(registry, now, event);
                    }
                    if event == crate::core::Event::QuorumLost
                        && self.node.quorum_loss_waits_for_race()
                    {
                        ::log::warn!(
                            "quorum rests on the tie-breaker: racing for it before on_quorum_loss applies"
                        );
                    }
                    // The marker follows the mode and, in maintenance, every group that
                    // changes phase here (a node cut off still releases).
                    if matches!(event, crate::core::Event::Maintenance { .. })
                        || matches!(event, crate::core::Event::Group { .. })
                            && self.node.maintenance()
                    {
                        self.persist_maintenance();
                    }
                    if let crate::core::Event::Command { op, groups, .. } = event {
                        // The operator acted on these groups (the core cleared its marks):
                        // their applications get a fresh restart budget here too.
                        if op.resets() {
                            self.resources.clear_failures(groups);
                        }
                    }
                    let line = report::event_line(&self.node, &self.groups, at, &event);
                    if let crate::core::Event::Group {
                        group,
                        phase: crate::core::Phase::Offline,
                    } = event
                    {
                        self.group_offline(now, usize::from(group));
                    }
                    if let crate::core::Event::Group { group, phase } = event {
                        let step = match phase {
                            crate::core::Phase::Online => Some(crate::core::ResourceOp::Start),
                            crate::core::Phase::Offline => Some(crate::core::ResourceOp::Stop),
                            _ => None,
                        };
                        if let Some(op) = step {
                            self.resources
                                .post_command(registry, now, usize::from(group), op);
                        }
                    }
                    self.log_event(registry, now, event.name(), event.group(), line);
                }
            }
        }
    }

    fn serve_ctl(&mut self, poll: &Poll, events: &Events, now: Instant) {
        let reg = poll.registry();
        for ev in events.iter() {
            if ev.token() == token::CTL_LISTENER {
                self.ctl.accept(reg);
                continue;
            }
            let Some(slot) = CtlServer::slot(ev.token()) else {
                continue;
            };
            if let Some(req) = self.ctl.read_request(slot, reg) {
                match self.answer(reg, &req, slot, now) {
                    Answer::Now(bytes) => self.ctl.respond(slot, bytes, reg),
                    Answer::Follow(hello) => self.ctl.follow(slot, hello, reg),
                    Answer::Later => {}
                }
            } else if ev.is_writable() {
                self.ctl.write(slot, reg);
            }
        }
    }

    fn answer(&mut self, reg: &mio::Registry, line: &str, slot: usize, now: Instant) -> Answer {
        match crate::ctl::request::Request::parse(line) {
            Err(e) => Answer::Now(commands::error(&e)),
            Ok(crate::ctl::request::Request::Status) => {
                let recent: Vec<String> = self.recent.iter().cloned().collect();
                let mut report = report::status(
                    &self.node,
                    &self.socks,
                    &self.io,
                    self.started,
                    now,
                    &recent,
                    (self.resources.announcements, self.resources.announce_errors),
                );
                report.pid = std::process::id();
                report.sentinel_pid = self
                    .sentinel
                    .as_ref()
                    .map(|_| heartwire_hal::process::parent());
                for (g, st) in report.groups.iter_mut().enumerate() {
                    let failures = self
                        .resources
                        .failures()
                        .get(g)
                        .map_or(&[][..], Vec::as_slice);
                    st.resources =
                        report::resource_status(&self.node, &self.groups[g], g, failures);
                }
                Answer::Now(
                    serde_json::to_vec_pretty(&report).expect("invariant: status serialises"),
                )
            }
            Ok(crate::ctl::request::Request::Events) => Answer::Follow(self.stream_line(None)),
            Ok(crate::ctl::request::Request::Reload) => match self.reload(now) {
                Ok(what) => {
                    ::log::info!("operator: reloaded: {what}");
                    Answer::Now(
                        serde_json::to_vec(
                            &serde_json::json!({ "result": "reloaded", "detail": what }),
                        )
                        .expect("invariant: json serialises"),
                    )
                }
                Err(why) => {
                    ::log::error!("operator: reload refused: {why}");
                    Answer::Now(commands::error(&why))
                }
            },
            Ok(
                req @ (crate::ctl::request::Request::Sync { .. }
                | crate::ctl::request::Request::VerifyCluster { .. }),
            ) => self.offer_request(now, slot, &req),
            Ok(req) => self.command_request(reg, &req, slot, now),
        }
    }

    /// The first (`end: None`) or last line of an event stream.
    fn stream_line(&self, end: Option<&str>) -> Vec<u8> {
        let spec = self.node.spec();
        let hello = crate::ctl::events::StreamHello {
            stream: "events".into(),
            cluster: spec.name.clone(),
            node: report::node_name(&self.node, self.node.local()).to_owned(),
            end: end.map(str::to_owned),
        };
        let mut line = serde_json::to_vec(&hello).expect("invariant: json serialises");
        line.push(b'\n');
        line
    }

    /// Kills every child and removes what is staged (daemon exit).
    fn shutdown(&mut self) {
        self.resources.shutdown();
        self.offer_io.shutdown();
        self.fencing.shutdown();
    }

    /// Tells the core what became of a tie-breaker race (it decides what follows).
    fn tie_outcome(&mut self, now: Instant, (members, won): fencing::TieOutcome) {
        if members != self.node.view().members {
            ::log::info!("tie_breaker race for a view that is gone ended (won: {won}): ignored");
        } else if won {
            ::log::warn!(
                "tie_breaker won: this half of the cluster keeps quorum (view {})",
                self.node.view().number
            );
        } else if !self.node.had_authority() {
            ::log::warn!(
                "tie_breaker lost: the other half keeps quorum (view {}); this node has held \
                 nothing since it started (a node that starts alone is not registered and \
                 cannot win), so on_quorum_loss does not apply: it waits for its peer",
                self.node.view().number
            );
        } else {
            ::log::warn!(
                "tie_breaker lost: the other half keeps quorum (view {})",
                self.node.view().number
            );
        }
        self.node.tie_breaker_result(now, members, won);
    }

    /// Tells systemd the loop is alive, every half watchdog timeout.
    fn kick_watchdog(&mut self, now: Instant) {
        let (Some(n), Some(at)) = (&self.notify, self.watchdog_at) else {
            return;
        };
        if now >= at {
            n.send("WATCHDOG=1");
            self.watchdog_at = n.watchdog.map(|w| now.saturating_add(w));
        }
    }

    fn rearm(&mut self) -> Result<(), DaemonError> {
        let next = [
            self.node.next_deadline(),
            self.resources.next_deadline(self.node.maintenance()),
            self.offer_io.next_deadline(),
            self.watchdog_at,
            self.fencing.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        if next != self.armed {
            self.timer.set(next.map(Instant::as_nanos))?;
            self.armed = next;
        }
        Ok(())
    }
}

/// When a frame arrived, on CLOCK_MONOTONIC: its kernel receive timestamp
/// (CLOCK_REALTIME) converted with a pair of clock readings taken together (`now_ns`,
/// `real_ns`), however old — a frame that waited in the socket through a pause of this
/// daemon is that old, and must not renew a lease as if it had just come. Without a stamp
/// (serial and disk paths), or with one after the reading (a clock step), it is taken to
/// have arrived when the path was last read empty (`drained_ns`): the earliest it can
/// have come, so a frame buffered through a pause never counts as fresh (issue 17 item 2).
fn arrival_time(now_ns: u64, real_ns: u64, rx_real_ns: Option<u64>, drained_ns: u64) -> Instant {
    match rx_real_ns {
        Some(ts) if ts <= real_ns => Instant::from_nanos(now_ns.saturating_sub(real_ns - ts)),
        _ => Instant::from_nanos(drained_ns.min(now_ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A start waits while its address is in use (a predecessor still exiting), and
    /// fails at once on any other error.
    #[test]
    fn a_start_waits_for_an_address_in_use_but_not_for_other_errors() {
        let mut tries = 0;
        let got = after_predecessor(
            "u1",
            || {
                tries += 1;
                if tries < 3 { Err("in use") } else { Ok(tries) }
            },
            |e| *e == "in use",
        );
        assert_eq!(got, Ok(3));
        let mut tries = 0;
        let got: Result<(), &str> = after_predecessor(
            "u1",
            || {
                tries += 1;
                Err("no such device")
            },
            |e| *e == "in use",
        );
        assert_eq!((got, tries), (Err("no such device"), 1));
    }

    #[test]
    fn arrival_time_is_never_later_than_the_frame_can_have_come() {
        assert_eq!(arrival_time(1_000, 5_000, Some(4_900), 990).as_nanos(), 900);
        assert_eq!(
            arrival_time(1_000, 5_000, Some(5_100), 990).as_nanos(),
            990,
            "stamp after the reading: when the path was last read empty"
        );
        assert_eq!(
            arrival_time(
                3_000_000_000,
                5_000_000_000,
                Some(2_000_000_000),
                2_999_000_000
            )
            .as_nanos(),
            0,
            "3 s old after a pause: that old, not now"
        );
        assert_eq!(
            arrival_time(3_000_000_000, 5_000_000_000, None, 1_000_000_000).as_nanos(),
            1_000_000_000,
            "no stamp, read after a 2 s pause: from before the pause"
        );
    }
}
