//! `heartwire run` with broken configs: exit code 2, a message naming file, line and key,
//! and nothing created (no control socket, no process left running).

use std::path::PathBuf;
use std::process::Command;

const GOOD: &str = r#"[cluster]
name = "t"
id = 3

[[node]]
name = "a"
id = 1

[[node]]
name = "b"
id = 2

[[path]]
name = "net1"
kind = "udp"
interval = "1ms"
timeout = "5ms"
port = 5405
addresses = { a = "127.0.0.1", b = "127.0.0.2" }
"#;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_with(tag: &str, text: &str) -> (Option<i32>, String, bool) {
    let dir = TempDir(std::env::temp_dir().join(format!("hw-cfgcli-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let cfg = dir.0.join("broken.toml");
    std::fs::write(&cfg, text).unwrap();
    let sock = dir.0.join("ctl.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_heartwire"))
        .args(["run", "--foreground", "--node", "a", "-c"])
        .arg(&cfg)
        .arg("--socket")
        .arg(&sock)
        .output()
        .expect("run heartwire");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        sock.exists(),
    )
}

fn refused(tag: &str, from: &str, to: &str, location: &str, key: &str) {
    assert!(GOOD.contains(from), "fixture lacks {from}");
    let (code, stderr, sock) = run_with(tag, &GOOD.replacen(from, to, 1));
    assert_eq!(code, Some(2), "exit code; stderr: {stderr}");
    assert!(
        stderr.contains(&format!("broken.toml:{location}")),
        "file and line in: {stderr}"
    );
    assert!(stderr.contains(key), "key `{key}` in: {stderr}");
    assert!(!sock, "no control socket created");
}

#[test]
fn bad_value_type_is_refused() {
    refused("type", "id = 3", "id = \"three\"", "3:6:", "cluster.id");
}

#[test]
fn unknown_path_kind_is_refused() {
    refused(
        "kind",
        "kind = \"udp\"",
        "kind = \"tokenring\"",
        "15:8:",
        "path[0].kind",
    );
}

#[test]
fn duplicate_node_id_is_refused() {
    refused("dup", "id = 2", "id = 1", "11:6:", "node[1].id");
}

#[test]
fn missing_file_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_heartwire"))
        .args(["run", "-c", "/nonexistent/hw.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hw.toml: cannot read"));
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_heartwire"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn good_config_passes_validation_but_needs_its_devices() {
    // The same file with valid content gets past config (so the refusals above are about
    // the config): it then fails on the host (no such address here), exit 1, not 2.
    let (code, stderr, _) = run_with("good", &GOOD.replace("127.0.0.1", "192.0.2.1"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("path `net1`"), "{stderr}");
}
