//! `heartwire init`: quick configuration. From a few facts — node names and addresses,
//! the interfaces (discovered over rtnetlink when not given), a service address, an
//! application — write a complete, commented config that loads, and a fresh cluster key
//! (0600) unless one is there already.
//!
//! The output depends only on the flags and, when interfaces are discovered or a service
//! address is matched to its interface, on this host's interfaces: the same flags on the
//! same host give the same file. Choices it makes (written into the file as comments):
//! one ether path per interface, one UDP path over the node addresses, the default
//! profile (no timing on the paths: `config::NETWORK_INTERVAL_DEFAULT` and
//! `NETWORK_TIMEOUT_DEFAULT`, measured by `make soak`) with `[realtime]`, a shared disk
//! and a serial line when given, one hot-standby group (home = the first node).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::host::Host;
use crate::config;

/// What the operator said (the `init` flags).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InitArgs {
    /// Cluster name.
    #[arg(long)]
    pub cluster: String,
    /// Cluster id, 1..=65535 (default: derived from the name).
    #[arg(long)]
    pub id: Option<u16>,
    /// NAME=ADDRESS for each node, in priority order (the first is home).
    #[arg(long = "node", required = true, value_parser = parse_node)]
    pub nodes: Vec<(String, IpAddr)>,
    /// Heartbeat interface (the same name on every node); repeat for more.
    #[arg(long = "interface")]
    pub interfaces: Vec<String>,
    /// Service address ADDRESS/PREFIX that moves with the group.
    #[arg(long, value_parser = parse_prefix)]
    pub service_ip: Option<(IpAddr, u8)>,
    /// Resource group name.
    #[arg(long, default_value = "service")]
    pub group: String,
    /// Application start command.
    #[arg(long)]
    pub start: Option<String>,
    /// Application stop command.
    #[arg(long)]
    pub stop: Option<String>,
    /// Application monitor command (exit 0: healthy).
    #[arg(long)]
    pub monitor: Option<String>,
    /// Serial device of a null-modem line between the first two nodes.
    #[arg(long)]
    pub serial: Option<String>,
    /// Shared disk for a disk heartbeat path.
    #[arg(long)]
    pub disk: Option<String>,
    /// Config file to write.
    #[arg(short, long, default_value = "/etc/heartwire/heartwire.toml")]
    pub output: PathBuf,
    /// Replace an existing config (the key is kept).
    #[arg(long)]
    pub force: bool,
}

fn parse_node(s: &str) -> Result<(String, IpAddr), String> {
    let (name, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write NAME=ADDRESS"))?;
    let ip = addr
        .parse()
        .map_err(|e| format!("`{addr}` is not an IP address: {e}"))?;
    Ok((name.to_owned(), ip))
}

fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: write ADDRESS/PREFIX, e.g. 10.0.0.100/24"))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|e| format!("`{addr}` is not an IP address: {e}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok((ip, p)),
        _ => Err(format!("`{prefix}` is not a prefix length 0..={max}")),
    }
}

/// At least two nodes, each name and each address once (a repeat would otherwise
/// surface as a duplicate key on some line of the rendered config).
fn check_nodes(nodes: &[(String, IpAddr)]) -> Result<(), String> {
    if nodes.len() < 2 {
        return Err("give at least two --node NAME=ADDRESS".into());
    }
    for (i, (name, ip)) in nodes.iter().enumerate() {
        if let Some((_, first)) = nodes[..i].iter().find(|(n, _)| n == name) {
            return Err(format!(
                "--node {name} is given twice ({name}={first} and {name}={ip}): name each node once"
            ));
        }
        if let Some((other, _)) = nodes[..i].iter().find(|(_, a)| a == ip) {
            return Err(format!(
                "--node {other} and --node {name} have the same address {ip}: each node needs its own"
            ));
        }
    }
    Ok(())
}

/// Interface names discovery skips: bridges and virtual ends that are not cluster wires.
const SKIP_PREFIXES: &[&str] = &["veth", "docker", "virbr", "br-", "vnet", "tap", "tun", "wg"];

/// Writes the config (and the key if missing); returns what it did, one line each.
pub fn init(a: &InitArgs) -> Result<Vec<String>, String> {
    check_nodes(&a.nodes)?;
    if a.output.exists() && !a.force {
        return Err(format!(
            "{} exists; --force replaces it (the key file is kept)",
            a.output.display()
        ));
    }
    if a.start.is_some() != a.stop.is_some() || (a.monitor.is_some() && a.start.is_none()) {
        return Err(
            "an application needs both --start and --stop (and --monitor only with them)".into(),
        );
    }
    let host = Host::read()?;
    let interfaces = if a.interfaces.is_empty() {
        let found = host.discover(SKIP_PREFIXES);
        if found.is_empty() {
            return Err(
                "no interface is up with carrier here: name the heartbeat interfaces with --interface"
                    .into(),
            );
        }
        found
    } else {
        a.interfaces.clone()
    };
    let text = render(a, &interfaces, &host);
    let mut key = [0u8; 32];
    heartwire_hal::random::fill(&mut key).map_err(|e| format!("random key: {e}"))?;
    check_loads(&text, &key, &a.nodes[0].0)?;
    let mut done = Vec::new();
    let key_path = a.output.parent().unwrap_or(Path::new(".")).join(KEY_FILE);
    if key_path.exists() {
        done.push(format!("kept the existing key {}", key_path.display()));
    } else {
        config::install_atomically(&key_path, &key, 0o600)
            .map_err(|e| format!("writing {}: {e}", key_path.display()))?;
        done.push(format!(
            "wrote a new cluster key {} (mode 0600): copy it to every node",
            key_path.display()
        ));
    }
    config::install_atomically(&a.output, text.as_bytes(), 0o644)
        .map_err(|e| format!("writing {}: {e}", a.output.display()))?;
    done.push(format!(
        "wrote {} ({} node(s), {} interface(s){})",
        a.output.display(),
        a.nodes.len(),
        interfaces.len(),
        a.service_ip.map_or(String::new(), |(ip, p)| format!(
            ", service address {ip}/{p}"
        ))
    ));
    done.push(format!(
        "next: heartwire verify -c {0}; copy it and the key to every node (or `heartwire sync` once the cluster runs); heartwire run -c {0} on each node (it finds its [[node]] by host name or by its UDP address)",
        a.output.display()
    ));
    Ok(done)
}

/// Loads `text` as if installed next to `key`, in a scratch directory, so nothing is
/// written when the flags make a config that does not load.
fn check_loads(text: &str, key: &[u8], node: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("heartwire-init-{}", std::process::id()));
    let file = dir.join("heartwire.toml");
    let result = config::install_atomically(&dir.join(KEY_FILE), key, 0o600)
        .map_err(|e| format!("scratch key in {}: {e}", dir.display()))
        .and_then(|()| {
            config::parse(&file, text, Some(node)).map_err(|e| {
                format!(
                    "these flags make a config that does not load (nothing was written): {}",
                    e.to_string()
                        .replace(&format!("{}:", file.display()), "line ")
                )
            })
        });
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|_| ())
}

/// The key file's name, next to the config.
const KEY_FILE: &str = "cluster.key";

/// Cluster id from the name when not given: CRC32 folded into 1..=65535.
fn derived_id(name: &str) -> u16 {
    u16::try_from(crc32fast::hash(name.as_bytes()) % 65535 + 1).expect("invariant: <= 65535")
}

fn per_node(nodes: &[(String, IpAddr)], value: &dyn Fn(&str, &IpAddr) -> String) -> String {
    let items: Vec<String> = nodes
        .iter()
        .map(|(n, ip)| format!("{n} = \"{}\"", value(n, ip)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

fn render(a: &InitArgs, interfaces: &[String], host: &Host) -> String {
    let mut t = String::new();
    let id = a.id.unwrap_or_else(|| derived_id(&a.cluster));
    let two = a.nodes.len() == 2;
    let non_ip = a.serial.is_some() || a.disk.is_some();
    let _ = writeln!(
        t,
        "# heartwire cluster `{}`, written by `heartwire init`. The same file goes on every\n\
         # node; `heartwire verify` checks it and the host, `heartwire sync` copies it.\n",
        a.cluster
    );
    let _ = writeln!(t, "[cluster]\nname = \"{}\"", a.cluster);
    let _ = writeln!(
        t,
        "id = {id}{}",
        if a.id.is_none() {
            "                  # derived from the name; unique per segment"
        } else {
            ""
        }
    );
    let _ = writeln!(
        t,
        "key_file = \"{KEY_FILE}\"   # 32 random bytes, mode 0600, the same on every node"
    );
    if two {
        let _ = writeln!(
            t,
            "two_node = true            # the survivor of two keeps quorum{}",
            if non_ip {
                ""
            } else {
                "; with only IP paths a\n                           # cut network makes both nodes owners: add --serial or --disk"
            }
        );
    }
    t.push('\n');
    for (i, (n, _)) in a.nodes.iter().enumerate() {
        let _ = writeln!(t, "[[node]]\nname = \"{n}\"\nid = {}\n", i + 1);
    }
    let ms = |d: std::time::Duration| d.as_millis();
    let _ = writeln!(
        t,
        "# The daemon runs SCHED_FIFO with its memory locked, so a busy host does not delay\n\
         # its heartbeats (its sentinel runs one priority above it); idle CPUs poll instead\n\
         # of halting (a halted virtual CPU wakes late). The default profile below was\n\
         # measured with both.\n\
         [realtime]\npriority = 50\ncpu_dma_latency_us = 0\n\n\
         # The paths take the default profile: heartbeats every {} ms, a peer down after\n\
         # {} ms of silence — the smallest timing that took over from no live node in a\n\
         # 10-minute soak with every core busy (docs/DESIGN.md §5, `make soak`). A host that\n\
         # stalls longer than the timeout (an overcommitted hypervisor, swapping) is taken\n\
         # over while it is alive: run `make soak`-like load on your hosts, or watch\n\
         # `heartwire status` (`local pauses`, the peers' JITTER) for a day, before you set\n\
         # `interval` and `timeout` on a path yourself.",
        ms(config::NETWORK_INTERVAL_DEFAULT),
        ms(config::NETWORK_TIMEOUT_DEFAULT)
    );
    for ifname in interfaces {
        let _ = writeln!(
            t,
            "[[path]]\nname = \"{ifname}\"\nkind = \"ether\"\ninterfaces = {}\n",
            per_node(&a.nodes, &|_, _| ifname.clone())
        );
    }
    let local_net = a.nodes.iter().find_map(|(_, ip)| {
        host.addrs
            .iter()
            .any(|h| h.addr == *ip)
            .then(|| host.interface_for(*ip, interfaces))
            .flatten()
    });
    let _ = writeln!(
        t,
        "[[path]]\nname = \"udp\"\nkind = \"udp\"\nport = 5405\n{}addresses = {}\n",
        local_net.map_or(String::new(), |n| format!(
            "network = \"{n}\"            # the same wire as the ether path `{n}`\n"
        )),
        per_node(&a.nodes, &|_, ip| ip.to_string())
    );
    if let Some(dev) = &a.serial {
        let pair = &a.nodes[..2];
        let _ = writeln!(
            t,
            "[[path]]\nname = \"serial\"\nkind = \"serial\"          # interval and timeout follow from the baud rate\nbaud = 115200\ndevices = {}\n",
            per_node(pair, &|_, _| dev.clone())
        );
    }
    if let Some(dev) = &a.disk {
        let _ = writeln!(
            t,
            "[[path]]\nname = \"disk\"\nkind = \"disk\"              # a small shared LUN; a blank one gets a header\ndevices = {}\n",
            per_node(&a.nodes, &|_, _| dev.clone())
        );
    }
    if a.service_ip.is_none() && a.start.is_none() {
        return t;
    }
    let names: Vec<String> = a.nodes.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let _ = writeln!(
        t,
        "# Hot standby: runs on {} (home); moves down the list when it fails; stays\n\
         # where it is when home comes back (fallback = \"never\": no second outage).\n\
         [[group]]\nname = \"{}\"\nnodes = [{}]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n",
        a.nodes[0].0,
        a.group,
        names.join(", ")
    );
    if let Some((ip, prefix)) = a.service_ip {
        let iface = host.interface_for(ip, interfaces).unwrap_or(&interfaces[0]);
        let _ = writeln!(
            t,
            "[[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"{ip}/{prefix}\"\ninterface = \"{iface}\"\n"
        );
    }
    if let (Some(start), Some(stop)) = (&a.start, &a.stop) {
        let _ = writeln!(
            t,
            "[[group.resource]]\nname = \"app\"\nkind = \"application\"\nstart = {}\nstop = {}",
            toml_str(start),
            toml_str(stop)
        );
        if let Some(m) = &a.monitor {
            let _ = writeln!(t, "monitor = {}\nmonitor_interval = \"5s\"", toml_str(m));
        }
        t.push('\n');
    }
    t
}

/// A TOML string.
fn toml_str(s: &str) -> String {
    crate::config::toml_string(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_named_or_addressed_twice_is_refused_by_name() {
        let n = |s: &str| parse_node(s).unwrap();
        let twice = check_nodes(&[n("alpha=10.0.0.1"), n("alpha=10.0.0.2")]).unwrap_err();
        assert!(twice.contains("--node alpha is given twice"), "{twice}");
        let shared = check_nodes(&[n("alpha=10.0.0.1"), n("beta=10.0.0.1")]).unwrap_err();
        assert!(
            shared.contains("--node alpha and --node beta have the same address"),
            "{shared}"
        );
        assert!(check_nodes(&[n("alpha=10.0.0.1")]).is_err());
        assert!(check_nodes(&[n("alpha=10.0.0.1"), n("beta=10.0.0.2")]).is_ok());
    }

    #[test]
    fn ids_and_strings() {
        assert_eq!(derived_id("prod"), derived_id("prod"));
        assert_ne!(derived_id("prod"), derived_id("test"));
        assert_ne!(derived_id(""), 0);
        let text = format!("x = {}", toml_str("a \"b\" 'c'"));
        let v = toml::de::DeTable::parse(&text).unwrap().into_inner();
        assert_eq!(
            v.get("x").and_then(|x| x.get_ref().as_str()),
            Some("a \"b\" 'c'"),
            "a TOML string that reads back"
        );
    }
}
