//! TOML configuration → validated [`Config`].
//!
//! Contract: a config either loads completely valid or yields one [`ConfigError`] that names
//! the file, line, column and key at fault; nothing is changed on the host by loading. The
//! canonical hash ([`ClusterSpec::config_hash`]) is identical on every node that loads the
//! same file, whichever node it is loaded for. Called by `main` (run, verify) and tests.
//!
//! The schema (see README for a full example):
//!
//! ```toml
//! [cluster]
//! name = "demo"          # required
//! id = 7                 # 1..=65535, carried in every frame
//! key_file = "key"       # optional; relative to this file; >= 16 bytes; mode 0600
//! pause_threshold = "2ms"  # optional; default: half the shortest path timeout
//! control_socket = "/run/heartwire/heartwire.sock"  # optional
//! control_socket_group = "heartwire"  # optional: members may use status and events
//! two_node = false       # optional: a lone survivor of two nodes keeps quorum
//! on_quorum_loss = "freeze"  # optional: freeze | stop (groups are released in any case)
//!
//! [realtime]             # optional: mlockall + SCHED_FIFO (+ CPU pinning)
//! priority = 50
//! cpu = 1
//! cpu_dma_latency_us = 0 # hold a PM QoS request: idle CPUs poll instead of halting
//!
//! [[node]]
//! name = "a"
//! id = 1                 # 1..=64
//!
//! [[path]]
//! name = "net1"
//! kind = "ether"         # ether | udp
//! interval = "1ms"
//! timeout = "5ms"
//! interfaces = { a = "eth1", b = "eth1" }   # ether: one per node
//! # ethertype = 0x88B5
//!
//! [[path]]
//! name = "net2"
//! kind = "udp"
//! port = 5405
//! addresses = { a = "10.2.0.1", b = "10.2.0.2" }   # udp: one per node
//! ```
//!
//! Resource groups: see [`groups`].

mod error;
mod events;
mod groups;
mod install;
mod locate;
mod paths;
mod raw;
mod storage;
mod tree;

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;
use sha2::{Digest, Sha256};

pub use self::error::ConfigError;
pub use self::events::{EVENT_TIMEOUT_DEFAULT, EventConfig, EventOn};
pub use self::groups::{
    Agent, AgentClass, AppResource, GroupConfig, INIT_D, IpResource, OCF_ROOT, QuorumLoss,
    Resource, ResourceKind, Verdict,
};
pub use self::install::install_atomically;
pub use self::locate::{Locations, locate};
pub use self::paths::{
    BAUD_DEFAULT, BAUD_RANGE, DISK_INTERVAL_DEFAULT, DISK_TIMEOUT_DEFAULT,
    NETWORK_INTERVAL_DEFAULT, NETWORK_TIMEOUT_DEFAULT, serial_interval_min,
};
use self::raw::RawConfig;
pub use self::storage::{FsResource, ReservationResource, SentinelConfig, WatchdogConfig};
use crate::core::spec::{ClusterSpec, GroupSpec, NodeId, NodeSpec, PathSpec};
use crate::wire::auth::KEY_LEN_MIN;
use crate::wire::{MAX_NODES, MAX_PATHS};

/// Where the control socket lives unless the config or `--socket` says otherwise.
pub const CONTROL_SOCKET_DEFAULT: &str = "/run/heartwire/heartwire.sock";

/// The longest duration any key takes (`failure_timeout` may be days; nothing longer
/// makes sense, and sums of such durations and the clock stay far from overflow).
pub const DURATION_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Shortest heartbeat interval accepted.
pub const INTERVAL_MIN: Duration = Duration::from_micros(10);

/// Longest heartbeat interval accepted.
pub const INTERVAL_MAX: Duration = Duration::from_secs(60);

/// Longest path timeout accepted (the lease is the longest path timeout).
pub const TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// How this node reaches one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathIo {
    /// Raw Ethernet on an interface.
    Ether {
        /// Local interface.
        interface: String,
        /// EtherType of heartwire frames.
        ethertype: u16,
    },
    /// UDP on a local address.
    Udp {
        /// Local address to bind.
        bind: SocketAddr,
        /// Every other node's address, indexed like `spec.nodes` (`None` for this node).
        peers: Vec<Option<SocketAddr>>,
    },
    /// A serial line.
    Serial {
        /// Local device (a tty).
        device: String,
        /// Line speed.
        baud: u32,
    },
    /// A shared disk.
    Disk {
        /// Local device (block device or file).
        device: String,
        /// Slots of the layout (see [`crate::wire::disk`]).
        slots: u16,
    },
    /// This node is not on the path (a serial line between two others).
    Absent,
}

/// Real-time scheduling settings (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realtime {
    /// SCHED_FIFO priority, 1..=99.
    pub priority: u8,
    /// mlockall.
    pub lock_memory: bool,
    /// CPU to pin the daemon to (the sentinel takes the next one). What they start keeps
    /// the CPUs the process had before the pin (`hal::sched::set_affinity`).
    pub cpu: Option<u16>,
    /// Hold a PM QoS CPU wake-up latency request of this many µs (0: idle CPUs poll).
    pub cpu_dma_latency_us: Option<u32>,
}

/// A validated configuration, resolved for one node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// What the core runs on.
    pub spec: ClusterSpec,
    /// This node.
    pub local: NodeId,
    /// Why this node was chosen (`--node a`, `this host's name is a`, …).
    pub chosen: String,
    /// The cluster key's bytes, when configured.
    pub key: Option<Vec<u8>>,
    /// Per path (same index as `spec.paths`), how this node reaches it.
    pub io: Vec<PathIo>,
    /// Real-time mode.
    pub realtime: Option<Realtime>,
    /// Control socket path.
    pub control_socket: PathBuf,
    /// A group whose members may read status and follow events (socket mode 0660);
    /// `None`: root and the daemon's user only (0600). `run --socket-group` overrides it.
    pub control_socket_group: Option<String>,
    /// Resource groups as this node runs them (same index as `spec.groups`).
    pub groups: Vec<GroupConfig>,
    /// Commands run on events (`[[event]]`).
    pub events: Vec<EventConfig>,
    /// What this node does when it loses quorum, besides releasing its groups.
    pub on_quorum_loss: QuorumLoss,
    /// This node's tie-breaker disk (`[tie_breaker]`).
    pub tie_breaker: Option<String>,
    /// The hardware watchdog (`[watchdog]`).
    pub watchdog: Option<WatchdogConfig>,
    /// The sentinel (`[sentinel]`).
    pub sentinel: SentinelConfig,
    /// Per network (index of `spec.networks`), this node's interfaces on it: those of its
    /// ether paths and of its service addresses (standbys included). The network is lost
    /// here when every one of them is without carrier.
    pub adapters: Vec<Vec<String>>,
}

/// Loads `file` for node `node` (by name; `None`: this host's name).
pub fn load(file: &Path, node: Option<&str>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::io(file, &e))?;
    parse(file, &text, node)
}

/// The control socket a config file names, whichever node reads it (for the CLI, which
/// may run on a node whose name is not the host name).
pub fn control_socket(file: &Path) -> Result<PathBuf, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::io(file, &e))?;
    let raw: RawConfig = tree::read(&text).map_err(|e| ConfigError::toml(file, &text, &e))?;
    Ok(raw
        .cluster
        .control_socket
        .map_or_else(|| CONTROL_SOCKET_DEFAULT.into(), PathBuf::from))
}

/// `s` as a TOML string (quoted and escaped as the canonical form writes strings).
pub fn toml_string(s: &str) -> String {
    use toml_writer::TomlWrite as _;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = out.value(s);
    out
}

/// The canonical form of a config text: the same settings with comments, layout and key
/// order normalised (schema order; tables sorted), so two files that mean the same compare
/// equal as text. Canonicalising a canonical text returns it unchanged. Only the syntax
/// and the schema are checked here; [`parse`] validates the meaning.
pub fn canonical(file: &Path, text: &str) -> Result<String, ConfigError> {
    let raw: RawConfig = tree::read(text).map_err(|e| ConfigError::toml(file, text, &e))?;
    Ok(tree::write(&raw))
}

/// Parses and validates `text` as if read from `file`, for `node` — and for every other
/// node it names: a file that one node of the cluster would refuse is refused everywhere
/// (the same verdict from `verify`, `run`, `reload` and `sync` on every node).
pub fn parse(file: &Path, text: &str, node: Option<&str>) -> Result<Config, ConfigError> {
    let toml = |text| tree::read::<RawConfig>(text).map_err(|e| ConfigError::toml(file, text, &e));
    let raw = toml(text)?;
    let others: Vec<(u8, String)> = raw
        .nodes
        .iter()
        .map(|n| (*n.id.get_ref(), n.name.get_ref().clone()))
        .collect();
    let validator = Validator { file, text };
    let config = validator.config(raw, node)?;
    let local = config.local.get();
    for (_, other) in others.iter().filter(|(id, _)| *id != local) {
        validator
            .config(toml(text)?, Some(other))
            .map_err(|mut e| {
                e.message = format!("{} (for node `{other}`)", e.message);
                e
            })?;
    }
    Ok(config)
}

/// Validation with access to the file name and text for locating errors.
struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    /// Without a `[watchdog]` every group must be fenced by the self-fence or a
    /// reservation: a node that loses authority cannot otherwise be made to stop writing
    /// a filesystem within a bound a gainer could wait for (DESIGN.md §4 "Self-fence").
    fn fenceable(&self, raw: &RawConfig, specs: &[GroupSpec]) -> Result<(), ConfigError> {
        for (i, (g, spec)) in raw.groups.iter().zip(specs).enumerate() {
            let fs = g
                .resources
                .iter()
                .position(|r| r.kind.get_ref() == "filesystem");
            if let (Some(r), Some(_)) = (fs, spec.release_bound) {
                return Err(self.err(
                    &g.resources[r].kind,
                    &format!("group[{i}].resource[{r}].kind"),
                    format!(
                        "group `{}` has a filesystem but no reservation: a node cut off from \
                         the cluster could go on writing it after another node mounted it; \
                         put a `reservation` on its disk first in the group, or configure a \
                         [watchdog] (then a release that overruns its bound halts the node)",
                        spec.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn err<T>(&self, at: &Spanned<T>, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.text, at.span().start, key, msg.into())
    }

    fn config(&self, raw: RawConfig, node: Option<&str>) -> Result<Config, ConfigError> {
        let nodes = self.nodes(&raw)?;
        let (local, chosen) = self.local(&raw, &nodes, node)?;
        let local_idx = nodes
            .iter()
            .position(|n| n.id == local)
            .expect("invariant: local found");
        // Counted before anything is built from them: a network index must fit a byte.
        if raw.paths.len() > MAX_PATHS {
            return Err(self.err(
                &raw.paths[MAX_PATHS].name,
                "path",
                format!("more than {MAX_PATHS} paths"),
            ));
        }
        let mut paths = Vec::new();
        let mut io = Vec::new();
        let mut networks: Vec<String> = Vec::new();
        for (i, p) in raw.paths.iter().enumerate() {
            let (mut spec, pio, network) = self.path(i, p, &raw, &nodes, local_idx)?;
            if let Some(n) = network {
                let idx = networks.iter().position(|m| *m == n).unwrap_or_else(|| {
                    networks.push(n);
                    networks.len() - 1
                });
                // At most one network per path, and the path count was checked above.
                spec.network = Some(u8::try_from(idx).expect("invariant: <= MAX_PATHS networks"));
            }
            paths.push(spec);
            io.push(pio);
        }
        let at = &raw.cluster.name;
        if paths.is_empty() {
            return Err(self.err(at, "path", "no [[path]] configured: at least one is needed"));
        }
        let key = self.key(&raw)?;
        let pause_threshold = self.pause_threshold(&raw, &paths)?;
        let realtime = self.realtime(&raw)?;
        let watchdog = self.watchdog(&raw)?;
        let sentinel = self.sentinel(&raw, &paths)?;
        let on_quorum_loss = self.quorum_loss(&raw, watchdog.is_some())?;
        let tie_breaker = self.tie_breaker(&raw, &nodes, local_idx)?;
        let scope = groups::Scope {
            nodes: &nodes,
            local: local_idx,
            names: &networks,
            raw_paths: &raw.paths,
            paths: &paths,
        };
        let (mut group_specs, groups) = self.groups(&raw, &scope)?;
        if watchdog.is_none() {
            self.fenceable(&raw, &group_specs)?;
        }
        let adapters = local_adapters(&networks, &paths, &io, &groups);
        let events = self.events(&raw, &mut group_specs)?;
        let config_hash = canonical_hash(&raw, key.is_some());
        let spec = ClusterSpec {
            name: raw.cluster.name.get_ref().clone(),
            cluster_id: *raw.cluster.id.get_ref(),
            nodes,
            paths,
            networks,
            config_hash,
            pause_threshold,
            two_node: raw.cluster.two_node.as_ref().is_some_and(|s| *s.get_ref()),
            groups: group_specs,
            on_quorum_loss,
            tie_breaker: tie_breaker.is_some(),
        };
        spec.assert_valid();
        let control_socket = raw
            .cluster
            .control_socket
            .clone()
            .unwrap_or_else(|| CONTROL_SOCKET_DEFAULT.into());
        let control_socket_group = self.socket_group(&raw)?;
        Ok(Config {
            file: self.file.to_owned(),
            spec,
            local,
            chosen,
            key,
            io,
            realtime,
            control_socket: control_socket.into(),
            control_socket_group,
            groups,
            events,
            on_quorum_loss,
            tie_breaker,
            watchdog,
            sentinel,
            adapters,
        })
    }

    fn socket_group(&self, raw: &RawConfig) -> Result<Option<String>, ConfigError> {
        match &raw.cluster.control_socket_group {
            Some(g) if !valid_name(g.get_ref()) => Err(self.err(
                g,
                "cluster.control_socket_group",
                "must be a group name or number (1-64 characters of [A-Za-z0-9._-])",
            )),
            g => Ok(g.as_ref().map(|g| g.get_ref().clone())),
        }
    }

    fn nodes(&self, raw: &RawConfig) -> Result<Vec<NodeSpec>, ConfigError> {
        if *raw.cluster.id.get_ref() == 0 {
            return Err(self.err(&raw.cluster.id, "cluster.id", "must be 1..=65535"));
        }
        if raw.cluster.name.get_ref().is_empty() {
            return Err(self.err(&raw.cluster.name, "cluster.name", "must not be empty"));
        }
        if raw.nodes.is_empty() {
            return Err(self.err(&raw.cluster.name, "node", "no [[node]] configured"));
        }
        let mut out: Vec<NodeSpec> = Vec::new();
        for (i, n) in raw.nodes.iter().enumerate() {
            if i >= MAX_NODES {
                return Err(self.err(&n.name, "node", format!("more than {MAX_NODES} nodes")));
            }
            let id = NodeId::new(*n.id.get_ref())
                .ok_or_else(|| self.err(&n.id, &format!("node[{i}].id"), "must be 1..=64"))?;
            let name = n.name.get_ref();
            if !valid_name(name) {
                return Err(self.err(
                    &n.name,
                    &format!("node[{i}].name"),
                    "must be 1-64 characters of [A-Za-z0-9._-]",
                ));
            }
            if let Some(j) = out.iter().position(|m| m.id == id) {
                return Err(self.err(
                    &n.id,
                    &format!("node[{i}].id"),
                    format!(
                        "duplicate node id {} (also node[{j}] `{}`)",
                        id.get(),
                        out[j].name
                    ),
                ));
            }
            if let Some(j) = out.iter().position(|m| &m.name == name) {
                return Err(self.err(
                    &n.name,
                    &format!("node[{i}].name"),
                    format!("duplicate node name `{name}` (also node[{j}])"),
                ));
            }
            out.push(NodeSpec {
                id,
                name: name.clone(),
            });
        }
        Ok(out)
    }

    /// This node: `--node` (`node`); else `HEARTWIRE_NODE` from the environment (the
    /// unit and the init script read it from /etc/default/heartwire); else the [[node]]
    /// named like this host; else the one [[node]] whose UDP address is on this host.
    /// Returns it with the reason it was chosen (the daemon logs it).
    fn local(
        &self,
        raw: &RawConfig,
        nodes: &[NodeSpec],
        node: Option<&str>,
    ) -> Result<(NodeId, String), ConfigError> {
        let by_name = |name: &str| nodes.iter().find(|n| n.name == name).map(|n| n.id);
        let known: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        let refuse = |msg: String| {
            self.err(
                &raw.nodes[0].name,
                "node",
                format!("{msg}; configured: {}", known.join(", ")),
            )
        };
        let env = std::env::var("HEARTWIRE_NODE")
            .ok()
            .filter(|v| !v.is_empty());
        if let Some((name, how)) = node
            .map(|n| (n.to_owned(), "--node"))
            .or_else(|| env.map(|n| (n, "HEARTWIRE_NODE")))
        {
            return by_name(&name)
                .map(|id| (id, format!("{how} {name}")))
                .ok_or_else(|| refuse(format!("no [[node]] named `{name}` ({how})")));
        }
        let host = hostname();
        if let Some(id) = by_name(&host) {
            return Ok((id, format!("this host's name is {host}")));
        }
        // By address: the nodes whose UDP address this host has.
        let local: Vec<std::net::IpAddr> = heartwire_hal::inventory::addresses()
            .map(|a| a.into_iter().map(|a| a.addr).collect())
            .unwrap_or_default();
        let mut found: Vec<(&str, String)> = Vec::new();
        for p in &raw.paths {
            let Some(map) = &p.addresses else { continue };
            for (name, addr) in map.get_ref() {
                let ip = addr.get_ref().split('/').next().unwrap_or("").parse().ok();
                let here = ip.is_some_and(|ip: std::net::IpAddr| local.contains(&ip));
                if here && !found.iter().any(|(n, _)| n == name) {
                    found.push((name.as_str(), addr.get_ref().clone()));
                }
            }
        }
        match found.as_slice() {
            [(name, addr)] => by_name(name)
                .map(|id| (id, format!("its UDP address {addr} is on this host")))
                .ok_or_else(|| refuse(format!("no [[node]] named `{name}`"))),
            [] => Err(refuse(format!(
                "which node is this host? Its name `{host}` is no [[node]] and none of the \
                 nodes' UDP addresses is on it: give `--node NAME`, or HEARTWIRE_NODE=NAME \
                 in /etc/default/heartwire"
            ))),
            several => Err(refuse(format!(
                "which node is this host? The UDP addresses of {} are all on it: give \
                 `--node NAME`, or HEARTWIRE_NODE=NAME in /etc/default/heartwire",
                several
                    .iter()
                    .map(|(n, a)| format!("{n} ({a})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// A `{ node = value }` table with exactly one entry per configured node, in node order.
    fn per_node<'v>(
        &self,
        t: &'v Spanned<BTreeMap<String, Spanned<String>>>,
        key: &str,
        nodes: &[NodeSpec],
    ) -> Result<Vec<&'v Spanned<String>>, ConfigError> {
        if let Some(extra) = t
            .get_ref()
            .keys()
            .find(|k| !nodes.iter().any(|n| &n.name == *k))
        {
            return Err(self.err(t, key, format!("`{extra}` is not a configured node")));
        }
        nodes
            .iter()
            .map(|n| {
                t.get_ref()
                    .get(&n.name)
                    .ok_or_else(|| self.err(t, key, format!("no entry for node `{}`", n.name)))
            })
            .collect()
    }

    fn forbid<T>(&self, v: &Option<Spanned<T>>, key: &str, kind: &str) -> Result<(), ConfigError> {
        match v {
            Some(s) => Err(self.err(s, key, format!("not allowed with kind `{kind}`"))),
            None => Ok(()),
        }
    }

    /// A duration, at most [`DURATION_MAX`] whatever the key (each key checks its own,
    /// narrower range too): config durations meet each other and the clock in sums and
    /// products, which must not overflow.
    fn duration(&self, s: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
        let d = humantime::parse_duration(s.get_ref()).map_err(|e| {
            self.err(
                s,
                key,
                format!(
                    "`{}` is not a duration ({e}); write e.g. \"100us\", \"5ms\", \"2s\"",
                    s.get_ref()
                ),
            )
        })?;
        if d > DURATION_MAX {
            return Err(self.err(
                s,
                key,
                format!(
                    "`{}` is out of range: no duration in this file may exceed 30 days",
                    s.get_ref()
                ),
            ));
        }
        Ok(d)
    }

    fn key(&self, raw: &RawConfig) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(kf) = &raw.cluster.key_file else {
            return Ok(None);
        };
        let path = self
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join(kf.get_ref());
        let k = "cluster.key_file";
        let meta = std::fs::metadata(&path)
            .map_err(|e| self.err(kf, k, format!("{}: {e}", path.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(self.err(
                kf,
                k,
                format!(
                    "{} is readable by group or others (mode {:o}); chmod 600 it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                ),
            ));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| self.err(kf, k, format!("{}: {e}", path.display())))?;
        if bytes.len() < KEY_LEN_MIN {
            return Err(self.err(
                kf,
                k,
                format!(
                    "{} holds {} bytes; a key needs at least {KEY_LEN_MIN}",
                    path.display(),
                    bytes.len()
                ),
            ));
        }
        Ok(Some(bytes))
    }

    fn pause_threshold(
        &self,
        raw: &RawConfig,
        paths: &[PathSpec],
    ) -> Result<Duration, ConfigError> {
        let shortest = paths
            .iter()
            .map(|p| p.timeout)
            .min()
            .expect("invariant: paths not empty");
        match &raw.cluster.pause_threshold {
            None => Ok(shortest / 2),
            Some(s) => {
                let d = self.duration(s, "cluster.pause_threshold")?;
                if d.is_zero() || d >= shortest {
                    return Err(self.err(
                        s,
                        "cluster.pause_threshold",
                        format!(
                            "must be above zero and below the shortest path timeout ({shortest:?})"
                        ),
                    ));
                }
                Ok(d)
            }
        }
    }

    fn realtime(&self, raw: &RawConfig) -> Result<Option<Realtime>, ConfigError> {
        let Some(rt) = &raw.realtime else {
            return Ok(None);
        };
        if !(1..=99).contains(rt.priority.get_ref()) {
            return Err(self.err(&rt.priority, "realtime.priority", "must be 1..=99"));
        }
        if let Some(l) = &rt.cpu_dma_latency_us {
            if *l.get_ref() > 2_000_000_000 {
                return Err(self.err(
                    l,
                    "realtime.cpu_dma_latency_us",
                    "must be at most 2000000000",
                ));
            }
        }
        let cpu_dma_latency_us = rt.cpu_dma_latency_us.as_ref().map(|l| *l.get_ref());
        Ok(Some(Realtime {
            priority: *rt.priority.get_ref(),
            lock_memory: rt.lock_memory.unwrap_or(true),
            cpu: rt.cpu,
            cpu_dma_latency_us,
        }))
    }
}

/// This node's interfaces on each network (see [`Config::adapters`]).
fn local_adapters(
    networks: &[String],
    paths: &[PathSpec],
    io: &[PathIo],
    groups: &[GroupConfig],
) -> Vec<Vec<String>> {
    let mut out = vec![Vec::<String>::new(); networks.len()];
    let mut add = |n: Option<u8>, ifname: &str| {
        if let Some(list) = n.and_then(|n| out.get_mut(usize::from(n))) {
            if !list.iter().any(|i| i == ifname) {
                list.push(ifname.to_owned());
            }
        }
    };
    for (p, pio) in paths.iter().zip(io) {
        if let PathIo::Ether { interface, .. } = pio {
            add(p.network, interface);
        }
    }
    for r in groups.iter().flat_map(|g| &g.resources) {
        if let ResourceKind::Ip(ip) = &r.kind {
            for i in ip.interface.iter().chain(&ip.standby) {
                add(ip.network, i);
            }
        }
    }
    out
}

/// An interface name the kernel could have: 1-15 bytes, no '/', blank or ':'.
fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && !s.contains(['/', ' ', ':'])
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// This host's name, as `uname -n` gives it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The first 8 bytes of SHA-256 over a canonical rendering of everything that must match
/// across the cluster (not the key itself, only whether there is one).
fn canonical_hash(raw: &RawConfig, keyed: bool) -> u64 {
    let mut h = Sha256::new();
    let c = &raw.cluster;
    h.update(format!(
        "cluster name={:?} id={} keyed={keyed} pause={:?} two_node={:?} quorum_loss={:?}\n",
        c.name.get_ref(),
        c.id.get_ref(),
        c.pause_threshold.as_ref().map(|s| s.get_ref()),
        c.two_node.as_ref().map(|s| s.get_ref()),
        c.on_quorum_loss.as_ref().map(|s| s.get_ref())
    ));
    for n in &raw.nodes {
        h.update(format!(
            "node id={} name={:?}\n",
            n.id.get_ref(),
            n.name.get_ref()
        ));
    }
    for p in &raw.paths {
        let map = |m: &Option<Spanned<BTreeMap<String, Spanned<String>>>>| {
            m.as_ref().map(|m| {
                m.get_ref()
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.get_ref()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
        };
        h.update(format!(
            "path name={:?} kind={:?} interval={:?} timeout={:?} ethertype={:?} port={:?} if={:?} addr={:?} network={:?} devices={:?} baud={:?}\n",
            p.name.get_ref(), p.kind.get_ref(), p.interval.as_ref().map(|s| s.get_ref()),
            p.timeout.as_ref().map(|s| s.get_ref()),
            p.ethertype.as_ref().map(|s| *s.get_ref()), p.port.as_ref().map(|s| *s.get_ref()),
            map(&p.interfaces), map(&p.addresses), p.network.as_ref().map(|s| s.get_ref()),
            map(&p.devices), p.baud.as_ref().map(|s| *s.get_ref())
        ));
    }
    h.update(groups::canonical(raw));
    // Storage sections only when present, so older configs keep their hash.
    if let Some(t) = &raw.tie_breaker {
        h.update(format!("tie_breaker {}\n", tree::write(t)));
    }
    if let Some(w) = &raw.watchdog {
        h.update(format!("watchdog {}\n", tree::write(w)));
    }
    let digest = h.finalize();
    u64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("invariant: sha256 is 32 bytes"),
    )
}

#[cfg(test)]
pub(crate) mod tests;
