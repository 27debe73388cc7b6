//! Carrying out the core's resource requests (DESIGN §6).
//!
//! `ip` resources complete in the same loop turn: the address is added over rtnetlink and
//! the first announcement (gratuitous ARP request + reply, or an unsolicited NA) leaves
//! before the turn ends; the remaining rounds follow on the daemon's timer. Every socket
//! an announcement needs is opened at startup, so a takeover opens nothing.
//! `application` resources run as children (see `children`) and complete later; once
//! started, the monitor command runs every `monitor_interval`; a failed monitor (any
//! exit but 0, OCF_SUCCESS; 7 is OCF_NOT_RUNNING) triggers a local restart (stop, then
//! start) up to `restarts` times, then the group is reported failed here and falls over.
//! An application without a `monitor` is watched through what its start left behind: the
//! start runs in its own process group, and a server it backgrounded (`server &`) stays in
//! that group; if the group has a member when the start exits, the group emptying later
//! counts as a failed monitor (exit 7, not running). A start that leaves nothing in its
//! group (a daemon that called setsid) cannot be watched this way: that is logged, and a
//! `monitor` is the remedy.
//! Commands get `HW_CLUSTER`, `HW_NODE`, `HW_GROUP`, `HW_RESOURCE` and `HW_ACTION`.
//!
//! Crash hygiene: [`Resources::remove_stale`] deletes every configured service address
//! from this node's interfaces before the node joins — a daemon killed with `kill -9`
//! leaves its addresses behind (DESIGN §6).

use std::ffi::OsString;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use heartwire_hal::HalError;
use heartwire_hal::netlink::Rtnl;
use heartwire_hal::packet::{PacketSocket, if_index};

use super::cgroups::NodeCgroups;
use super::children::{Children, Exit, Finished, Job, Run};
use super::token;
use crate::config::{
    AgentClass, AppResource, EventConfig, EventOn, GroupConfig, IpResource, ResourceKind, Verdict,
};
use crate::core::groups::HOOK;
use crate::core::{Instant, ResourceOp, ResourceRequest};
use crate::storage::reservation;
use crate::wire::announce::{
    ALL_NODES_MAC, ARP_LEN, ArpOp, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV6, NA_LEN,
    gratuitous_arp, unsolicited_na,
};

/// The `[[event]] on` of an acquisition (`Start`) or a release (`Stop`).
fn step_on(op: ResourceOp) -> EventOn {
    match op {
        ResourceOp::Start => EventOn::Acquire,
        ResourceOp::Stop => EventOn::Release,
    }
}

fn step_name(op: ResourceOp) -> &'static str {
    match op {
        ResourceOp::Start => "acquire",
        ResourceOp::Stop => "release",
    }
}

/// Announcement senders for one interface.
#[derive(Debug)]
struct Announcer {
    ifname: String,
    ifindex: i32,
    mac: [u8; 6],
    arp: PacketSocket,
    ipv6: PacketSocket,
}

impl Announcer {
    /// Opens an announcer for `ifname` unless `list` has one; true when it was added.
    fn ensure(list: &mut Vec<Announcer>, ifname: &str) -> Result<bool, HalError> {
        if list.iter().any(|a| a.ifname == ifname) {
            return Ok(false);
        }
        let arp = PacketSocket::open_sender(ifname, ETHERTYPE_ARP)?;
        let ipv6 = PacketSocket::open_sender(ifname, ETHERTYPE_IPV6)?;
        list.push(Announcer {
            ifname: ifname.to_owned(),
            ifindex: if_index(ifname)?,
            mac: arp.hw_addr()?,
            arp,
            ipv6,
        });
        Ok(true)
    }
}

/// Announcement rounds still to send for one address.
#[derive(Debug, Clone, Copy)]
struct Pending {
    group: u8,
    resource: u8,
    next_at: Instant,
    left: u32,
}

/// What a child runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A start or stop the core asked for.
    Op(ResourceRequest),
    /// A monitor run.
    Monitor(u8, u8),
    /// One step of a local restart after a failed monitor.
    Restart(u8, u8, ResourceOp),
    /// An event command nobody waits for (`post`, `notify`).
    Event,
}

/// What the loop must tell the core after a child exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// A request finished: whether it succeeded, and whether its failure was fatal (an
    /// agent's "not configured": the group cannot run anywhere with this config).
    Done(ResourceRequest, bool, bool),
    /// The group failed here (monitor failures beyond the restarts).
    GroupFailed(u8),
    /// Resource (group, resource) failed fatally here while it ran (see `Done`).
    GroupFatal(u8, u8),
}

/// An application resource's local state.
#[derive(Debug, Clone, Copy, Default)]
struct AppState {
    /// Started and not being stopped: monitor results count.
    active: bool,
    monitor_at: Option<Instant>,
    restarts_used: u32,
    /// What its start left running, watched: see [`Watched`].
    watch: Option<Watched>,
    /// The process group its start ran in (what a fence kills), until a stop succeeds.
    pgid: Option<i32>,
    /// When its monitor last failed.
    failed_at: Option<Instant>,
}

/// What [`Resources::kill_stale_processes`] did.
#[derive(Debug)]
pub(crate) enum Stale {
    /// Killed these members of the node's cgroup (more may follow: what they forked).
    InCgroup(Vec<i32>),
    /// Killed these processes (found in /proc), as `pid (comm)`.
    Killed(Vec<(i32, String)>),
}

impl Stale {
    /// The pids killed so far.
    pub(crate) fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        let (a, b) = match self {
            Stale::InCgroup(p) => (p.as_slice(), &[][..]),
            Stale::Killed(k) => (&[][..], k.as_slice()),
        };
        a.iter().copied().chain(b.iter().map(|(p, _)| *p))
    }
}

/// How an application's end is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    /// Its cgroup emptied (an event): a failed monitor without a `monitor` command, a
    /// monitor run now with one.
    Cgroup,
    /// Without cgroups and without a `monitor`: the process group its start ran in,
    /// checked every `monitor_interval`.
    Group(i32),
}

/// One resource's failures here (start, stop or monitor), for `status`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failures {
    /// How many since the last `cleanup` (or within the group's `failure_timeout`).
    pub(crate) count: u32,
    /// The last one: CLOCK_MONOTONIC, wall-clock ns, what failed.
    pub(crate) last: Option<(Instant, u64, String)>,
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done now.
    Done(bool),
    /// Running in a child; the outcome comes later.
    Started,
}

/// This node's resources. Its configs are held as `Arc`, not `Rc`: the sentinel's fence
/// (which holds a `Resources`) runs on the thread that hears the death knell
/// (`sentinel::Heard::fence`), so a `Resources` must be `Send`.
#[derive(Debug)]
pub(crate) struct Resources {
    groups: Arc<[GroupConfig]>,
    rtnl: Rtnl,
    announcers: Vec<Announcer>,
    pending: Vec<Pending>,
    /// Announcements that failed to send (counted, logged rate-limited by the caller).
    pub(crate) announce_errors: u64,
    /// Announcement frames sent.
    pub(crate) announcements: u64,
    children: Children<Purpose>,
    apps: Vec<Vec<AppState>>,
    events: Arc<[EventConfig]>,
    /// Per group: a resource was started since it was last offline (a release that ends
    /// an acquisition which failed before any start runs no `post` command).
    touched: Vec<bool>,
    env: [(&'static str, String); 2],
    /// Cluster id and this node's id (a reservation key is made of them).
    ids: (u16, u8),
    /// The other nodes' ids, comma-separated (preempted one by one where a disk's keys
    /// cannot be read).
    peers: String,
    /// Per group and resource, the announcer (interface) a service address is on now:
    /// its `interface`, or its `standby` after an adapter swap.
    placed: Vec<Vec<Option<usize>>>,
    /// Per announcer, whether its interface has carrier (true until rtnetlink says not).
    carrier: Vec<bool>,
    /// Per group and resource, its failures here.
    failures: Vec<Vec<Failures>>,
    /// The node's cgroups (`None`: not available here, see `cgroups`), and per group and
    /// resource whether the loop polls an application's `cgroup.events`.
    cgroups: Option<NodeCgroups>,
    polled: Vec<Vec<bool>>,
}

impl Resources {
    /// Opens rtnetlink and an announcer for every interface an ip resource of this node
    /// names.
    pub(crate) fn open(
        groups: &[GroupConfig],
        events: &[EventConfig],
        cluster: &str,
        node: &str,
        ids: (u16, u8),
        peers: &[u8],
    ) -> Result<Resources, HalError> {
        let rtnl = Rtnl::open()?;
        let mut announcers: Vec<Announcer> = Vec::new();
        let mut ips = 0;
        for ip in ip_resources(groups) {
            ips += 1;
            for ifname in ip.interface.iter().chain(&ip.standby) {
                Announcer::ensure(&mut announcers, ifname)?;
            }
        }
        let carrier = vec![true; announcers.len()];
        let failures = groups
            .iter()
            .map(|g| vec![Failures::default(); g.resources.len()])
            .collect();
        let cgroups = NodeCgroups::open(cluster, node, groups)
            .inspect_err(|e| {
                ::log::warn!(
                    "no cgroups for what this node starts ({e}): applications are watched \
                     through their process groups and at their monitors, and stale \
                     processes are found by their environment"
                );
            })
            .ok();
        Ok(Resources {
            groups: groups.into(),
            rtnl,
            announcers,
            pending: Vec::with_capacity(ips),
            announce_errors: 0,
            announcements: 0,
            children: Children::new(),
            apps: groups
                .iter()
                .map(|g| vec![AppState::default(); g.resources.len()])
                .collect(),
            events: events.into(),
            touched: vec![false; groups.len()],
            placed: groups
                .iter()
                .map(|g| vec![None; g.resources.len()])
                .collect(),
            carrier,
            failures,
            env: [
                ("HW_CLUSTER", cluster.to_owned()),
                ("HW_NODE", node.to_owned()),
            ],
            ids,
            peers: peers
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(","),
            cgroups,
            polled: groups
                .iter()
                .map(|g| vec![false; g.resources.len()])
                .collect(),
        })
    }

    /// Replaces group `g`'s resources (a reload; the group is offline here). Opens an
    /// announcer for any interface the new list names that had none.
    pub(crate) fn set_group(&mut self, g: usize, cfg: GroupConfig) -> Result<(), HalError> {
        for r in &cfg.resources {
            let ResourceKind::Ip(ip) = &r.kind else {
                continue;
            };
            for ifname in ip.interface.iter().chain(&ip.standby) {
                if Announcer::ensure(&mut self.announcers, ifname)? {
                    self.carrier.push(true);
                }
            }
        }
        let gi = u8::try_from(g).expect("invariant: <= 64 groups");
        self.pending.retain(|p| p.group != gi);
        self.apps[g] = vec![AppState::default(); cfg.resources.len()];
        self.failures[g] = vec![Failures::default(); cfg.resources.len()];
        self.placed[g] = vec![None; cfg.resources.len()];
        self.touched[g] = false;
        self.polled[g] = vec![false; cfg.resources.len()];
        if let Some(c) = self.cgroups.as_mut() {
            if let Err(e) = c.set_group(g, &cfg) {
                ::log::error!("group {}: {e}", cfg.name);
            }
        }
        let mut groups = self.groups.to_vec();
        groups[g] = cfg;
        self.groups = groups.into();
        Ok(())
    }

    /// Replaces group `g`'s resource configs while it is held here, keeping what runs
    /// (a reload that changes only what running resources take as they are: see
    /// `reload`). A monitor due later than the new interval allows is brought forward.
    pub(crate) fn update_in_place(
        &mut self,
        now: Instant,
        g: usize,
        cfg: GroupConfig,
    ) -> Result<(), String> {
        if self.groups[g].resources.len() != cfg.resources.len() {
            return Err("its resource list changed".into());
        }
        for (st, r) in self.apps[g].iter_mut().zip(&cfg.resources) {
            if let (ResourceKind::Application(app), Some(at)) = (&r.kind, st.monitor_at) {
                st.monitor_at = Some(at.min(now.saturating_add(app.monitor_interval)));
            }
        }
        let mut groups = self.groups.to_vec();
        groups[g] = cfg;
        self.groups = groups.into();
        Ok(())
    }

    /// Groups `bits` are online here as a daemon that stopped in maintenance left them:
    /// their applications count as started (monitored again once maintenance ends; one
    /// without a `monitor` has no process group to watch now) and their release runs the
    /// `post` commands.
    pub(crate) fn resume(&mut self, now: Instant, bits: u64) {
        for g in (0..self.groups.len()).filter(|g| bits & (1 << g) != 0) {
            self.touched[g] = true;
            for (r, res) in self.groups[g].resources.iter().enumerate() {
                if let ResourceKind::Application(app) = &res.kind {
                    self.apps[g][r] = AppState {
                        active: true,
                        monitor_at: app
                            .monitor
                            .is_some()
                            .then(|| now.saturating_add(app.monitor_interval)),
                        ..AppState::default()
                    };
                }
            }
        }
    }

    /// The operator acted on groups `bits` (`cleanup`, `online`, `move`, `offline`): their
    /// fail counts are cleared and their applications' restart budgets start again.
    pub(crate) fn clear_failures(&mut self, bits: u64) {
        for (g, apps) in self.apps.iter_mut().enumerate() {
            if bits & (1 << g) != 0 {
                for st in apps {
                    st.restarts_used = 0;
                }
                self.failures[g].fill(Failures::default());
            }
        }
    }

    /// Counts a failure of resource (g, r) now: `what` failed (`start: exit 1`). A count
    /// older than the group's `failure_timeout` starts again.
    fn record_failure(&mut self, now: Instant, g: u8, r: u8, what: String) {
        let timeout = self.groups[usize::from(g)].failure_timeout;
        let Some(f) = self
            .failures
            .get_mut(usize::from(g))
            .and_then(|v| v.get_mut(usize::from(r)))
        else {
            return;
        };
        let expired = |(t, _, _): &(Instant, u64, String)| {
            timeout.is_some_and(|d| t.saturating_add(d) <= now)
        };
        if f.last.as_ref().is_some_and(expired) {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = Some((now, heartwire_hal::clock::realtime_ns(), what));
    }

    /// Each group's resources' failures, for `status`.
    pub(crate) fn failures(&self) -> &[Vec<Failures>] {
        &self.failures
    }

    /// Replaces the `[[event]]` commands (a reload).
    pub(crate) fn set_events(&mut self, events: &[EventConfig]) {
        self.events = events.into();
    }

    /// The descriptors of the announcers' packet sockets (for the sentinel to hold).
    pub(crate) fn packet_fds(&self) -> Vec<i32> {
        use std::os::fd::{AsFd, AsRawFd};
        self.announcers
            .iter()
            .flat_map(|a| [a.arp.as_fd().as_raw_fd(), a.ipv6.as_fd().as_raw_fd()])
            .collect()
    }

    /// Removes every configured service address from this node's interfaces; returns the
    /// ones that were present (left by a previous run).
    pub(crate) fn remove_stale(&mut self) -> Vec<String> {
        let groups = Arc::clone(&self.groups);
        self.remove_addresses_of(&groups)
    }

    /// Removes every service address `groups` configure from this node's interfaces;
    /// returns the ones that were present. (The sentinel also passes the groups of the
    /// config file as it is now: a reload may have added addresses.)
    pub(crate) fn remove_addresses_of(&mut self, groups: &[GroupConfig]) -> Vec<String> {
        let mut removed = Vec::new();
        for g in groups {
            for r in &g.resources {
                let ResourceKind::Ip(ip) = &r.kind else {
                    continue;
                };
                for ifname in ip.interface.iter().chain(&ip.standby) {
                    let ifindex = match self.announcers.iter().find(|a| &a.ifname == ifname) {
                        Some(a) => a.ifindex,
                        None => match if_index(ifname) {
                            Ok(i) => i,
                            Err(_) => continue,
                        },
                    };
                    match self.rtnl.del_address(ifindex, ip.address, ip.prefix) {
                        Ok(()) => removed.push(format!(
                            "{}/{} on {ifname} (group {}, resource {})",
                            ip.address, ip.prefix, g.name, r.name
                        )),
                        Err(e) if not_present(&e) => {}
                        Err(e) => ::log::warn!(
                            "could not remove service address {} from {ifname}: {e}",
                            ip.address
                        ),
                    }
                }
            }
        }
        removed
    }

    /// Before joining (and in the sentinel's fence): kills every process a previous
    /// daemon of this node started and left running (kill -9, a crash): its applications
    /// (and whatever they forked), stops, monitors, event commands and storage steps.
    /// With cgroups: one kill of the node's cgroup, which they cannot leave. Without: the
    /// processes whose environment has the `HW_CLUSTER` and `HW_NODE` every child gets
    /// (only this node's daemon sets them; one that cleared its environment escapes, and
    /// a `monitor` finds it). Returns at once: [`Resources::wait_stale_gone`] says what
    /// was killed and waits for it to be gone.
    pub(crate) fn kill_stale_processes(&self) -> Stale {
        if let Some(c) = &self.cgroups {
            match c.kill_all() {
                Ok(killed) => return Stale::InCgroup(killed),
                Err(e) => ::log::error!("killing the node's cgroup: {e}: looking in /proc"),
            }
        }
        Stale::Killed(self.sweep_stale_processes())
    }

    /// Waits up to `limit` for what [`Resources::kill_stale_processes`] killed to be gone:
    /// returns what it killed, as `pid (comm)` (read while they die), and the pids still
    /// there at the end (stuck in the kernel).
    pub(crate) fn wait_stale_gone(
        &self,
        stale: Stale,
        limit: Duration,
    ) -> (Vec<(i32, String)>, Vec<i32>) {
        match (stale, &self.cgroups) {
            (Stale::InCgroup(mut killed), Some(c)) => {
                // Named while they die (a few hundred µs), then killed on until none is
                // left (what they forked meanwhile is named by its pid alone).
                let first = killed.len();
                let mut named: Vec<(i32, String)> = killed.iter().map(|&p| (p, named(p))).collect();
                let left = if c.finish_kill(&mut killed, limit) {
                    Vec::new()
                } else {
                    c.members()
                };
                named.extend(killed[first..].iter().map(|&p| (p, p.to_string())));
                (named, left)
            }
            (Stale::InCgroup(_), None) => (Vec::new(), Vec::new()),
            (Stale::Killed(killed), _) => {
                wait_exits(killed.iter().map(|(pid, _)| *pid), limit);
                let left = killed
                    .iter()
                    .map(|(pid, _)| *pid)
                    .filter(|p| alive(*p))
                    .collect();
                (killed, left)
            }
        }
    }

    /// [`Resources::kill_stale_processes`] without cgroups: the walk of `/proc`.
    fn sweep_stale_processes(&self) -> Vec<(i32, String)> {
        let want = |k: &str, v: &str| {
            let mut e = Vec::with_capacity(k.len() + v.len() + 1);
            e.extend_from_slice(k.as_bytes());
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        };
        let (cluster, node) = (
            want(self.env[0].0, &self.env[0].1),
            want(self.env[1].0, &self.env[1].1),
        );
        let me = std::process::id();
        let mut killed = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return killed;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            let mut vars = environ.split(|b| *b == 0);
            let ours =
                vars.clone().any(|v| v == cluster.as_slice()) && vars.any(|v| v == node.as_slice());
            if !ours {
                continue;
            }
            let Ok(pid) = i32::try_from(pid) else {
                continue;
            };
            let what = named(pid);
            match heartwire_hal::process::signal(pid, heartwire_hal::process::SIGKILL) {
                Ok(()) => killed.push((pid, what)),
                Err(e) => ::log::warn!("could not kill stale process {what}: {e}"),
            }
        }
        killed
    }

    /// Carries out `req`.
    pub(crate) fn execute(
        &mut self,
        registry: &Registry,
        now: Instant,
        req: ResourceRequest,
    ) -> Outcome {
        if req.resource == HOOK {
            return self.pre_command(registry, now, req);
        }
        if let Some(t) = self.touched.get_mut(usize::from(req.group)) {
            *t |= req.op == ResourceOp::Start;
        }
        // A shared handle (no copy of the config) so `self` can be borrowed mutably below:
        // the takeover path allocates nothing.
        let groups = Arc::clone(&self.groups);
        let Some(res) = groups
            .get(usize::from(req.group))
            .and_then(|g| g.resources.get(usize::from(req.resource)))
        else {
            ::log::error!("request for an unknown resource {req:?}");
            return Outcome::Done(false);
        };
        let outcome = match &res.kind {
            ResourceKind::Ip(ip) => Outcome::Done(self.ip(now, req, ip)),
            ResourceKind::Reservation(_) | ResourceKind::Filesystem(_) => {
                match self.storage_step(registry, now, req, &res.kind) {
                    Ok(()) => Outcome::Started,
                    Err(()) => Outcome::Done(false),
                }
            }
            ResourceKind::Application(app) => {
                let (g, r) = (req.group, req.resource);
                if req.op == ResourceOp::Stop {
                    let st = &mut self.apps[usize::from(g)][usize::from(r)];
                    st.active = false;
                    st.monitor_at = None;
                    self.children.kill_where(|p| {
                        matches!(*p, Purpose::Monitor(a, b) | Purpose::Restart(a, b, _) if (a, b) == (g, r))
                    });
                }
                let command = match req.op {
                    ResourceOp::Start => &app.start,
                    ResourceOp::Stop => &app.stop,
                };
                match self.spawn(registry, now, app, command, Purpose::Op(req), req.op.name()) {
                    Ok(()) => Outcome::Started,
                    Err(()) => Outcome::Done(false),
                }
            }
        };
        if outcome == Outcome::Done(false) {
            let what = format!("{}: could not start it", req.op.name());
            self.record_failure(now, req.group, req.resource, what);
        }
        outcome
    }

    /// Starts the child that acquires or releases a reservation or a filesystem:
    /// `heartwire reservation acquire|release …` or `heartwire filesystem mount|unmount …`
    /// (this same binary, through /proc/self/exe), bounded by the resource's timeout.
    fn storage_step(
        &mut self,
        registry: &Registry,
        now: Instant,
        req: ResourceRequest,
        kind: &ResourceKind,
    ) -> Result<(), ()> {
        let group = &self.groups[usize::from(req.group)];
        let resource = &group.resources[usize::from(req.resource)].name;
        let label = format!("{}/{resource} {}", group.name, step_name(req.op));
        let start = req.op == ResourceOp::Start;
        let (cluster, node) = (self.ids.0.to_string(), self.ids.1.to_string());
        let mut argv: Vec<OsString> = vec!["/proc/self/exe".into()];
        let (device, timeout) = match kind {
            ResourceKind::Reservation(rv) => {
                argv.extend(
                    [
                        "reservation",
                        if start { "acquire" } else { "release" },
                        "--cluster",
                        &cluster,
                        "--node",
                        &node,
                        "--type",
                        reservation::type_name(rv.kind),
                    ]
                    .map(OsString::from),
                );
                if start && !self.peers.is_empty() {
                    argv.extend(["--others", &self.peers].map(OsString::from));
                }
                (&rv.device, rv.timeout)
            }
            ResourceKind::Filesystem(fs) if start => {
                argv.extend(
                    [
                        "filesystem",
                        "mount",
                        "--mountpoint",
                        &fs.mountpoint,
                        "--fstype",
                        &fs.fstype,
                        "--options",
                        &fs.options,
                    ]
                    .map(OsString::from),
                );
                if fs.fsck {
                    argv.push("--fsck".into());
                }
                argv.push("--grace-ms".into());
                argv.push(fs.grace().as_millis().to_string().into());
                (&fs.device, fs.timeout)
            }
            ResourceKind::Filesystem(fs) => {
                let grace = fs.grace().as_millis().to_string();
                argv.extend(
                    [
                        "filesystem",
                        "unmount",
                        "--mountpoint",
                        &fs.mountpoint,
                        "--grace-ms",
                        &grace,
                    ]
                    .map(OsString::from),
                );
                (&None, fs.timeout)
            }
            ResourceKind::Ip(_) | ResourceKind::Application(_) => {
                unreachable!("storage steps are for reservations and filesystems")
            }
        };
        if let Some(d) = device {
            argv.extend(["--device", d.as_str()].map(OsString::from));
        } else if start || matches!(kind, ResourceKind::Reservation(_)) {
            ::log::error!("{label}: this node has no device for it");
            return Err(());
        }
        let job = Job {
            run: Run::Exec(&argv),
            env: &[],
            timeout,
            label: label.clone(),
            keep_output: false,
            cgroup: self.cgroups.as_ref().map(NodeCgroups::cmd),
        };
        self.children
            .spawn(registry, now, job, Purpose::Op(req))
            .map_err(|e| ::log::error!("{label}: could not start: {e}"))
    }

    /// Runs one command of application resource (group, resource).
    fn spawn(
        &mut self,
        registry: &Registry,
        now: Instant,
        app: &AppResource,
        command: &str,
        purpose: Purpose,
        action: &str,
    ) -> Result<(), ()> {
        let (g, r) = match purpose {
            Purpose::Op(req) => (req.group, req.resource),
            Purpose::Monitor(g, r) | Purpose::Restart(g, r, _) => (g, r),
            Purpose::Event => unreachable!("event commands are spawned by run_event"),
        };
        let group = &self.groups[usize::from(g)];
        let resource = &group.resources[usize::from(r)].name;
        let label = format!("{}/{resource} {action}", group.name);
        let mut env = vec![
            ("HW_GROUP", group.name.clone()),
            ("HW_RESOURCE", resource.clone()),
            ("HW_ACTION", action.to_owned()),
        ];
        env.extend(app.env.iter().map(|(k, v)| (k.as_str(), v.clone())));
        env.extend(app.interval_env(matches!(purpose, Purpose::Monitor(..))));
        self.run(registry, now, command, app.timeout, purpose, label, &env)
    }

    /// Starts `command` as a child with the node's `HW_*` variables and `env`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        registry: &Registry,
        now: Instant,
        command: &str,
        timeout: Duration,
        purpose: Purpose,
        label: String,
        env: &[(&str, String)],
    ) -> Result<(), ()> {
        let mut all: Vec<(&str, String)> = self.env.to_vec();
        all.extend(env.iter().cloned());
        // An application's start joins the application's cgroup, every other command `cmd`.
        let start_of = match purpose {
            Purpose::Op(req) if req.op == ResourceOp::Start && req.resource != HOOK => {
                Some((req.group, req.resource))
            }
            Purpose::Restart(g, r, ResourceOp::Start) => Some((g, r)),
            _ => None,
        };
        let cgroup = self.cgroups.as_ref().map(|c| {
            start_of
                .and_then(|(g, r)| c.app(g, r))
                .unwrap_or_else(|| c.cmd())
        });
        let job = Job {
            run: Run::Shell(command),
            env: &all,
            timeout,
            label: label.clone(),
            keep_output: false,
            cgroup,
        };
        self.children
            .spawn(registry, now, job, purpose)
            .map_err(|e| ::log::error!("{label}: could not start `{command}`: {e}"))
    }

    /// The `pre` command of an acquisition (`Start`) or release (`Stop`) of a group: its
    /// exit is the request's outcome.
    fn pre_command(&mut self, registry: &Registry, now: Instant, req: ResourceRequest) -> Outcome {
        let events = Arc::clone(&self.events);
        let g = usize::from(req.group);
        let on = step_on(req.op);
        let Some(e) = EventConfig::find(&events, &on, g, true) else {
            ::log::error!("no pre command for {req:?}");
            return Outcome::Done(false);
        };
        let cmd = e
            .pre
            .as_deref()
            .expect("invariant: find returned an entry with pre");
        match self.run_event(
            registry,
            now,
            cmd,
            e.timeout,
            Purpose::Op(req),
            step_name(req.op),
            "pre",
            g,
        ) {
            Ok(()) => Outcome::Started,
            Err(()) => Outcome::Done(false),
        }
    }

    /// A group reached `online` (the end of an acquisition) or `offline` (the end of a
    /// release) here: runs the step's `post` command, if any. Nobody waits for it.
    pub(crate) fn post_command(
        &mut self,
        registry: &Registry,
        now: Instant,
        g: usize,
        op: ResourceOp,
    ) {
        if op == ResourceOp::Stop && !core::mem::take(&mut self.touched[g]) {
            return;
        }
        let events = Arc::clone(&self.events);
        if let Some(e) = EventConfig::find(&events, &step_on(op), g, false) {
            let cmd = e
                .post
                .as_deref()
                .expect("invariant: find returned an entry with post");
            let _ = self.run_event(
                registry,
                now,
                cmd,
                e.timeout,
                Purpose::Event,
                step_name(op),
                "post",
                g,
            );
        }
    }

    /// Runs every `notify` command for a logged event: its name, its group (if it
    /// concerns one) and its log line, whose `key=value` fields become `HW_<KEY>`.
    pub(crate) fn notify(
        &mut self,
        registry: &Registry,
        now: Instant,
        name: &str,
        group: Option<u8>,
        line: &str,
    ) {
        let events = Arc::clone(&self.events);
        let wanted = |e: &&EventConfig| {
            let named = match e.on {
                EventOn::Any => true,
                EventOn::Named(n) => n == name,
                EventOn::Acquire | EventOn::Release => false,
            };
            e.notify.is_some() && named && e.group.is_none_or(|g| Some(g) == group.map(usize::from))
        };
        if !events.iter().any(|e| wanted(&e)) {
            return;
        }
        // `key=value` words of the line; free text such as "(on_quorum_loss = stop)" is
        // not a field.
        let keys: Vec<(String, &str)> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
            .map(|(k, v)| (format!("HW_{}", k.to_ascii_uppercase()), v))
            .collect();
        let mut env: Vec<(&str, String)> = keys
            .iter()
            .map(|(k, v)| (k.as_str(), (*v).to_owned()))
            .collect();
        env.push(("HW_STAGE", "notify".into()));
        env.push(("HW_LINE", line.to_owned()));
        for e in events.iter().filter(wanted) {
            let cmd = e.notify.as_deref().expect("invariant: wanted has notify");
            let label = format!("event {name} notify");
            let _ = self.run(registry, now, cmd, e.timeout, Purpose::Event, label, &env);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_event(
        &mut self,
        registry: &Registry,
        now: Instant,
        cmd: &str,
        timeout: Duration,
        purpose: Purpose,
        event: &str,
        stage: &str,
        g: usize,
    ) -> Result<(), ()> {
        let group = self.groups[g].name.clone();
        let label = format!("{group} {event} {stage}");
        let env = [
            ("HW_EVENT", event.to_owned()),
            ("HW_STAGE", stage.to_owned()),
            ("HW_GROUP", group),
        ];
        self.run(registry, now, cmd, timeout, purpose, label, &env)
    }

    fn app(&self, g: u8, r: u8) -> AppResource {
        match &self.groups[usize::from(g)].resources[usize::from(r)].kind {
            ResourceKind::Application(a) => a.clone(),
            _ => unreachable!("monitors and restarts run only for applications"),
        }
    }

    /// A readiness event of a child's pidfd or pipe.
    pub(crate) fn on_child_event(
        &mut self,
        registry: &Registry,
        now: Instant,
        token: Token,
    ) -> Option<Report> {
        let done = self.children.on_event(registry, token)?;
        self.child_finished(registry, now, done)
    }

    /// A child ended (or was abandoned): what it means for its resource.
    fn child_finished(
        &mut self,
        registry: &Registry,
        now: Instant,
        done: Finished<Purpose>,
    ) -> Option<Report> {
        let (purpose, label, exit) = (done.purpose, done.label, done.exit);
        if !exit.success() {
            ::log::warn!("{label}: {exit}");
        }
        match purpose {
            Purpose::Event => None,
            Purpose::Op(req) if req.resource == HOOK => {
                Some(Report::Done(req, exit.success(), false))
            }
            Purpose::Op(req) => {
                let ok = exit.success();
                let mut fatal = false;
                if !ok {
                    let what = format!("{}: {exit}", req.op.name());
                    self.record_failure(now, req.group, req.resource, what);
                    let res =
                        &self.groups[usize::from(req.group)].resources[usize::from(req.resource)];
                    if let ResourceKind::Application(app) = &res.kind {
                        // A stop's "not configured" is a failed stop (error, fenced):
                        // taking the group offline again would retry that stop forever.
                        fatal = req.op == ResourceOp::Start
                            && verdict(app, req.op.name(), exit) == Verdict::Fatal;
                        if let Some(agent) = &app.agent {
                            ::log::error!(
                                "{}: {} {exit}: {} ({})",
                                self.resource_name(req.group, req.resource),
                                req.op.name(),
                                meaning(agent.class, exit),
                                agent.name
                            );
                        }
                    }
                }
                let is_app = matches!(
                    self.groups[usize::from(req.group)].resources[usize::from(req.resource)].kind,
                    ResourceKind::Application(_)
                );
                if req.op == ResourceOp::Start && ok && is_app {
                    let st = &mut self.apps[usize::from(req.group)][usize::from(req.resource)];
                    *st = AppState {
                        active: true,
                        ..AppState::default()
                    };
                    self.started(registry, now, req.group, req.resource, done.pid);
                }
                if req.op == ResourceOp::Stop && ok && is_app {
                    self.apps[usize::from(req.group)][usize::from(req.resource)].pgid = None;
                }
                Some(Report::Done(req, ok, fatal))
            }
            Purpose::Monitor(g, r) => self.monitored(registry, now, g, r, exit),
            Purpose::Restart(g, r, op) => {
                let report = self.restart_step(registry, now, g, r, op, exit);
                if op == ResourceOp::Start && exit.success() {
                    self.started(registry, now, g, r, done.pid);
                }
                report
            }
        }
    }

    /// Application (g, r) was started by a child that was process group `pgid`: the next
    /// monitor is due, and what the start left running is watched: its cgroup emptying
    /// is an event; without cgroups and without a `monitor` command, its process group is
    /// looked at every `monitor_interval`.
    fn started(&mut self, registry: &Registry, now: Instant, g: u8, r: u8, pgid: i32) {
        let app = self.app(g, r);
        let name = self.resource_name(g, r);
        let st = &mut self.apps[usize::from(g)][usize::from(r)];
        st.watch = None;
        st.pgid = Some(pgid);
        st.monitor_at = Some(now.saturating_add(app.monitor_interval));
        let (gi, ri) = (usize::from(g), usize::from(r));
        if let Some(cg) = self.cgroups.as_ref().and_then(|c| c.app(g, r)) {
            if !self.polled[gi][ri] {
                use std::os::fd::AsRawFd;
                let fd = cg.events_fd().as_raw_fd();
                let token = Token(token::APP_CGROUP_BASE + gi * token::APP_CGROUP_STRIDE + ri);
                match registry.register(&mut SourceFd(&fd), token, Interest::PRIORITY) {
                    Ok(()) => self.polled[gi][ri] = true,
                    Err(e) => ::log::error!("{name}: cannot poll {}: {e}", cg.path().display()),
                }
            }
            match cg.populated() {
                Ok(true) if self.polled[gi][ri] => {
                    let st = &mut self.apps[gi][ri];
                    st.watch = Some(Watched::Cgroup);
                    if app.monitor.is_none() {
                        st.monitor_at = None;
                    }
                    ::log::info!(
                        "{name}: watching what its start left running (cgroup {})",
                        cg.path().display()
                    );
                }
                Ok(_) | Err(_) if app.monitor.is_some() => {}
                Ok(_) | Err(_) => ::log::warn!(
                    "{name}: its start left nothing running and it has no `monitor`: nobody \
                     will notice if what it started dies; configure a monitor command"
                ),
            }
            return;
        }
        if app.monitor.is_some() {
            return;
        }
        match heartwire_hal::process::group_alive(pgid) {
            Ok(true) => {
                st.watch = Some(Watched::Group(pgid));
                ::log::info!(
                    "{name}: no monitor configured: watching what its start left running \
                     (process group {pgid})"
                );
            }
            Ok(false) | Err(_) => {
                st.monitor_at = None;
                ::log::warn!(
                    "{name}: its start left nothing running in its process group (a daemon \
                     that detached with setsid?) and it has no `monitor`: nobody will notice \
                     if it dies; configure a monitor command"
                );
            }
        }
    }

    /// Whether `token` is an application cgroup's.
    pub(crate) fn owns_cgroup(token: Token) -> bool {
        token.0 >= token::APP_CGROUP_BASE
    }

    /// `cgroup.events` of an application changed: if its cgroup emptied while it is
    /// watched, it ended (a failed monitor without a `monitor` command; with one, the
    /// monitor runs now and says).
    pub(crate) fn on_cgroup_event(
        &mut self,
        registry: &Registry,
        now: Instant,
        token: Token,
    ) -> Option<Report> {
        let i = token.0 - token::APP_CGROUP_BASE;
        let (gi, ri) = (i / token::APP_CGROUP_STRIDE, i % token::APP_CGROUP_STRIDE);
        let (g, r) = (u8::try_from(gi).ok()?, u8::try_from(ri).ok()?);
        let cg = self.cgroups.as_ref()?.app(g, r)?;
        // Read it every time: the read re-arms the poll. No allocation before the end is
        // known: every change of the file (each process's start and exit) comes here.
        let populated = cg.populated().unwrap_or(true);
        let st = self.apps.get_mut(gi)?.get_mut(ri)?;
        if populated || !(st.active && st.watch == Some(Watched::Cgroup)) {
            return None;
        }
        st.watch = None;
        let path = self
            .cgroups
            .as_ref()?
            .app(g, r)?
            .path()
            .display()
            .to_string();
        let name = self.resource_name(g, r);
        if self.app(g, r).monitor.is_some() {
            ::log::warn!(
                "{name}: nothing its start left running is alive ({path} is empty): monitoring now"
            );
            self.apps[gi][ri].monitor_at = Some(now);
            return None;
        }
        ::log::warn!("{name}: nothing its start left running is alive ({path} is empty)");
        self.monitored(registry, now, g, r, Exit::Code(7))
    }

    /// `group/resource`, for the log.
    fn resource_name(&self, g: u8, r: u8) -> String {
        let group = &self.groups[usize::from(g)];
        format!("{}/{}", group.name, group.resources[usize::from(r)].name)
    }

    fn monitored(
        &mut self,
        registry: &Registry,
        now: Instant,
        g: u8,
        r: u8,
        exit: Exit,
    ) -> Option<Report> {
        let app = self.app(g, r);
        let failure_timeout = self.groups[usize::from(g)].failure_timeout;
        let st = &mut self.apps[usize::from(g)][usize::from(r)];
        if !st.active {
            return None;
        }
        let verdict = verdict(&app, "monitor", exit);
        if verdict == Verdict::Ok {
            st.monitor_at = Some(now.saturating_add(app.monitor_interval));
            return None;
        }
        self.record_failure(now, g, r, format!("monitor: {exit}"));
        if matches!(verdict, Verdict::Hard | Verdict::Fatal) {
            // An agent's hard or fatal code, or a monitor that could not be started.
            let why = app.agent.as_ref().map_or_else(String::new, |agent| {
                format!(": {} ({})", meaning(agent.class, exit), agent.name)
            });
            ::log::error!(
                "{}: monitor: {exit}{why}: no local restart, the group falls over",
                self.resource_name(g, r),
            );
            self.apps[usize::from(g)][usize::from(r)].active = false;
            return Some(if verdict == Verdict::Fatal {
                Report::GroupFatal(g, r)
            } else {
                Report::GroupFailed(g)
            });
        }
        let st = &mut self.apps[usize::from(g)][usize::from(r)];
        // A failure_timeout after the last failure, the restart budget starts again.
        let expired = |t: Instant| failure_timeout.is_some_and(|d| t.saturating_add(d) <= now);
        if st.failed_at.is_some_and(expired) {
            st.restarts_used = 0;
        }
        st.failed_at = Some(now);
        if st.restarts_used >= app.restarts {
            ::log::warn!(
                "{}/{}: monitor failed ({exit}) after {} local restart(s): the group falls over",
                self.groups[usize::from(g)].name,
                self.groups[usize::from(g)].resources[usize::from(r)].name,
                st.restarts_used
            );
            st.active = false;
            return Some(Report::GroupFailed(g));
        }
        st.restarts_used += 1;
        ::log::warn!(
            "{}/{}: monitor failed ({exit}): local restart {} of {}",
            self.groups[usize::from(g)].name,
            self.groups[usize::from(g)].resources[usize::from(r)].name,
            st.restarts_used,
            app.restarts
        );
        let purpose = Purpose::Restart(g, r, ResourceOp::Stop);
        match self.spawn(registry, now, &app, &app.stop, purpose, "restart-stop") {
            Ok(()) => None,
            Err(()) => Some(Report::GroupFailed(g)),
        }
    }

    fn restart_step(
        &mut self,
        registry: &Registry,
        now: Instant,
        g: u8,
        r: u8,
        op: ResourceOp,
        exit: Exit,
    ) -> Option<Report> {
        let app = self.app(g, r);
        let st = &mut self.apps[usize::from(g)][usize::from(r)];
        if !st.active {
            return None;
        }
        if !exit.success() {
            st.active = false;
            return Some(match (op, verdict(&app, op.name(), exit)) {
                (ResourceOp::Start, Verdict::Fatal) => Report::GroupFatal(g, r),
                _ => Report::GroupFailed(g),
            });
        }
        match op {
            ResourceOp::Stop => {
                let purpose = Purpose::Restart(g, r, ResourceOp::Start);
                match self.spawn(registry, now, &app, &app.start, purpose, "restart-start") {
                    Ok(()) => None,
                    Err(()) => Some(Report::GroupFailed(g)),
                }
            }
            ResourceOp::Start => {
                st.monitor_at = Some(now.saturating_add(app.monitor_interval));
                None
            }
        }
    }

    /// Starts the monitors that are due.
    fn run_monitors(&mut self, registry: &Registry, now: Instant) -> Vec<Report> {
        let mut reports = Vec::new();
        for g in 0..self.apps.len() {
            for r in 0..self.apps[g].len() {
                let st = &mut self.apps[g][r];
                if !(st.active && st.monitor_at.is_some_and(|t| t <= now)) {
                    continue;
                }
                st.monitor_at = None;
                let (g, r) = (
                    u8::try_from(g).expect("invariant: <= 64 groups"),
                    u8::try_from(r).expect("invariant: <= 255 resources"),
                );
                let app = self.app(g, r);
                let Some(cmd) = &app.monitor else {
                    reports.extend(self.watch(registry, now, g, r));
                    continue;
                };
                if self
                    .spawn(registry, now, &app, cmd, Purpose::Monitor(g, r), "monitor")
                    .is_err()
                {
                    reports.push(Report::GroupFailed(g));
                }
            }
        }
        reports
    }

    /// The default liveness check of application (g, r), which has no `monitor`: its
    /// start's process group still has a member. An empty group counts as exit 7 (OCF's
    /// not running).
    fn watch(&mut self, registry: &Registry, now: Instant, g: u8, r: u8) -> Option<Report> {
        let st = &mut self.apps[usize::from(g)][usize::from(r)];
        let Some(Watched::Group(pgid)) = st.watch else {
            // Watched through its cgroup (an event), or not at all.
            st.monitor_at = None;
            return None;
        };
        if heartwire_hal::process::group_alive(pgid).unwrap_or(true) {
            let interval = self.app(g, r).monitor_interval;
            self.apps[usize::from(g)][usize::from(r)].monitor_at =
                Some(now.saturating_add(interval));
            return None;
        }
        st.watch = None;
        ::log::warn!(
            "{}: nothing its start left running is alive (process group {pgid} is empty)",
            self.resource_name(g, r)
        );
        self.monitored(registry, now, g, r, Exit::Code(7))
    }

    /// Fences group `g` at once (the core's `Action::Fence`: this node lost authority):
    /// removes its service addresses, kills its applications' process groups and every
    /// start or monitor of them in flight. Nothing here waits; the release that follows
    /// runs the stop commands to clean up. Filesystems and reservations are left to that
    /// release (a gainer's reservation fences the disk; a filesystem no reservation
    /// guards has a release bound, past which the core halts the node).
    pub(crate) fn fence(&mut self, g: u8) {
        let groups = Arc::clone(&self.groups);
        let Some(group) = groups.get(usize::from(g)) else {
            ::log::error!("fence of an unknown group {g}");
            return;
        };
        let mut done: Vec<String> = Vec::new();
        for (r, res) in group.resources.iter().enumerate() {
            let r8 = u8::try_from(r).expect("invariant: < 255 resources");
            match &res.kind {
                ResourceKind::Ip(ip) => {
                    self.pending.retain(|p| (p.group, p.resource) != (g, r8));
                    let placed = self.placed[usize::from(g)][r].take();
                    let candidates = placed
                        .into_iter()
                        .chain(self.announcer(ip.interface.as_ref()))
                        .chain(self.announcer(ip.standby.as_ref()));
                    for ai in candidates.collect::<Vec<_>>() {
                        let a = &self.announcers[ai];
                        match self.rtnl.del_address(a.ifindex, ip.address, ip.prefix) {
                            Ok(()) => {
                                done.push(format!("removed {} from {}", ip.address, a.ifname))
                            }
                            Err(e) if not_present(&e) => {}
                            Err(e) => ::log::error!(
                                "fence of group {}: removing {} from {}: {e}",
                                group.name,
                                ip.address,
                                a.ifname
                            ),
                        }
                    }
                }
                ResourceKind::Application(_) => {
                    self.children.kill_where(|p| match *p {
                        Purpose::Op(req) => {
                            (req.group, req.resource, req.op) == (g, r8, ResourceOp::Start)
                        }
                        Purpose::Monitor(a, b) | Purpose::Restart(a, b, _) => (a, b) == (g, r8),
                        Purpose::Event => false,
                    });
                    let st = &mut self.apps[usize::from(g)][r];
                    st.active = false;
                    st.monitor_at = None;
                    st.watch = None;
                    let pgid = st.pgid.take();
                    let cgroup = self.cgroups.as_ref().and_then(|c| c.app(g, r8));
                    if let Some(cg) = cgroup.filter(|c| c.populated().unwrap_or(true)) {
                        // Everything it left, however it detached.
                        match cg.kill() {
                            Ok(_) => {
                                done.push(format!("killed {} ({})", res.name, cg.path().display()))
                            }
                            Err(e) => ::log::error!(
                                "fence of group {}: killing {}: {e}",
                                group.name,
                                cg.path().display()
                            ),
                        }
                    } else if let Some(pgid) = pgid.filter(|_| cgroup.is_none()) {
                        match heartwire_hal::process::kill_group(pgid) {
                            Ok(true) => {
                                done.push(format!("killed process group {pgid} of {}", res.name))
                            }
                            Ok(false) => {}
                            Err(e) => ::log::error!(
                                "fence of group {}: killing process group {pgid} of {}: {e}",
                                group.name,
                                res.name
                            ),
                        }
                    }
                }
                ResourceKind::Filesystem(_) | ResourceKind::Reservation(_) => {}
            }
        }
        ::log::warn!(
            "group {}: fenced (this node lost its authority): {}; its stops run next to clean up",
            group.name,
            if done.is_empty() {
                "nothing was left to remove".to_owned()
            } else {
                done.join(", ")
            }
        );
    }

    /// Kills every child (daemon exit).
    pub(crate) fn shutdown(&mut self) {
        self.children.kill_all();
    }

    fn announcer(&self, ifname: Option<&String>) -> Option<usize> {
        ifname.and_then(|i| self.announcers.iter().position(|a| &a.ifname == i))
    }

    fn ip(&mut self, now: Instant, req: ResourceRequest, ip: &IpResource) -> bool {
        let Some(primary) = self.announcer(ip.interface.as_ref()) else {
            ::log::error!("service address {}: no interface on this node", ip.address);
            return false;
        };
        let standby = self.announcer(ip.standby.as_ref());
        let (g, r) = (usize::from(req.group), usize::from(req.resource));
        // Where it goes: the service interface, or the standby when only that has carrier.
        let ai = match (req.op, standby) {
            (ResourceOp::Start, Some(s)) if !self.carrier[primary] && self.carrier[s] => s,
            (ResourceOp::Start, _) => primary,
            (ResourceOp::Stop, _) => self.placed[g][r].unwrap_or(primary),
        };
        let ifindex = self.announcers[ai].ifindex;
        self.pending
            .retain(|p| (p.group, p.resource) != (req.group, req.resource));
        match req.op {
            ResourceOp::Start => {
                match self.rtnl.add_address(ifindex, ip.address, ip.prefix) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        ::log::error!(
                            "adding {}/{} to {}: {e}",
                            ip.address,
                            ip.prefix,
                            self.announcers[ai].ifname
                        );
                        return false;
                    }
                }
                self.announce(ai, ip.address);
                ::log::info!(
                    "ip {}/{} added on {} at={} and announced ({})",
                    ip.address,
                    ip.prefix,
                    self.announcers[ai].ifname,
                    super::log::secs(heartwire_hal::clock::monotonic_ns()),
                    if ip.address.is_ipv4() {
                        "gratuitous ARP request + reply"
                    } else {
                        "unsolicited NA"
                    }
                );
                self.placed[g][r] = Some(ai);
                if ip.announce_count > 1 {
                    self.pending.push(Pending {
                        group: req.group,
                        resource: req.resource,
                        next_at: now.saturating_add(ip.announce_interval),
                        left: ip.announce_count - 1,
                    });
                }
                true
            }
            ResourceOp::Stop => match self.rtnl.del_address(ifindex, ip.address, ip.prefix) {
                Ok(()) => {
                    self.placed[g][r] = None;
                    true
                }
                Err(e) if not_present(&e) => {
                    self.placed[g][r] = None;
                    true
                }
                Err(e) => {
                    ::log::error!(
                        "removing {} from {}: {e}",
                        ip.address,
                        self.announcers[ai].ifname
                    );
                    false
                }
            },
        }
    }

    /// One announcement round for `addr` on announcer `ai`.
    fn announce(&mut self, ai: usize, addr: IpAddr) {
        let a = &self.announcers[ai];
        let mut sent = 0;
        let mut errors = 0;
        match addr {
            IpAddr::V4(v4) => {
                let mut buf = [0u8; ARP_LEN];
                for op in [ArpOp::Request, ArpOp::Reply] {
                    gratuitous_arp(&mut buf, op, a.mac, v4);
                    match a.arp.send_to(BROADCAST, &buf) {
                        Ok(_) => sent += 1,
                        Err(_) => errors += 1,
                    }
                }
            }
            IpAddr::V6(v6) => {
                let mut buf = [0u8; NA_LEN];
                unsolicited_na(&mut buf, a.mac, v6);
                match a.ipv6.send_to(ALL_NODES_MAC, &buf) {
                    Ok(_) => sent += 1,
                    Err(_) => errors += 1,
                }
            }
        }
        self.announcements += sent;
        self.announce_errors += errors;
    }

    /// Time-driven work: announcement rounds, child timeouts, monitors (none while the
    /// cluster is in maintenance: `frozen`).
    pub(crate) fn on_timer(
        &mut self,
        registry: &Registry,
        now: Instant,
        frozen: bool,
    ) -> Vec<Report> {
        self.announce_due(now);
        let mut reports = Vec::new();
        while let Some(done) = self.children.on_timer(now) {
            reports.extend(self.child_finished(registry, now, done));
        }
        if !frozen {
            reports.extend(self.run_monitors(registry, now));
        }
        reports
    }

    /// Announces every address of group `g` again, `announce_count` rounds from now (the
    /// group runs here). After a partition heals, the node that keeps a group may not be
    /// the last one that announced it: a node that took it over meanwhile moved the
    /// neighbours' caches to itself, and releasing does not move them back.
    pub(crate) fn reannounce(&mut self, now: Instant, g: usize) {
        let Some(group) = self.groups.get(g) else {
            return;
        };
        for (r, res) in group.resources.iter().enumerate() {
            let ResourceKind::Ip(ip) = &res.kind else {
                continue;
            };
            if self.placed[g][r].is_none() {
                continue;
            }
            let (group, resource) = (
                u8::try_from(g).expect("invariant: <= 64 groups"),
                u8::try_from(r).expect("invariant: < 255 resources"),
            );
            ::log::info!(
                "{}/{}: announcing {} again (nodes joined; one may have announced it meanwhile)",
                self.groups[g].name,
                res.name,
                ip.address
            );
            self.pending
                .retain(|p| (p.group, p.resource) != (group, resource));
            self.pending.push(Pending {
                group,
                resource,
                next_at: now,
                left: ip.announce_count,
            });
        }
    }

    /// Interface `ifname` gained or lost carrier. On a loss, every service address on it
    /// whose resource has a standby interface with carrier moves there at once (adapter
    /// swap, DESIGN §4): removed, added, announced, with its announcement rounds started
    /// over. Returns what moved (`group/resource:address/prefix->interface`), for the log. An address stays on the standby when the
    /// service interface comes back (as HACMP's swap does; a move or a takeover resets it).
    pub(crate) fn set_carrier(&mut self, now: Instant, ifname: &str, up: bool) -> Vec<String> {
        let mut moved = Vec::new();
        let Some(from) = self.announcers.iter().position(|a| a.ifname == ifname) else {
            return moved;
        };
        self.carrier[from] = up;
        if up {
            return moved;
        }
        for g in 0..self.groups.len() {
            for r in 0..self.groups[g].resources.len() {
                let ResourceKind::Ip(ip) = &self.groups[g].resources[r].kind else {
                    continue;
                };
                let Some(to) = self.announcer(ip.standby.as_ref()) else {
                    continue;
                };
                if self.placed[g][r] != Some(from) || !self.carrier[to] {
                    continue;
                }
                let (addr, prefix) = (ip.address, ip.prefix);
                let (count, interval) = (ip.announce_count, ip.announce_interval);
                let (to_index, from_index) =
                    (self.announcers[to].ifindex, self.announcers[from].ifindex);
                if let Err(e) = self.rtnl.add_address(to_index, addr, prefix) {
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        ::log::error!(
                            "adapter swap: adding {addr}/{prefix} to {}: {e}",
                            self.announcers[to].ifname
                        );
                        continue;
                    }
                }
                self.announce(to, addr);
                if let Err(e) = self.rtnl.del_address(from_index, addr, prefix) {
                    if !not_present(&e) {
                        ::log::warn!("adapter swap: removing {addr} from {ifname}: {e}");
                    }
                }
                self.placed[g][r] = Some(to);
                let (group, resource) = (
                    u8::try_from(g).expect("invariant: <= 64 groups"),
                    u8::try_from(r).expect("invariant: < 255 resources"),
                );
                self.pending
                    .retain(|p| (p.group, p.resource) != (group, resource));
                if count > 1 {
                    self.pending.push(Pending {
                        group,
                        resource,
                        next_at: now.saturating_add(interval),
                        left: count - 1,
                    });
                }
                moved.push(format!(
                    "{}/{}:{addr}/{prefix}->{}",
                    self.groups[g].name,
                    self.groups[g].resources[r].name,
                    self.announcers[to].ifname
                ));
            }
        }
        moved
    }

    /// Sends announcement rounds that are due.
    fn announce_due(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = self.pending[i];
            if p.next_at > now {
                i += 1;
                continue;
            }
            let ResourceKind::Ip(ip) =
                &self.groups[usize::from(p.group)].resources[usize::from(p.resource)].kind
            else {
                unreachable!("only ip resources are announced")
            };
            let (addr, interval) = (ip.address, ip.announce_interval);
            let ai = self.placed[usize::from(p.group)][usize::from(p.resource)]
                .expect("invariant: pending only for addresses that are placed");
            self.announce(ai, addr);
            if p.left > 1 {
                self.pending[i].left -= 1;
                self.pending[i].next_at = now.saturating_add(interval);
                i += 1;
            } else {
                self.pending.swap_remove(i);
            }
        }
    }

    /// When time-driven work is next due (monitors wait while `frozen`).
    pub(crate) fn next_deadline(&self, frozen: bool) -> Option<Instant> {
        let monitors = self
            .apps
            .iter()
            .flatten()
            .filter(|s| s.active && !frozen)
            .filter_map(|s| s.monitor_at);
        self.pending
            .iter()
            .map(|p| p.next_at)
            .chain(monitors)
            .chain(self.children.next_deadline())
            .min()
    }
}

fn ip_resources(groups: &[GroupConfig]) -> impl Iterator<Item = &IpResource> {
    groups
        .iter()
        .flat_map(|g| g.resources.iter())
        .filter_map(|r| match &r.kind {
            ResourceKind::Ip(ip) => Some(ip),
            _ => None,
        })
}

/// Whether a delete failed because the address was not there.
fn not_present(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::NotFound
    )
}

/// Waits up to `limit` for the processes `pids` (SIGKILLed) to exit, woken by their
/// pidfds (no polling interval: a killed process is usually gone within 100 µs).
fn wait_exits(pids: impl Iterator<Item = i32>, limit: Duration) {
    use std::os::fd::AsRawFd;
    // A process already gone (or reaped) has no pidfd to wait for.
    let fds: Vec<std::os::fd::OwnedFd> = pids
        .filter_map(|p| heartwire_hal::process::pidfd_open(p).ok())
        .collect();
    if fds.is_empty() {
        return;
    }
    let Ok(mut poll) = mio::Poll::new() else {
        return;
    };
    let mut open = 0usize;
    for (k, fd) in fds.iter().enumerate() {
        if poll
            .registry()
            .register(&mut SourceFd(&fd.as_raw_fd()), Token(k), Interest::READABLE)
            .is_ok()
        {
            open += 1;
        }
    }
    let end = std::time::Instant::now() + limit;
    let mut events = mio::Events::with_capacity(fds.len().max(1));
    let mut done = vec![false; fds.len()];
    while open > 0 {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || poll.poll(&mut events, Some(left)).is_err() {
            return;
        }
        for ev in &events {
            if let Some(d) = done.get_mut(ev.token().0) {
                if !*d {
                    *d = true;
                    open -= 1;
                }
            }
        }
    }
}

/// `pid (comm)`, for the log.
fn named(pid: i32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{pid} ({})", comm.trim_end())
}

/// Whether process `pid` still exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// What `exit` of `action` says: for a resource agent by its class's exit codes, for an
/// application's own command 0 or not.
fn verdict(app: &AppResource, action: &str, exit: Exit) -> Verdict {
    match (exit, &app.agent) {
        (Exit::Code(code), Some(agent)) => agent.class.verdict(action, code),
        // It cannot run here (not executable, a bad interpreter): as an agent's "not
        // installed", and as a failure to start it was before the spawn left the exec to
        // the child: the group falls over, no local restart.
        (Exit::NotStarted(_), _) => Verdict::Hard,
        _ if exit.success() => Verdict::Ok,
        _ => Verdict::Soft,
    }
}

/// The meaning of an agent's exit, for the log.
fn meaning(class: AgentClass, exit: Exit) -> &'static str {
    match exit {
        Exit::Code(code) => class.meaning(code),
        Exit::NotStarted(_) => "it could not be started",
        _ => "it did not exit by itself",
    }
}
