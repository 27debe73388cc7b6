//! Running as a service: a detached daemon (double fork, pid file with a lock, syslog
//! through a test `/dev/log` socket) and the systemd notify protocol against a test
//! socket. Real daemons in the netns lab.

mod lab;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::{Lab, LabConfig};

/// Kills a detached daemon (by the pid it reported, a process this test started) when
/// the test ends, also on failure.
struct Detached(Option<u32>);

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn receive_until(
    sock: &UnixDatagram,
    limit: Duration,
    mut done: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !done(&got) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_detached_daemon_writes_a_locked_pid_file_logs_to_syslog_and_stops_on_sigterm() {
    let lab = Lab::new("sd", 2, &LabConfig::default());
    let syslog_path = lab.dir.join("log.sock");
    let syslog = UnixDatagram::bind(&syslog_path).unwrap();
    let pid_path = lab.dir.join("run/heartwire.pid");
    let start = || {
        Command::new("ip")
            .args(["netns", "exec", &lab.ns(0)])
            .arg(lab::binary())
            .args(["run", "-c"])
            .arg(&lab.config_path)
            .args(["--node", "a", "--socket"])
            .arg(lab.socket(0))
            .arg("--pid-file")
            .arg(&pid_path)
            .arg("--log-socket")
            .arg(&syslog_path)
            .output()
            .unwrap()
    };
    let out = start();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = stdout
        .trim()
        .strip_prefix("heartwire: started, pid ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("start message: {stdout:?}"));
    let mut guard = Detached(Some(pid));
    assert!(
        alive(pid),
        "the daemon runs after the starting command returned"
    );
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap().trim(),
        pid.to_string()
    );
    // Detached: in a session of its own (setsid before the second fork), not ours.
    let session = |who: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{who}/stat")).unwrap();
        stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .nth(3)
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        session(&pid.to_string()),
        session("self"),
        "a session of its own"
    );
    let lines = receive_until(&syslog, Duration::from_secs(5), |got| {
        got.iter().any(|l| l.contains("event=adapter_up"))
    });
    // The pid file's process is the sentinel; the daemon, its child, logs under its own.
    let tag = format!("heartwire[{pid}]: ");
    assert!(
        lines.iter().any(|l| l.starts_with("<30>")
            && l.contains(&tag)
            && l.contains(
                "INFO  a: sentinel {pid}: watching daemon "
                    .replace("{pid}", &pid.to_string())
                    .as_str()
            )),
        "syslog lines (facility daemon, info): {lines:?}"
    );
    let daemon = lines
        .iter()
        .find_map(|l| l.split("watching daemon ").nth(1))
        .and_then(|r| r.split(':').next())
        .expect("the sentinel names its daemon");
    assert!(
        lines.iter().any(|l| l.starts_with("<30>")
            && l.contains(&format!("heartwire[{daemon}]: "))
            && l.contains("INFO  a: started: cluster hw")),
        "syslog lines (facility daemon, info): {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("event=adapter_up")),
        "{lines:?}"
    );
    // A second instance is refused with the holder's pid.
    let again = start();
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(&format!("another heartwire is running (pid {pid}")),
        "{err}"
    );
    assert!(
        alive(pid),
        "the refused start left the running daemon alone"
    );
    // SIGTERM: it stops, logs that, and removes its pid file.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "stopped on SIGTERM");
    guard.0 = None;
    assert!(!pid_path.exists(), "pid file removed");
    let rest = receive_until(&syslog, Duration::from_millis(500), |_| false);
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

/// The journal's entries of the lab's journald with `SYSLOG_IDENTIFIER=heartwire`, as
/// `journalctl -o json` gives them.
fn journal(store: &std::path::Path) -> Vec<serde_json::Value> {
    let out = Command::new("journalctl")
        .arg("-D")
        .arg(store)
        .args(["-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=heartwire"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Issue 20: run as systemd runs the unit (`--foreground`, stderr a journal stream named
/// by `JOURNAL_STREAM`), the daemon logs to Debian's journald natively: every line an
/// entry of its own with PRIORITY and HW_NODE, an event with its MESSAGE_ID and one
/// HW_ field per `key=value` (a peer's death selected by `MESSAGE_ID` and `HW_PEER`), and
/// nothing twice through the stream.
#[test]
fn under_systemd_the_daemon_logs_to_the_journal_with_message_ids_and_fields() {
    let mut lab = Lab::new("jn", 2, &LabConfig::default());
    let store = lab.journal_store();
    lab.journal_node = Some(0);
    lab.start_all();
    lab.kill(1);
    let field = |e: &serde_json::Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
    let node_down = heartwire::daemon::log::message_id("node_down");
    let deadline = Instant::now() + Duration::from_secs(10);
    let entries = loop {
        let entries = journal(&store);
        if entries.iter().any(|e| field(e, "MESSAGE_ID") == node_down) || Instant::now() > deadline
        {
            break entries;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let down = entries
        .iter()
        .find(|e| field(e, "MESSAGE_ID") == node_down)
        .unwrap_or_else(|| panic!("no node_down entry in {entries:#?}"));
    assert_eq!(
        field(down, "_TRANSPORT"),
        "journal",
        "native, not the stream"
    );
    assert_eq!(field(down, "HW_EVENT"), "node_down");
    assert_eq!(field(down, "HW_PEER"), "b");
    assert_eq!(field(down, "HW_NODE"), "a");
    assert_eq!(field(down, "PRIORITY"), "6");
    assert!(field(down, "HW_AT").parse::<f64>().is_ok(), "{down:#}");
    assert!(
        field(down, "MESSAGE").starts_with("event=node_down "),
        "{down:#}"
    );
    let started = entries
        .iter()
        .find(|e| field(e, "MESSAGE").starts_with("started: cluster"))
        .unwrap_or_else(|| panic!("no start line in {entries:#?}"));
    assert!(
        field(started, "MESSAGE_ID").is_empty(),
        "not an event: {started:#}"
    );
    assert!(field(started, "CODE_FILE").ends_with(".rs"), "{started:#}");
    let streamed: Vec<_> = entries
        .iter()
        .filter(|e| field(e, "_TRANSPORT") == "stdout")
        .collect();
    assert!(
        streamed.is_empty(),
        "lines also went to stderr: {streamed:#?}"
    );
}

#[test]
fn the_systemd_notify_protocol_says_ready_kicks_the_watchdog_and_says_stopping() {
    let mut lab = Lab::new("sn", 2, &LabConfig::default());
    let notify_path = lab.dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(0)])
        .arg(lab::binary())
        .args(["run", "--foreground", "-c"])
        .arg(&lab.config_path)
        .args(["--node", "a", "--socket"])
        .arg(lab.socket(0))
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "100000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let h = lab.adopt_helper(child);
    let got = receive_until(&notify, Duration::from_secs(5), |got| {
        got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 5
    });
    let ready = got
        .iter()
        .position(|m| m.starts_with("READY=1"))
        .expect("READY=1 sent");
    assert!(got[ready].contains("MAINPID="), "{got:?}");
    let kicks = got.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(kicks >= 5, "WATCHDOG=1 every 50 ms: {got:?}");
    assert!(
        got.iter().position(|m| m == "WATCHDOG=1").unwrap() > ready,
        "kicks follow readiness"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    lab.finish_helper(h, Duration::from_secs(15));
    let rest = receive_until(&notify, Duration::from_millis(500), |got| {
        got.iter().any(|m| m == "STOPPING=1")
    });
    assert!(rest.iter().any(|m| m == "STOPPING=1"), "{rest:?}");
}

#[test]
fn the_static_binary_runs_in_an_empty_root_with_no_lib() {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/x86_64-unknown-linux-musl/release/heartwire");
    assert!(
        bin.exists(),
        "{} is missing: run `make static` first",
        bin.display()
    );
    let root = std::env::temp_dir().join(format!("hw-emptyroot-{}", std::process::id()));
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    std::fs::create_dir_all(&root).unwrap();
    let _cleanup = Cleanup(root.clone());
    std::fs::copy(&bin, root.join("heartwire")).unwrap();
    let entries: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert_eq!(
        entries.len(),
        1,
        "the root holds the binary and nothing else"
    );
    // A mount namespace of its own and a root with no /lib, /dev, /proc or /etc.
    let run = |args: &[&str]| {
        Command::new("unshare")
            .args(["--mount", "--fork", "chroot"])
            .arg(&root)
            .arg("/heartwire")
            .args(args)
            .output()
            .unwrap()
    };
    let v = run(&["--version"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("heartwire "));
    let r = run(&["run", "--foreground", "-c", "/cluster.toml"]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "a usage error, not a crash of the loader"
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("config refused") && err.contains("/cluster.toml"),
        "{err}"
    );
}
