//! `[[group]]` and `[[group.resource]]`: resource groups, their placement policy and their
//! resources, validated into the core's [`GroupSpec`] plus what the daemon needs to run
//! each resource on this node.
//!
//! ```toml
//! [[group]]
//! name = "web"
//! nodes = ["a", "b"]        # priority order; the first is home
//! startup = "home"          # home | first | all (concurrent)
//! fallover = "next"         # next | never
//! fallback = "home"         # home | never
//!
//! [[group.resource]]        # acquired in order, released in reverse
//! name = "vip"
//! kind = "ip"
//! address = "10.0.0.100/24" # prefix optional (default /32, /128)
//! interface = "eth0"        # or interfaces = { a = "eth0", b = "eth1" }
//! announce_count = 3        # gratuitous ARP (request + reply) / unsolicited NA rounds
//! announce_interval = "50ms"
//!
//! [[group.resource]]
//! name = "app"
//! kind = "application"
//! start = "/usr/local/bin/app start"
//! stop = "/usr/local/bin/app stop"
//! monitor = "/usr/local/bin/app status"   # optional; OCF exit codes
//! monitor_interval = "5s"
//! timeout = "30s"           # for each start, stop and monitor
//! restarts = 1              # local restarts before the group falls over
//! ```
//!
//! Resource kinds must follow DESIGN §5's order: reservation, filesystem, ip, application.

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_spanned::Spanned;

use super::Validator;
use super::raw::{RawConfig, RawGroup, RawResource};
use crate::config::ConfigError;
use crate::core::placement::{Fallback, Fallover, GroupPolicy, Startup};
use crate::core::spec::{ABANDON_AFTER, GroupSpec, NodeSpec};
use crate::wire::state::MAX_GROUPS;

pub use crate::core::authority::QuorumLoss;

/// A group as the daemon runs it on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Its name.
    pub name: String,
    /// Its resources, in acquisition order.
    pub resources: Vec<Resource>,
    /// How long a failure here is remembered (the core forgets the group's mark; the
    /// applications' restart budgets start again); `None`: until the operator acts.
    pub failure_timeout: Option<Duration>,
}

/// What group validation needs to know beyond the group: the nodes, this node, and the
/// paths' networks.
pub(super) struct Scope<'a> {
    /// Configured nodes.
    pub(super) nodes: &'a [NodeSpec],
    /// This node's index in `nodes`.
    pub(super) local: usize,
    /// Network names by index.
    pub(super) names: &'a [String],
    /// The raw paths (for their interface tables).
    pub(super) raw_paths: &'a [super::raw::RawPath],
    /// The validated paths (for their network index).
    pub(super) paths: &'a [crate::core::spec::PathSpec],
}

/// One resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: ResourceKind,
}

/// The kinds of resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceKind {
    /// A service IP address.
    Ip(IpResource),
    /// An application with start, stop and monitor commands.
    Application(AppResource),
    /// A SCSI reservation on a shared disk.
    Reservation(super::ReservationResource),
    /// A filesystem on a shared disk.
    Filesystem(super::FsResource),
}

impl ResourceKind {
    /// The `kind` value that configures it.
    pub fn name(&self) -> &'static str {
        match self {
            ResourceKind::Ip(_) => "ip",
            ResourceKind::Application(a) => match &a.agent {
                None => "application",
                Some(agent) => agent.class.name(),
            },
            ResourceKind::Reservation(_) => "reservation",
            ResourceKind::Filesystem(_) => "filesystem",
        }
    }
}

/// A service address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpResource {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// This node's interface for it (`None` if this node cannot host the group).
    pub interface: Option<String>,
    /// Announcement rounds (each: ARP request + reply, or one NA).
    pub announce_count: u32,
    /// Time between rounds; the first goes out with the add.
    pub announce_interval: Duration,
    /// The network it lives on (index into the spec's networks): `network = "…"`, or the
    /// network of the ether path on the same interfaces. The group avoids nodes that lost it.
    pub network: Option<u8>,
    /// This node's standby interface on the same network: on carrier loss of
    /// `interface` the address moves there (adapter swap, DESIGN §4).
    pub standby: Option<String>,
}

/// An application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppResource {
    /// Start command (run with `sh -c`).
    pub start: String,
    /// Stop command.
    pub stop: String,
    /// Monitor command, if any.
    pub monitor: Option<String>,
    /// Time between monitor runs.
    pub monitor_interval: Duration,
    /// Limit for each start, stop and monitor run.
    pub timeout: Duration,
    /// Local restarts after a failed monitor before the group falls over.
    pub restarts: u32,
    /// The resource agent the commands run (`kind = "ocf"` or `"lsb"`); `None` for an
    /// application's own commands.
    pub agent: Option<Agent>,
    /// Variables its commands get besides the node's (`OCF_RESKEY_*`, `OCF_ROOT`, ...).
    pub env: Vec<(String, String)>,
}

impl AppResource {
    /// What an OCF agent's action gets besides `env`, by Pacemaker's rule:
    /// `OCF_RESKEY_CRM_meta_interval`, the monitor's interval in ms for the `recurring`
    /// monitor and 0 for every other action (start, stop, a probe, verify's). Nothing for
    /// LSB scripts and plain commands.
    pub fn interval_env(&self, recurring: bool) -> Option<(&'static str, String)> {
        let ocf = self
            .agent
            .as_ref()
            .is_some_and(|a| a.class == AgentClass::Ocf);
        let ms = if recurring {
            self.monitor_interval.as_millis()
        } else {
            0
        };
        ocf.then(|| ("OCF_RESKEY_CRM_meta_interval", ms.to_string()))
    }
}

/// Where resource agents live (Debian's resource-agents package).
pub const OCF_ROOT: &str = "/usr/lib/ocf";
/// Where LSB init scripts named without a path live.
pub const INIT_D: &str = "/etc/init.d";

/// A resource agent: an OCF agent or an LSB init script, run with the action as its
/// argument; its exit codes have the meanings of its class ([`AgentClass::verdict`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// OCF or LSB.
    pub class: AgentClass,
    /// The executable.
    pub path: String,
    /// As configured, for messages: `ocf:heartbeat:IPaddr2`, `lsb:nginx`.
    pub name: String,
}

/// The standards an agent follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentClass {
    /// Open Cluster Framework resource agent (start, stop, monitor, meta-data,
    /// validate-all).
    Ocf,
    /// LSB init script (start, stop, status).
    Lsb,
}

/// What an agent's exit says about the resource here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Success (a monitor: running).
    Ok,
    /// A soft error (generic, or not running while it should): restart it here, within
    /// the resource's `restarts`.
    Soft,
    /// A hard error (bad arguments, not implemented, no permission, not installed): it
    /// cannot run on this node; the group falls over at once, no local restart.
    Hard,
    /// A fatal error (not configured): it cannot run anywhere with this config; the
    /// group falls over, and says why.
    Fatal,
}

impl AgentClass {
    /// The `kind` value.
    pub fn name(self) -> &'static str {
        match self {
            AgentClass::Ocf => "ocf",
            AgentClass::Lsb => "lsb",
        }
    }

    /// The argument of the monitor action.
    pub fn monitor_action(self) -> &'static str {
        match self {
            AgentClass::Ocf => "monitor",
            AgentClass::Lsb => "status",
        }
    }

    /// What exit `code` means, for messages.
    pub fn meaning(self, code: i32) -> &'static str {
        match (self, code) {
            (_, 0) => "success",
            (AgentClass::Ocf, 1) => "generic error",
            (AgentClass::Ocf, 2) => "invalid arguments (check params)",
            (AgentClass::Ocf, 3) => "action not implemented",
            (AgentClass::Ocf, 4) => "insufficient privileges",
            (AgentClass::Ocf, 5) => "not installed on this node",
            (_, 6) => "not configured (it cannot run anywhere with this config)",
            (AgentClass::Ocf, 7) | (AgentClass::Lsb, 3) => "not running",
            (AgentClass::Lsb, 1) => "dead, its pid file left",
            (AgentClass::Lsb, 2) => "dead, its lock file left",
            (AgentClass::Lsb, 5) => "not installed",
            _ => "error",
        }
    }

    /// The meaning of exit `code` of `action` (`start`, `stop`, `monitor`). OCF: 0
    /// success, 7 not running, 8 running as promoted (taken as running), 1 generic error
    /// (soft), 2 bad arguments, 3 unimplemented, 4 no permission, 5 not installed (hard),
    /// 6 not configured (fatal). LSB `status`: 0 running, 1 and 2 dead with a pid or lock
    /// file left (soft), 3 not running, 4 unknown (soft); LSB start and stop: 0 success,
    /// 5 not installed, 6 not configured, anything else soft.
    pub fn verdict(self, action: &str, code: i32) -> Verdict {
        match (self, action, code) {
            // 8: running as promoted; 190, 191: OCF 1.1's degraded (running).
            (_, _, 0) | (AgentClass::Ocf, "monitor", 8 | 190 | 191) => Verdict::Ok,
            (AgentClass::Ocf, _, 2..=5) | (AgentClass::Lsb, "start" | "stop", 5) => Verdict::Hard,
            (AgentClass::Ocf, "start" | "stop" | "monitor", 6)
            | (AgentClass::Lsb, "start" | "stop", 6) => Verdict::Fatal,
            _ => Verdict::Soft,
        }
    }
}

/// How long a group's failure on a node is remembered there by default (then it may run
/// there again): long enough that a crash loop does not bounce a group between nodes,
/// short enough that a node is not shut out for good by one bad night.
pub(super) const FAILURE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);

/// Default announcement rounds.
pub(super) const ANNOUNCE_COUNT_DEFAULT: u32 = 3;
/// Default time between announcement rounds.
pub(super) const ANNOUNCE_INTERVAL_DEFAULT: Duration = Duration::from_millis(50);

/// The keys each resource kind takes besides `name` and `kind`.
const KIND_KEYS: &[(&str, &[&str])] = &[
    (
        "ip",
        &[
            "address",
            "interface",
            "interfaces",
            "announce_count",
            "announce_interval",
            "network",
            "standby",
            "standbys",
        ],
    ),
    (
        "application",
        &[
            "start",
            "stop",
            "monitor",
            "monitor_interval",
            "timeout",
            "restarts",
        ],
    ),
    (
        "ocf",
        &["agent", "params", "monitor_interval", "timeout", "restarts"],
    ),
    (
        "lsb",
        &["script", "monitor_interval", "timeout", "restarts"],
    ),
    ("reservation", &["device", "devices", "type", "timeout"]),
    (
        "filesystem",
        &[
            "device",
            "devices",
            "mountpoint",
            "fstype",
            "options",
            "fsck",
            "timeout",
        ],
    ),
];

/// The optional keys a resource sets, with where each starts in the file.
fn present_keys(r: &RawResource) -> Vec<(&'static str, usize)> {
    fn at<T>(v: &Option<Spanned<T>>) -> Option<usize> {
        v.as_ref().map(|s| s.span().start)
    }
    [
        ("address", at(&r.address)),
        ("interface", at(&r.interface)),
        ("interfaces", at(&r.interfaces)),
        ("announce_count", at(&r.announce_count)),
        ("announce_interval", at(&r.announce_interval)),
        ("network", at(&r.network)),
        ("standby", at(&r.standby)),
        ("standbys", at(&r.standbys)),
        ("start", at(&r.start)),
        ("stop", at(&r.stop)),
        ("monitor", at(&r.monitor)),
        ("monitor_interval", at(&r.monitor_interval)),
        ("timeout", at(&r.timeout)),
        ("restarts", at(&r.restarts)),
        ("device", at(&r.device)),
        ("devices", at(&r.devices)),
        ("type", at(&r.reservation_type)),
        ("mountpoint", at(&r.mountpoint)),
        ("fstype", at(&r.fstype)),
        ("options", at(&r.options)),
        ("fsck", at(&r.fsck)),
        ("agent", at(&r.agent)),
        ("params", at(&r.params)),
        ("script", at(&r.script)),
    ]
    .into_iter()
    .filter_map(|(k, a)| a.map(|a| (k, a)))
    .collect()
}

/// Position of a resource kind in DESIGN §5's order.
fn rank(kind: &str) -> Option<u8> {
    match kind {
        "reservation" => Some(0),
        "filesystem" => Some(1),
        "ip" => Some(2),
        "application" | "ocf" | "lsb" => Some(3),
        _ => None,
    }
}

impl Validator<'_> {
    pub(super) fn quorum_loss(
        &self,
        raw: &RawConfig,
        watchdog: bool,
    ) -> Result<QuorumLoss, ConfigError> {
        let Some(v) = &raw.cluster.on_quorum_loss else {
            return Ok(QuorumLoss::Freeze);
        };
        match v.get_ref().as_str() {
            "freeze" => Ok(QuorumLoss::Freeze),
            "stop" => Ok(QuorumLoss::Stop),
            "halt" if watchdog => Ok(QuorumLoss::Halt),
            "halt" => Err(self.err(
                v,
                "cluster.on_quorum_loss",
                "`halt` needs the hardware watchdog: configure [watchdog] (it resets the node \
                 should the halt itself hang)",
            )),
            other => Err(self.err(
                v,
                "cluster.on_quorum_loss",
                format!("`{other}`: expected freeze, stop or halt"),
            )),
        }
    }

    pub(super) fn groups(
        &self,
        raw: &RawConfig,
        scope: &Scope<'_>,
    ) -> Result<(Vec<GroupSpec>, Vec<GroupConfig>), ConfigError> {
        let nodes = scope.nodes;
        if let Some(g) = raw.groups.get(MAX_GROUPS) {
            return Err(self.err(&g.name, "group", format!("more than {MAX_GROUPS} groups")));
        }
        let mut specs = Vec::new();
        let mut configs = Vec::new();
        for (i, g) in raw.groups.iter().enumerate() {
            let key = |k: &str| format!("group[{i}].{k}");
            self.name(&g.name, &key("name"))?;
            if let Some(j) = raw.groups[..i]
                .iter()
                .position(|h| h.name.get_ref() == g.name.get_ref())
            {
                return Err(self.err(
                    &g.name,
                    &key("name"),
                    format!("duplicate group name (also group[{j}])"),
                ));
            }
            let policy = self.policy(g, &key, nodes)?;
            let resources = g
                .resources
                .iter()
                .enumerate()
                .map(|(r, res)| self.resource(g, policy.startup, r, res, &key, scope))
                .collect::<Result<Vec<_>, _>>()?;
            let failure_timeout = match &g.failure_timeout {
                None => Some(FAILURE_TIMEOUT_DEFAULT),
                Some(t) => {
                    Some(self.duration(t, &key("failure_timeout"))?).filter(|d| !d.is_zero())
                }
            };
            let networks = resources
                .iter()
                .filter_map(|r| match &r.kind {
                    ResourceKind::Ip(ip) => ip.network,
                    _ => None,
                })
                .fold(0u64, |b, n| b | 1 << n);
            let release_bound = release_bound(&resources);
            specs.push(GroupSpec {
                name: g.name.get_ref().clone(),
                policy,
                resources: u8::try_from(resources.len())
                    .ok()
                    .filter(|n| *n < crate::core::groups::HOOK)
                    .ok_or_else(|| {
                        self.err(&g.name, &key("resource"), "more than 254 resources")
                    })?,
                // Set from the [[event]] table (see `events`).
                pre_acquire: false,
                pre_release: false,
                networks,
                failure_timeout,
                release_bound,
            });
            configs.push(GroupConfig {
                name: g.name.get_ref().clone(),
                resources,
                failure_timeout,
            });
        }
        Ok((specs, configs))
    }

    fn name(&self, s: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        if super::valid_name(s.get_ref()) {
            Ok(())
        } else {
            Err(self.err(s, key, "must be 1-64 characters of [A-Za-z0-9._-]"))
        }
    }

    fn policy(
        &self,
        g: &RawGroup,
        key: &dyn Fn(&str) -> String,
        nodes: &[NodeSpec],
    ) -> Result<GroupPolicy, ConfigError> {
        if g.nodes.get_ref().is_empty() {
            return Err(self.err(&g.nodes, &key("nodes"), "a group needs at least one node"));
        }
        let mut ids = Vec::new();
        for (k, n) in g.nodes.get_ref().iter().enumerate() {
            let id = nodes
                .iter()
                .find(|m| &m.name == n.get_ref())
                .map(|m| m.id)
                .ok_or_else(|| {
                    self.err(
                        n,
                        &format!("{}[{k}]", key("nodes")),
                        format!("`{}` is not a configured node", n.get_ref()),
                    )
                })?;
            if ids.contains(&id) {
                return Err(self.err(
                    n,
                    &format!("{}[{k}]", key("nodes")),
                    format!("`{}` is listed twice", n.get_ref()),
                ));
            }
            ids.push(id);
        }
        let startup = self.choice(
            &g.startup,
            &key("startup"),
            &[
                ("home", Startup::Home),
                ("first", Startup::First),
                ("all", Startup::All),
            ],
            Startup::Home,
        )?;
        let fallover = self.choice(
            &g.fallover,
            &key("fallover"),
            &[("next", Fallover::Next), ("never", Fallover::Never)],
            Fallover::Next,
        )?;
        let fallback = self.choice(
            &g.fallback,
            &key("fallback"),
            &[("home", Fallback::Home), ("never", Fallback::Never)],
            Fallback::Home,
        )?;
        Ok(GroupPolicy {
            nodes: ids,
            startup,
            fallover,
            fallback,
        })
    }

    fn choice<T: Copy>(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(v) = v else {
            return Ok(default);
        };
        options
            .iter()
            .find(|(name, _)| name == v.get_ref())
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
                self.err(
                    v,
                    key,
                    format!("`{}`: expected {}", v.get_ref(), names.join(", ")),
                )
            })
    }

    fn resource(
        &self,
        g: &RawGroup,
        startup: Startup,
        r: usize,
        res: &RawResource,
        gkey: &dyn Fn(&str) -> String,
        scope: &Scope<'_>,
    ) -> Result<Resource, ConfigError> {
        let key = |k: &str| gkey(&format!("resource[{r}].{k}"));
        self.name(&res.name, &key("name"))?;
        if let Some(j) = g.resources[..r]
            .iter()
            .position(|q| q.name.get_ref() == res.name.get_ref())
        {
            return Err(self.err(
                &res.name,
                &key("name"),
                format!("duplicate resource name in this group (also resource[{j}])"),
            ));
        }
        let kind = res.kind.get_ref().as_str();
        let this = rank(kind).ok_or_else(|| {
            self.err(
                &res.kind,
                &key("kind"),
                format!("`{kind}`: expected reservation, filesystem, ip, application, ocf or lsb"),
            )
        })?;
        if let Some(prev) = g.resources[..r]
            .iter()
            .find(|q| rank(q.kind.get_ref()).is_some_and(|p| p > this))
        {
            return Err(self.err(
                &res.kind,
                &key("kind"),
                format!(
                    "a `{kind}` resource cannot come after `{}` (`{}`): resources are acquired \
                     in the order reservation, filesystem, ip, application",
                    prev.name.get_ref(),
                    prev.kind.get_ref()
                ),
            ));
        }
        self.only_keys_of(res, kind, &key)?;
        let local = &scope.nodes[scope.local].name;
        let kind = match kind {
            "ip" => ResourceKind::Ip(self.ip(g, res, &key, scope)?),
            "reservation" => {
                ResourceKind::Reservation(self.reservation(g, startup, res, &key, local)?)
            }
            "filesystem" => ResourceKind::Filesystem(self.filesystem(g, res, &key, local)?),
            "ocf" | "lsb" => {
                ResourceKind::Application(self.agent(g.name.get_ref(), res, kind, &key)?)
            }
            _ => ResourceKind::Application(self.application(res, &key)?),
        };
        Ok(Resource {
            name: res.name.get_ref().clone(),
            kind,
        })
    }

    /// Refuses a key that `kind` does not take.
    fn only_keys_of(
        &self,
        res: &RawResource,
        kind: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Result<(), ConfigError> {
        let allowed = KIND_KEYS
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[][..], |(_, a)| a);
        match present_keys(res)
            .into_iter()
            .find(|(k, _)| !allowed.contains(k))
        {
            Some((k, at)) => Err(ConfigError::at(
                self.file,
                self.text,
                at,
                &key(k),
                format!("not allowed with kind `{kind}`"),
            )),
            None => Ok(()),
        }
    }

    fn ip(
        &self,
        g: &RawGroup,
        res: &RawResource,
        key: &dyn Fn(&str) -> String,
        scope: &Scope<'_>,
    ) -> Result<IpResource, ConfigError> {
        let (nodes, local) = (scope.nodes, scope.local);
        let a = res.address.as_ref().ok_or_else(|| {
            self.err(&res.kind, &key("address"), "an ip resource needs `address`")
        })?;
        let (address, prefix) = parse_cidr(a.get_ref()).ok_or_else(|| {
            self.err(
                a,
                &key("address"),
                format!(
                    "`{}` is not a unicast address or address/prefix (prefix 1..=32 or 1..=128; \
                     loopback, multicast and unspecified addresses cannot move)",
                    a.get_ref()
                ),
            )
        })?;
        let interface = match (&res.interface, &res.interfaces) {
            (Some(i), None) => super::valid_ifname(i.get_ref())
                .then(|| Some(i.get_ref().clone()))
                .ok_or_else(|| {
                    self.err(
                        i,
                        &key("interface"),
                        format!("`{}` is not an interface name", i.get_ref()),
                    )
                })?,
            (None, Some(map)) => self.interfaces(g, map, &key("interfaces"), nodes, local)?,
            (Some(i), Some(_)) => {
                return Err(self.err(
                    i,
                    &key("interface"),
                    "give `interface` or `interfaces`, not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    &res.kind,
                    &key("interface"),
                    "an ip resource needs `interface` (or `interfaces = { <node> = \"<ifname>\" }`)",
                ));
            }
        };
        let announce_count =
            res.announce_count
                .as_ref()
                .map_or(Ok(ANNOUNCE_COUNT_DEFAULT), |c| {
                    if (1..=100).contains(c.get_ref()) {
                        Ok(*c.get_ref())
                    } else {
                        Err(self.err(c, &key("announce_count"), "must be 1..=100"))
                    }
                })?;
        let announce_interval = match &res.announce_interval {
            None => ANNOUNCE_INTERVAL_DEFAULT,
            Some(d) => {
                let v = self.duration(d, &key("announce_interval"))?;
                if v < Duration::from_millis(1) || v > Duration::from_secs(10) {
                    return Err(self.err(d, &key("announce_interval"), "must be 1ms..=10s"));
                }
                v
            }
        };
        let network = self.ip_network(g, res, key, scope)?;
        let standby = match (&res.standby, &res.standbys) {
            (Some(i), None) => Some(i),
            (None, Some(map)) => {
                let members: Vec<&String> = g.nodes.get_ref().iter().map(|n| n.get_ref()).collect();
                if let Some(extra) = map.get_ref().keys().find(|k| !members.contains(k)) {
                    return Err(self.err(
                        map,
                        &key("standbys"),
                        format!("`{extra}` is not a node of this group"),
                    ));
                }
                map.get_ref().get(&nodes[local].name)
            }
            (Some(i), Some(_)) => {
                return Err(self.err(i, &key("standby"), "give `standby` or `standbys`, not both"));
            }
            (None, None) => None,
        };
        if let Some(sb) = standby {
            if !super::valid_ifname(sb.get_ref()) {
                return Err(self.err(
                    sb,
                    &key("standby"),
                    format!("`{}` is not an interface name", sb.get_ref()),
                ));
            }
            if interface.as_deref() == Some(sb.get_ref().as_str()) {
                return Err(self.err(
                    sb,
                    &key("standby"),
                    "the standby interface must differ from the service interface",
                ));
            }
        }
        Ok(IpResource {
            address,
            prefix,
            interface,
            announce_count,
            announce_interval,
            network,
            standby: standby.map(|s| s.get_ref().clone()),
        })
    }

    /// The network an ip resource lives on: named, or the network of the first ether path
    /// whose interfaces match the resource's on every node of the group.
    fn ip_network(
        &self,
        g: &RawGroup,
        res: &RawResource,
        key: &dyn Fn(&str) -> String,
        nets: &Scope<'_>,
    ) -> Result<Option<u8>, ConfigError> {
        if let Some(n) = &res.network {
            return nets
                .names
                .iter()
                .position(|m| m == n.get_ref())
                .map(|i| Some(u8::try_from(i).expect("invariant: <= 8 networks")))
                .ok_or_else(|| {
                    self.err(
                        n,
                        &key("network"),
                        format!(
                            "no path runs over a network `{}`; networks: {}",
                            n.get_ref(),
                            nets.names.join(", ")
                        ),
                    )
                });
        }
        let iface_of = |node: &str| -> Option<&String> {
            match (&res.interface, &res.interfaces) {
                (Some(i), _) => Some(i.get_ref()),
                (None, Some(m)) => m.get_ref().get(node).map(|i| i.get_ref()),
                (None, None) => None,
            }
        };
        for (raw_path, spec) in nets.raw_paths.iter().zip(nets.paths) {
            let (Some(ifaces), Some(n)) = (&raw_path.interfaces, spec.network) else {
                continue;
            };
            let same = g.nodes.get_ref().iter().all(|node| {
                let node = node.get_ref();
                ifaces.get_ref().get(node).map(|i| i.get_ref()) == iface_of(node)
            });
            if same {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    /// Per-node interfaces of an ip resource: an entry for each node of the group, and
    /// only for them.
    fn interfaces(
        &self,
        g: &RawGroup,
        map: &Spanned<BTreeMap<String, Spanned<String>>>,
        key: &str,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<Option<String>, ConfigError> {
        let members: Vec<&String> = g.nodes.get_ref().iter().map(|n| n.get_ref()).collect();
        if let Some(extra) = map.get_ref().keys().find(|k| !members.contains(k)) {
            return Err(self.err(map, key, format!("`{extra}` is not a node of this group")));
        }
        for n in &members {
            let Some(i) = map.get_ref().get(*n) else {
                return Err(self.err(map, key, format!("no entry for node `{n}`")));
            };
            if !super::valid_ifname(i.get_ref()) {
                return Err(self.err(
                    i,
                    &format!("{key}.{n}"),
                    format!("`{}` is not an interface name", i.get_ref()),
                ));
            }
        }
        Ok(map
            .get_ref()
            .get(&nodes[local].name)
            .map(|i| i.get_ref().clone()))
    }

    /// A command's interval or timeout, 10 ms to 24 h; `default` when absent.
    fn run_duration(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(d) = v else {
            return Ok(default);
        };
        let v = self.duration(d, key)?;
        if v < Duration::from_millis(10) || v > Duration::from_secs(24 * 3600) {
            return Err(self.err(d, key, "must be 10ms..=24h"));
        }
        Ok(v)
    }

    fn application(
        &self,
        res: &RawResource,
        key: &dyn Fn(&str) -> String,
    ) -> Result<AppResource, ConfigError> {
        let command = |v: &Option<Spanned<String>>, k: &str| -> Result<String, ConfigError> {
            let c = v.as_ref().ok_or_else(|| {
                self.err(
                    &res.kind,
                    &key(k),
                    format!("an application resource needs `{k}`"),
                )
            })?;
            if c.get_ref().trim().is_empty() {
                return Err(self.err(c, &key(k), "must not be empty"));
            }
            Ok(c.get_ref().clone())
        };
        let start = command(&res.start, "start")?;
        let stop = command(&res.stop, "stop")?;
        let monitor = res
            .monitor
            .as_ref()
            .map(|_| command(&res.monitor, "monitor"))
            .transpose()?;
        let monitor_interval = self.run_duration(
            &res.monitor_interval,
            &key("monitor_interval"),
            Duration::from_secs(5),
        )?;
        let timeout = self.run_duration(&res.timeout, &key("timeout"), Duration::from_secs(30))?;
        Ok(AppResource {
            start,
            stop,
            monitor,
            monitor_interval,
            timeout,
            restarts: res.restarts.as_ref().map_or(1, |r| *r.get_ref()),
            agent: None,
            env: Vec::new(),
        })
    }

    /// `kind = "ocf"` (`agent = "heartbeat:IPaddr2"`, `params`) or `kind = "lsb"`
    /// (`script = "nginx"`): the agent run with its action; monitors every
    /// `monitor_interval` (default 10 s, as Pacemaker's usual), each run bounded by
    /// `timeout` (default 20 s, Pacemaker's default operation timeout).
    fn agent(
        &self,
        group: &str,
        res: &RawResource,
        kind: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Result<AppResource, ConfigError> {
        let safe = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        let (class, path, name) = if kind == "ocf" {
            let a = res.agent.as_ref().ok_or_else(|| {
                self.err(
                    &res.kind,
                    &key("agent"),
                    "an ocf resource needs `agent` (provider:type, e.g. \"heartbeat:IPaddr2\")",
                )
            })?;
            let text = a.get_ref().strip_prefix("ocf:").unwrap_or(a.get_ref());
            let Some((provider, ty)) = text.split_once(':').filter(|(p, t)| safe(p) && safe(t))
            else {
                return Err(self.err(
                    a,
                    &key("agent"),
                    format!(
                        "`{}`: expected provider:type, e.g. \"heartbeat:IPaddr2\" (an agent in {OCF_ROOT}/resource.d/PROVIDER/TYPE)",
                        a.get_ref()
                    ),
                ));
            };
            let path = format!("{OCF_ROOT}/resource.d/{provider}/{ty}");
            (AgentClass::Ocf, path, format!("ocf:{provider}:{ty}"))
        } else {
            let s = res.script.as_ref().ok_or_else(|| {
                self.err(
                    &res.kind,
                    &key("script"),
                    format!("an lsb resource needs `script` (a name in {INIT_D}, or a path)"),
                )
            })?;
            let text = s.get_ref();
            let path = if text.starts_with('/') {
                text.clone()
            } else {
                format!("{INIT_D}/{text}")
            };
            let parts_ok = path[1..].split('/').all(safe);
            if !parts_ok {
                return Err(self.err(
                    s,
                    &key("script"),
                    format!("`{text}`: not a script name or an absolute path"),
                ));
            }
            (AgentClass::Lsb, path, format!("lsb:{text}"))
        };
        let mut env = Vec::new();
        if class == AgentClass::Lsb {
            // Debian's init-functions hand a script run by hand to systemctl: the
            // service would run outside heartwire's cgroup, where no fence reaches it.
            env.push(("SYSTEMCTL_SKIP_REDIRECT".to_owned(), "1".to_owned()));
        }
        if class == AgentClass::Ocf {
            let (provider, ty) = name[4..].split_once(':').unwrap_or(("", ""));
            env.extend([
                ("OCF_ROOT".to_owned(), OCF_ROOT.to_owned()),
                ("OCF_RA_VERSION_MAJOR".to_owned(), "1".to_owned()),
                ("OCF_RA_VERSION_MINOR".to_owned(), "1".to_owned()),
                // Unique in the cluster, as Pacemaker's resource ids are: agents name
                // their state files after it (Dummy-web-flag.state).
                (
                    "OCF_RESOURCE_INSTANCE".to_owned(),
                    format!("{group}-{}", res.name.get_ref()),
                ),
                ("OCF_RESOURCE_PROVIDER".to_owned(), provider.to_owned()),
                ("OCF_RESOURCE_TYPE".to_owned(), ty.to_owned()),
            ]);
            for (k, v) in res.params.iter().flat_map(|p| p.get_ref()) {
                let ok = !k.is_empty()
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !k.as_bytes()[0].is_ascii_digit();
                if !ok {
                    return Err(self.err(
                        v,
                        &key(&format!("params.{k}")),
                        "a parameter name is letters, digits and _ (it becomes OCF_RESKEY_<name>)",
                    ));
                }
                env.push((format!("OCF_RESKEY_{k}"), v.get_ref().clone()));
            }
        }
        let monitor_interval = self.run_duration(
            &res.monitor_interval,
            &key("monitor_interval"),
            Duration::from_secs(10),
        )?;
        let timeout = self.run_duration(&res.timeout, &key("timeout"), Duration::from_secs(20))?;
        if class == AgentClass::Ocf {
            env.push((
                "OCF_RESKEY_CRM_meta_timeout".to_owned(),
                timeout.as_millis().to_string(),
            ));
        }
        // The path is checked above: no quote can be in it.
        let run = |action: &str| format!("exec '{path}' {action}");
        Ok(AppResource {
            start: run("start"),
            stop: run("stop"),
            monitor: Some(run(class.monitor_action())),
            monitor_interval,
            timeout,
            restarts: res.restarts.as_ref().map_or(1, |r| *r.get_ref()),
            agent: Some(Agent { class, path, name }),
            env,
        })
    }
}

/// `addr` or `addr/prefix`; the default prefix is the full length.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let address: IpAddr = a.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => p.parse().ok().filter(|p| (1..=max).contains(p))?,
    };
    if address.is_unspecified() || address.is_multicast() || address.is_loopback() {
        return None;
    }
    Some((address, prefix))
}

/// `node=value,…` of a per-node table, `-` when absent.
fn per_node(m: &Option<Spanned<BTreeMap<String, Spanned<String>>>>) -> String {
    m.as_ref().map_or("-".into(), |m| {
        m.get_ref()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.get_ref()))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Canonical text of the groups and events for the config hash (values only, no spans).
pub(super) fn canonical(raw: &RawConfig) -> String {
    fn opt<T: core::fmt::Debug>(v: &Option<Spanned<T>>) -> String {
        v.as_ref()
            .map_or("-".into(), |s| format!("{:?}", s.get_ref()))
    }
    let mut out = String::new();
    for g in &raw.groups {
        let nodes: Vec<_> = g
            .nodes
            .get_ref()
            .iter()
            .map(|n| n.get_ref().as_str())
            .collect();
        out += &format!(
            "group name={:?} nodes={nodes:?} startup={} fallover={} fallback={}\n",
            g.name.get_ref(),
            opt(&g.startup),
            opt(&g.fallover),
            opt(&g.fallback)
        );
        for r in &g.resources {
            let ifs = per_node(&r.interfaces);
            out += &format!(
                "resource name={:?} kind={:?} address={} interface={} interfaces={ifs} count={} \
                 interval={} start={} stop={} monitor={} monitor_interval={} timeout={} restarts={}\n",
                r.name.get_ref(),
                r.kind.get_ref(),
                opt(&r.address),
                opt(&r.interface),
                opt(&r.announce_count),
                opt(&r.announce_interval),
                opt(&r.start),
                opt(&r.stop),
                opt(&r.monitor),
                opt(&r.monitor_interval),
                opt(&r.timeout),
                opt(&r.restarts)
            );
            // Storage keys only when set, so configs without them keep their hash.
            let storage = [
                opt(&r.device),
                per_node(&r.devices),
                opt(&r.reservation_type),
                opt(&r.mountpoint),
                opt(&r.fstype),
                opt(&r.options),
                opt(&r.fsck),
            ];
            if storage.iter().any(|v| v != "-") {
                out += &format!("storage {}\n", storage.join(" "));
            }
            // Agent keys only when set, likewise.
            // Params quoted (a value may hold `,` or `=`), unlike per_node's tables.
            let params = r.params.as_ref().map_or("-".into(), |p| {
                p.get_ref()
                    .iter()
                    .map(|(k, v)| format!("{k:?}={:?}", v.get_ref()))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            let agent = [opt(&r.agent), params, opt(&r.script)];
            if agent.iter().any(|v| v != "-") {
                out += &format!("agent {}\n", agent.join(" "));
            }
        }
    }
    for e in &raw.events {
        out += &format!(
            "event on={:?} group={} pre={} post={} notify={} timeout={}\n",
            e.on.get_ref(),
            opt(&e.group),
            opt(&e.pre),
            opt(&e.post),
            opt(&e.notify),
            opt(&e.timeout)
        );
    }
    out
}

/// How long a release that lost authority may take to end what the self-fence cannot (a
/// filesystem on a disk no reservation of the group guards) before the node halts: every
/// stop of the group run to its timeout and then abandoned. `None` when the self-fence
/// (addresses removed, applications killed) and a gainer's reservation fence everything.
pub(crate) fn release_bound(resources: &[Resource]) -> Option<Duration> {
    let guarded = resources
        .iter()
        .any(|r| matches!(r.kind, ResourceKind::Reservation(_)));
    let unguarded = resources
        .iter()
        .any(|r| matches!(r.kind, ResourceKind::Filesystem(_)));
    if guarded || !unguarded {
        return None;
    }
    let stop = |r: &Resource| match &r.kind {
        ResourceKind::Ip(_) => Duration::ZERO,
        ResourceKind::Application(a) => a.timeout + ABANDON_AFTER,
        ResourceKind::Filesystem(f) => f.timeout + ABANDON_AFTER,
        ResourceKind::Reservation(v) => v.timeout + ABANDON_AFTER,
    };
    Some(resources.iter().map(stop).sum())
}
