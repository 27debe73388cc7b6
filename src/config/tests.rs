//! Config loading: a valid file, and one test per class of mistake with its location.

use std::path::Path;

use super::*;

const GOOD: &str = r#"
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
        "not allowed on a path of kind `ether`",
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
