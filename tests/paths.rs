//! Non-IP heartbeat paths in the netns lab (DESIGN §3–4): two real daemons joined by a
//! service network (`svc`: paths e1 and u1, shared with a client namespace), a
//! heartbeat-only network (`hb`: e2), a serial line (two ptys bridged by the test, which
//! can cut the cable and inject noise) and a shared disk file. A group with a service
//! address on the service network runs on `a`.
//!
//! What is checked: a broken network is never mistaken for a dead node; groups move off a
//! node only when it lost a network they need, release first; line noise is counted and
//! the line recovers; a hung disk shows up as that path going silent while the loop keeps
//! its cadence on the others; a dead adapter's address moves to a standby adapter.

mod lab;

use std::time::Duration;

use lab::{Lab, LabConfig, LogEvent, NonIp, mono_ns, replies};

const SERVICE_IP: &str = "10.200.1.50";
const PORT: u16 = 7000;

fn group(standby: bool) -> String {
    format!(
        "[[group]]\nname = \"web\"\nnodes = [\"a\", \"b\"]\n\n\
         [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"{SERVICE_IP}/24\"\n\
         interface = \"eth1\"\n{}announce_count = 3\nannounce_interval = \"20ms\"\n\n",
        if standby {
            "standbys = { a = \"eth3\" }\n"
        } else {
            ""
        }
    )
}

/// A two-node lab with every path kind and the group online on `a`.
fn lab(tag: &str, nonip: NonIp, standby: bool) -> Lab {
    let cfg = LabConfig {
        two_node: true,
        extra: group(standby),
        nonip: Some(nonip),
        ..LabConfig::default()
    };
    let mut lab = Lab::new(tag, 2, &cfg);
    if standby {
        // A second adapter of `a` on the service network.
        lab.plug(&lab.ns(0), "a3", "eth3", 1);
    }
    lab.start_all();
    wait_group(&lab, 0, "online");
    lab
}

/// A client on the service network probing the service (answered by whichever node has
/// the address) every millisecond for `ms`; returns the probe and its output file.
fn probe(lab: &mut Lab, ms: u32) -> (usize, std::path::PathBuf) {
    let client = lab.add_client();
    lab.start_responders(PORT);
    let out = lab.dir.join("probe.txt");
    let target = format!("{SERVICE_IP}:{PORT}");
    (lab.start_probe(&client, &target, 1000, ms, &out), out)
}

fn wait_group(lab: &Lab, i: usize, state: &str) {
    lab.wait_for(
        Duration::from_secs(10),
        &format!("{} has group web {state}", lab.names[i]),
        |lab| lab.group_state(i, "web").as_deref() == Some(state),
    );
}

fn after(events: Vec<LogEvent>, t: u64) -> Vec<LogEvent> {
    events.into_iter().filter(|e| e.at_ns >= t).collect()
}

fn named<'a>(events: &'a [LogEvent], name: &str) -> Vec<&'a LogEvent> {
    events.iter().filter(|e| e.name == name).collect()
}

fn link_state(lab: &Lab, i: usize, path: &str) -> Option<String> {
    let s = lab.status(i)?;
    let peer = s.peers.first()?;
    peer.links
        .iter()
        .find(|l| l.path == path)
        .map(|l| l.state.clone())
}

/// Nothing moved and nobody was declared dead since `t`.
fn assert_calm(lab: &Lab, t: u64) {
    for i in 0..2 {
        let ev = after(lab.events(i), t);
        for bad in [
            "node_down",
            "group_releasing",
            "group_acquiring",
            "quorum_lost",
        ] {
            assert!(
                named(&ev, bad).is_empty(),
                "{} logged {bad}: {:?}",
                lab.names[i],
                named(&ev, bad)
            );
        }
    }
    assert_eq!(lab.group_state(0, "web").as_deref(), Some("online"));
}

/// Since `t`: neither node declared the other dead, and `a` released the group before `b`
/// started acquiring it. Returns both times.
fn assert_handed_over_alive(lab: &Lab, t: u64) -> (u64, u64) {
    let (a, b) = (after(lab.events(0), t), after(lab.events(1), t));
    assert!(
        named(&b, "node_down").is_empty(),
        "b never declared a dead: {b:?}"
    );
    assert!(
        named(&a, "node_down").is_empty(),
        "a never declared b dead: {a:?}"
    );
    let released = named(&a, "group_offline")[0].at_ns;
    let acquiring = named(&b, "group_acquiring")[0].at_ns;
    assert!(
        released <= acquiring,
        "a released ({released}) before b acquired ({acquiring})"
    );
    (released, acquiring)
}

#[test]
fn a_cut_heartbeat_network_is_a_path_and_network_failure_and_nothing_moves() {
    let lab = lab("pn", NonIp::default(), false);
    let t = mono_ns();
    lab.set_link(0, 2, false);
    lab.wait_for(
        Duration::from_secs(5),
        "b reports network hb down to a",
        |lab| {
            named(&after(lab.events(1), t), "network_down")
                .iter()
                .any(|e| e.field("network") == Some("hb") && e.field("peer") == Some("a"))
        },
    );
    // a lost the network by carrier (its only adapter there went down).
    let a_ev = after(lab.events(0), t);
    assert!(
        named(&a_ev, "adapter_down")
            .iter()
            .any(|e| e.field("interface") == Some("eth2")),
        "a logged adapter_down eth2: {a_ev:?}"
    );
    assert!(
        named(&a_ev, "network_lost")
            .iter()
            .any(|e| e.field("network") == Some("hb") && e.field("cause") == Some("carrier")),
        "a logged network_lost hb"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_calm(&lab, t);
    assert_eq!(link_state(&lab, 1, "e2").as_deref(), Some("down"));
    assert_eq!(link_state(&lab, 1, "s1").as_deref(), Some("up"));
    let st = lab.status(0).unwrap();
    assert_eq!(st.networks_lost, vec!["hb".to_owned()]);
    let back = mono_ns();
    lab.set_link(0, 2, true);
    lab.wait_for(Duration::from_secs(5), "the network comes back", |lab| {
        named(&after(lab.events(1), back), "network_up").len() == 1
            && named(&after(lab.events(0), back), "network_regained").len() == 1
    });
    assert_calm(&lab, t);
}

#[test]
fn a_cut_serial_cable_and_line_noise_are_counted_and_the_line_recovers() {
    let lab = lab("ps", NonIp::default(), false);
    let serial = lab.serial.as_ref().expect("serial cable");
    let t = mono_ns();
    serial.cut(true);
    lab.wait_for(Duration::from_secs(5), "s1 down at both ends", |lab| {
        (0..2).all(|i| link_state(lab, i, "s1").as_deref() == Some("down"))
    });
    // Noise towards a while the cable is cut and after it is mended: random bytes, a
    // frame delimiter, and the first half of an encoded frame with no end.
    let mut noise: Vec<u8> = (0..200u32)
        .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect();
    noise.push(0);
    let mut frame = [0u8; 300];
    let header = heartwire::wire::frame::HeaderRepr {
        kind: heartwire::wire::frame::Kind::Heartbeat,
        cluster: lab.cluster_id,
        node: 2,
        path: 3,
        incarnation: 1,
        seq: 1,
        timestamp_ns: 1,
    };
    let len = header.emit(&mut frame, 10, None, |p| p.fill(7)).unwrap();
    let mut enc = [0u8; 400];
    let n = heartwire::wire::cobs::encode(&frame[..len], &mut enc).unwrap();
    noise.extend_from_slice(&enc[..n / 2]);
    noise.push(0);
    serial.inject(0, &noise);
    std::thread::sleep(Duration::from_millis(300));
    serial.cut(false);
    serial.inject(0, &noise);
    lab.wait_for(Duration::from_secs(5), "s1 up again at both ends", |lab| {
        (0..2).all(|i| link_state(lab, i, "s1").as_deref() == Some("up"))
    });
    let st = lab.status(0).unwrap();
    let s1 = st.paths.iter().find(|p| p.name == "s1").unwrap();
    let dropped: u64 = s1.drops.values().sum();
    assert!(
        s1.drops["garbage"] > 0 && dropped >= 4,
        "the noise was counted: {:?}",
        s1.drops
    );
    assert!(
        named(&after(lab.events(0), t), "network_down").is_empty(),
        "serial is no network"
    );
    assert_calm(&lab, t);
}

#[test]
fn the_owner_losing_both_networks_moves_its_group_release_first_and_nobody_dies() {
    let mut lab = lab("pb", NonIp::default(), false);
    let (probe, out) = probe(&mut lab, 4000);
    std::thread::sleep(Duration::from_millis(700));
    let t = lab.cables(0, false).expect("cables out");
    wait_group(&lab, 1, "online");
    wait_group(&lab, 0, "offline");
    lab.finish_helper(probe, Duration::from_secs(10));
    let a = after(lab.events(0), t);
    for net in ["svc", "hb"] {
        assert!(
            named(&a, "network_lost")
                .iter()
                .any(|e| e.field("network") == Some(net)),
            "a lost {net}: {a:?}"
        );
    }
    let (released, acquiring) = assert_handed_over_alive(&lab, t);
    let rs = replies(&out);
    let first_b = rs
        .iter()
        .find(|r| r.from == "b" && r.recv_ns > t)
        .expect("the client reached the service on b");
    eprintln!(
        "network loss on a -> b answers: {:.1} ms (a released at +{:.1} ms, b acquiring at +{:.1} ms)",
        (first_b.recv_ns - t) as f64 / 1e6,
        (released - t) as f64 / 1e6,
        (acquiring - t) as f64 / 1e6
    );
    assert!(
        rs.iter()
            .filter(|r| r.sent_ns > first_b.sent_ns)
            .all(|r| r.from == "b"),
        "every request sent after the first b answered reached b"
    );
}

#[test]
fn a_killed_owner_is_silent_on_every_path_kind_and_its_group_moves() {
    let mut lab = lab("pk", NonIp::default(), false);
    let t = mono_ns();
    lab.kill(0);
    wait_group(&lab, 1, "online");
    lab.wait_for(Duration::from_secs(5), "b declares a down", |lab| {
        !named(&after(lab.events(1), t), "node_down").is_empty()
    });
    let b = after(lab.events(1), t);
    let down = named(&b, "node_down");
    assert_eq!(down.len(), 1, "{b:?}");
    let st = lab.status(1).unwrap();
    for p in named(&b, "path_down") {
        let path = p.field("path").unwrap();
        let kind = &st.paths.iter().find(|q| q.name == path).unwrap().kind;
        eprintln!(
            "path {path} ({kind}, timeout {} ms): down {:.1} ms after the kill",
            st.paths.iter().find(|q| q.name == path).unwrap().timeout_us / 1000,
            (p.at_ns - t) as f64 / 1e6
        );
    }
    let paths: Vec<_> = named(&b, "path_down")
        .iter()
        .map(|e| e.field("path").unwrap().to_owned())
        .collect();
    for p in ["e1", "e2", "u1", "s1", "d1"] {
        assert!(paths.iter().any(|q| q == p), "{p} went down: {paths:?}");
    }
    // node_down only when the last path fell silent.
    let last_path = named(&b, "path_down")
        .iter()
        .map(|e| e.at_ns)
        .max()
        .unwrap();
    assert!(down[0].at_ns >= last_path);
    assert!(
        named(&b, "network_down").len() <= 2,
        "network_down may precede node_down"
    );
}

#[test]
fn a_hung_disk_silences_its_path_while_the_loop_keeps_its_cadence() {
    let mut lab = lab("ph", NonIp::default(), false);
    let st = lab.status(0).unwrap();
    let servant = st
        .paths
        .iter()
        .find(|p| p.name == "d1")
        .and_then(|p| p.servant_pid)
        .expect("a's disk servant");
    let t = mono_ns();
    // The servant is the daemon's child (started by the process this test started).
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &servant.to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    // Meanwhile, from b's side: how regularly do a's heartbeats arrive on e2?
    let gaps = lab.gaps(1, 2, 0, 1500);
    lab.wait_for(Duration::from_secs(5), "d1 down at both ends", |lab| {
        (0..2).all(|i| link_state(lab, i, "d1").as_deref() == Some("down"))
    });
    eprintln!("a's heartbeats on e2 while its disk hangs (10 ms interval): {gaps:?}");
    // A loop that waited on the disk would show one gap as long as the whole hang.
    assert!(gaps.frames > 50, "{gaps:?}");
    assert!(gaps.max_us < 1_000_000, "{gaps:?}");
    let b = after(lab.events(1), t);
    let downs: Vec<_> = named(&b, "path_down")
        .iter()
        .map(|e| e.field("path").unwrap().to_owned())
        .collect();
    assert_eq!(
        downs,
        vec!["d1".to_owned()],
        "only the disk path went down at b"
    );
    let a = lab.status(0).unwrap();
    assert!(
        a.paths.iter().find(|p| p.name == "d1").unwrap().tx_errors > 0,
        "a counted the frames its hung servant could not take"
    );
    assert_calm(&lab, t);
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &servant.to_string()])
        .status();
    lab.wait_for(Duration::from_secs(5), "d1 up again", |lab| {
        (0..2).all(|i| link_state(lab, i, "d1").as_deref() == Some("up"))
    });
    lab.stop(0);
}

#[test]
fn carrier_loss_swaps_the_address_to_the_standby_adapter_on_the_same_node() {
    let mut lab = lab("pa", NonIp::default(), true);
    // Replies must leave through an adapter that has carrier.
    for i in 0..2 {
        lab::ip(&[
            "netns",
            "exec",
            &lab.ns(i),
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.ignore_routes_with_linkdown=1",
        ]);
    }
    let (probe, out) = probe(&mut lab, 3000);
    std::thread::sleep(Duration::from_millis(700));
    // Unplug a's eth1 at the switch: a sees its carrier go.
    let t = mono_ns();
    lab::ip(&["-n", &lab.switch_ns(), "link", "set", "a1", "down"]);
    lab.wait_for(Duration::from_secs(5), "the address moves to eth3", |lab| {
        lab.addresses(0, "eth3").contains(SERVICE_IP)
    });
    assert!(!lab.addresses(0, "eth1").contains(SERVICE_IP));
    lab.finish_helper(probe, Duration::from_secs(10));
    let a = after(lab.events(0), t);
    let swap = named(&a, "adapter_down");
    assert!(
        swap.iter().any(|e| e.field("interface") == Some("eth1")
            && e.field("swapped") == Some("web/vip:10.200.1.50/24->eth3")),
        "a logged the swap: {a:?}"
    );
    assert!(
        named(&a, "network_lost").is_empty(),
        "eth3 still has carrier: {a:?}"
    );
    let rs = replies(&out);
    let after_cut: Vec<_> = rs.iter().filter(|r| r.recv_ns > t).collect();
    assert!(
        after_cut.iter().any(|r| r.from == "a") && after_cut.iter().all(|r| r.from == "a"),
        "the client keeps being answered by a"
    );
    let first = after_cut.first().unwrap();
    eprintln!(
        "adapter swap: swapped at +{:.2} ms, first reply through eth3 at +{:.1} ms",
        (swap[0].at_ns - t) as f64 / 1e6,
        (first.recv_ns - t) as f64 / 1e6
    );
    assert_calm(&lab, t);
}

#[test]
fn an_owner_left_with_only_the_disk_hands_its_group_over_through_the_mailboxes() {
    let mut lab = lab("pm", NonIp::default(), false);
    let (probe, out) = probe(&mut lab, 4000);
    std::thread::sleep(Duration::from_millis(500));
    // Every network of a and the serial cable go: only the shared disk joins a and b.
    lab.serial.as_ref().unwrap().cut(true);
    let t = lab.cables(0, false).expect("cables out");
    wait_group(&lab, 1, "online");
    wait_group(&lab, 0, "offline");
    lab.finish_helper(probe, Duration::from_secs(10));
    // Both live on the disk: no node_down, and a released before b acquired.
    assert_handed_over_alive(&lab, t);
    assert_eq!(link_state(&lab, 1, "d1").as_deref(), Some("up"));
    let rs = replies(&out);
    let first_b = rs
        .iter()
        .find(|r| r.from == "b" && r.recv_ns > t)
        .expect("the client reached the service on b");
    eprintln!(
        "disk-only hand-over: b answers {:.1} ms after a lost its networks (20 ms disk interval)",
        (first_b.recv_ns - t) as f64 / 1e6
    );
}
