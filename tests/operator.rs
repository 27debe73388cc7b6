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
