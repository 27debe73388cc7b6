//! Failure detection with real daemons in the netns lab (issue: heartbeat foundation).
//! Needs root (namespaces, AF_PACKET). Run with `--test-threads=1` (`make test` does).
//! Whether a profile holds under load is a benchmark, not a test: `make soak`.

mod lab;

use std::process::Command;
use std::time::Duration;

use heartwire::ctl::debug::hex_decode;
use heartwire::ctl::status::StatusReport;
use heartwire::wire::auth::AuthKey;
use lab::{Lab, LabConfig, mono_ns};

const A: usize = 0;
const B: usize = 1;
/// The default lab profile's timeout (`LabConfig::default`).
const TIMEOUT_NS: u64 = 200_000_000;

fn peer<'a>(s: &'a StatusReport, name: &str) -> &'a heartwire::ctl::status::PeerStatus {
    s.peers
        .iter()
        .find(|p| p.name == name)
        .expect("peer in status")
}

fn link<'a>(
    s: &'a StatusReport,
    peer_name: &str,
    path: &str,
) -> &'a heartwire::ctl::status::LinkStatus {
    peer(s, peer_name)
        .links
        .iter()
        .find(|l| l.path == path)
        .expect("link in status")
}

fn downs(lab: &Lab, i: usize) -> Vec<lab::LogEvent> {
    lab.events(i)
        .into_iter()
        .filter(|e| e.name == "path_down" || e.name == "node_down")
        .collect()
}

#[test]
fn kill_9_is_reported_with_the_silent_paths_and_when() {
    let mut lab = Lab::new("k", 2, &LabConfig::default());
    lab.start_all();
    let killed_at = mono_ns();
    lab.kill(A);
    lab.wait_for(Duration::from_secs(5), "b reports a down", |l| {
        l.status(B).is_some_and(|s| peer(&s, "a").state == "down")
    });
    let s = lab.status(B).unwrap();
    for path in ["e1", "e2", "u1"] {
        let l = link(&s, "a", path);
        assert_eq!(l.state, "down", "{path}");
        let heard = l.last_heard_ns.expect("was heard");
        let down = l.down_at_ns.expect("went down");
        assert!(
            down >= heard + TIMEOUT_NS,
            "{path}: declared down {} ns after last frame, before the timeout",
            down - heard
        );
        assert!(down > killed_at, "{path}: down before the kill");
    }
    let ev = lab.events(B);
    let nd = ev
        .iter()
        .find(|e| e.name == "node_down" && e.field("peer") == Some("a"))
        .expect("node_down logged");
    assert!(nd.at_ns > killed_at);
    let paths = nd.field("paths_last_heard").expect("silent paths listed");
    for p in ["e1@", "e2@", "u1@"] {
        assert!(paths.contains(p), "{paths}");
    }
    assert!(lab.alive(B), "survivor still running");
}

#[test]
fn one_network_cut_is_a_path_down_not_a_node_down() {
    let mut lab = Lab::new("n", 2, &LabConfig::default());
    lab.start_all();
    lab.set_link(A, 2, false);
    lab.wait_for(Duration::from_secs(5), "b sees e2 down", |l| {
        l.status(B)
            .is_some_and(|s| link(&s, "a", "e2").state == "down")
    });
    std::thread::sleep(Duration::from_millis(300));
    for (me, other) in [(B, "a"), (A, "b")] {
        let s = lab.status(me).unwrap();
        assert_eq!(
            peer(&s, other).state,
            "up",
            "node {me} still sees {other} up"
        );
        assert_eq!(link(&s, other, "e1").state, "up");
        assert_eq!(link(&s, other, "u1").state, "up");
        assert_eq!(link(&s, other, "e2").state, "down");
    }
    assert!(
        !lab.events(B).iter().any(|e| e.name == "node_down"),
        "no node_down on a single network cut"
    );
    // healing brings the path back.
    lab.set_link(A, 2, true);
    lab.wait_for(Duration::from_secs(5), "e2 back up", |l| {
        l.status(B)
            .is_some_and(|s| link(&s, "a", "e2").state == "up")
    });
}

#[test]
fn both_networks_cut_is_node_down_on_both_sides() {
    let mut lab = Lab::new("b", 2, &LabConfig::default());
    lab.start_all();
    lab.set_link(A, 1, false);
    lab.set_link(A, 2, false);
    lab.wait_for(Duration::from_secs(5), "b sees a down", |l| {
        l.status(B).is_some_and(|s| peer(&s, "a").state == "down")
    });
    lab.wait_for(Duration::from_secs(5), "a sees b down", |l| {
        l.status(A).is_some_and(|s| peer(&s, "b").state == "down")
    });
    assert!(lab.alive(A) && lab.alive(B));
    let d = downs(&lab, B);
    assert_eq!(
        d.iter().filter(|e| e.name == "path_down").count(),
        3,
        "{d:?}"
    );
}

#[test]
fn restarted_node_comes_back_with_a_new_incarnation() {
    let mut lab = Lab::new("r", 2, &LabConfig::default());
    lab.start_all();
    let old = peer(&lab.status(B).unwrap(), "a").incarnation.unwrap();
    lab.kill(A);
    lab.wait_for(Duration::from_secs(5), "a down", |l| {
        l.status(B).is_some_and(|s| peer(&s, "a").state == "down")
    });
    lab.start(A);
    lab.wait_for(Duration::from_secs(10), "a up again", |l| {
        l.status(B).is_some_and(|s| peer(&s, "a").state == "up")
    });
    let p = peer(&lab.status(B).unwrap(), "a").clone();
    assert_ne!(p.incarnation.unwrap(), old);
    assert_eq!(p.restarts, 1);
    let ev = lab.events(B);
    let r = ev
        .iter()
        .find(|e| e.name == "node_restart")
        .expect("node_restart logged");
    assert_eq!(r.field("old"), Some(format!("{old:08x}").as_str()));
    assert_eq!(
        r.field("new"),
        Some(format!("{:08x}", p.incarnation.unwrap()).as_str())
    );
}

fn frame(key: Option<&AuthKey>, cluster: u16, node: u8, inc: u32, seq: u32) -> Vec<u8> {
    lab::heartbeat_frame(key, cluster, node, (inc, seq, 1), Default::default())
}

#[test]
fn injected_bad_frames_land_in_their_counters_and_change_nothing() {
    let mut lab = Lab::new("i", 2, &LabConfig::default());
    lab.start_all();
    let inj = lab.add_host("inj", 1);
    // A real frame from a, captured on the wire, to replay later.
    let out = lab.run_tool(
        &inj,
        &["capture", "--interface", "eth0", "--count", "20"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let captured = String::from_utf8(out.stdout).unwrap();
    let from_a = captured
        .lines()
        .filter_map(hex_decode)
        .find(|f| f.len() > 7 && f[6] == 1)
        .expect("a frame from a");
    let before = lab.status(B).unwrap();
    let inc_a = peer(&before, "a").incarnation.unwrap();
    let key = AuthKey::new(&lab.key()).unwrap();
    let wrong = AuthKey::new(b"not-the-cluster-key-at-all").unwrap();
    let good = frame(Some(&key), lab.cluster_id, 1, inc_a, 1);
    let mut bad_crc = good.clone();
    bad_crc[30] ^= 0x40;
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut bad_version = good.clone();
    bad_version[2] = 9;
    let garbage: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("short", b"HW\x01\x01 short".to_vec()),
        ("bad_magic", garbage),
        ("bad_magic", bad_magic),
        ("bad_version", bad_version),
        ("bad_crc", bad_crc),
        (
            "bad_tag",
            frame(Some(&wrong), lab.cluster_id, 1, inc_a, 999_999),
        ),
        (
            "foreign_cluster",
            frame(Some(&key), lab.cluster_id + 1, 1, inc_a, 999_999),
        ),
        ("unknown_node", frame(Some(&key), lab.cluster_id, 9, 1, 1)),
        ("replay", from_a),
    ];
    let frames: Vec<Vec<u8>> = cases.iter().map(|(_, f)| f.clone()).collect();
    lab.send_frames(&inj, &frames);
    let e1 = |s: &StatusReport| {
        s.paths
            .iter()
            .find(|p| p.name == "e1")
            .unwrap()
            .drops
            .clone()
    };
    lab.wait_for(
        Duration::from_secs(5),
        "b counted every injected frame",
        |l| {
            l.status(B)
                .is_some_and(|s| e1(&s).values().sum::<u64>() >= cases.len() as u64)
        },
    );
    std::thread::sleep(Duration::from_millis(100));
    let after = lab.status(B).unwrap();
    let drops = e1(&after);
    for (name, _) in &cases {
        let want = cases.iter().filter(|(n, _)| n == name).count() as u64;
        assert_eq!(drops[*name], want, "counter {name}: {drops:?}");
    }
    assert_eq!(
        drops.values().sum::<u64>(),
        cases.len() as u64,
        "nothing else dropped: {drops:?}"
    );
    let (pa, pb) = (peer(&before, "a"), peer(&after, "a"));
    assert_eq!(
        (pb.state.as_str(), pb.incarnation, pb.restarts),
        ("up", pa.incarnation, pa.restarts),
        "state unchanged"
    );
    let new_events: Vec<_> = lab
        .events(B)
        .into_iter()
        .filter(|e| e.at_ns > before.now_ns)
        .collect();
    assert!(
        new_events.is_empty(),
        "no events from injected frames: {new_events:?}"
    );
}

#[test]
fn sigterm_stops_cleanly_and_the_control_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new("t", 2, &LabConfig::default());
    lab.start_all();
    let sock = lab.socket(A);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket mode");
    // Another user cannot talk to the daemon (a copy of the CLI it can execute, run as nobody).
    let cli = lab.dir.join("heartwire-cli");
    std::fs::copy(lab::binary(), &cli).unwrap();
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&cli)
        .args(["status", "--socket"])
        .arg(&sock)
        .output()
        .expect("runuser");
    assert_eq!(
        out.status.code(),
        Some(1),
        "refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the daemon"));
    // SIGTERM: exit 0, socket removed, the peer sees it go.
    assert_eq!(lab.stop(A), Some(0));
    assert!(!sock.exists(), "control socket removed on exit");
    let log = std::fs::read_to_string(lab.log_path(A)).unwrap();
    assert!(log.contains("stopping on signal"), "{log}");
    lab.wait_for(Duration::from_secs(5), "b sees a down", |l| {
        l.status(B).is_some_and(|s| peer(&s, "a").state == "down")
    });
}
