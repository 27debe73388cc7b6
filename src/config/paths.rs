//! `[[path]]` validation: the four path kinds, their timing, and which network each
//! runs over.
//!
//! ```toml
//! [[path]]
//! name = "svc"
//! kind = "ether"              # ether | udp | serial | disk
//! interval = "1ms"            # ether, udp: required; serial, disk: defaults below
//! timeout = "5ms"
//! network = "service"         # ether, udp: the network it runs over (default: its name)
//! interfaces = { a = "eth0", b = "eth0" }        # ether
//! # port = 5405, addresses = { a = "10.2.0.1" }  # udp
//!
//! [[path]]
//! name = "rs232"
//! kind = "serial"             # a line between exactly two nodes
//! devices = { a = "/dev/ttyS0", b = "/dev/ttyS1" }
//! baud = 115200               # 9600..=921600; default 115200
//!
//! [[path]]
//! name = "quorum-disk"
//! kind = "disk"               # a shared block device (or file), every listed node
//! devices = { a = "/dev/sdb", b = "/dev/sdc" }
//! ```
//!
//! Serial timing: a heartbeat may use at most half the line (the rest is for membership
//! frames and the occasional full heartbeat), so the shortest interval follows from the
//! baud rate and the frame sizes; the default interval is that, rounded up to a whole
//! millisecond, and the default timeout five intervals. Disk defaults: 20 ms interval,
//! 200 ms timeout (a SAN answers in well under a millisecond; 200 ms rides out a slow
//! path switch).

use core::time::Duration;

use serde_spanned::Spanned;

use super::raw::{RawConfig, RawKind, RawPath};
use super::{
    ConfigError, INTERVAL_MAX, INTERVAL_MIN, PathIo, TIMEOUT_MAX, Validator, valid_ifname,
};
use crate::core::placement::NodeSet;
use crate::core::spec::{NodeSpec, PathKind, PathSpec};
use crate::wire::ethernet::{ETHERTYPE_DEFAULT, ETHERTYPE_MIN};
use crate::wire::frame::{CRC_LEN, HEADER_LEN};
use crate::wire::heartbeat::{COMPACT_LEN, FIXED_LEN, FULL_EVERY};

/// Baud rates accepted on a serial path.
pub const BAUD_RANGE: core::ops::RangeInclusive<u32> = 9_600..=921_600;
/// Baud rate when none is given.
pub const BAUD_DEFAULT: u32 = 115_200;
/// Ethernet and UDP path interval when none is given: the default profile (DESIGN §5
/// "Choosing a profile": the smallest that took over from no live node in `make soak`, a
/// 10-minute soak with both cores busy, on the reference VM).
pub const NETWORK_INTERVAL_DEFAULT: Duration = Duration::from_millis(5);
/// Ethernet and UDP path timeout when none is given (see [`NETWORK_INTERVAL_DEFAULT`]);
/// with only `interval` given, the timeout is this or 10 intervals, whichever is longer.
pub const NETWORK_TIMEOUT_DEFAULT: Duration = Duration::from_millis(50);
/// Timeout of a network path with only `interval` given, in intervals (at least
/// [`NETWORK_TIMEOUT_DEFAULT`]).
const NETWORK_TIMEOUT_INTERVALS: u32 = 10;
/// Disk path interval when none is given.
pub const DISK_INTERVAL_DEFAULT: Duration = Duration::from_millis(20);
/// Disk path timeout when none is given.
pub const DISK_TIMEOUT_DEFAULT: Duration = Duration::from_millis(200);

/// The shortest heartbeat interval a serial line of `baud` carries at half its capacity:
/// seven compact heartbeats and one full one per [`FULL_EVERY`], COBS-framed, 10 bits per
/// byte (8N1), with `paths` heard bitmaps and a tag when `keyed`.
pub fn serial_interval_min(baud: u32, paths: usize, keyed: bool) -> Duration {
    let tag = if keyed { crate::wire::auth::TAG_LEN } else { 0 };
    let on_line = |payload: usize| {
        let frame = HEADER_LEN + payload + tag + CRC_LEN;
        crate::wire::cobs::encoded_len(frame) + 1
    };
    let compact = on_line(COMPACT_LEN);
    let full = on_line(FIXED_LEN + 8 * paths);
    let every = usize::try_from(FULL_EVERY).expect("invariant: small");
    // Bits per heartbeat on average, times two for half the line.
    let bits = ((every - 1) * compact + full) * 10 * 2 / every;
    Duration::from_nanos(
        u64::try_from(bits).expect("invariant: small") * 1_000_000_000 / u64::from(baud),
    )
}

impl Validator<'_> {
    /// One `[[path]]`: its spec, how this node reaches it, and its network name.
    pub(super) fn path(
        &self,
        i: usize,
        p: &RawPath,
        raw: &RawConfig,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<(PathSpec, PathIo, Option<String>), ConfigError> {
        let key = |k: &str| format!("path[{i}].{k}");
        let name = p.name.get_ref();
        if !super::valid_name(name) {
            return Err(self.err(
                &p.name,
                &key("name"),
                "must be 1-64 characters of [A-Za-z0-9._-]",
            ));
        }
        if let Some(j) = raw.paths[..i].iter().position(|q| q.name.get_ref() == name) {
            return Err(self.err(
                &p.name,
                &key("name"),
                format!("duplicate path name `{name}` (also path[{j}])"),
            ));
        }
        let kind = *p.kind.get_ref();
        let on_network = matches!(kind, RawKind::Ether | RawKind::Udp);
        if !on_network {
            self.forbid(&p.network, &key("network"), kind_name(kind))?;
            self.forbid(&p.interfaces, &key("interfaces"), kind_name(kind))?;
            self.forbid(&p.addresses, &key("addresses"), kind_name(kind))?;
            self.forbid(&p.port, &key("port"), kind_name(kind))?;
            self.forbid(&p.ethertype, &key("ethertype"), kind_name(kind))?;
        } else {
            self.forbid(&p.devices, &key("devices"), kind_name(kind))?;
            self.forbid(&p.baud, &key("baud"), kind_name(kind))?;
        }
        let keyed = raw.cluster.key_file.is_some();
        let (defaults, baud_min) = match kind {
            RawKind::Ether | RawKind::Udp => {
                ((NETWORK_INTERVAL_DEFAULT, NETWORK_TIMEOUT_DEFAULT), None)
            }
            RawKind::Serial => {
                let baud = self.baud(p, &key)?;
                let min = serial_interval_min(baud, raw.paths.len(), keyed);
                let ms = min.as_nanos().div_ceil(1_000_000).max(1);
                let interval = Duration::from_millis(u64::try_from(ms).expect("invariant: small"));
                ((interval, interval * 5), Some((baud, min)))
            }
            RawKind::Disk => ((DISK_INTERVAL_DEFAULT, DISK_TIMEOUT_DEFAULT), None),
        };
        let (default_interval, default_timeout) = defaults;
        let interval = match &p.interval {
            Some(s) => self.duration(s, &key("interval"))?,
            None => default_interval,
        };
        let timeout = match &p.timeout {
            Some(s) => self.duration(s, &key("timeout"))?,
            None if on_network => default_timeout.max(interval * NETWORK_TIMEOUT_INTERVALS),
            None => default_timeout.max(interval * 2),
        };
        // Point at the key when given, else at the path's kind.
        let err_at = |s: &Option<Spanned<String>>, k: &str, msg: String| match s {
            Some(s) => self.err(s, &key(k), msg),
            None => self.err(&p.kind, &key(k), msg),
        };
        if interval < INTERVAL_MIN {
            return Err(err_at(
                &p.interval,
                "interval",
                format!("below the minimum {INTERVAL_MIN:?}"),
            ));
        }
        if interval > INTERVAL_MAX {
            return Err(err_at(
                &p.interval,
                "interval",
                format!("{interval:?} is above the maximum {INTERVAL_MAX:?}"),
            ));
        }
        if timeout > TIMEOUT_MAX {
            return Err(err_at(
                &p.timeout,
                "timeout",
                format!(
                    "{timeout:?} is above the maximum {TIMEOUT_MAX:?} (a node that is silent \
                     that long is dead)"
                ),
            ));
        }
        if let Some((baud, min)) = baud_min {
            if interval < min {
                return Err(err_at(
                    &p.interval,
                    "interval",
                    format!(
                        "{interval:?} is faster than a {baud}-baud line carries: heartbeats \
                         may use half the line, which allows one every {min:?} at most \
                         (raise `baud` or the interval)"
                    ),
                ));
            }
        }
        if timeout < interval * 2 {
            return Err(err_at(
                &p.timeout,
                "timeout",
                format!("{timeout:?} must be at least twice the interval ({interval:?})"),
            ));
        }
        let (members, io) = match kind {
            RawKind::Ether => self.ether(p, &key, nodes, local)?,
            RawKind::Udp => self.udp(p, &key, nodes, local)?,
            RawKind::Serial => self.serial(p, &key, nodes, local)?,
            RawKind::Disk => self.disk(p, &key, nodes, local)?,
        };
        let kind = match kind {
            RawKind::Ether => PathKind::Ether,
            RawKind::Udp => PathKind::Udp,
            RawKind::Serial => PathKind::Serial,
            RawKind::Disk => PathKind::Disk,
        };
        let network = on_network.then(|| {
            p.network
                .as_ref()
                .map_or_else(|| name.clone(), |n| n.get_ref().clone())
        });
        if let (Some(n), Some(at)) = (&network, &p.network) {
            if !super::valid_name(n) {
                return Err(self.err(
                    at,
                    &key("network"),
                    "must be 1-64 characters of [A-Za-z0-9._-]",
                ));
            }
        }
        Ok((
            PathSpec {
                name: name.clone(),
                kind,
                interval,
                timeout,
                nodes: members,
                network: None,
            },
            io,
            network,
        ))
    }

    fn baud(&self, p: &RawPath, key: &dyn Fn(&str) -> String) -> Result<u32, ConfigError> {
        match &p.baud {
            None => Ok(BAUD_DEFAULT),
            Some(b) if BAUD_RANGE.contains(b.get_ref()) => Ok(*b.get_ref()),
            Some(b) => Err(self.err(
                b,
                &key("baud"),
                format!(
                    "{} is outside {}..={}",
                    b.get_ref(),
                    BAUD_RANGE.start(),
                    BAUD_RANGE.end()
                ),
            )),
        }
    }

    fn ether(
        &self,
        p: &RawPath,
        key: &dyn Fn(&str) -> String,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<(NodeSet, PathIo), ConfigError> {
        self.forbid(&p.port, &key("port"), "ether")?;
        self.forbid(&p.addresses, &key("addresses"), "ether")?;
        let ethertype = match &p.ethertype {
            None => ETHERTYPE_DEFAULT,
            Some(t) if *t.get_ref() >= ETHERTYPE_MIN => *t.get_ref(),
            Some(t) => {
                return Err(self.err(
                    t,
                    &key("ethertype"),
                    format!(
                        "{:#06x} is a length, not an EtherType (must be >= 0x0600)",
                        t.get_ref()
                    ),
                ));
            }
        };
        let ifaces = p.interfaces.as_ref().ok_or_else(|| {
            self.err(
                &p.kind,
                &key("interfaces"),
                "an ether path needs `interfaces = { <node> = \"<ifname>\", ... }`",
            )
        })?;
        let per_node = self.per_node(ifaces, &key("interfaces"), nodes)?;
        let interface = per_node[local].get_ref().clone();
        for (n, ifname) in nodes.iter().zip(&per_node) {
            let s = ifname.get_ref();
            if !valid_ifname(s) {
                return Err(self.err(
                    ifname,
                    &format!("{}.{}", key("interfaces"), n.name),
                    format!("`{s}` is not an interface name"),
                ));
            }
        }
        Ok((
            all(nodes),
            PathIo::Ether {
                interface,
                ethertype,
            },
        ))
    }

    fn udp(
        &self,
        p: &RawPath,
        key: &dyn Fn(&str) -> String,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<(NodeSet, PathIo), ConfigError> {
        self.forbid(&p.interfaces, &key("interfaces"), "udp")?;
        self.forbid(&p.ethertype, &key("ethertype"), "udp")?;
        let port = p
            .port
            .as_ref()
            .ok_or_else(|| self.err(&p.kind, &key("port"), "a udp path needs `port`"))?;
        if *port.get_ref() == 0 {
            return Err(self.err(port, &key("port"), "must be 1..=65535"));
        }
        let addrs = p.addresses.as_ref().ok_or_else(|| {
            self.err(
                &p.kind,
                &key("addresses"),
                "a udp path needs `addresses = { <node> = \"<ip>\", ... }`",
            )
        })?;
        let per_node = self.per_node(addrs, &key("addresses"), nodes)?;
        let mut sock = Vec::new();
        for (n, a) in nodes.iter().zip(&per_node) {
            let ip: std::net::IpAddr = a.get_ref().parse().map_err(|_| {
                self.err(
                    a,
                    &format!("{}.{}", key("addresses"), n.name),
                    format!("`{}` is not an IP address", a.get_ref()),
                )
            })?;
            sock.push(std::net::SocketAddr::new(ip, *port.get_ref()));
        }
        let bind = sock[local];
        let peers = sock
            .iter()
            .enumerate()
            .map(|(i, a)| (i != local).then_some(*a))
            .collect();
        Ok((all(nodes), PathIo::Udp { bind, peers }))
    }

    /// The `devices` table of a serial or disk path: which nodes are on it, and this
    /// node's device (if it is one of them).
    #[allow(clippy::type_complexity)]
    fn devices<'p>(
        &self,
        p: &'p RawPath,
        key: &dyn Fn(&str) -> String,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<
        (
            NodeSet,
            Option<String>,
            &'p Spanned<std::collections::BTreeMap<String, Spanned<String>>>,
        ),
        ConfigError,
    > {
        let kind = kind_name(*p.kind.get_ref());
        let devs = p.devices.as_ref().ok_or_else(|| {
            self.err(
                &p.kind,
                &key("devices"),
                format!("a {kind} path needs `devices = {{ <node> = \"/dev/...\", ... }}`"),
            )
        })?;
        let mut members = NodeSet::EMPTY;
        for (name, dev) in devs.get_ref() {
            let Some(n) = nodes.iter().find(|n| &n.name == name) else {
                return Err(self.err(
                    devs,
                    &key("devices"),
                    format!("`{name}` is not a configured node"),
                ));
            };
            if !dev.get_ref().starts_with('/') {
                return Err(self.err(
                    dev,
                    &format!("{}.{name}", key("devices")),
                    format!("`{}` is not an absolute device path", dev.get_ref()),
                ));
            }
            members.insert(n.id);
        }
        let mine = devs
            .get_ref()
            .get(&nodes[local].name)
            .map(|d| d.get_ref().clone());
        Ok((members, mine, devs))
    }

    fn serial(
        &self,
        p: &RawPath,
        key: &dyn Fn(&str) -> String,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<(NodeSet, PathIo), ConfigError> {
        let (members, mine, devs) = self.devices(p, key, nodes, local)?;
        if members.len() != 2 {
            return Err(self.err(
                devs,
                &key("devices"),
                format!(
                    "a serial line joins exactly two nodes; {} listed (use one path per line)",
                    members.len()
                ),
            ));
        }
        let baud = self.baud(p, key)?;
        let io = mine.map_or(PathIo::Absent, |device| PathIo::Serial { device, baud });
        Ok((members, io))
    }

    fn disk(
        &self,
        p: &RawPath,
        key: &dyn Fn(&str) -> String,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<(NodeSet, PathIo), ConfigError> {
        let (members, mine, devs) = self.devices(p, key, nodes, local)?;
        if members.len() < 2 {
            return Err(self.err(
                devs,
                &key("devices"),
                "a disk path needs at least two nodes",
            ));
        }
        let max_id = nodes
            .iter()
            .map(|n| n.id.get())
            .max()
            .expect("invariant: nodes");
        let io = mine.map_or(PathIo::Absent, |device| PathIo::Disk {
            device,
            slots: crate::wire::disk::slots_for(max_id),
        });
        Ok((members, io))
    }
}

fn all(nodes: &[NodeSpec]) -> NodeSet {
    nodes.iter().map(|n| n.id).collect()
}

fn kind_name(k: RawKind) -> &'static str {
    match k {
        RawKind::Ether => "ether",
        RawKind::Udp => "udp",
        RawKind::Serial => "serial",
        RawKind::Disk => "disk",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_interval_follows_the_baud_rate() {
        // 115200 baud, 4 paths, keyed: compact 58 B, full 230 B on the line (13.8 ms).
        let min = serial_interval_min(115_200, 4, true);
        assert!(
            min > Duration::from_millis(13) && min < Duration::from_millis(15),
            "{min:?}"
        );
        let fast = serial_interval_min(921_600, 4, true);
        assert!(
            (fast * 8).abs_diff(min) < Duration::from_micros(1),
            "{fast:?}"
        );
        assert!(serial_interval_min(9_600, 1, false) > Duration::from_millis(100));
    }
}
