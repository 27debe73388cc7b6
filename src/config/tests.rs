//! Config loading: a valid file, and one test per class of mistake with its location.

use std::path::Path;

use super::*;
use crate::core::spec::PathKind;

/// A valid two-node config (nodes a and b, two paths), for tests to add groups to.
pub(crate) const GOOD: &str = r#"
[cluster]
name = "lab"
id = 7

[[node]]
name = "a"
id = 1

[[node]]
name = "b"
id = 2

[[path]]
name = "net1"
kind = "ether"
interval = "100us"
timeout = "1ms"
interfaces = { a = "eth1", b = "eth2" }

[[path]]
name = "net2"
kind = "udp"
interval = "1ms"
timeout = "5ms"
port = 5405
addresses = { a = "10.2.0.1", b = "10.2.0.2" }
"#;

fn load_as(text: &str, node: &str) -> Result<Config, ConfigError> {
    parse(Path::new("test.toml"), text, Some(node))
}

/// Replaces the first occurrence of `from` in GOOD and expects an error at `line`, `key`,
/// with `msg` in its message.
fn expect_err(from: &str, to: &str, line: usize, key: &str, msg: &str) {
    assert!(GOOD.contains(from), "fixture lacks {from:?}");
    let text = GOOD.replacen(from, to, 1);
    let e = load_as(&text, "a").expect_err("config must be refused");
    assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
    assert!(e.message.contains(msg), "{e}");
    assert!(
        e.to_string().starts_with(&format!("test.toml:{line}:")),
        "{e}"
    );
}

#[test]
fn good_config_resolves_per_node() {
    let a = load_as(GOOD, "a").unwrap();
    let b = load_as(GOOD, "b").unwrap();
    assert_eq!(a.local.get(), 1);
    assert_eq!(
        a.io[0],
        PathIo::Ether {
            interface: "eth1".into(),
            ethertype: 0x88b5
        }
    );
    assert_eq!(
        b.io[0],
        PathIo::Ether {
            interface: "eth2".into(),
            ethertype: 0x88b5
        }
    );
    let PathIo::Udp { bind, peers } = &b.io[1] else {
        panic!("udp")
    };
    assert_eq!(bind.to_string(), "10.2.0.2:5405");
    assert_eq!(peers[0].unwrap().to_string(), "10.2.0.1:5405");
    assert_eq!(peers[1], None);
    assert_eq!(
        a.spec.config_hash, b.spec.config_hash,
        "same file, same hash on every node"
    );
    assert_eq!(a.spec.pause_threshold, Duration::from_micros(500));
    assert_eq!(a.spec.paths[0].interval, Duration::from_micros(100));
}

#[test]
fn hash_changes_with_content() {
    let a = load_as(GOOD, "a").unwrap();
    let other = load_as(&GOOD.replace("timeout = \"5ms\"", "timeout = \"6ms\""), "a").unwrap();
    assert_ne!(a.spec.config_hash, other.spec.config_hash);
}

#[test]
fn bad_value_type() {
    expect_err("id = 7", "id = \"seven\"", 4, "cluster.id", "invalid type");
}

#[test]
fn unknown_path_kind() {
    expect_err(
        "kind = \"udp\"",
        "kind = \"carrier-pigeon\"",
        23,
        "path[1].kind",
        "unknown variant",
    );
}

#[test]
fn duplicate_node_id() {
    expect_err("id = 2", "id = 1", 12, "node[1].id", "duplicate node id 1");
}

#[test]
fn unknown_key() {
    expect_err(
        "port = 5405",
        "prot = 5405",
        26,
        "path[1].prot",
        "unknown field",
    );
}

#[test]
fn bad_duration() {
    expect_err(
        "\"100us\"",
        "\"fast\"",
        17,
        "path[0].interval",
        "not a duration",
    );
}

#[test]
fn timeout_too_short() {
    expect_err(
        "timeout = \"1ms\"",
        "timeout = \"150us\"",
        18,
        "path[0].timeout",
        "twice the interval",
    );
}

#[test]
fn missing_interface_for_a_node() {
    expect_err(
        "{ a = \"eth1\", b = \"eth2\" }",
        "{ a = \"eth1\" }",
        19,
        "path[0].interfaces",
        "no entry for node `b`",
    );
}

#[test]
fn bad_address() {
    expect_err(
        "b = \"10.2.0.2\"",
        "b = \"ten\"",
        27,
        "path[1].addresses.b",
        "not an IP address",
    );
}

#[test]
fn option_of_another_kind() {
    expect_err(
        "kind = \"udp\"",
        "kind = \"ether\"",
        26,
        "path[1].port",
        "not allowed with kind `ether`",
    );
}

#[test]
fn unknown_local_node() {
    let e = load_as(GOOD, "c").unwrap_err();
    assert!(e.message.contains("no [[node]] named `c`"), "{e}");
}

#[test]
fn syntax_error() {
    expect_err("id = 7", "id = = 7", 4, "cluster.id", "");
}

#[test]
fn key_file_checks() {
    let dir = std::env::temp_dir().join(format!("hw-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    let key = dir.join("key");
    let text = GOOD.replace("id = 7", "id = 7\nkey_file = \"key\"");
    std::fs::write(&key, b"0123456789abcdef0123").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = parse(&cfg, &text, Some("a")).unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (5, "cluster.key_file"));
    assert!(e.message.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        parse(&cfg, &text, Some("a")).unwrap().key.unwrap().len(),
        20
    );
    std::fs::write(&key, b"short").unwrap();
    let e = parse(&cfg, &text, Some("a")).unwrap_err();
    assert!(e.message.contains("at least 16"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

const GROUPS: &str = r#"
[[group]]
name = "web"
nodes = ["b", "a"]
fallback = "never"

[[group.resource]]
name = "vip"
kind = "ip"
address = "10.0.0.100/24"
interfaces = { b = "eth2", a = "eth1" }

[[group.resource]]
name = "httpd"
kind = "application"
start = "start-it"
stop = "stop-it"
monitor = "check-it"
restarts = 2
"#;

fn with_groups() -> String {
    GOOD.to_owned() + GROUPS
}

/// Like `expect_err`, on GOOD plus GROUPS (lines counted in that text).
fn expect_group_err(from: &str, to: &str, key: &str, msg: &str) {
    let full = with_groups();
    assert!(full.contains(from), "fixture lacks {from:?}");
    let text = full.replacen(from, to, 1);
    let e = load_as(&text, "a").expect_err("config must be refused");
    assert_eq!(e.key, key, "{e}");
    assert!(e.message.contains(msg), "{e}");
}

#[test]
fn groups_resolve_per_node() {
    let a = load_as(&with_groups(), "a").unwrap();
    let b = load_as(&with_groups(), "b").unwrap();
    assert_eq!(
        a.spec.groups[0].policy.nodes,
        vec![NodeId::new(2).unwrap(), NodeId::new(1).unwrap()]
    );
    assert_eq!(
        a.spec.groups[0].policy.fallback,
        crate::core::placement::Fallback::Never
    );
    assert_eq!(a.spec.groups[0].resources, 2);
    let ip = |c: &Config| match &c.groups[0].resources[0].kind {
        ResourceKind::Ip(ip) => ip.clone(),
        _ => panic!("ip first"),
    };
    assert_eq!(ip(&a).interface.as_deref(), Some("eth1"));
    assert_eq!(ip(&b).interface.as_deref(), Some("eth2"));
    assert_eq!((ip(&a).prefix, ip(&a).announce_count), (24, 3));
    let ResourceKind::Application(app) = &a.groups[0].resources[1].kind else {
        panic!("application second")
    };
    assert_eq!(
        (app.restarts, app.monitor.as_deref()),
        (2, Some("check-it"))
    );
    assert_eq!(a.spec.config_hash, b.spec.config_hash);
    assert_ne!(
        a.spec.config_hash,
        load_as(GOOD, "a").unwrap().spec.config_hash
    );
    assert_eq!(a.on_quorum_loss, QuorumLoss::Freeze);
}

#[test]
fn each_group_mistake_names_its_key() {
    expect_group_err(
        "nodes = [\"b\", \"a\"]",
        "nodes = [\"b\", \"x\"]",
        "group[0].nodes[1]",
        "not a configured node",
    );
    expect_group_err(
        "nodes = [\"b\", \"a\"]",
        "nodes = [\"b\", \"b\"]",
        "group[0].nodes[1]",
        "listed twice",
    );
    expect_group_err(
        "fallback = \"never\"",
        "fallback = \"sometimes\"",
        "group[0].fallback",
        "expected home, never",
    );
    expect_group_err(
        "kind = \"ip\"",
        "kind = \"disk\"",
        "group[0].resource[0].kind",
        "expected reservation, filesystem, ip, application, ocf or lsb",
    );
    expect_group_err(
        "address = \"10.0.0.100/24\"",
        "address = \"10.0.0.100/33\"",
        "group[0].resource[0].address",
        "not a unicast address",
    );
    expect_group_err(
        "interfaces = { b = \"eth2\", a = \"eth1\" }",
        "interfaces = { a = \"eth1\" }",
        "group[0].resource[0].interfaces",
        "no entry for node `b`",
    );
    expect_group_err(
        "restarts = 2",
        "restarts = 2\naddress = \"10.0.0.1\"",
        "group[0].resource[1].address",
        "not allowed",
    );
    expect_group_err(
        "start = \"start-it\"\n",
        "",
        "group[0].resource[1].start",
        "needs `start`",
    );
    expect_group_err(
        "id = 7\n",
        "id = 7\non_quorum_loss = \"halt\"\n",
        "cluster.on_quorum_loss",
        "watchdog",
    );
}

const STORAGE: &str = r#"
[[group]]
name = "db"
nodes = ["a", "b"]

[[group.resource]]
name = "disk"
kind = "reservation"
devices = { a = "/dev/sda", b = "/dev/sdb" }

[[group.resource]]
name = "data"
kind = "filesystem"
device = "/dev/sda1"
mountpoint = "/srv/data/"
fstype = "ext4"
fsck = true

[tie_breaker]
device = "/dev/sdc"

[watchdog]
timeout = "5s"
"#;

fn with_storage() -> String {
    GOOD.replace("id = 7\n", "id = 7\non_quorum_loss = \"halt\"\n") + STORAGE
}

fn expect_storage_err(from: &str, to: &str, key: &str, msg: &str) {
    let full = with_storage();
    assert!(full.contains(from), "fixture lacks {from:?}");
    let e = load_as(&full.replacen(from, to, 1), "a").expect_err("config must be refused");
    assert_eq!(e.key, key, "{e}");
    assert!(e.message.contains(msg), "{e}");
}

#[test]
fn storage_resources_tie_breaker_and_watchdog_resolve_per_node() {
    use crate::storage::reservation::Kind;
    let a = load_as(&with_storage(), "a").unwrap();
    let b = load_as(&with_storage(), "b").unwrap();
    let ResourceKind::Reservation(r) = &b.groups[0].resources[0].kind else {
        panic!("reservation first")
    };
    assert_eq!(r.device.as_deref(), Some("/dev/sdb"));
    assert_eq!(
        r.kind,
        Kind::Persistent(heartwire_hal::scsi::PrType::WriteExclusiveRegistrantsOnly)
    );
    let ResourceKind::Filesystem(f) = &a.groups[0].resources[1].kind else {
        panic!("filesystem second")
    };
    assert_eq!(
        (f.mountpoint.as_str(), f.options.as_str(), f.fsck),
        ("/srv/data", "defaults", true)
    );
    assert_eq!(a.tie_breaker.as_deref(), Some("/dev/sdc"));
    let w = a.watchdog.as_ref().unwrap();
    assert_eq!((w.device.as_str(), w.timeout_s), ("/dev/watchdog", 5));
    assert_eq!(a.on_quorum_loss, QuorumLoss::Halt);
}

/// A filesystem no reservation guards cannot be fenced when its node is cut off: the
/// config needs a watchdog for it (the core then halts a release that overruns the
/// bound); with a reservation or a watchdog it is accepted, and only the unguarded one
/// has a release bound (every stop's timeout plus the abandon delay).
#[test]
fn a_filesystem_without_a_reservation_needs_a_watchdog_and_gets_a_release_bound() {
    let guarded = load_as(&with_storage(), "a").unwrap();
    assert_eq!(guarded.spec.groups[0].release_bound, None);
    let unguarded = with_storage().replacen(
        "[[group.resource]]\nname = \"disk\"\nkind = \"reservation\"\ndevices = { a = \"/dev/sda\", b = \"/dev/sdb\" }\n",
        "",
        1,
    );
    assert_ne!(unguarded, with_storage(), "fixture has the reservation");
    let a = load_as(&unguarded, "a").unwrap();
    // the filesystem's default timeout (60 s) plus the 2 s a stuck child is given
    assert_eq!(
        a.spec.groups[0].release_bound,
        Some(Duration::from_secs(62))
    );
    let no_watchdog = unguarded
        .replace("on_quorum_loss = \"halt\"\n", "")
        .replace("[watchdog]\ntimeout = \"5s\"\n", "");
    let e = load_as(&no_watchdog, "a").expect_err("refused without a watchdog");
    assert_eq!(e.key, "group[0].resource[0].kind", "{e}");
    assert!(
        e.message.contains("has a filesystem but no reservation"),
        "{e}"
    );
}

#[test]
fn each_storage_mistake_names_its_key() {
    expect_storage_err(
        "devices = { a = \"/dev/sda\", b = \"/dev/sdb\" }",
        "devices = { a = \"/dev/sda\" }",
        "group[0].resource[0].devices",
        "no entry for node `b`",
    );
    expect_storage_err(
        "devices = { a = \"/dev/sda\", b = \"/dev/sdb\" }",
        "",
        "group[0].resource[0].device",
        "a disk is needed",
    );
    expect_storage_err(
        "kind = \"reservation\"",
        "kind = \"reservation\"\ntype = \"shared\"",
        "group[0].resource[0].type",
        "expected write-exclusive-registrants-only",
    );
    expect_storage_err(
        "kind = \"reservation\"",
        "kind = \"reservation\"\nmountpoint = \"/x\"",
        "group[0].resource[0].mountpoint",
        "not allowed with kind `reservation`",
    );
    expect_storage_err(
        "nodes = [\"a\", \"b\"]",
        "nodes = [\"a\", \"b\"]\nstartup = \"all\"",
        "group[0].resource[0].kind",
        "concurrent group",
    );
    expect_storage_err(
        "mountpoint = \"/srv/data/\"",
        "mountpoint = \"srv\"",
        "group[0].resource[1].mountpoint",
        "absolute path",
    );
    expect_storage_err(
        "fstype = \"ext4\"\n",
        "",
        "group[0].resource[1].fstype",
        "needs `fstype`",
    );
    expect_storage_err(
        "device = \"/dev/sda1\"",
        "device = \"sda1\"",
        "group[0].resource[1].device",
        "not an absolute path",
    );
    expect_storage_err(
        "device = \"/dev/sdc\"",
        "devices = { a = \"/dev/sdc\" }",
        "tie_breaker.devices",
        "no entry for node `b`",
    );
    expect_storage_err(
        "timeout = \"5s\"",
        "timeout = \"1500ms\"",
        "watchdog.timeout",
        "whole seconds",
    );
    // A lone node of two with two_node keeps quorum whether or not it won the race: both
    // would hold every group after a cut (review S6). Refused, at two_node's line.
    expect_storage_err(
        "id = 7\n",
        "id = 7\ntwo_node = true\n",
        "cluster.two_node",
        "two_node = true does not go with a [tie_breaker]",
    );
    let no_watchdog = with_storage().replace("[watchdog]\ntimeout = \"5s\"\n", "");
    let e = load_as(&no_watchdog, "a").expect_err("halt needs the watchdog");
    assert_eq!(e.key, "cluster.on_quorum_loss", "{e}");
}

#[test]
fn resources_must_follow_the_design_order() {
    let text = GOOD.to_owned()
        + "[[group]]\nname = \"g\"\nnodes = [\"a\"]\n\n\
           [[group.resource]]\nname = \"app\"\nkind = \"application\"\nstart = \"x\"\nstop = \"y\"\n\n\
           [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"10.0.0.1\"\ninterface = \"eth1\"\n";
    let e = load_as(&text, "a").expect_err("ip after application is refused");
    assert_eq!(e.key, "group[0].resource[1].kind", "{e}");
    assert!(e.message.contains("cannot come after"), "{e}");
}

const EVENTS: &str = r#"
[[event]]
on = "acquire"
pre = "pre-all"
post = "post-all"

[[event]]
on = "acquire"
group = "web"
pre = "pre-web"
timeout = "5s"

[[event]]
on = "node_down"
notify = "page-oncall"
"#;

fn with_events() -> String {
    with_groups() + EVENTS
}

#[test]
fn events_resolve_and_mark_pre_commands() {
    let a = load_as(&with_events(), "a").unwrap();
    assert_eq!(a.events.len(), 3);
    assert_eq!(a.events[2].on, EventOn::Named("node_down"));
    assert_eq!(a.events[2].timeout, crate::config::EVENT_TIMEOUT_DEFAULT);
    assert!(a.spec.groups[0].pre_acquire);
    assert!(!a.spec.groups[0].pre_release);
    let pre = EventConfig::find(&a.events, &EventOn::Acquire, 0, true).unwrap();
    assert_eq!(
        pre.pre.as_deref(),
        Some("pre-web"),
        "the group's own entry wins"
    );
    let post = EventConfig::find(&a.events, &EventOn::Acquire, 0, false).unwrap();
    assert_eq!(post.post.as_deref(), Some("post-all"));
    assert_ne!(
        a.spec.config_hash,
        load_as(&with_groups(), "a").unwrap().spec.config_hash,
        "events are part of the config hash"
    );
}

#[test]
fn each_event_mistake_names_its_key() {
    let cases = [
        (
            "on = \"node_down\"",
            "on = \"node_dead\"",
            "event[2].on",
            "expected acquire, release",
        ),
        (
            "notify = \"page-oncall\"",
            "pre = \"x\"",
            "event[2].pre",
            "use notify",
        ),
        (
            "pre = \"pre-all\"",
            "notify = \"x\"",
            "event[0].notify",
            "use pre or post",
        ),
        (
            "group = \"web\"",
            "group = \"db\"",
            "event[1].group",
            "not a configured group",
        ),
        (
            "notify = \"page-oncall\"",
            "notify = \"x\"\ngroup = \"web\"",
            "event[2].group",
            "do not concern a group",
        ),
        (
            "timeout = \"5s\"",
            "timeout = \"2h\"",
            "event[1].timeout",
            "1ms..=1h",
        ),
        (
            "notify = \"page-oncall\"",
            "",
            "event[2].on",
            "needs pre, post or notify",
        ),
        (
            "notify = \"page-oncall\"",
            "notify = \" \"",
            "event[2].notify",
            "empty command",
        ),
        (
            "pre = \"pre-web\"",
            "pre = \"pre-web\"\nbogus = 1",
            "event[1].bogus",
            "unknown field",
        ),
    ];
    for (from, to, key, msg) in cases {
        let full = with_events();
        assert!(full.contains(from), "fixture lacks {from:?}");
        let e = load_as(&full.replacen(from, to, 1), "a").expect_err(key);
        assert!(
            e.key.starts_with(key) || e.message.contains(key),
            "{key}: {e}"
        );
        assert!(e.message.contains(msg), "{key}: {e}");
    }
    let twice = with_events() + "\n[[event]]\non = \"acquire\"\npre = \"again\"\n";
    let e = load_as(&twice, "a").expect_err("two global pre-acquire commands");
    assert_eq!(e.key, "event[3].pre", "{e}");
    assert!(
        e.message
            .contains("a second pre command for acquire of every group (event[0] has one)"),
        "{e}"
    );
}

/// The example in the configuration reference (docs/configuration.md, man
/// heartwire.toml(5)) loads for both of its nodes: the reference cannot drift from what
/// the loader accepts.
#[test]
fn the_reference_example_config_is_valid() {
    let doc = include_str!("../../docs/configuration.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("its end");
    let text = doc[start..end].replace("key_file = \"key\"", "");
    for node in ["a", "b"] {
        let c = load_as(&text, node).unwrap_or_else(|e| panic!("docs/configuration.md: {e}"));
        assert_eq!(c.spec.paths.len(), 4);
        assert_eq!(c.spec.groups.len(), 2);
    }
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text =
        include_str!("../../dist/heartwire.toml.example").replace("key_file = \"cluster.key\"", "");
    for node in ["alpha", "beta"] {
        let c = load_as(&text, node).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.spec.networks, vec!["service", "heartbeat"]);
        let kinds: Vec<_> = c.spec.paths.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                PathKind::Ether,
                PathKind::Udp,
                PathKind::Serial,
                PathKind::Disk
            ]
        );
        let serial = &c.spec.paths[2];
        assert!(serial.interval >= serial_interval_min(115_200, 4, false));
        assert_eq!(serial.timeout, serial.interval * 5);
        assert_eq!(
            c.spec.groups[0].networks, 0b01,
            "the address lives on `service`"
        );
        let ResourceKind::Ip(ip) = &c.groups[0].resources[0].kind else {
            panic!("ip first")
        };
        assert_eq!(ip.standby.as_deref(), Some("eth1"));
        assert_eq!(c.adapters[0], vec!["eth0".to_owned(), "eth1".to_owned()]);
    }
}

const NONIP: &str = r#"
[cluster]
name = "lab"
id = 7

[[node]]
name = "a"
id = 1

[[node]]
name = "b"
id = 2

[[node]]
name = "c"
id = 3

[[path]]
name = "net1"
kind = "ether"
interval = "1ms"
timeout = "5ms"
interfaces = { a = "eth1", b = "eth1", c = "eth1" }

[[path]]
name = "line"
kind = "serial"
devices = { a = "/dev/ttyS0", b = "/dev/ttyS1" }
baud = 115200

[[path]]
name = "disk"
kind = "disk"
devices = { a = "/dev/sdb", b = "/dev/sdb", c = "/dev/sdc" }

[[group]]
name = "g"
nodes = ["a", "b"]

[[group.resource]]
name = "vip"
kind = "ip"
address = "10.0.0.9/24"
interface = "eth1"
"#;

fn nonip_err(from: &str, to: &str, key: &str, msg: &str) {
    assert!(NONIP.contains(from), "fixture lacks {from:?}");
    let e = load_as(&NONIP.replacen(from, to, 1), "a").expect_err("must be refused");
    assert_eq!(e.key, key, "{e}");
    assert!(e.message.contains(msg), "{e}");
}

#[test]
fn non_ip_paths_resolve_and_a_node_off_the_line_opens_nothing() {
    let a = load_as(NONIP, "a").unwrap();
    let c = load_as(NONIP, "c").unwrap();
    assert_eq!(
        a.io[1],
        PathIo::Serial {
            device: "/dev/ttyS0".into(),
            baud: 115_200
        }
    );
    assert_eq!(c.io[1], PathIo::Absent);
    assert_eq!(
        c.io[2],
        PathIo::Disk {
            device: "/dev/sdc".into(),
            slots: 8
        }
    );
    assert_eq!(a.spec.paths[1].nodes.len(), 2);
    assert_eq!(a.spec.paths[1].network, None);
    assert_eq!(a.spec.paths[2].interval, DISK_INTERVAL_DEFAULT);
    assert_eq!(a.spec.networks, vec!["net1"]);
    assert_eq!(a.spec.groups[0].networks, 1, "inferred from the ether path");
    assert_eq!(a.spec.config_hash, c.spec.config_hash);
}

#[test]
fn non_ip_path_mistakes_are_refused_with_their_key() {
    nonip_err(
        "devices = { a = \"/dev/ttyS0\", b = \"/dev/ttyS1\" }",
        "devices = { a = \"/dev/ttyS0\", b = \"/dev/ttyS1\", c = \"/dev/ttyS0\" }",
        "path[1].devices",
        "exactly two nodes",
    );
    nonip_err(
        "baud = 115200",
        "baud = 300",
        "path[1].baud",
        "outside 9600..=921600",
    );
    nonip_err(
        "baud = 115200",
        "baud = 9600\ninterval = \"10ms\"",
        "path[1].interval",
        "faster than a 9600-baud line carries",
    );
    nonip_err(
        "kind = \"serial\"",
        "kind = \"serial\"\nnetwork = \"x\"",
        "path[1].network",
        "not allowed with kind `serial`",
    );
    nonip_err(
        "devices = { a = \"/dev/sdb\", b = \"/dev/sdb\", c = \"/dev/sdc\" }",
        "devices = { a = \"sdb\", b = \"/dev/sdb\" }",
        "path[2].devices.a",
        "not an absolute device path",
    );
    nonip_err(
        "interface = \"eth1\"\n",
        "interface = \"eth1\"\nnetwork = \"nope\"\n",
        "group[0].resource[0].network",
        "networks: net1",
    );
    nonip_err(
        "interface = \"eth1\"\n",
        "interface = \"eth1\"\nstandby = \"eth1\"\n",
        "group[0].resource[0].standby",
        "must differ",
    );
}

/// A network path without timing takes the default profile; with only an interval, the
/// default timeout or 10 intervals, whichever is longer.
#[test]
fn network_paths_default_to_the_measured_profile() {
    use super::{NETWORK_INTERVAL_DEFAULT, NETWORK_TIMEOUT_DEFAULT};
    let text = GOOD
        .replacen("interval = \"100us\"\ntimeout = \"1ms\"\n", "", 1)
        .replacen("timeout = \"5ms\"\n", "", 1);
    let c = load_as(&text, "a").unwrap();
    let p = &c.spec.paths;
    assert_eq!(
        (p[0].interval, p[0].timeout),
        (NETWORK_INTERVAL_DEFAULT, NETWORK_TIMEOUT_DEFAULT)
    );
    assert_eq!(p[1].interval, Duration::from_millis(1));
    assert_eq!(p[1].timeout, NETWORK_TIMEOUT_DEFAULT);
    let slow = GOOD.replacen(
        "interval = \"1ms\"\ntimeout = \"5ms\"\n",
        "interval = \"50ms\"\n",
        1,
    );
    let c = load_as(&slow, "a").unwrap();
    assert_eq!(c.spec.paths[1].timeout, Duration::from_millis(500));
}

#[test]
fn canonical_form_is_a_fixed_point_and_means_the_same() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/heartwire.toml.example"
    ))
    .unwrap();
    for text in [GOOD.to_owned(), with_groups(), example] {
        let file = Path::new("/etc/heartwire/heartwire.toml");
        let c1 = canonical(file, &text).unwrap();
        assert_eq!(canonical(file, &c1).unwrap(), c1, "a fixed point:\n{c1}");
        assert!(!c1.contains('#'), "no comments");
        let hash =
            |t: &str| match parse(file, t, Some("a")).or_else(|_| parse(file, t, Some("alpha"))) {
                Ok(c) => Some(c.spec.config_hash),
                Err(e) if e.to_string().contains("key_file") => None,
                Err(e) => panic!("{e}"),
            };
        assert_eq!(hash(&text), hash(&c1), "same meaning, same hash");
    }
    let e = canonical(Path::new("x.toml"), "[cluster]\nname = 1\n").unwrap_err();
    assert!(e.to_string().contains("x.toml:2"), "{e}");
}

/// Issue 21 finding 2: a duration whose double overflows used to panic the validator —
/// inside the running daemon for `reload`, SIGHUP and `sync`.
#[test]
fn a_duration_past_every_range_is_refused_not_a_panic() {
    expect_err(
        "\"100us\"",
        "\"10000000000000000000s\"",
        17,
        "path[0].interval",
        "out of range: no duration in this file may exceed 30 days",
    );
    expect_err(
        "\"100us\"",
        "\"2min\"",
        17,
        "path[0].interval",
        "above the maximum 60s",
    );
}

/// Issue 21 finding 4: a path timeout that validated but overflowed the core's lease
/// arithmetic at the first timeout.
#[test]
fn a_timeout_the_core_cannot_add_is_refused() {
    expect_err(
        "timeout = \"5ms\"",
        "timeout = \"18446744073709551615s\"",
        25,
        "path[1].timeout",
        "out of range",
    );
    expect_err(
        "timeout = \"5ms\"",
        "timeout = \"11min\"",
        25,
        "path[1].timeout",
        "above the maximum 600s",
    );
}

/// Issue 21 finding 3: more than 256 paths, each its own network, hit an `expect` on the
/// network index before the path count was checked.
#[test]
fn too_many_paths_are_counted_before_their_networks() {
    let mut text =
        String::from("[cluster]\nname = \"c\"\nid = 1\n[[node]]\nname = \"a\"\nid = 1\n");
    for i in 0..257 {
        text.push_str(&format!(
            "[[path]]\nname = \"p{i}\"\nkind = \"ether\"\ninterval = \"1s\"\ntimeout = \"2s\"\n\
             interfaces = {{ a = \"e{i}\" }}\n"
        ));
    }
    let e = load_as(&text, "a").expect_err("refused");
    assert!(e.message.contains("more than"), "{e}");
    assert_eq!(e.key, "path");
}

/// Issue 21 finding 4: a file valid for one node and refused for another (here b's
/// standby is its own service interface) used to pass `verify` on a and stop b at start.
/// It is refused wherever it is loaded, naming the node.
#[test]
fn a_config_one_node_would_refuse_is_refused_on_every_node() {
    let text = NONIP.replacen(
        "interface = \"eth1\"\n",
        "interface = \"eth1\"\nstandbys = { a = \"eth2\", b = \"eth1\" }\n",
        1,
    );
    assert!(text.contains("standbys"), "fixture");
    for node in ["a", "b", "c"] {
        let e = load_as(&text, node).expect_err("refused on every node");
        assert!(e.message.contains("must differ"), "{node}: {e}");
        if node != "b" {
            assert!(e.message.ends_with("(for node `b`)"), "{node}: {e}");
        }
    }
}

#[test]
fn a_control_socket_group_is_a_name_or_a_number() {
    let ok = GOOD.replacen("id = 7\n", "id = 7\ncontrol_socket_group = \"hw-ops\"\n", 1);
    let c = load_as(&ok, "a").unwrap();
    assert_eq!(c.control_socket_group.as_deref(), Some("hw-ops"));
    assert_eq!(load_as(GOOD, "a").unwrap().control_socket_group, None);
    expect_err(
        "id = 7\n",
        "id = 7\ncontrol_socket_group = \"ops team\"\n",
        5,
        "cluster.control_socket_group",
        "must be a group name or number",
    );
}

#[test]
fn the_sentinel_defaults_to_half_the_node_timeout_and_each_key_is_checked() {
    let c = load_as(GOOD, "a").unwrap();
    assert_eq!(
        c.sentinel,
        SentinelConfig {
            enabled: true,
            hang_timeout: Duration::from_millis(5),
            restart: true,
        }
    );
    let text = format!(
        "{GOOD}\n[sentinel]\nenabled = false\nhang_timeout = \"1ms\"\nafter_crash = \"exit\"\n"
    );
    let c = load_as(&text, "a").unwrap();
    assert_eq!(
        c.sentinel,
        SentinelConfig {
            enabled: false,
            hang_timeout: Duration::from_millis(1),
            restart: false,
        }
    );
    let line = GOOD.lines().count() + 3;
    for (value, key, msg) in [
        // more than the node timeout (5 ms): a peer could act first
        (
            "hang_timeout = \"6ms\"",
            "sentinel.hang_timeout",
            "and 5ms (the node timeout",
        ),
        // fewer than three of the shortest interval (100 µs)
        (
            "hang_timeout = \"200us\"",
            "sentinel.hang_timeout",
            "three heartbeat intervals (300µs",
        ),
        (
            "hang_timeout = \"soon\"",
            "sentinel.hang_timeout",
            "is not a duration",
        ),
        (
            "after_crash = \"reboot\"",
            "sentinel.after_crash",
            "not one of \"restart\", \"exit\"",
        ),
    ] {
        let text = format!("{GOOD}\n[sentinel]\n{value}\n");
        let e = load_as(&text, "a").expect_err(value);
        assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
        assert!(e.message.contains(msg), "{value}: {e}");
    }
    // two_node: a peer takes over when the timeout passes, so at most half of it.
    let two = GOOD.replace("id = 7\n", "id = 7\ntwo_node = true\n");
    assert_eq!(
        load_as(&two, "a").unwrap().sentinel.hang_timeout,
        Duration::from_micros(2500)
    );
    let e = load_as(&format!("{two}\n[sentinel]\nhang_timeout = \"3ms\"\n"), "a")
        .expect_err("more than half with two_node");
    assert!(
        e.message.contains("and 2.5ms (half the node timeout"),
        "{e}"
    );
}

/// The config hash is part of the wire contract: nodes of one wire version must compute the
/// same hash from the same file whichever release they run (a node whose hash differs is a
/// stranger to the others). These were computed before the schema moved off serde
/// (`tree.rs`); a change here is a wire change (`wire::frame::VERSION`, README "Upgrades").
#[test]
fn the_config_hash_is_the_same_across_releases() {
    let hash = |text: &str| format!("{:016x}", load_as(text, "a").unwrap().spec.config_hash);
    assert_eq!(hash(GOOD), "84c20516f3182bf7");
    assert_eq!(hash(&with_groups()), "6069c205853c442e");
    assert_eq!(hash(&with_storage()), "dfd50150c7b08d21");
    let per_node = with_storage()
        .replace(
            "device = \"/dev/sdc\"",
            "devices = { a = \"/dev/sdc\", b = \"/dev/sdd\" }",
        )
        .replace(
            "timeout = \"5s\"\n",
            "timeout = \"5s\"\ndevice = \"/dev/watchdog1\"\n",
        );
    assert_eq!(hash(&per_node), "1c2cf0d726a8b70b");
    let canonical = canonical(Path::new("x.toml"), &per_node).unwrap();
    assert!(
        canonical.ends_with(
            "\n[tie_breaker.devices]\na = \"/dev/sdc\"\nb = \"/dev/sdd\"\n\n[watchdog]\ndevice = \"/dev/watchdog1\"\ntimeout = \"5s\"\n"
        ),
        "a table with only sub-tables has no header of its own:\n{canonical}"
    );
    assert!(
        canonical.contains("\nnodes = [\"a\", \"b\"]\n"),
        "{canonical}"
    );
}

/// What serde's derive refused, the schema reader refuses too, naming the key.
#[test]
fn schema_errors_name_the_key() {
    expect_err(
        "id = 2",
        "id = 300",
        12,
        "node[1].id",
        "invalid value: integer `300`, expected u8",
    );
    expect_err("id = 2", "id = -1", 12, "node[1].id", "expected u8");
    expect_err(
        "id = 2",
        "id = 2.0",
        12,
        "node[1].id",
        "invalid type: float, expected u8",
    );
    expect_err("name = \"b\"", "", 10, "node[1]", "missing field `name`");
    expect_err(
        "port = 5405",
        "port = 5405\n[path.interfaces.x]\ny = 1",
        27,
        "path.interfaces.x",
        "invalid type: table, expected a string",
    );
    let e = load_as(&GOOD.replace("[cluster]", "[clutser]"), "a").unwrap_err();
    assert!(
        e.message
            .contains("unknown field `clutser`, expected one of `cluster`"),
        "{e}"
    );
    let e = load_as(&GOOD.replacen("[[node]]", "node = 1\n[[nodes]]", 1), "a").unwrap_err();
    assert!(e.message.contains("unknown field"), "{e}");
    let e = load_as("[[cluster]]\nname = \"x\"\nid = 1\n", "a").unwrap_err();
    assert!(
        e.message.contains("invalid type: array, expected a table"),
        "{e}"
    );
}

const AGENTS: &str = r#"
[[group]]
name = "web"
nodes = ["a", "b"]

[[group.resource]]
name = "vip"
kind = "ocf"
agent = "heartbeat:IPaddr2"
params = { ip = "10.9.0.5", cidr_netmask = "24" }

[[group.resource]]
name = "nginx"
kind = "lsb"
script = "nginx"
monitor_interval = "3s"
"#;

/// `kind = "ocf"` and `"lsb"`: the agent's path, its commands and the OCF environment.
#[test]
fn resource_agents_resolve_to_their_commands_and_environment() {
    let c = load_as(&(GOOD.to_owned() + AGENTS), "a").unwrap();
    let web = &c.groups[0];
    let ResourceKind::Application(vip) = &web.resources[0].kind else {
        panic!("an agent runs like an application");
    };
    let agent = vip.agent.as_ref().unwrap();
    assert_eq!(agent.path, "/usr/lib/ocf/resource.d/heartbeat/IPaddr2");
    assert_eq!(agent.name, "ocf:heartbeat:IPaddr2");
    assert_eq!(
        vip.start,
        "exec '/usr/lib/ocf/resource.d/heartbeat/IPaddr2' start"
    );
    assert_eq!(
        vip.monitor.as_deref(),
        Some("exec '/usr/lib/ocf/resource.d/heartbeat/IPaddr2' monitor")
    );
    let env: std::collections::BTreeMap<&str, &str> = vip
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env["OCF_ROOT"], "/usr/lib/ocf");
    assert_eq!(env["OCF_RESKEY_ip"], "10.9.0.5");
    assert_eq!(env["OCF_RESKEY_cidr_netmask"], "24");
    assert_eq!(env["OCF_RESOURCE_INSTANCE"], "web-vip");
    assert_eq!(env["OCF_RESOURCE_TYPE"], "IPaddr2");
    assert_eq!(env["OCF_RESKEY_CRM_meta_timeout"], "20000");
    assert_eq!(vip.monitor_interval, Duration::from_secs(10));
    assert_eq!(web.resources[0].kind.name(), "ocf");
    let ResourceKind::Application(nginx) = &web.resources[1].kind else {
        panic!("lsb");
    };
    assert_eq!(
        nginx.monitor.as_deref(),
        Some("exec '/etc/init.d/nginx' status")
    );
    assert_eq!(
        nginx.env,
        [("SYSTEMCTL_SKIP_REDIRECT".to_owned(), "1".to_owned())],
        "an init script gets no OCF variables, and runs itself (not through systemctl)"
    );
    assert_eq!(web.resources[1].kind.name(), "lsb");
    // The agent and its parameters are part of the config hash.
    let other = load_as(
        &(GOOD.to_owned() + &AGENTS.replace("10.9.0.5", "10.9.0.6")),
        "a",
    );
    assert_ne!(other.unwrap().spec.config_hash, c.spec.config_hash);
}

#[test]
fn bad_agents_are_refused_naming_the_key() {
    let bad = |from: &str, to: &str, key: &str, msg: &str| {
        let text = GOOD.to_owned() + &AGENTS.replacen(from, to, 1);
        let e = load_as(&text, "a").expect_err(to);
        assert_eq!(e.key, key, "{e}");
        assert!(e.message.contains(msg), "{e}");
    };
    bad(
        "agent = \"heartbeat:IPaddr2\"\n",
        "",
        "group[0].resource[0].agent",
        "needs `agent`",
    );
    bad(
        "heartbeat:IPaddr2",
        "IPaddr2",
        "group[0].resource[0].agent",
        "provider:type",
    );
    bad(
        "heartbeat:IPaddr2",
        "../x:y",
        "group[0].resource[0].agent",
        "provider:type",
    );
    bad(
        "cidr_netmask",
        "cidr-netmask",
        "group[0].resource[0].params.cidr-netmask",
        "letters",
    );
    bad(
        "script = \"nginx\"",
        "script = \"../bin/sh\"",
        "group[0].resource[1].script",
        "not a script",
    );
    bad(
        "script = \"nginx\"",
        "start = \"x\"",
        "group[0].resource[1].start",
        "not allowed with kind `lsb`",
    );
    bad(
        "monitor_interval = \"3s\"",
        "params = { a = \"b\" }",
        "group[0].resource[1].params",
        "not allowed",
    );
}

/// Exit codes by class: OCF's soft, hard and fatal errors; LSB's status codes.
#[test]
fn agent_exit_codes_have_their_class_meanings() {
    use super::{AgentClass::*, Verdict::*};
    for (class, action, code, verdict) in [
        (Ocf, "monitor", 0, Ok),
        (Ocf, "monitor", 7, Soft),
        (Ocf, "monitor", 8, Ok),
        (Ocf, "monitor", 190, Ok),
        (Ocf, "monitor", 1, Soft),
        (Ocf, "start", 2, Hard),
        (Ocf, "monitor", 5, Hard),
        (Ocf, "start", 6, Fatal),
        (Ocf, "stop", 1, Soft),
        (Lsb, "monitor", 3, Soft),
        (Lsb, "monitor", 1, Soft),
        (Lsb, "start", 5, Hard),
        (Lsb, "start", 6, Fatal),
        (Lsb, "stop", 0, Ok),
    ] {
        assert_eq!(
            class.verdict(action, code),
            verdict,
            "{class:?} {action} {code}"
        );
    }
}
