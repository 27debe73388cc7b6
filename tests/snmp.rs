//! The SNMP trap sample (dist/snmp/heartwire-trap, an `[[event]]` notify command) against
//! Debian's snmptrapd in the netns lab (issue 20): a takeover sends heartwireNodeDown with
//! the peer and heartwireGroupOnline with the group, as numbered in HEARTWIRE-MIB.

mod lab;

use std::process::{Command, Stdio};
use std::time::Duration;

use lab::{Lab, LabConfig};

const BASE: &str = ".1.3.6.1.4.1.32473.7";

#[test]
fn a_takeover_sends_its_traps_to_snmptrapd() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/snmp/heartwire-trap");
    let cfg = LabConfig {
        two_node: true,
        extra: format!(
            "[[group]]\nname = \"svc\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n\n\
             [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"10.200.1.50/24\"\ninterface = \"eth1\"\nannounce_count = 1\n\n\
             [[event]]\non = \"*\"\nnotify = \"{script} 10.200.1.100:1162 hwlab\"\n"
        ),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("snmp", 2, &cfg);
    let nms = lab.add_client();
    let (conf, log) = (lab.dir.join("snmptrapd.conf"), lab.dir.join("traps.log"));
    std::fs::write(&conf, "authCommunity log hwlab\n").unwrap();
    let trapd = Command::new("ip")
        .args([
            "netns",
            "exec",
            &nms,
            "snmptrapd",
            "-f",
            "-On",
            "-C",
            "-m",
            "",
        ])
        .arg("-c")
        .arg(&conf)
        .arg("-Lf")
        .arg(&log)
        .arg("udp:10.200.1.100:1162")
        // Its state stays in the lab's directory.
        .env("SNMP_PERSISTENT_DIR", &lab.dir)
        .env("SNMPCONFPATH", &lab.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmptrapd (Debian package snmptrapd; make deps installs it)");
    lab.adopt_helper(trapd);
    lab.wait_for(Duration::from_secs(5), "snmptrapd listens", |_| {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("NET-SNMP version"))
    });
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    lab.kill(0);
    lab.wait_group(1, "svc", "online", Duration::from_secs(5));
    let has = |text: &str, trap: &str, object: u8, value: &str| {
        text.lines().any(|l| {
            l.contains(&format!("OID: {BASE}.0.{trap}\t"))
                && l.contains(&format!("{BASE}.1.{object} = STRING: \"{value}\""))
                && l.contains(&format!("{BASE}.1.2 = STRING: \"b\""))
        })
    };
    lab.wait_for(Duration::from_secs(10), "b's traps arrive", |_| {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        has(&t, "1", 4, "a") && has(&t, "4", 5, "svc")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let down = text
        .lines()
        .find(|l| l.contains(&format!("OID: {BASE}.0.1\t")))
        .unwrap();
    assert!(down.contains("STRING: \"node_down\""), "{down}");
    assert!(
        down.contains("STRING: \"event=node_down at="),
        "the whole log line: {down}"
    );
    assert!(
        text.contains(&format!("OID: {BASE}.0.99\t")),
        "other events as heartwireEvent:\n{text}"
    );
}
