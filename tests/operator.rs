//! The operator's tools against real daemons in the netns lab (issue 6, DESIGN §7):
//! the JSON schemas the README documents, the live event stream, verify, snapshot,
//! init, reload and sync.

mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lab::{Lab, LabConfig};

const SERVICE_IP: &str = "10.200.1.50";

fn ip_group(name: &str, nodes: &str) -> String {
    format!(
        "[[group]]\nname = \"{name}\"\nnodes = [{nodes}]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n\n\
         [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"{SERVICE_IP}/24\"\ninterface = \"eth1\"\nannounce_count = 1\n\n"
    )
}

/// A README `schema` block: documented path → type (`string`, `integer`, `number`,
/// `bool`, `array`, `map`, each maybe ending in `?`).
struct Schema {
    types: BTreeMap<String, String>,
    seen: BTreeSet<String>,
}

impl Schema {
    /// The block whose first line is `# <title>`.
    fn from_readme(title: &str) -> Schema {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let mut blocks = readme.split("```schema\n").skip(1);
        let block = blocks
            .find(|b| b.starts_with(&format!("# {title}\n")))
            .unwrap_or_else(|| panic!("README has no schema block `# {title}`"));
        let block = &block[..block.find("```").expect("block ends")];
        let mut types = BTreeMap::new();
        for line in block.lines().skip(1) {
            let mut w = line.split_whitespace();
            let (Some(path), Some(ty)) = (w.next(), w.next()) else {
                panic!("schema line `{line}` has no type");
            };
            assert!(
                types.insert(path.to_owned(), ty.to_owned()).is_none(),
                "{path} documented twice"
            );
        }
        Schema {
            types,
            seen: BTreeSet::new(),
        }
    }

    /// Checks `v` (the document root) against the schema; panics naming the field.
    fn check(&mut self, v: &serde_json::Value) {
        self.object(v, "");
    }

    fn object(&mut self, v: &serde_json::Value, path: &str) {
        let m = v
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not an object"));
        let join = |k: &str| {
            if path.is_empty() {
                k.to_owned()
            } else {
                format!("{path}.{k}")
            }
        };
        for (k, val) in m {
            self.value(val, &join(k));
        }
        let children: Vec<(String, String)> = self
            .types
            .iter()
            .filter(|(p, _)| {
                p.strip_prefix(&join(""))
                    .is_some_and(|rest| !rest.contains(['.', '[', '{']))
            })
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect();
        for (p, t) in children {
            let key = p.rsplit('.').next().unwrap();
            assert!(
                m.contains_key(key) || t.ends_with('?'),
                "{p} is documented but missing from {v}"
            );
        }
    }

    fn value(&mut self, v: &serde_json::Value, path: &str) {
        let Some(ty) = self.types.get(path).cloned() else {
            // Elements with fields of their own (`groups[]` → `groups[].name`, …).
            let prefix = format!("{path}.");
            assert!(
                self.types.keys().any(|k| k.starts_with(&prefix)),
                "`{path}` is in the output but not in the README schema"
            );
            return self.object(v, path);
        };
        self.seen.insert(path.to_owned());
        let (base, nullable) = match ty.strip_suffix('?') {
            Some(b) => (b, true),
            None => (ty.as_str(), false),
        };
        if v.is_null() {
            assert!(nullable, "{path}: null, but the README says {ty}");
            return;
        }
        let ok = match base {
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "bool" => v.is_boolean(),
            "array" => {
                for e in v.as_array().into_iter().flatten() {
                    self.value(e, &format!("{path}[]"));
                }
                v.is_array()
            }
            "map" => {
                for e in v.as_object().into_iter().flat_map(|m| m.values()) {
                    self.value(e, &format!("{path}{{}}"));
                }
                v.is_object()
            }
            other => panic!("{path}: unknown schema type {other}"),
        };
        assert!(ok, "{path}: {v} is not {ty}");
    }

    /// Every documented field appeared at least once, except elements of arrays and maps
    /// that were empty in every document checked, and fields under them.
    fn assert_all_seen(&self, may_be_empty: &[&str]) {
        for p in self.types.keys() {
            let exempt = may_be_empty.iter().any(|e| p.starts_with(e));
            assert!(
                self.seen.contains(p) || exempt,
                "{p} is in the README schema but never appeared"
            );
        }
    }
}

/// `status --json` and `events --json` produce exactly what the README documents, and
/// the event stream delivers a takeover live: `events` on both nodes while the group
/// moves, then b is killed (its stream ends with exit 1: no goodbye) and a stops (exit 0,
/// the stream ends with `stopped`).
#[test]
fn status_and_event_stream_match_the_readme_schema() {
    let cfg = LabConfig {
        two_node: true,
        extra: ip_group("svc", "\"a\", \"b\""),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("op", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    let follow = |lab: &mut Lab, i: usize, json: bool| {
        let out = lab.dir.join(format!("events-{i}-{json}.txt"));
        let err = lab.dir.join(format!("events-{i}-{json}.err"));
        let mut args = vec!["events".to_owned(), "--socket".to_owned()];
        args.push(lab.socket(i).display().to_string());
        if json {
            args.push("--json".into());
        }
        let child = std::process::Command::new(lab::binary())
            .args(&args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("spawn events");
        let h = lab.adopt_helper(child);
        lab.wait_for(Duration::from_secs(5), "the stream is open", |_| {
            std::fs::read_to_string(&err).is_ok_and(|s| s.contains("following the events"))
        });
        (h, out, err)
    };
    let (a_json, a_json_out, a_json_err) = follow(&mut lab, 0, true);
    let (a_text, a_text_out, _) = follow(&mut lab, 0, false);
    let (b_json, b_json_out, b_json_err) = follow(&mut lab, 1, true);

    let out = lab.cli(0, &["move", "svc", "b", "--timeout", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.wait_group(1, "svc", "online", Duration::from_secs(5));

    let mut status = Schema::from_readme("status --json");
    for i in 0..2 {
        let out = lab.cli(i, &["status", "--json"]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status is JSON");
        status.check(&v);
        assert_eq!(
            v["peers"][0]["config_hash"], v["config_hash"],
            "the peer's hash arrives in heartbeats and matches"
        );
    }
    status.assert_all_seen(&[
        "networks_lost[]",
        "peers[].networks_down[]",
        "groups[].owner",
        "groups[].pending",
    ]);

    lab.kill(1);
    assert_eq!(
        lab.finish_helper(b_json, Duration::from_secs(5)),
        Some(1),
        "a stream cut without goodbye ends in failure"
    );
    assert!(
        std::fs::read_to_string(&b_json_err)
            .unwrap()
            .contains("without ending it")
    );
    lab.wait_for(Duration::from_secs(5), "a saw b die", |lab| {
        lab.status(0)
            .is_some_and(|s| s.peers[0].state == "down" && s.view_members.len() == 1)
    });
    lab.wait_group(0, "svc", "online", Duration::from_secs(5));
    assert_eq!(lab.stop(0), Some(0));
    for h in [a_json, a_text] {
        assert_eq!(
            lab.finish_helper(h, Duration::from_secs(5)),
            Some(0),
            "the stream ends with the daemon's goodbye"
        );
    }
    assert!(
        std::fs::read_to_string(&a_json_err)
            .unwrap()
            .contains("stopped: end of stream")
    );

    let mut events = Schema::from_readme("events --json");
    let mut names = Vec::new();
    let mut last_mono = 0;
    for line in std::fs::read_to_string(&a_json_out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        events.check(&v);
        assert_eq!(v["node"], "a");
        let mono = v["mono_ns"].as_u64().unwrap();
        assert!(mono >= last_mono, "events arrive in order: {line}");
        last_mono = mono;
        names.push(v["event"].as_str().unwrap().to_owned());
    }
    events.assert_all_seen(&["note", "lost_before"]);
    let order = [
        "command",
        "group_releasing",
        "group_offline",
        "node_down",
        "view_change",
        "group_acquiring",
        "group_online",
        "group_releasing",
        "group_offline",
    ];
    let mut it = names.iter();
    for want in order {
        assert!(
            it.any(|n| n == want),
            "a's stream has {order:?} in order; got {names:?}"
        );
    }
    let text = std::fs::read_to_string(&a_text_out).unwrap();
    assert_eq!(
        text.lines().count(),
        names.len(),
        "text and JSON streams carry the same events"
    );
    for line in text.lines() {
        let w: Vec<&str> = line.split(' ').collect();
        assert!(
            w.len() >= 4 && w[0].ends_with('Z') && w[0].contains('T') && w[2] == "a",
            "wall time, monotonic time, node, event: {line}"
        );
    }
    let b_events = std::fs::read_to_string(&b_json_out).unwrap();
    assert!(b_events.contains("\"group_online\""), "{b_events}");
}

/// `heartwire verify --json` for node `i` of `lab` on config `file`: exit code and report.
fn verify(lab: &Lab, i: usize, file: &std::path::Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let socket = lab.socket(i).display().to_string();
    let mut args = vec![
        "verify",
        "--json",
        "--node",
        &lab.names[i],
        "--socket",
        &socket,
        "-c",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = lab.run_in(&lab.ns(i), &args, "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify prints JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// The finding whose `what` contains `needle`, if any.
fn finding<'v>(report: &'v serde_json::Value, needle: &str) -> Option<&'v serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["what"].as_str().unwrap().contains(needle))
}

/// Line (1-based) of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in the config"))
        + 1
}

/// Each class of mistake gives its finding, at the right line, with the right severity
/// and exit code; a clean config exits 0; and with the cluster up, a member running
/// another config is an error while an address the cluster holds is not a conflict.
#[test]
fn verify_finds_each_class_of_mistake() {
    let cfg = LabConfig {
        nonip: Some(lab::NonIp {
            no_serial: true,
            ..lab::NonIp::default()
        }),
        extra: ip_group("svc", "\"a\", \"b\""),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("vf", 2, &cfg);
    let base = std::fs::read_to_string(&lab.config_path).unwrap();
    let dir = lab.dir.clone();
    let variant = |name: &str, text: &str| {
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    };

    let (code, r) = verify(&lab, 0, &lab.config_path, &[]);
    assert_eq!(code, 0, "the lab's config is clean: {r:#}");
    assert!(
        r["facts"]["host.interface.eth1"]
            .as_str()
            .unwrap()
            .starts_with("up carrier")
    );
    assert!(
        r["facts"]["host.service.svc/vip"]
            .as_str()
            .unwrap()
            .contains("free")
    );

    // (variant text, finding, severity, the line it points at, exit code)
    let script = dir.join("start.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let small = dir.join("small.img");
    std::fs::write(&small, vec![0u8; 4096]).unwrap();
    let foreign = dir.join("foreign.img");
    std::fs::write(&foreign, vec![0x5a; 1 << 20]).unwrap();
    let app = |start: &str| {
        format!(
            "[[group]]\nname = \"app\"\nnodes = [\"a\", \"b\"]\n\n[[group.resource]]\nname = \"db\"\nkind = \"application\"\nstart = \"{start}\"\nstop = \"true\"\n"
        )
    };
    let disk_path = |dev: &std::path::Path| {
        format!(
            "[[path]]\nname = \"d2\"\nkind = \"disk\"\ndevices = {{ a = \"{0}\", b = \"{0}\" }}\n",
            dev.display()
        )
    };
    let cases: Vec<(&str, String, &str, &str, &str, i32)> = vec![
        (
            "syntax",
            base.clone() + "[cluster # broken\n",
            "",
            "error",
            "# broken",
            2,
        ),
        (
            "no-iface",
            base.replacen("a = \"eth2\"", "a = \"eth9\"", 1),
            "interface eth9 does not exist",
            "error",
            "a = \"eth9\"",
            2,
        ),
        (
            "udp-addr",
            base.replacen("a = \"10.200.1.1\"", "a = \"10.200.1.99\"", 1),
            "10.200.1.99 is not configured on this host",
            "error",
            "a = \"10.200.1.99\"",
            2,
        ),
        (
            "subnet",
            base.replace(SERVICE_IP, "10.200.9.50"),
            "10.200.9.50 is in no subnet of eth1",
            "error",
            "address = \"10.200.9.50",
            2,
        ),
        (
            "serial",
            base.clone()
                + "[[path]]\nname = \"s9\"\nkind = \"serial\"\ndevices = { a = \"/dev/ttyNOPE\", b = \"/dev/ttyNOPE\" }\n",
            "/dev/ttyNOPE",
            "error",
            "/dev/ttyNOPE",
            2,
        ),
        (
            "serial-baud",
            base.clone()
                + "[[path]]\nname = \"s9\"\nkind = \"serial\"\nbaud = 9600\ninterval = \"1ms\"\ntimeout = \"10ms\"\ndevices = { a = \"/dev/ttyNOPE\", b = \"/dev/ttyNOPE\" }\n",
            "faster than a 9600-baud line carries",
            "error",
            "interval = \"1ms\"",
            2,
        ),
        (
            "not-tty",
            base.clone()
                + "[[path]]\nname = \"s9\"\nkind = \"serial\"\ndevices = { a = \"/etc/hostname\", b = \"/etc/hostname\" }\n",
            "is not a character device",
            "error",
            "/etc/hostname",
            2,
        ),
        (
            "disk-small",
            base.clone() + &disk_path(&small),
            "the layout needs",
            "error",
            "small.img",
            2,
        ),
        (
            "disk-foreign",
            base.clone() + &disk_path(&foreign),
            "not a heartwire header",
            "error",
            "foreign.img",
            2,
        ),
        (
            "no-command",
            base.clone() + &app("/opt/nothing/start-db"),
            "/opt/nothing/start-db",
            "error",
            "start = ",
            2,
        ),
        (
            "not-executable",
            base.clone() + &app(&script.display().to_string()),
            "is not an executable file",
            "error",
            "start = ",
            2,
        ),
        (
            "tight-timeout",
            base.replacen("timeout = \"200ms\"", "timeout = \"20ms\"", 1),
            "fewer than three heartbeats",
            "warning",
            "timeout = \"20ms\"",
            1,
        ),
        (
            "ip-only",
            base[..base.find("[[path]]\nname = \"d1\"").unwrap()].to_owned()
                + &base[base.find("[[group]]").unwrap()..],
            "two nodes, only IP paths",
            "warning",
            "name = \"hw", // the cluster, named after the lab
            1,
        ),
        (
            "no-key",
            base.replace("key_file = \"key\"\n", ""),
            "no cluster key",
            "warning",
            "name = \"hw", // the cluster, named after the lab
            1,
        ),
    ];
    for (name, text, what, severity, line_has, exit) in &cases {
        let file = variant(name, text);
        let (code, r) = verify(&lab, 0, &file, &["--no-probe"]);
        let f = finding(&r, what).unwrap_or_else(|| panic!("{name}: no finding `{what}`: {r:#}"));
        assert_eq!(code, *exit, "{name}: {r:#}");
        assert_eq!(f["severity"], *severity, "{name}");
        let want = format!("{}:{}", file.display(), line_of(text, line_has));
        assert_eq!(f["at"], want.as_str(), "{name}: {f}");
        assert!(
            !f["fix"].as_str().unwrap().is_empty(),
            "{name}: says how to fix it"
        );
    }

    // An interface that is down; the service address taken by a stranger on the segment.
    lab::ip(&["-n", &lab.ns(0), "link", "set", "eth2", "down"]);
    let (code, r) = verify(&lab, 0, &lab.config_path, &[]);
    assert_eq!(code, 2);
    assert!(finding(&r, "interface eth2 is down").is_some(), "{r:#}");
    lab::ip(&["-n", &lab.ns(0), "link", "set", "eth2", "up"]);
    let stranger = lab.add_host("st", 1);
    lab::ip(&[
        "-n",
        &stranger,
        "addr",
        "add",
        &format!("{SERVICE_IP}/24"),
        "dev",
        "eth0",
    ]);
    let (code, r) = verify(&lab, 0, &lab.config_path, &[]);
    assert_eq!(code, 2, "{r:#}");
    let f = finding(&r, "already in use on the segment of eth1").expect("ARP probe answered");
    assert_eq!(
        f["at"].as_str().unwrap(),
        format!(
            "{}:{}",
            lab.config_path.display(),
            line_of(&base, "address = \"10.200.1.50")
        )
    );
    let (code, r) = verify(&lab, 0, &lab.config_path, &["--no-probe"]);
    assert_eq!(code, 0, "without probes: {r:#}");
    lab::ip(&[
        "-n",
        &stranger,
        "addr",
        "del",
        &format!("{SERVICE_IP}/24"),
        "dev",
        "eth0",
    ]);

    // The cluster up: a holds the address; b's probe is answered by a, which is no
    // conflict. Then b runs another config: verify on a says so.
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    let (code, r) = verify(&lab, 1, &lab.config_path, &[]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        r["facts"]["host.service.svc/vip"]
            .as_str()
            .unwrap()
            .contains("answered by")
    );
    let (_, r) = verify(&lab, 0, &lab.config_path, &[]);
    assert!(
        r["facts"]["host.service.svc/vip"]
            .as_str()
            .unwrap()
            .contains("held here")
    );
    let other = variant(
        "other",
        &base.replacen(
            "two_node = false",
            "two_node = false\npause_threshold = \"50ms\"",
            1,
        ),
    );
    lab.stop(1);
    lab.start_with(1, &other);
    lab.wait_for(Duration::from_secs(10), "b is back", |lab| {
        lab.status(0)
            .is_some_and(|s| s.peers[0].state == "up" && s.peers[0].config_match == Some(false))
    });
    let (code, r) = verify(&lab, 0, &lab.config_path, &[]);
    assert_eq!(code, 2, "{r:#}");
    let f = finding(&r, "node b runs config").expect("mismatch found");
    assert_eq!(f["at"], "cluster");
    let (code, r) = verify(&lab, 1, &lab.config_path, &[]);
    assert_eq!(code, 2, "{r:#}");
    assert!(
        finding(&r, "the daemon on b runs config").is_some(),
        "{r:#}"
    );
}

/// `heartwire init` in a node's namespace discovers eth1 and eth2, finds the service
/// address's interface, writes a config that verifies and runs (the group comes online
/// with the address), and the same flags give the same file; the key is new per
/// directory, kept on a rerun, and 0600.
#[test]
fn init_writes_a_config_that_runs() {
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new("in", 2, &LabConfig::default());
    let init = |lab: &Lab, dir: &str, extra: &[&str]| {
        let out = lab.dir.join(dir).join("heartwire.toml");
        let mut args = vec![
            "init",
            "--cluster",
            "quick",
            "--node",
            "a=10.200.1.1",
            "--node",
            "b=10.200.1.2",
            "--service-ip",
            "10.200.1.50/24",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = lab.run_in(&lab.ns(0), &args, "");
        (o, out)
    };
    let (o, file) = init(&lab, "one", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("interfaces = { a = \"eth1\", b = \"eth1\" }"),
        "{text}"
    );
    assert!(
        text.contains("interfaces = { a = \"eth2\", b = \"eth2\" }"),
        "{text}"
    );
    assert!(!text.contains("\"lo\""), "loopback is no heartbeat wire");
    // The network paths take the default profile (the one `make soak` measured), with
    // real-time mode, and the file says how to measure before setting timing by hand.
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("interval =") || l.starts_with("timeout =")),
        "no timing on the paths: {text}"
    );
    assert!(
        text.contains("[realtime]\npriority = 50\ncpu_dma_latency_us = 0"),
        "{text}"
    );
    assert!(
        text.contains("local pauses") && text.contains("make soak"),
        "says what to watch before tightening"
    );
    assert!(
        text.contains("address = \"10.200.1.50/24\"\ninterface = \"eth1\""),
        "{text}"
    );
    assert!(
        text.contains("network = \"eth1\""),
        "the UDP path runs over eth1: {text}"
    );
    let key = file.with_file_name("cluster.key");
    let key_one = std::fs::read(&key).unwrap();
    assert_eq!(key_one.len(), 32);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let (o, _) = init(&lab, "one", &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing config is not overwritten"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    let (o, _) = init(&lab, "one", &["--force"]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "same flags, same config"
    );
    assert_eq!(std::fs::read(&key).unwrap(), key_one, "the key is kept");
    let (o, other) = init(&lab, "two", &[]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        text,
        "same config elsewhere"
    );
    assert_ne!(
        std::fs::read(other.with_file_name("cluster.key")).unwrap(),
        key_one
    );
    let (o, _) = init(&lab, "three", &["--service-ip", "127.0.0.9/8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !lab.dir.join("three").join("cluster.key").exists(),
        "nothing written"
    );

    let (code, r) = verify(&lab, 0, &file, &[]);
    assert_eq!(code, 1, "only the two-nodes-IP-only warning: {r:#}");
    assert_eq!(r["findings"].as_array().unwrap().len(), 1, "{r:#}");
    for i in 0..2 {
        lab.start_with(i, &file);
    }
    lab.wait_group(0, "service", "online", Duration::from_secs(10));
    assert!(lab.addresses(0, "eth1").contains("10.200.1.50"));
}

/// Two groups on a; a reload that changes only `web`'s address bounces `web` here (old
/// address gone, new one up, still on a) and leaves `db` untouched (same phase, same
/// `since`); a's heartbeats keep coming at b without a missed one throughout. A change
/// that needs a restart is refused and changes nothing; SIGHUP reloads like the command.
#[test]
fn reload_changes_one_group_and_nothing_else() {
    let group = |name: &str, ip: &str| {
        format!(
            "[[group]]\nname = \"{name}\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n\n\
             [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"{ip}/24\"\ninterface = \"eth1\"\nannounce_count = 1\n\n"
        )
    };
    let cfg = LabConfig {
        extra: group("web", "10.200.1.50") + &group("db", "10.200.1.60"),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("rl", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "web", "online", Duration::from_secs(10));
    lab.wait_group(0, "db", "online", Duration::from_secs(10));
    let since = |lab: &Lab, g: &str| {
        let s = lab.status(0).unwrap();
        let g = s.groups.iter().find(|x| x.name == g).unwrap();
        (g.state.clone(), g.since_ns)
    };
    let db_before = since(&lab, "db");
    let base = std::fs::read_to_string(&lab.config_path).unwrap();
    let interval_us = 10_000;

    let gaps = lab.start_gaps(1, 1, 0, 1500);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&lab.config_path, base.replace("10.200.1.50", "10.200.1.51")).unwrap();
    let out = lab.cli(0, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("web: bounced"), "{said}");
    // (the config hashes in the line are hex and may contain "db")
    assert!(!said.contains("db:"), "{said}");
    lab.wait_for(Duration::from_secs(5), "web's new address", |lab| {
        lab.addresses(0, "eth1").contains("10.200.1.51")
    });
    let gaps = lab.finish_gaps(gaps);
    eprintln!("a's heartbeats at b across the reload ({interval_us} µs interval): {gaps:?}");
    assert!(gaps.frames > 100, "{gaps:?}");
    assert!(
        gaps.max_us < 2 * interval_us,
        "no heartbeat missed across the reload: {gaps:?}"
    );
    lab.wait_group(0, "web", "online", Duration::from_secs(5));
    let addrs = lab.addresses(0, "eth1");
    assert!(
        !addrs.contains("10.200.1.50/"),
        "the old address is gone: {addrs}"
    );
    assert!(
        addrs.contains("10.200.1.60"),
        "db keeps its address: {addrs}"
    );
    assert_eq!(since(&lab, "db"), db_before, "db untouched");
    assert_eq!(
        lab.group_state(1, "web").as_deref(),
        Some("offline"),
        "web stayed on a"
    );
    let s = lab.status(0).unwrap();
    assert_eq!(
        s.peers[0].config_match,
        Some(false),
        "b still runs the old config"
    );

    // A path change needs a restart: refused, nothing changes.
    let text = std::fs::read_to_string(&lab.config_path).unwrap();
    std::fs::write(
        &lab.config_path,
        text.replacen("timeout = \"200ms\"", "timeout = \"300ms\"", 1),
    )
    .unwrap();
    let out = lab.cli(0, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("restart needed"),
        "{out:?}"
    );
    assert_eq!(
        lab.status(0).unwrap().config_hash,
        s.config_hash,
        "nothing applied"
    );

    // SIGHUP: db moves to .61.
    std::fs::write(&lab.config_path, text.replace("10.200.1.60", "10.200.1.61")).unwrap();
    let pid = lab.pid(0).to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    lab.wait_for(Duration::from_secs(5), "db's new address", |lab| {
        lab.addresses(0, "eth1").contains("10.200.1.61")
    });
    let log = std::fs::read_to_string(lab.log_path(0)).unwrap();
    assert!(log.contains("SIGHUP: reloaded"), "{log}");
}

/// `heartwire snapshot VERB FILE -c CONFIG --node <node i> --socket SOCKET EXTRA…` in
/// node `i`'s namespace.
fn snapshot_cmd(
    lab: &Lab,
    i: usize,
    verb: &str,
    file: &std::path::Path,
    (config, socket): (&std::path::Path, &std::path::Path),
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "snapshot",
        verb,
        file.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "--node",
        &lab.names[i],
        "--socket",
        socket.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    lab.run_in(&lab.ns(i), &args, "")
}

fn said(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Snapshots: save on a running node; apply on a fresh node (its own directory, the key
/// copied there, no daemon) and save again: identical up to the state section. `diff`
/// shows a moved group; `apply` on the running node installs and reloads; an edited
/// snapshot and one that fails verify are refused and install nothing.
#[test]
fn snapshot_round_trip_diff_and_apply() {
    let cfg = LabConfig {
        two_node: true,
        extra: ip_group("svc", "\"a\", \"b\""),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("sn", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    let a_sock = lab.socket(0);
    let save = |lab: &Lab, config: &std::path::Path, out: &std::path::Path| {
        let o = snapshot_cmd(lab, 0, "save", out, (config, &a_sock), &[]);
        assert!(o.status.success(), "{}", said(&o));
        std::fs::read_to_string(out).unwrap()
    };
    let s1 = lab.dir.join("s1.snap");
    let text1 = save(&lab, &lab.config_path, &s1);
    assert!(text1.is_ascii());
    for want in [
        "group.svc.owner = \"a\"",
        "peer.b.state = \"up\"",
        "host.interface.eth1 = \"up carrier",
    ] {
        assert!(text1.contains(want), "{want}: {text1}");
    }
    let head = |t: &str| t[..t.find("----- state -----").unwrap()].to_owned();

    // A fresh node: b's namespace, a new directory with only the key, no daemon.
    let fresh = lab.dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::copy(lab.dir.join("key"), fresh.join("key")).unwrap();
    let at_fresh = (fresh.join("heartwire.toml"), fresh.join("none.sock"));
    let at_fresh = (at_fresh.0.as_path(), at_fresh.1.as_path());
    let o = snapshot_cmd(&lab, 1, "apply", &s1, at_fresh, &["--no-probe"]);
    assert!(o.status.success(), "{}", said(&o));
    assert!(said(&o).contains("no daemon"), "{}", said(&o));
    let s2 = lab.dir.join("s2.snap");
    let o = snapshot_cmd(&lab, 1, "save", &s2, at_fresh, &[]);
    assert!(o.status.success(), "{}", said(&o));
    let text2 = std::fs::read_to_string(&s2).unwrap();
    assert_eq!(
        head(&text1),
        head(&text2),
        "byte-identical apart from the state section"
    );
    assert_ne!(text1, text2, "the states differ (another node, no daemon)");

    // diff: the group moves to b.
    let out = lab.cli(0, &["move", "svc", "b", "--timeout", "10"]);
    assert!(out.status.success());
    let s3 = lab.dir.join("s3.snap");
    save(&lab, &lab.config_path, &s3);
    let diff = |a: &std::path::Path, b: &std::path::Path| {
        std::process::Command::new(lab::binary())
            .args(["snapshot", "diff", a.to_str().unwrap(), b.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let d = diff(&s1, &s3);
    assert_eq!(d.status.code(), Some(1), "{}", said(&d));
    assert!(said(&d).contains("config: identical"), "{}", said(&d));
    assert!(
        said(&d).contains("~ group.svc.owner: \"a\" -> \"b\""),
        "{}",
        said(&d)
    );
    assert_eq!(diff(&s1, &s1).status.code(), Some(0));

    // apply on the running node.
    let at_a = (lab.config_path.as_path(), a_sock.as_path());
    let edited = lab.dir.join("edited.snap");
    std::fs::write(&edited, text1.replace(SERVICE_IP, "10.200.1.55")).unwrap();
    let o = snapshot_cmd(&lab, 0, "apply", &edited, at_a, &["--no-probe"]);
    assert_eq!(o.status.code(), Some(2), "an edited snapshot is refused");
    assert!(said(&o).contains("config_sha256"), "{}", said(&o));
    // A snapshot of a changed config (saved from a copy of the file): installed, reloaded.
    let before = std::fs::read_to_string(&lab.config_path).unwrap();
    let copy = lab.dir.join("copy.toml");
    std::fs::write(&copy, before.replace(SERVICE_IP, "10.200.1.55")).unwrap();
    let s4 = lab.dir.join("s4.snap");
    save(&lab, &copy, &s4);
    let o = snapshot_cmd(&lab, 0, "apply", &s4, at_a, &["--no-probe"]);
    assert!(o.status.success(), "{}", said(&o));
    assert!(said(&o).contains("reloaded"), "{}", said(&o));
    assert!(
        std::fs::read_to_string(&lab.config_path)
            .unwrap()
            .contains("10.200.1.55")
    );
    // One that fails verify (an interface a does not have): refused, nothing installed.
    std::fs::write(
        &copy,
        before.replace("interface = \"eth1\"", "interface = \"eth9\""),
    )
    .unwrap();
    let s5 = lab.dir.join("s5.snap");
    save(&lab, &copy, &s5);
    let installed = std::fs::read_to_string(&lab.config_path).unwrap();
    let o = snapshot_cmd(&lab, 0, "apply", &s5, at_a, &["--no-probe"]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("eth9 does not exist"), "{}", said(&o));
    assert_eq!(
        std::fs::read_to_string(&lab.config_path).unwrap(),
        installed
    );
}

/// `heartwire sync -c FILE` on node `i` (in its namespace, against its own socket).
fn sync(lab: &Lab, i: usize, file: &std::path::Path) -> (i32, serde_json::Value, String) {
    let socket = lab.socket(i).display().to_string();
    let args = [
        "sync",
        "--json",
        "-c",
        file.to_str().unwrap(),
        "--node",
        &lab.names[i],
        "--socket",
        &socket,
    ];
    let out = lab.run_in(&lab.ns(i), &args, "");
    let text = said(&out);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, text)
}

/// Sync over a three-node cluster, each node with its own config directory: a change a
/// reload can apply lands on every node (identical files, one hash everywhere, the group
/// follows); a member whose own check fails refuses, and then nothing is installed
/// anywhere and every daemon keeps running; `verify` asks every member and reports that
/// member's finding; a change that needs a restart is refused before anything is sent.
#[test]
fn sync_lands_everywhere_or_nowhere() {
    let cfg = LabConfig {
        extra: ip_group("web", "\"a\", \"b\", \"c\""),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("sy", 3, &cfg);
    let files: Vec<std::path::PathBuf> = (0..3).map(|i| lab.own_config(i)).collect();
    for (i, f) in files.iter().enumerate() {
        lab.start_with(i, f);
    }
    lab.wait_all_up();
    lab.wait_group(0, "web", "online", Duration::from_secs(10));
    let base = std::fs::read_to_string(&files[0]).unwrap();
    let hash_before = lab.status(0).unwrap().config_hash;

    // 1. A reloadable change, made on a, pushed to b and c.
    let moved = base.replace(SERVICE_IP, "10.200.1.51");
    std::fs::write(&files[0], &moved).unwrap();
    let (code, v, text) = sync(&lab, 0, &files[0]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["result"], "installed", "{v}");
    eprintln!(
        "sync to two members: installed everywhere in {} µs",
        v["elapsed_us"]
    );
    for f in &files[1..] {
        assert_eq!(
            std::fs::read_to_string(f).unwrap(),
            moved,
            "{}",
            f.display()
        );
    }
    for m in v["members"].as_array().unwrap() {
        assert_eq!(m["installed"], true, "{m}");
    }
    let hashes: BTreeSet<String> = (0..3).map(|i| lab.status(i).unwrap().config_hash).collect();
    assert_eq!(hashes.len(), 1, "one config everywhere: {hashes:?}");
    assert_ne!(hashes.first().unwrap(), &hash_before);
    lab.wait_for(Duration::from_secs(5), "web on its new address", |lab| {
        lab.addresses(0, "eth1").contains("10.200.1.51")
    });
    let staged: Vec<_> = files
        .iter()
        .flat_map(|f| std::fs::read_dir(f.parent().unwrap()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".offer-"))
        .collect();
    assert!(staged.is_empty(), "no staging file left: {staged:?}");

    // 2. Node c's eth2 is down: its own check fails, so nothing lands anywhere.
    lab.set_link(2, 2, false);
    let again = moved.replace("10.200.1.51", "10.200.1.52");
    std::fs::write(&files[0], &again).unwrap();
    let (code, v, text) = sync(&lab, 0, &files[0]);
    assert_eq!(code, 2, "{text}");
    assert_eq!(v["result"], "refused", "{v}");
    let c = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["node"] == "c")
        .unwrap();
    assert_eq!(c["accepted"], false, "{c}");
    assert!(
        c["findings"]
            .as_str()
            .unwrap()
            .contains("interface eth2 is down"),
        "{c}"
    );
    for f in &files[1..] {
        assert_eq!(
            std::fs::read_to_string(f).unwrap(),
            moved,
            "unchanged: {}",
            f.display()
        );
    }
    for i in 0..3 {
        assert!(lab.alive(i), "node {i} keeps running");
        assert_eq!(&lab.status(i).unwrap().config_hash, hashes.first().unwrap());
    }
    assert!(
        lab.addresses(0, "eth1").contains("10.200.1.51"),
        "web untouched"
    );

    // 3. verify on a asks every member: c's finding comes back under its name.
    let (code, report) = verify(&lab, 0, &files[0], &["--no-probe"]);
    assert_eq!(code, 2, "{report}");
    let f = finding(&report, "interface eth2 is down").expect("c's finding");
    assert!(f["at"].as_str().unwrap().starts_with("node c: "), "{f}");
    assert!(report["facts"]["cluster.member.b"].is_string(), "{report}");
    lab.set_link(2, 2, true);

    // 4. A change only a restart can apply is refused before anything is sent.
    let timing = again.replacen("timeout = \"200ms\"", "timeout = \"300ms\"", 1);
    assert_ne!(timing, again);
    std::fs::write(&files[0], &timing).unwrap();
    let (code, _, text) = sync(&lab, 0, &files[0]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("needs a restart"), "{text}");
    for f in &files[1..] {
        assert_eq!(std::fs::read_to_string(f).unwrap(), moved);
    }
}

/// Without a cluster key an offer would travel unauthenticated: `sync` is refused with
/// that reason, and `verify` says the members did not check the file and why.
#[test]
fn sync_needs_a_key() {
    let mut lab = Lab::new("sk", 2, &LabConfig::default());
    let text = std::fs::read_to_string(&lab.config_path).unwrap();
    std::fs::write(&lab.config_path, text.replace("key_file = \"key\"\n", "")).unwrap();
    lab.start_all();
    let path = lab.config_path.clone();
    let (code, _, said) = sync(&lab, 0, &path);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("runs without a key"), "{said}");
    let (code, report) = verify(&lab, 0, &path, &["--no-probe"]);
    assert_eq!(code, 1, "warnings only: {report}");
    let f = finding(&report, "the members did not check this file").expect("says why");
    assert!(f["what"].as_str().unwrap().contains("without a key"), "{f}");
}

/// Issue 16 item 7: without `--node`, `run` picks the node whose UDP address is on this
/// host (the namespaces share the machine's host name, which is no [[node]]) and says
/// so; `HEARTWIRE_NODE` names it too; a wrong `--node` is refused before any bind,
/// naming the address that is not here.
#[test]
fn run_without_node_picks_this_host_by_address_and_a_wrong_node_is_refused_before_bind() {
    let mut lab = Lab::new("nd", 2, &LabConfig::default());
    lab.start(0);
    let run_b = |extra: &[&str], env: Option<&str>| {
        let mut c = std::process::Command::new("timeout");
        c.args(["10", "ip", "netns", "exec", &lab.ns(1)])
            .arg(lab::binary())
            .args(["run", "--foreground", "-c"])
            .arg(&lab.config_path)
            .arg("--socket")
            .arg(lab.dir.join("b-try.sock"))
            .args(extra)
            .env_remove("HEARTWIRE_NODE");
        if let Some(v) = env {
            c.env("HEARTWIRE_NODE", v);
        }
        c.output().unwrap()
    };
    let out = run_b(&["--node", "a"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("node a (chosen: --node a) has UDP address 10.200.")
            && err.contains("which is not on this host"),
        "{err}"
    );
    let out = run_b(&[], Some("zz"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no [[node]] named `zz` (HEARTWIRE_NODE)"),
        "{err}"
    );

    // No --node, no HEARTWIRE_NODE: b, by its address; it joins a.
    let log = std::fs::File::create(lab.log_path(1)).unwrap();
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ns(1)])
        .arg(lab::binary())
        .args(["run", "--foreground", "-c"])
        .arg(&lab.config_path)
        .arg("--socket")
        .arg(lab.socket(1))
        .env_remove("HEARTWIRE_NODE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    lab.adopt_helper(child);
    lab.wait_for(Duration::from_secs(10), "b joined a", |l| {
        l.status(0)
            .is_some_and(|s| s.quorate && s.view_members.len() == 2)
    });
    let text = std::fs::read_to_string(lab.log_path(1)).unwrap();
    assert!(
        text.contains("node b (id 2, chosen: its UDP address 10.200."),
        "{text}"
    );
}

/// Issue 16 item 5: b runs with another key. Both daemons log the bad tags naming whom
/// the frames claim to be from, and `verify` on a says the key differs instead of "b is
/// down: start heartwire on b".
#[test]
fn a_wrong_key_is_logged_and_verify_names_it() {
    let mut lab = Lab::new("wk", 2, &LabConfig::default());
    let b_cfg = lab.own_config(1);
    std::fs::write(
        b_cfg.parent().unwrap().join("key"),
        b"another-cluster-key-0123456789",
    )
    .unwrap();
    lab.start(0);
    lab.start_with(1, &b_cfg);
    lab.wait_for(Duration::from_secs(10), "a counted bad tags", |l| {
        l.status(0).is_some_and(|s| {
            s.paths
                .iter()
                .filter_map(|p| p.drops.get("bad_tag"))
                .sum::<u64>()
                > 0
        })
    });
    let log = std::fs::read_to_string(lab.log_path(0)).unwrap();
    assert!(
        log.contains("claiming to be from b: bad_tag: a different key_file on that node"),
        "{log}"
    );
    let file = lab.config_path.clone();
    let (code, v) = verify(&lab, 0, &file, &["--local", "--no-probe"]);
    let text = v.to_string();
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("a different key_file on b?"), "{text}");
    assert!(!text.contains("start heartwire on b"), "{text}");
}

/// Issue 16 item 10: a service address in no subnet of its interface is an error for
/// `verify`, and `run` refuses to start with the same words (it used to start and fail
/// later).
#[test]
fn run_refuses_what_verify_calls_an_error() {
    let cfg = LabConfig {
        extra: ip_group("web", "\"a\", \"b\"").replace(SERVICE_IP, "10.99.0.50"),
        ..LabConfig::default()
    };
    let lab = Lab::new("rv", 2, &cfg);
    let file = lab.config_path.clone();
    let (code, v) = verify(&lab, 0, &file, &["--local", "--no-probe"]);
    let text = v.to_string();
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("web/vip: 10.99.0.50 is in no subnet of eth1"),
        "{text}"
    );
    let out = std::process::Command::new("timeout")
        .args(["10", "ip", "netns", "exec", &lab.ns(0)])
        .arg(lab::binary())
        .args(["run", "--foreground", "--node", "a", "-c"])
        .arg(&file)
        .arg("--socket")
        .arg(lab.socket(0))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("web/vip: 10.99.0.50 is in no subnet of eth1")
            && err.contains("`heartwire verify` reports the same"),
        "{err}"
    );
}

/// Issue 16 item 6: b was reloaded with a file of its own (a difference a reload can
/// apply). `verify` on a calls the mismatch an error and names `heartwire sync`; sync
/// then does it (it used to refuse because verify had found errors: a circle), and
/// verify is clean again.
#[test]
fn the_fix_verify_names_for_a_config_mismatch_works() {
    let cfg = LabConfig {
        extra: ip_group("web", "\"a\", \"b\""),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("sc", 2, &cfg);
    let files: Vec<std::path::PathBuf> = (0..2).map(|i| lab.own_config(i)).collect();
    for (i, f) in files.iter().enumerate() {
        lab.start_with(i, f);
    }
    lab.wait_all_up();
    let base = std::fs::read_to_string(&files[1]).unwrap();
    std::fs::write(&files[1], base.replace(SERVICE_IP, "10.200.1.59")).unwrap();
    let out = lab.cli(1, &["reload"]);
    assert!(out.status.success(), "{}", said(&out));
    lab.wait_for(Duration::from_secs(5), "a sees b's new config", |l| {
        let s = l.status(0).unwrap();
        s.peers
            .iter()
            .any(|p| p.config_hash.as_deref() != Some(&s.config_hash))
    });
    let (code, report) = verify(&lab, 0, &files[0], &["--local", "--no-probe"]);
    assert_eq!(code, 2, "{report}");
    let f = finding(&report, "node b runs config").expect("the mismatch");
    assert!(f["fix"].as_str().unwrap().contains("heartwire sync"), "{f}");
    let (code, v, text) = sync(&lab, 0, &files[0]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["result"], "installed", "{v}");
    assert_eq!(
        std::fs::read_to_string(&files[1]).unwrap(),
        base,
        "b has a's file"
    );
    // b's new hash reaches a with b's next heartbeat after the install (a sync that
    // returned "installed" may be a heartbeat ahead of it: CI run of fed97e2).
    lab.wait_for(Duration::from_secs(5), "a sees b's installed config", |l| {
        let s = l.status(0).unwrap();
        s.peers
            .iter()
            .all(|p| p.config_hash.as_deref() == Some(&s.config_hash))
    });
    let (code, report) = verify(&lab, 0, &files[0], &["--local", "--no-probe"]);
    assert!(finding(&report, "runs config").is_none(), "{report}");
    assert!(code < 2, "{report}");
}

/// Issue 16 item 9: a user who is not root asking for status is told why it is refused
/// and what to do, instead of "is `heartwire run` up?".
#[test]
fn status_as_a_plain_user_says_the_socket_is_roots() {
    let mut lab = Lab::new("nr", 2, &LabConfig::default());
    lab.start_all();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(lab::binary())
        .args(["status", "--socket"])
        .arg(lab.socket(0))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the control socket is root's") && err.contains("run this as root"),
        "{err}"
    );
    assert!(!err.contains("is `heartwire run` up"), "{err}");
    let s = lab.status(0).unwrap();
    assert!(
        s.now_wall.ends_with('Z') && s.started_wall <= s.now_wall,
        "{s:?}"
    );
    let log = std::fs::read_to_string(lab.log_path(0)).unwrap();
    let first = log.lines().next().unwrap();
    let stamp = first.split_whitespace().next().unwrap();
    assert!(
        stamp.len() > 20 && stamp.contains('T') && stamp.ends_with('Z'),
        "log lines start with the wall-clock time (RFC 3339): {first}"
    );
}

/// `heartwire ARGS` as user nobody with the supplementary group `group` (none: cleared).
fn as_nobody(args: &[&str], group: Option<u32>) -> (Option<i32>, String, String) {
    let groups = group.map_or("--clear-groups".to_owned(), |g| format!("--groups={g}"));
    let out = std::process::Command::new("timeout")
        .args(["20", "setpriv", "--reuid=65534", "--regid=65534", &groups])
        .arg(lab::binary())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("timeout, setpriv (coreutils, util-linux)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 16 item 9: with `control_socket_group` the socket is 0660 and that group's; a
/// member reads status and follows events but is refused every other request (it would
/// change the cluster); a user outside the group is told which group to join. The group
/// is a gid no group of this host has, so the test changes no group database.
#[test]
fn a_socket_group_member_may_read_status_and_nothing_else() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let gid = (47_110..47_210)
        .find(|g| heartwire_hal::cred::group_name(*g).unwrap().is_none())
        .expect("a free gid");
    let mut lab = Lab::new("sg", 2, &LabConfig::default());
    std::fs::set_permissions(&lab.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(&lab.config_path).unwrap();
    assert!(text.contains("two_node = false\n"));
    std::fs::write(
        &lab.config_path,
        text.replacen(
            "two_node = false\n",
            &format!("two_node = false\ncontrol_socket_group = \"{gid}\"\n"),
            1,
        ),
    )
    .unwrap();
    lab.start_all();
    let sock = lab.socket(1);
    let sock = sock.to_str().unwrap();
    let meta = std::fs::metadata(sock).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, gid));
    let log = std::fs::read_to_string(lab.log_path(1)).unwrap();
    assert!(
        log.contains(&format!("(group {gid} may read status and events)")),
        "the start line names the group"
    );

    let (code, out, err) = as_nobody(&["status", "--json", "--socket", sock], Some(gid));
    assert_eq!(code, Some(0), "{err}");
    let report: heartwire::ctl::status::StatusReport = serde_json::from_str(&out).unwrap();
    assert_eq!(report.node, "b");

    let before = lab.status(1).unwrap();
    for args in [
        vec!["reload"],
        vec!["offline", "svc"],
        vec!["maintenance", "on"],
        vec!["stop"],
    ] {
        let mut full = args.clone();
        full.extend(["--socket", sock]);
        let (code, _, err) = as_nobody(&full, Some(gid));
        assert_ne!(code, Some(0), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "needs root: members of the control socket's group `{gid}` may only read"
            )),
            "{args:?}: {err}"
        );
    }
    assert!(lab.alive(1), "b still runs");
    let after = lab.status(1).unwrap();
    assert_eq!(
        (after.maintenance, after.view, after.incarnation),
        (before.maintenance, before.view, before.incarnation),
        "nothing changed"
    );

    let (code, _, err) = as_nobody(&["status", "--socket", sock], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "status and events need root or membership of group `{gid}`"
        )),
        "{err}"
    );
}

/// `status --watch` (crm_mon -i): the table redrawn in place with the last N events, and
/// with --json one document per line; a daemon that goes away is said, and asked again.
#[test]
fn status_watch_redraws_in_place_and_streams_json() {
    let cfg = LabConfig {
        two_node: true,
        extra: ip_group("svc", "\"a\", \"b\""),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("watch", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    let watch = |lab: &mut Lab, json: bool| {
        let out = lab.dir.join(format!("watch-{json}.txt"));
        let mut c = std::process::Command::new(lab::binary());
        c.args(["status", "--watch", "0.2", "--events", "3", "--socket"])
            .arg(lab.socket(1));
        if json {
            c.arg("--json");
        }
        let child = c
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(lab.dir.join(format!("watch-{json}.err"))).unwrap())
            .spawn()
            .expect("spawn status --watch");
        (lab.adopt_helper(child), out)
    };
    let (text_h, text_out) = watch(&mut lab, false);
    let (json_h, json_out) = watch(&mut lab, true);
    lab.wait_for(
        Duration::from_secs(10),
        "three redraws and three documents",
        |_| {
            let t = std::fs::read_to_string(&text_out).unwrap_or_default();
            let j = std::fs::read_to_string(&json_out).unwrap_or_default();
            t.matches("\x1b[H\x1b[2J").count() >= 3 && j.lines().count() >= 3
        },
    );
    lab.kill(1);
    lab.wait_for(
        Duration::from_secs(10),
        "the watch says the daemon is gone",
        |lab| {
            std::fs::read_to_string(&text_out).is_ok_and(|t| t.contains("cannot reach the daemon"))
                && std::fs::read_to_string(lab.dir.join("watch-true.err"))
                    .is_ok_and(|t| t.contains("cannot reach the daemon"))
        },
    );
    lab.terminate_helper(text_h, Duration::from_secs(2));
    lab.terminate_helper(json_h, Duration::from_secs(2));
    let text = std::fs::read_to_string(&text_out).unwrap();
    let first = text.split("\x1b[H\x1b[2J").nth(1).expect("a first screen");
    assert!(first.contains("every 0.2 s (Ctrl-C to stop)"), "{first}");
    assert!(first.contains("svc"), "{first}");
    assert!(first.contains("last 3 of "), "the last 3 events: {first}");
    for line in std::fs::read_to_string(&json_out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON document per line");
        assert_eq!(v["node"], "b");
    }
    let out = lab.cli(0, &["status", "--watch", "0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
