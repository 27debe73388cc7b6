//! `heartwire verify`: checks a config before it is used, and the host it is to run on.
//!
//! Every finding has a severity, what is wrong, where (`file:line` of the key, or `host` /
//! `cluster`) and how to fix it. Exit code 0 when there is nothing to report, 1 when there
//! are only warnings, 2 when there are errors. What is checked, for the node the config
//! is verified for (`--node`, else the host name):
//!
//! - the config loads (syntax, schema, meaning: the loader's own error, with its line);
//! - interfaces of ether paths and service addresses (and standbys) exist, are up and
//!   have carrier; UDP addresses are configured on this host;
//! - serial devices are terminals that open; disks exist, open read-write, are large
//!   enough, and are blank or carry this cluster's header;
//! - each service address lies in a subnet of its interface and is not answered for on
//!   the segment (ARP probe, RFC 5227; IPv6 duplicate address detection, RFC 4862) unless
//!   this cluster holds it;
//! - the commands of applications and events exist and are executable;
//! - timeouts leave room for three heartbeats; two nodes without a non-IP path; no key;
//! - with the daemon up: it runs this config, and every member runs the same (the hash
//!   every heartbeat carries);
//! - with the daemon up and a cluster key: every member that is up runs these checks on
//!   the file for itself (the file travels as a configuration offer, `ctl::offer`); its
//!   findings are reported as `node NAME: file:line`.
//!
//! Alongside the findings, `facts` records what was looked at (interfaces, devices,
//! addresses, kernel) for `snapshot`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::host::{Host, in_subnet, is_link_local, mac_str};
use super::status::StatusReport;
use crate::config::{self, Config, Locations, PathIo, ResourceKind};
use crate::core::spec::PathKind;
use crate::daemon::probe::run_agent;
use heartwire_hal::inventory::Addr;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The cluster will not work as configured.
    Error,
    /// It works, but not as well as it should, or something could not be checked.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub what: String,
    /// `file:line` of the key concerned, or `host` / `cluster`.
    pub at: String,
    /// How to fix it.
    pub fix: String,
}

/// What `verify` found, and what it looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The node verified for.
    pub node: String,
    /// The config file.
    pub file: String,
    /// Its hash (hex), when it loaded.
    pub config_hash: Option<String>,
    /// Findings, errors first.
    pub findings: Vec<Finding>,
    /// What was looked at: `key = value` facts about the host.
    pub facts: BTreeMap<String, String>,
}

impl VerifyReport {
    /// Number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// 0 nothing to report, 1 warnings only, 2 errors.
    pub fn exit_code(&self) -> u8 {
        if self.count(Severity::Error) > 0 {
            2
        } else if self.count(Severity::Warning) > 0 {
            1
        } else {
            0
        }
    }

    /// The text report.
    pub fn render(&self) -> String {
        let mut o = String::new();
        for f in &self.findings {
            let sev = match f.severity {
                Severity::Error => "ERROR  ",
                Severity::Warning => "WARNING",
            };
            let _ = writeln!(o, "{sev} {}: {}\n        fix: {}", f.at, f.what, f.fix);
        }
        let _ = writeln!(
            o,
            "verify: {} error(s), {} warning(s) for node {} ({}{})",
            self.count(Severity::Error),
            self.count(Severity::Warning),
            if self.node.is_empty() {
                "?"
            } else {
                &self.node
            },
            self.file,
            self.config_hash
                .as_ref()
                .map_or(String::new(), |h| format!(", config {h}"))
        );
        o
    }

    fn add(&mut self, severity: Severity, at: String, what: String, fix: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            what,
            at,
            fix: fix.into(),
        });
    }
}

/// What to verify and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The node to verify for (`None`: the host name).
    pub node: Option<String>,
    /// Send ARP / DAD probes for service addresses.
    pub probe: bool,
    /// The daemon's control socket (`None`: the config's).
    pub socket: Option<PathBuf>,
    /// The file is an offer from another node (`ctl::offer::check`): it is not compared
    /// with the config the cluster runs, which it is meant to replace.
    pub offered: bool,
    /// Have every member that is up check the file too (needs the daemon and a key).
    pub members: bool,
}

/// Verifies `file` on this host.
pub fn verify(file: &Path, opts: &Options) -> VerifyReport {
    let mut r = VerifyReport {
        file: file.display().to_string(),
        ..VerifyReport::default()
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            r.add(
                Severity::Error,
                r.file.clone(),
                format!("cannot read the config: {e}"),
                "give the right file with -c, or write one with `heartwire init`",
            );
            return r;
        }
    };
    verify_text(file, &text, opts, &mut r);
    r.findings.sort_by_key(|f| f.severity);
    r
}

fn verify_text(file: &Path, text: &str, opts: &Options, r: &mut VerifyReport) {
    let cfg = match config::parse(file, text, opts.node.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            r.add(
                Severity::Error,
                if e.line == 0 {
                    e.file.display().to_string()
                } else {
                    format!("{}:{}", e.file.display(), e.line)
                },
                if e.key.is_empty() {
                    e.message.clone()
                } else {
                    format!("`{}`: {}", e.key, e.message)
                },
                "correct the file (the message says what is accepted), then verify again",
            );
            return;
        }
    };
    let loc = config::locate(file, text).expect("invariant: a config that loads parses");
    let local = cfg.spec.node_index(cfg.local).expect("invariant: local");
    r.node = cfg.spec.nodes[local].name.clone();
    r.config_hash = Some(format!("{:016x}", cfg.spec.config_hash));
    r.facts
        .insert("heartwire.version".into(), env!("CARGO_PKG_VERSION").into());
    for (k, f) in [
        ("host.name", "/proc/sys/kernel/hostname"),
        ("host.kernel", "/proc/sys/kernel/osrelease"),
    ] {
        let v = std::fs::read_to_string(f).unwrap_or_default();
        r.facts.insert(k.into(), v.trim().to_owned());
    }
    let host = match Host::read() {
        Ok(h) => h,
        Err(e) => {
            r.add(
                Severity::Error,
                "host".into(),
                format!("cannot list this host's interfaces: {e}"),
                "run verify as root on the node itself",
            );
            return;
        }
    };
    let daemon = daemon_status(&cfg, opts);
    check_paths(&cfg, &loc, &host, r);
    check_addresses(&cfg, &loc, &host, daemon.as_ref(), opts.probe, r);
    check_commands(&cfg, &loc, r);
    check_agents(&cfg, &loc, r);
    check_storage(&cfg, &loc, r);
    check_design(&cfg, &loc, r);
    if !opts.offered {
        check_cluster(&cfg, daemon.as_ref(), r);
    }
    if opts.members && daemon.is_some() {
        check_members(file, &cfg, opts, r);
    }
}

/// Longest a member check may take: the offer's own deadline, plus the CLI's margin.
const MEMBERS_WAIT: Duration = crate::core::offer::VERDICT_TIMEOUT;

/// Sends the file to every member that is up and reports what each found.
fn check_members(file: &Path, cfg: &Config, opts: &Options, r: &mut VerifyReport) {
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| cfg.control_socket.clone());
    let abs = match std::fs::canonicalize(file) {
        Ok(p) => p,
        Err(e) => {
            r.add(
                Severity::Warning,
                "cluster".into(),
                format!("members not asked: cannot resolve {}: {e}", file.display()),
                "give the config with an absolute path",
            );
            return;
        }
    };
    let line = format!("verify-cluster {}", abs.display());
    let answer = super::client::request_waiting(&socket, &line, MEMBERS_WAIT).and_then(|a| {
        serde_json::from_str::<super::offer::OfferReport>(&a)
            .map_err(|e| format!("unreadable answer: {e}"))
    });
    let report = match answer {
        Ok(rep) => rep,
        Err(e) => {
            r.add(
                Severity::Warning,
                "cluster".into(),
                format!("the members did not check this file: {e}"),
                "see the reason; every member can still run heartwire verify itself",
            );
            return;
        }
    };
    for m in &report.members {
        r.facts.insert(
            format!("cluster.member.{}", m.node),
            format!(
                "{}: {} errors, {} warnings, config {}",
                m.state,
                m.errors,
                m.warnings,
                m.config_hash.as_deref().unwrap_or("-")
            ),
        );
        if m.accepted.is_none() {
            r.add(
                Severity::Warning,
                format!("node {}", m.node),
                format!("node {} did not answer the check ({})", m.node, m.state),
                format!("run heartwire verify on {}", m.node),
            );
            continue;
        }
        r.findings
            .extend(super::offer::decode(&m.node, &m.findings));
        if m.config_hash.is_some() && m.config_hash.as_deref() != Some(report.config_hash.as_str())
        {
            r.add(
                Severity::Error,
                format!("node {}", m.node),
                format!(
                    "node {} computes config hash {} for this file, this node {}",
                    m.node,
                    m.config_hash.as_deref().unwrap_or("-"),
                    report.config_hash
                ),
                "run the same heartwire version on every node",
            );
        }
    }
}

/// Checks interface `name` (named at `at`, used by `user`): exists, up, carrier.
fn check_interface(host: &Host, name: &str, at: String, user: &str, r: &mut VerifyReport) {
    r.facts
        .insert(format!("host.interface.{name}"), host.describe(name));
    match host.link(name) {
        None => r.add(
            Severity::Error,
            at,
            format!("{user}: interface {name} does not exist on node {}", r.node),
            format!(
                "correct the interface name for node {}, or create {name}",
                r.node
            ),
        ),
        Some(l) if !l.up => r.add(
            Severity::Error,
            at,
            format!("{user}: interface {name} is down"),
            format!("ip link set {name} up (and make it so at boot)"),
        ),
        Some(l) if !l.carrier => r.add(
            Severity::Warning,
            at,
            format!("{user}: interface {name} has no carrier"),
            "check the cable and the switch port",
        ),
        Some(_) => {}
    }
}

fn check_paths(cfg: &Config, loc: &Locations, host: &Host, r: &mut VerifyReport) {
    for (p, io) in cfg.spec.paths.iter().zip(&cfg.io) {
        let key = format!("path.{}", p.name);
        let user = format!("path {}", p.name);
        match io {
            PathIo::Ether { interface, .. } => {
                check_interface(
                    host,
                    interface,
                    loc.at(&format!("{key}.interfaces")),
                    &user,
                    r,
                );
            }
            PathIo::Udp { bind, .. } => {
                let here = host.addrs.iter().any(|a| a.addr == bind.ip());
                r.facts.insert(
                    format!("host.address.{}", bind.ip()),
                    if here { "configured" } else { "missing" }.into(),
                );
                if !here {
                    r.add(
                        Severity::Error,
                        loc.at(&format!("{key}.addresses")),
                        format!(
                            "{user}: address {} is not configured on this host",
                            bind.ip()
                        ),
                        format!(
                            "add {} to an interface of node {}, or correct `addresses`",
                            bind.ip(),
                            r.node
                        ),
                    );
                }
            }
            PathIo::Serial { device, .. } => {
                check_device(device, DeviceKind::Serial, cfg, &key, loc, &user, r);
            }
            PathIo::Disk { device, slots } => {
                check_device(device, DeviceKind::Disk(*slots), cfg, &key, loc, &user, r);
            }
            PathIo::Absent => {}
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum DeviceKind {
    Serial,
    Disk(u16),
}

fn check_device(
    device: &str,
    kind: DeviceKind,
    cfg: &Config,
    key: &str,
    loc: &Locations,
    user: &str,
    r: &mut VerifyReport,
) {
    let at = loc.at(&format!("{key}.devices"));
    let fact = format!("host.device.{}", key.trim_start_matches("path."));
    let meta = match std::fs::metadata(device) {
        Ok(m) => m,
        Err(e) => {
            r.facts.insert(fact, format!("{device}: missing"));
            r.add(
                Severity::Error,
                at,
                format!("{user}: {device}: {e}"),
                format!(
                    "correct `devices` for node {}, or attach the device",
                    r.node
                ),
            );
            return;
        }
    };
    match kind {
        DeviceKind::Serial => {
            if !meta.file_type().is_char_device() {
                r.facts.insert(fact, format!("{device}: not a terminal"));
                r.add(
                    Severity::Error,
                    at,
                    format!("{user}: {device} is not a character device (a serial line)"),
                    "name the tty of the null-modem cable, e.g. /dev/ttyS0",
                );
                return;
            }
            let opened = heartwire_hal::serial::probe(device);
            match opened {
                Ok(_) => {
                    r.facts.insert(fact, format!("{device}: terminal, opens"));
                }
                // The running daemon holds the line exclusively (TIOCEXCL).
                Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                    r.facts
                        .insert(fact, format!("{device}: terminal, in use (exclusive)"));
                }
                Err(e) => {
                    r.facts.insert(fact, format!("{device}: terminal, {e}"));
                    r.add(
                        Severity::Error,
                        at,
                        format!("{user}: cannot open {device}: {e}"),
                        "run as root; check the device's permissions and driver",
                    );
                }
            }
        }
        DeviceKind::Disk(slots) => check_disk(device, slots, cfg, &meta, at, fact, user, r),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_disk(
    device: &str,
    slots: u16,
    cfg: &Config,
    meta: &std::fs::Metadata,
    at: String,
    fact: String,
    user: &str,
    r: &mut VerifyReport,
) {
    use std::io::{Read, Seek};
    let kind = if meta.file_type().is_block_device() {
        "block device"
    } else if meta.is_file() {
        "file"
    } else {
        r.facts.insert(fact, format!("{device}: not a disk"));
        r.add(
            Severity::Error,
            at,
            format!("{user}: {device} is neither a block device nor a file"),
            "name the shared LUN, e.g. /dev/disk/by-id/wwn-…",
        );
        return;
    };
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
    {
        Ok(f) => f,
        Err(e) => {
            r.facts.insert(fact, format!("{device}: {kind}, {e}"));
            r.add(
                Severity::Error,
                at,
                format!("{user}: cannot open {device} read-write: {e}"),
                "run as root; check that the LUN is mapped read-write to this node",
            );
            return;
        }
    };
    let size = if kind == "file" {
        meta.len()
    } else {
        f.seek(std::io::SeekFrom::End(0)).unwrap_or(0)
    };
    let _ = f.seek(std::io::SeekFrom::Start(0));
    let mut first = vec![0u8; 4096];
    let header = match f.read_exact(&mut first) {
        Ok(()) => crate::wire::disk::Header::parse(&first),
        Err(_) => Err(crate::wire::disk::HeaderError::Foreign),
    };
    let need = crate::wire::disk::Header {
        cluster: cfg.spec.cluster_id,
        slots,
        sector: 4096,
    }
    .sectors()
        * 4096;
    let state = match header {
        Ok(h) if h.cluster == cfg.spec.cluster_id => {
            format!("heartwire header of this cluster, {} slots", h.slots)
        }
        Ok(h) => {
            r.add(
                Severity::Error,
                at.clone(),
                format!(
                    "{user}: {device} carries the header of another cluster (id {})",
                    h.cluster
                ),
                "give each cluster its own disk; zero it only if that cluster is gone",
            );
            format!("header of cluster {}", h.cluster)
        }
        Err(crate::wire::disk::HeaderError::Blank) => "blank (the daemon writes a header)".into(),
        Err(crate::wire::disk::HeaderError::Foreign) => {
            r.add(
                Severity::Error,
                at.clone(),
                format!("{user}: {device} holds data that is not a heartwire header"),
                format!(
                    "if the disk is really meant for this, zero its first MiB: dd if=/dev/zero of={device} bs=1M count=1"
                ),
            );
            "foreign data".into()
        }
    };
    r.facts
        .insert(fact, format!("{device}: {kind}, {size} bytes, {state}"));
    if size < need {
        r.add(
            Severity::Error,
            at,
            format!("{user}: {device} has {size} bytes; the layout needs {need}"),
            "use a larger LUN (1 MiB is plenty)",
        );
    }
}

/// The daemon's status, when one answers on the socket.
fn daemon_status(cfg: &Config, opts: &Options) -> Option<StatusReport> {
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| cfg.control_socket.clone());
    let answer = super::client::request(&socket, "status").ok()?;
    serde_json::from_str(&answer).ok()
}

/// Whether service address `address` (of `user`) lies in a subnet of interface `ifname`
/// (index `index`): an error when it lies in none, a warning when the interface has no
/// address of that family to compare with.
fn check_subnet(
    host: &Host,
    index: i32,
    ifname: &str,
    address: IpAddr,
    user: &str,
    addr_at: &str,
    r: &mut VerifyReport,
) {
    let same_family: Vec<&Addr> = host
        .addrs_of(index)
        .filter(|a| a.addr.is_ipv4() == address.is_ipv4() && !is_link_local(a.addr))
        .filter(|a| a.addr != address)
        .collect();
    if same_family.is_empty() {
        r.add(
            Severity::Warning,
            addr_at.to_owned(),
            format!(
                "{user}: {ifname} has no {} address of its own, so the subnet of {address} cannot be checked",
                if address.is_ipv4() { "IPv4" } else { "IPv6" },
            ),
            format!("give {ifname} a boot address in the service subnet"),
        );
    } else if !same_family
        .iter()
        .any(|a| in_subnet(address, a.addr, a.prefix))
    {
        r.add(
            Severity::Error,
            addr_at.to_owned(),
            format!(
                "{user}: {address} is in no subnet of {ifname} ({})",
                same_family
                    .iter()
                    .map(|a| format!("{}/{}", a.addr, a.prefix))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "choose a service address in the interface's subnet, or correct `interface`",
        );
    }
}

/// The errors `verify` would report that `run` refuses to start with, checked the same
/// way: a service address in no subnet of its interface. (Host state that may change
/// while the daemon runs — an interface down, a disk or serial line missing — is not
/// here: the daemon starts and reports it, since a path that is down is what it is
/// built to survive.)
pub fn check_start(file: &Path, text: &str, cfg: &Config) -> Vec<Finding> {
    let mut r = VerifyReport::default();
    let (Ok(loc), Ok(host)) = (config::locate(file, text), Host::read()) else {
        return Vec::new();
    };
    for g in &cfg.groups {
        for res in &g.resources {
            let ResourceKind::Ip(ip) = &res.kind else {
                continue;
            };
            let Some(ifname) = &ip.interface else {
                continue;
            };
            let Some(link) = host.link(ifname) else {
                continue;
            };
            let user = format!("{}/{}", g.name, res.name);
            let at = loc.at(&format!("group.{}.resource.{}.address", g.name, res.name));
            check_subnet(&host, link.index, ifname, ip.address, &user, &at, &mut r);
        }
    }
    r.findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

fn check_addresses(
    cfg: &Config,
    loc: &Locations,
    host: &Host,
    daemon: Option<&StatusReport>,
    probe: bool,
    r: &mut VerifyReport,
) {
    for g in &cfg.groups {
        for res in &g.resources {
            let ResourceKind::Ip(ip) = &res.kind else {
                continue;
            };
            let key = format!("group.{}.resource.{}", g.name, res.name);
            let user = format!("{}/{}", g.name, res.name);
            let Some(ifname) = &ip.interface else {
                continue;
            };
            let at = loc.at(&format!("{key}.interface"));
            check_interface(host, ifname, at.clone(), &user, r);
            if let Some(sb) = &ip.standby {
                check_interface(host, sb, loc.at(&format!("{key}.standby")), &user, r);
            }
            let Some(link) = host.link(ifname) else {
                continue;
            };
            let addr_at = loc.at(&format!("{key}.address"));
            check_subnet(host, link.index, ifname, ip.address, &user, &addr_at, r);
            let fact = format!("host.service.{user}");
            let held_here = host.addrs.iter().any(|a| a.addr == ip.address);
            if held_here {
                r.facts.insert(fact, format!("{} held here", ip.address));
                continue;
            }
            if !probe || !link.up {
                r.facts.insert(fact, format!("{} not probed", ip.address));
                continue;
            }
            match probe_address(ifname, ip.address) {
                Err(e) => {
                    r.facts.insert(fact, format!("{} probe failed", ip.address));
                    r.add(
                        Severity::Warning,
                        addr_at,
                        format!("{user}: could not probe {} on {ifname}: {e}", ip.address),
                        "run verify as root",
                    );
                }
                Ok(None) => {
                    r.facts.insert(
                        fact,
                        format!("{} free (no answer to {PROBES} probes)", ip.address),
                    );
                }
                Ok(Some(mac)) => {
                    let held_by: Vec<String> = daemon
                        .and_then(|s| s.groups.iter().find(|s| s.name == g.name))
                        .map(|s| s.held_by.clone())
                        .unwrap_or_default();
                    r.facts
                        .insert(fact, format!("{} answered by {}", ip.address, mac_str(mac)));
                    if held_by.is_empty() {
                        r.add(
                            Severity::Error,
                            addr_at,
                            format!(
                                "{user}: {} is already in use on the segment of {ifname} (answered by {}), and this cluster does not hold it",
                                ip.address,
                                mac_str(mac)
                            ),
                            "remove the address from that host, or choose another; if a cluster node holds it, verify while the daemon runs",
                        );
                    }
                }
            }
        }
    }
}

/// Probes sent per address.
const PROBES: u32 = 3;
/// Between probes.
const PROBE_GAP: Duration = Duration::from_millis(200);
/// How long to listen after the last probe.
const PROBE_WAIT: Duration = Duration::from_millis(600);

/// Asks the segment of `ifname` whether anyone has `addr`: ARP probes (IPv4) or DAD
/// Neighbor Solicitations (IPv6). Returns the MAC of a host that answered.
fn probe_address(ifname: &str, addr: IpAddr) -> Result<Option<[u8; 6]>, String> {
    use crate::wire::announce as a;
    use heartwire_hal::packet::PacketSocket;
    let ethertype = if addr.is_ipv4() {
        a::ETHERTYPE_ARP
    } else {
        a::ETHERTYPE_IPV6
    };
    let sock = PacketSocket::open(ifname, ethertype).map_err(|e| e.to_string())?;
    let own = sock.hw_addr().map_err(|e| e.to_string())?;
    let mut frame = [0u8; a::NS_LEN];
    let (len, dst) = match addr {
        IpAddr::V4(v4) => {
            let mut b = [0u8; a::ARP_LEN];
            a::arp_probe(&mut b, own, v4);
            frame[..a::ARP_LEN].copy_from_slice(&b);
            (a::ARP_LEN, a::BROADCAST)
        }
        IpAddr::V6(v6) => {
            let (_, group) = a::solicited_node(v6);
            sock.join_multicast(group).map_err(|e| e.to_string())?;
            a::ns_probe(&mut frame, v6);
            (a::NS_LEN, group)
        }
    };
    let start = Instant::now();
    let end = start + PROBE_GAP * (PROBES - 1) + PROBE_WAIT;
    let mut sent = 0;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if sent < PROBES && Instant::now() >= start + PROBE_GAP * sent {
            sock.send_to(dst, &frame[..len])
                .map_err(|e| format!("send: {e}"))?;
            sent += 1;
        }
        match sock.recv(&mut buf) {
            Ok(rx) if !rx.outgoing => {
                let pkt = &buf[..rx.meta.len.min(buf.len())];
                let hit = match addr {
                    IpAddr::V4(v4) => a::arp_conflict(pkt, v4, own),
                    IpAddr::V6(v6) => a::ns_conflict(pkt, v6, rx.src, own).then_some(rx.src),
                };
                if hit.is_some() {
                    return Ok(hit);
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    Ok(None)
}

/// Shell words that are not programs to look up.
const SHELL_WORDS: &[&str] = &[
    ":", ".", "true", "false", "echo", "printf", "test", "[", "exit", "cd", "export", "set", "if",
    "for", "while", "case", "{", "(", "kill", "read", "wait", "trap", "eval", "source",
];

fn check_commands(cfg: &Config, loc: &Locations, r: &mut VerifyReport) {
    let mut cmds: Vec<(String, String, &str)> = Vec::new();
    for g in &cfg.groups {
        for res in &g.resources {
            if let ResourceKind::Application(app) = &res.kind {
                if app.agent.is_some() {
                    // A resource agent's commands are its own: see `check_agents`.
                    continue;
                }
                let key = format!("group.{}.resource.{}", g.name, res.name);
                cmds.push((
                    format!("{key}.start"),
                    format!("{}/{} start", g.name, res.name),
                    &app.start,
                ));
                cmds.push((
                    format!("{key}.stop"),
                    format!("{}/{} stop", g.name, res.name),
                    &app.stop,
                ));
                if let Some(m) = &app.monitor {
                    cmds.push((
                        format!("{key}.monitor"),
                        format!("{}/{} monitor", g.name, res.name),
                        m,
                    ));
                }
            }
        }
    }
    for (i, e) in cfg.events.iter().enumerate() {
        for (k, c) in [("pre", &e.pre), ("post", &e.post), ("notify", &e.notify)] {
            if let Some(c) = c {
                cmds.push((format!("event.{i}.{k}"), format!("event[{i}] {k}"), c));
            }
        }
    }
    for (key, user, cmd) in cmds {
        if let Err(why) = check_command(cmd) {
            r.add(
                Severity::Error,
                loc.at(&key),
                format!("{user}: `{cmd}`: {why}"),
                "install the program, give its full path, or make it executable (chmod +x)",
            );
        }
    }
}

/// Longest an agent's `meta-data` or `validate-all` may take here.
const AGENT_CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// The parameters an OCF agent's `meta-data` declares: (name, required).
fn agent_parameters(xml: &str) -> Vec<(String, bool)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let i = tag.find(&format!(" {name}="))? + name.len() + 2;
        let quote = tag[i..]
            .chars()
            .next()
            .filter(|q| matches!(q, '"' | '\''))?;
        let rest = &tag[i + quote.len_utf8()..];
        Some(rest[..rest.find(quote)?].to_owned())
    };
    xml.split("<parameter")
        .skip(1)
        .filter(|t| t.starts_with(char::is_whitespace))
        .filter_map(|t| {
            let tag = &t[..t.find('>')?];
            let name = attr(tag, "name")?;
            Some((name, attr(tag, "required").as_deref() == Some("1")))
        })
        .collect()
}

/// Resource agents: installed and executable here; for OCF, the `params` against the
/// agent's `meta-data` (a name it does not declare, one it requires missing) and its own
/// `validate-all` with those parameters.
fn check_agents(cfg: &Config, loc: &Locations, r: &mut VerifyReport) {
    for g in &cfg.groups {
        for res in &g.resources {
            let ResourceKind::Application(app) = &res.kind else {
                continue;
            };
            let Some(agent) = &app.agent else { continue };
            let key = format!("group.{}.resource.{}", g.name, res.name);
            let user = format!("{}/{}", g.name, res.name);
            let executable = std::fs::metadata(&agent.path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            let ocf = agent.class == config::AgentClass::Ocf;
            if !executable {
                r.add(
                    Severity::Error,
                    loc.at(&format!("{key}.{}", if ocf { "agent" } else { "script" })),
                    format!("{user}: {}: {} is not an executable file here", agent.name, agent.path),
                    if ocf {
                        "install the agent (Debian: apt install resource-agents), or correct `agent`"
                    } else {
                        "install the service's package, or correct `script`"
                    },
                );
                continue;
            }
            if !ocf {
                continue;
            }
            let given: Vec<&str> = app
                .env
                .iter()
                .filter_map(|(k, _)| k.strip_prefix("OCF_RESKEY_"))
                .filter(|k| !k.starts_with("CRM_meta_"))
                .collect();
            match run_agent(agent, app, "meta-data", AGENT_CHECK_TIMEOUT, true) {
                Ok((Some(0), xml, _)) => {
                    let declared = agent_parameters(&xml);
                    for k in &given {
                        if !declared.iter().any(|(n, _)| n == k) {
                            r.add(
                                Severity::Warning,
                                loc.at(&format!("{key}.params")),
                                format!("{user}: `{k}` is not a parameter of {} (its meta-data)", agent.name),
                                "correct the name (`heartwire verify` lists what the agent takes: run the agent with meta-data)",
                            );
                        }
                    }
                    for (n, _) in declared
                        .iter()
                        .filter(|(n, req)| *req && !given.contains(&n.as_str()))
                    {
                        r.add(
                            Severity::Error,
                            loc.at(&format!("{key}.params")),
                            format!("{user}: {} requires the parameter `{n}`", agent.name),
                            format!("add it: params = {{ {n} = \"...\" }}"),
                        );
                    }
                }
                Ok((code, _, err)) => r.add(
                    Severity::Warning,
                    loc.at(&format!("{key}.agent")),
                    format!(
                        "{user}: {} meta-data failed ({}): {}",
                        agent.name,
                        code.map_or("killed".into(), |c| format!("exit {c}")),
                        err.trim()
                    ),
                    "the agent may be broken: run it with meta-data by hand",
                ),
                Err(e) => r.add(
                    Severity::Warning,
                    loc.at(&format!("{key}.agent")),
                    format!("{user}: {e}"),
                    "run the agent with meta-data by hand",
                ),
            }
            match run_agent(
                agent,
                app,
                "validate-all",
                app.timeout.min(AGENT_CHECK_TIMEOUT),
                true,
            ) {
                Ok((Some(0), _, _)) => {}
                Ok((code, out, err)) => {
                    let said: Vec<&str> = out
                        .lines()
                        .chain(err.lines())
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect();
                    let reason = said
                        .iter()
                        .find_map(|l| l.strip_prefix("ocf-exit-reason:"))
                        .or(said.last().copied())
                        .unwrap_or("");
                    r.add(
                        Severity::Error,
                        loc.at(&format!("{key}.params")),
                        format!(
                            "{user}: {} validate-all: {}{}",
                            agent.name,
                            code.map_or_else(
                                || "killed".to_owned(),
                                |c| format!("exit {c} ({})", agent.class.meaning(c))
                            ),
                            if reason.is_empty() {
                                String::new()
                            } else {
                                format!(": {reason}")
                            }
                        ),
                        "correct the params (the agent's meta-data says what each means)",
                    );
                }
                Err(e) => r.add(
                    Severity::Error,
                    loc.at(&format!("{key}.params")),
                    format!("{user}: {e}"),
                    "run the agent with validate-all by hand",
                ),
            }
        }
    }
}

/// Checks the program a `/bin/sh -c` command line starts.
fn check_command(cmd: &str) -> Result<(), String> {
    let mut words = cmd
        .split_whitespace()
        .skip_while(|w| w.contains('=') && !w.starts_with('='))
        .skip_while(|w| matches!(*w, "exec" | "!" | "nohup" | "env"));
    let Some(prog) = words.next() else {
        return Err("empty command".into());
    };
    if SHELL_WORDS.contains(&prog) {
        return Ok(());
    }
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if prog.contains('/') {
        let p = Path::new(prog);
        return match std::fs::metadata(p) {
            Err(e) => Err(format!("{prog}: {e}")),
            Ok(_) if !executable(p) => Err(format!("{prog} is not an executable file")),
            Ok(_) => Ok(()),
        };
    }
    // Commands run with exactly this PATH (children start with a clean environment).
    if heartwire_hal::process::CHILD_PATH
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| executable(&Path::new(d).join(prog)))
    {
        Ok(())
    } else {
        Err(format!(
            "{prog} is not found in the PATH commands run with ({})",
            heartwire_hal::process::CHILD_PATH
        ))
    }
}

/// Checks of the design rather than the host.
fn check_design(cfg: &Config, loc: &Locations, r: &mut VerifyReport) {
    for p in &cfg.spec.paths {
        if p.timeout < p.interval * 3 {
            r.add(
                Severity::Warning,
                loc.at(&format!("path.{}.timeout", p.name)),
                format!(
                    "path {}: timeout {:?} leaves room for fewer than three heartbeats (interval {:?}); two lost frames declare the path down",
                    p.name, p.timeout, p.interval
                ),
                format!("set timeout to at least {:?}", p.interval * 3),
            );
        }
    }
    let non_ip = cfg
        .spec
        .paths
        .iter()
        .any(|p| matches!(p.kind, PathKind::Serial | PathKind::Disk));
    if cfg.spec.nodes.len() == 2 && !non_ip && cfg.tie_breaker.is_none() {
        r.add(
            Severity::Warning,
            loc.at("cluster"),
            "two nodes, only IP paths and no tie-breaker: a broken network looks like a dead node, and both nodes take the groups".into(),
            "add a serial line or a shared disk path (kind = \"serial\" / \"disk\"), or a [tie_breaker] disk instead of two_node",
        );
    }
    if cfg.key.is_none() {
        r.add(
            Severity::Warning,
            loc.at("cluster"),
            "no cluster key: frames are not authenticated, so anyone who can send a frame to the segment or a datagram to a heartbeat port can pose as a node, move groups and split the cluster; `heartwire sync` is refused. Run without a key only in a lab".into(),
            "head -c 32 /dev/urandom > /etc/heartwire/cluster.key; chmod 600 it; key_file = \"cluster.key\" (on every node)",
        );
    }
}

/// Whether `device` is a probe-order kernel name (/dev/sdb, /dev/sdb1, /dev/sg0,
/// /dev/vdc, /dev/nvme0n1, /dev/xvda) rather than a stable link.
fn unstable_disk_name(device: &str) -> bool {
    let Some(name) = device.strip_prefix("/dev/") else {
        return false;
    };
    let letters_then_digits = |rest: &str| {
        let tail = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
        tail.len() < rest.len() && tail.chars().all(|c| c.is_ascii_digit())
    };
    ["sd", "vd", "xvd", "hd"]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(letters_then_digits))
        || name
            .strip_prefix("sg")
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        || name.starts_with("nvme")
}

/// The disks of reservations, filesystems and the tie-breaker, and the watchdog, exist
/// here; a reservation disk or the tie-breaker answers REPORT CAPABILITIES and supports
/// the configured type.
fn check_storage(cfg: &Config, loc: &Locations, r: &mut VerifyReport) {
    use crate::storage::reservation::{COMMAND_TIMEOUT, Kind, type_name};
    let mut disks: Vec<(String, String, Option<Kind>)> = Vec::new();
    for g in &cfg.groups {
        for res in &g.resources {
            let key = format!("group.{}.resource.{}", g.name, res.name);
            match &res.kind {
                ResourceKind::Reservation(rv) => {
                    if let Some(d) = &rv.device {
                        disks.push((key, d.clone(), Some(rv.kind)));
                    }
                }
                ResourceKind::Filesystem(fs) => {
                    if let Some(d) = &fs.device {
                        disks.push((key, d.clone(), None));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(d) = &cfg.tie_breaker {
        let wero = heartwire_hal::scsi::PrType::WriteExclusiveRegistrantsOnly;
        disks.push((
            "tie_breaker".into(),
            d.clone(),
            Some(Kind::Persistent(wero)),
        ));
    }
    if let Some(w) = &cfg.watchdog {
        disks.push(("watchdog".into(), w.device.clone(), None));
    }
    for (key, device, kind) in disks {
        let at = loc.at(&key);
        if key != "watchdog" && unstable_disk_name(&device) {
            r.add(
                Severity::Warning,
                at.clone(),
                format!(
                    "{key}: {device} is a kernel name, given in the order disks finish probing: \
                     after a reboot it can be another disk (the SAN lab saw the data disk and \
                     the tie-breaker swap places)"
                ),
                "name it by a stable link: /dev/disk/by-id/… or /dev/disk/by-path/… (ls -l /dev/disk/by-id)",
            );
        }
        if let Err(e) = std::fs::metadata(&device) {
            r.add(
                Severity::Error,
                at,
                format!("{key}: {device}: {e}"),
                format!("attach the device on node {}, or correct the path", r.node),
            );
            continue;
        }
        let Some(Kind::Persistent(ty)) = kind else {
            continue;
        };
        let caps = heartwire_hal::scsi::Device::open(&device)
            .map_err(heartwire_hal::scsi::CmdError::from)
            .and_then(|d| d.report_capabilities(COMMAND_TIMEOUT));
        match caps {
            Ok(c) if !c.supports(ty) => r.add(
                Severity::Error,
                at,
                format!(
                    "{key}: {device} does not support reservation type {}",
                    type_name(Kind::Persistent(ty))
                ),
                "choose a type the disk reports (heartwire reservation show DEVICE)",
            ),
            Ok(_) => {}
            Err(e) if e.unsupported() => r.add(
                Severity::Warning,
                at,
                format!("{key}: {device}: no SCSI pass-through ({e}); the block layer's IOC_PR ioctls will be used"),
                "use the /dev/sd* or /dev/sg* node of the disk if there is one",
            ),
            Err(e) => r.add(
                Severity::Error,
                at,
                format!("{key}: {device}: REPORT CAPABILITIES failed: {e}"),
                "check that the disk supports SCSI-3 persistent reservations (or use type = \"scsi2\")",
            ),
        }
    }
}

/// With the daemon up: it runs this config, and every member runs the same.
fn check_cluster(cfg: &Config, daemon: Option<&StatusReport>, r: &mut VerifyReport) {
    let Some(s) = daemon else {
        r.facts
            .insert("cluster.daemon".into(), "not running".into());
        return;
    };
    let ours = format!("{:016x}", cfg.spec.config_hash);
    r.facts.insert(
        "cluster.daemon".into(),
        format!("running, config {}", s.config_hash),
    );
    if s.config_hash != ours {
        r.add(
            Severity::Warning,
            "cluster".into(),
            format!(
                "the daemon on {} runs config {}, not this file's {ours}",
                s.node, s.config_hash
            ),
            "heartwire reload (after heartwire sync, so every node gets it)",
        );
    }
    let bad_tags: u64 = s.paths.iter().filter_map(|p| p.drops.get("bad_tag")).sum();
    for p in &s.peers {
        r.facts.insert(
            format!("cluster.peer.{}", p.name),
            format!(
                "{} config {}",
                p.state,
                p.config_hash.as_deref().unwrap_or("-")
            ),
        );
        match (&p.config_hash, p.state.as_str()) {
            (Some(h), "up") if *h != s.config_hash => r.add(
                Severity::Error,
                "cluster".into(),
                format!(
                    "node {} runs config {h}, node {} runs {}",
                    p.name, s.node, s.config_hash
                ),
                "`heartwire sync` on the node whose file is right (a change sync cannot apply — nodes, paths, timing — needs the file copied and heartwire restarted node by node; sync says so)",
            ),
            (_, "up") => {}
            _ if bad_tags > 0 => r.add(
                Severity::Error,
                "cluster".into(),
                format!(
                    "node {} is {}, and {bad_tags} frame(s) with a bad authentication tag \
                     arrived here (drops bad_tag; the log names who they claim to be from): \
                     a different key_file on {}?",
                    p.name, p.state, p.name
                ),
                format!(
                    "give every node the same key file (copy this node's to {}), then \
                     restart heartwire there",
                    p.name
                ),
            ),
            _ => r.add(
                Severity::Warning,
                "cluster".into(),
                format!(
                    "node {} is {}: its config was not compared",
                    p.name, p.state
                ),
                format!("start heartwire on {} and verify again", p.name),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert!(check_command("true").is_ok());
        assert!(check_command("FOO=1 exec /bin/sh -c 'x'").is_ok());
        assert!(check_command("sh -c 'exit 0'").is_ok());
        assert!(
            check_command("/nonexistent/start-db --now")
                .unwrap_err()
                .contains("No such file")
        );
        assert!(
            check_command("no-such-program-xyz")
                .unwrap_err()
                .contains("not found in the PATH commands run with")
        );
        let plain = std::env::temp_dir().join(format!("hw-verify-plain-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_command(&format!("{} --now", plain.display()));
        let _ = std::fs::remove_file(&plain);
        assert!(e.unwrap_err().contains("not an executable"));
        assert!(check_command("  ").is_err());
    }

    #[test]
    fn kernel_disk_names_are_told_apart_from_stable_links() {
        for d in [
            "/dev/sda",
            "/dev/sdab1",
            "/dev/sg0",
            "/dev/vdc",
            "/dev/nvme0n1",
            "/dev/xvda2",
        ] {
            assert!(unstable_disk_name(d), "{d}");
        }
        for d in [
            "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4",
            "/dev/disk/by-path/pci-0000:00:04.0-scsi-0:0:1:0",
            "/dev/mapper/mpatha",
            "/dev/lun-tie",
            "/dev/sg",
            "/dev/watchdog",
        ] {
            assert!(!unstable_disk_name(d), "{d}");
        }
    }

    #[test]
    fn agent_parameters_are_read_from_meta_data() {
        let xml = "<parameters>\n<parameter name=\"ip\" unique=\"1\" required=\"1\">\n\
                   <content/></parameter>\n<parameter name='nic'>\n</parameter>\n\
                   <parameter name=«x»>\n<parameters-not>\n<parameter name=\"cut";
        assert_eq!(
            agent_parameters(xml),
            [("ip".to_owned(), true), ("nic".to_owned(), false)]
        );
    }

    #[test]
    fn exit_codes() {
        let mut r = VerifyReport::default();
        assert_eq!(r.exit_code(), 0);
        r.add(Severity::Warning, "x".into(), "w".into(), "f");
        assert_eq!(r.exit_code(), 1);
        r.add(Severity::Error, "x".into(), "e".into(), "f");
        assert_eq!(r.exit_code(), 2);
        assert!(r.render().contains("1 error(s), 1 warning(s)"));
    }
}
