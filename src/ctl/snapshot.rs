//! `heartwire snapshot`: one ASCII file with the canonical config and the cluster's state
//! (HACMP's Cluster Node Snapshot).
//!
//! ```text
//! # heartwire snapshot v1
//! config_sha256 = "…"          SHA-256 of the config section: apply refuses an edited one
//! ----- config -----
//! …the canonical config (what `snapshot apply` installs)…
//! ----- state -----
//! taken = "2026-11-22T10:00:00.000000Z"
//! node = "a"
//! group.web.owner = "a"
//! …one `key = value` per line, sorted: view, members, groups, paths, peers, versions,
//! the host facts `verify` looked at…
//! ----- end -----
//! ```
//!
//! Everything before the state section depends only on the config, so saving, applying
//! on a fresh node and saving again gives the same bytes there. The key is never in a
//! snapshot: a fresh node needs the key file in place before `apply` (verify says so).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::status::StatusReport;
use super::verify::{self, Options, Severity, VerifyReport};
use crate::config;

const MAGIC: &str = "# heartwire snapshot v1";
const CONFIG_MARK: &str = "----- config -----";
const STATE_MARK: &str = "----- state -----";
const END_MARK: &str = "----- end -----";

/// A snapshot taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The canonical config text.
    pub config: String,
    /// State, `key → value` (values as written, TOML literals).
    pub state: BTreeMap<String, String>,
}

impl Snapshot {
    /// The file text.
    pub fn render(&self) -> String {
        let mut o = format!(
            "{MAGIC}\n# `heartwire snapshot apply FILE` installs the config section; `snapshot diff A B`\n\
             # compares two. The cluster key is not included.\nconfig_sha256 = \"{}\"\n{CONFIG_MARK}\n{}",
            sha256_hex(&self.config),
            self.config
        );
        if !self.config.ends_with('\n') {
            o.push('\n');
        }
        o.push_str(STATE_MARK);
        o.push('\n');
        for (k, v) in &self.state {
            let _ = writeln!(o, "{k} = {v}");
        }
        o.push_str(END_MARK);
        o.push('\n');
        o
    }

    /// Parses a snapshot file; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Snapshot, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!(
                "not a heartwire snapshot (the first line is not `{MAGIC}`)"
            ));
        }
        // The text between the line `start` and the line `end`.
        let section = |start: &str, end: &str| -> Result<&str, String> {
            let from =
                line_at(text, start).ok_or_else(|| format!("no `{start}` line"))? + start.len() + 1;
            let len = line_at(&text[from..], end)
                .ok_or_else(|| format!("no `{end}` line after `{start}`"))?;
            Ok(&text[from..from + len])
        };
        let config = section(CONFIG_MARK, STATE_MARK)?.to_owned();
        let want = text
            .lines()
            .find_map(|l| l.strip_prefix("config_sha256 = \""))
            .and_then(|l| l.strip_suffix('"'))
            .ok_or("no config_sha256 line")?;
        if sha256_hex(&config) != want {
            return Err(format!(
                "the config section does not match its config_sha256 (edited or damaged); \
                 save a new snapshot instead of editing one (got {})",
                sha256_hex(&config)
            ));
        }
        let mut state = BTreeMap::new();
        for (i, l) in section(STATE_MARK, END_MARK)?.lines().enumerate() {
            let (k, v) = l
                .split_once(" = ")
                .ok_or_else(|| format!("state line {}: `{l}` is not `key = value`", i + 1))?;
            state.insert(k.to_owned(), v.to_owned());
        }
        Ok(Snapshot { config, state })
    }
}

/// Byte offset of the line that is exactly `mark` (followed by a newline).
fn line_at(text: &str, mark: &str) -> Option<usize> {
    let want = format!("{mark}\n");
    if text.starts_with(&want) {
        return Some(0);
    }
    text.find(&format!("\n{want}")).map(|i| i + 1)
}

fn sha256_hex(s: &str) -> String {
    super::debug::hex_encode(&Sha256::digest(s.as_bytes()))
}

/// A TOML string literal.
fn lit(s: &str) -> String {
    config::toml_string(s)
}

/// Takes a snapshot: the canonical form of `file`, the daemon's state (when one answers)
/// and the host facts verify collects (without probing the segments).
pub fn save(file: &Path, opts: &Options) -> Result<Snapshot, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let canonical = config::canonical(file, &text).map_err(|e| e.to_string())?;
    let report = verify::verify(
        file,
        &Options {
            probe: false,
            ..opts.clone()
        },
    );
    let mut state = BTreeMap::new();
    let wall = heartwire_hal::clock::realtime_ns();
    state.insert("taken".into(), lit(&super::events::rfc3339_us(wall)));
    state.insert("node".into(), lit(&report.node));
    if let Some(h) = &report.config_hash {
        state.insert("config.hash".into(), lit(h));
    }
    for (k, v) in &report.facts {
        state.insert(k.clone(), lit(v));
    }
    for (n, f) in report.findings.iter().enumerate() {
        state.insert(
            format!("verify.{n:03}"),
            lit(&format!(
                "{} {}: {}",
                match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                f.at,
                f.what
            )),
        );
    }
    if let Some(s) = daemon_status(file, opts) {
        cluster_state(&s, &mut state);
    }
    Ok(Snapshot {
        config: canonical,
        state,
    })
}

fn daemon_status(file: &Path, opts: &Options) -> Option<StatusReport> {
    let socket = match &opts.socket {
        Some(s) => s.clone(),
        None => config::control_socket(file).ok()?,
    };
    let answer = super::client::request(&socket, "status").ok()?;
    serde_json::from_str(&answer).ok()
}

/// The cluster's state as `status` reports it, without counters and clocks (they change
/// every millisecond and would drown a diff).
fn cluster_state(s: &StatusReport, st: &mut BTreeMap<String, String>) {
    let mut put = |k: String, v: String| {
        st.insert(k, v);
    };
    put("daemon.version".into(), lit(&s.version));
    put("daemon.config_hash".into(), lit(&s.config_hash));
    put(
        "daemon.incarnation".into(),
        lit(&format!("{:08x}", s.incarnation)),
    );
    put("cluster.view".into(), s.view.to_string());
    put("cluster.members".into(), lit(&s.view_members.join(",")));
    put("cluster.quorate".into(), s.quorate.to_string());
    put("cluster.authority".into(), s.authority.to_string());
    put(
        "cluster.networks_lost".into(),
        lit(&s.networks_lost.join(",")),
    );
    for g in &s.groups {
        let k = |f: &str| format!("group.{}.{f}", g.name);
        put(k("placement"), lit(&g.placement));
        put(k("owner"), lit(g.owner.as_deref().unwrap_or("")));
        put(k("state_here"), lit(&g.state));
        put(k("online_on"), lit(&g.online_on.join(",")));
        put(k("held_by"), lit(&g.held_by.join(",")));
    }
    for p in &s.paths {
        put(format!("path.{}.device", p.name), lit(&p.device));
        put(format!("path.{}.kind", p.name), lit(&p.kind));
    }
    for p in &s.peers {
        let k = |f: &str| format!("peer.{}.{f}", p.name);
        put(k("state"), lit(&p.state));
        put(
            k("incarnation"),
            lit(&p.incarnation.map_or("-".into(), |i| format!("{i:08x}"))),
        );
        put(
            k("config_hash"),
            lit(p.config_hash.as_deref().unwrap_or("-")),
        );
        put(k("networks_down"), lit(&p.networks_down.join(",")));
        for l in &p.links {
            put(format!("peer.{}.path.{}", p.name, l.path), lit(&l.state));
        }
    }
}

/// What `diff` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// The text to print.
    pub text: String,
    /// Whether anything differs (besides when they were taken).
    pub differs: bool,
}

/// Compares two snapshots: a unified diff of the configs, then state keys added, removed
/// and changed.
pub fn diff(a: &Snapshot, b: &Snapshot, a_name: &str, b_name: &str) -> Diff {
    let mut d = Diff::default();
    let taken = |s: &Snapshot| s.state.get("taken").cloned().unwrap_or_default();
    let _ = writeln!(
        d.text,
        "--- {a_name} (taken {})\n+++ {b_name} (taken {})",
        taken(a),
        taken(b)
    );
    if a.config == b.config {
        d.text.push_str("config: identical\n");
    } else {
        d.differs = true;
        d.text.push_str("config: changed\n");
        let u = similar::TextDiff::from_lines(&a.config, &b.config);
        let _ = write!(
            d.text,
            "{}",
            u.unified_diff().context_radius(2).header(a_name, b_name)
        );
    }
    let mut changes = Vec::new();
    for (k, va) in &a.state {
        if k == "taken" {
            continue;
        }
        match b.state.get(k) {
            None => changes.push(format!("  - {k} = {va}")),
            Some(vb) if vb != va => changes.push(format!("  ~ {k}: {va} -> {vb}")),
            Some(_) => {}
        }
    }
    for (k, vb) in &b.state {
        if !a.state.contains_key(k) {
            changes.push(format!("  + {k} = {vb}"));
        }
    }
    if changes.is_empty() {
        d.text.push_str("state: identical\n");
    } else {
        d.differs = true;
        let _ = writeln!(d.text, "state: {} change(s)", changes.len());
        for c in changes {
            d.text.push_str(&c);
            d.text.push('\n');
        }
    }
    d
}

/// Verifies the snapshot's config as it would be installed at `target` for this node;
/// the report of that check. The caller installs only when it has no errors.
pub fn check_apply(snap: &Snapshot, target: &Path, opts: &Options) -> VerifyReport {
    // The config is checked in place of the target (relative key paths resolve there),
    // under a temporary name, so nothing is replaced before it passes.
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".heartwire-apply-{}.toml", std::process::id()));
    let report = match std::fs::write(&tmp, &snap.config) {
        Ok(()) => {
            let mut r = verify::verify(&tmp, opts);
            let shown = tmp.display().to_string();
            for f in &mut r.findings {
                f.at = f.at.replace(&shown, &target.display().to_string());
            }
            r.file = target.display().to_string();
            r
        }
        Err(e) => {
            let mut r = VerifyReport::default();
            r.findings.push(verify::Finding {
                severity: Severity::Error,
                what: format!("cannot write next to {}: {e}", target.display()),
                at: dir.display().to_string(),
                fix: "run as root; create the directory".into(),
            });
            r
        }
    };
    let _ = std::fs::remove_file(&tmp);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(config: &str, owner: &str) -> Snapshot {
        let mut state = BTreeMap::new();
        state.insert("taken".into(), lit("2026-11-22T10:00:00.000000Z"));
        state.insert("group.web.owner".into(), lit(owner));
        Snapshot {
            config: config.into(),
            state,
        }
    }

    #[test]
    fn round_trips_and_refuses_edits() {
        let s = snap("[cluster]\nname = \"x\"\nid = 1\n", "a");
        let text = s.render();
        assert_eq!(Snapshot::parse(&text).unwrap(), s);
        assert!(text.is_ascii());
        let edited = text.replace("id = 1", "id = 2");
        assert!(
            Snapshot::parse(&edited)
                .unwrap_err()
                .contains("config_sha256")
        );
        assert!(
            Snapshot::parse("hello")
                .unwrap_err()
                .contains("not a heartwire snapshot")
        );
        let cut = &text[..text.find(END_MARK).unwrap()];
        assert!(Snapshot::parse(cut).unwrap_err().contains(END_MARK));
        let bad = text.replace("group.web.owner = ", "group.web.owner: ");
        assert!(Snapshot::parse(&bad).unwrap_err().contains("state line"));
    }

    #[test]
    fn diffs_show_config_lines_and_state_keys() {
        let a = snap("[cluster]\nname = \"x\"\nid = 1\n", "a");
        let mut b = snap("[cluster]\nname = \"x\"\nid = 2\n", "b");
        b.state.insert("peer.c.state".into(), lit("up"));
        let d = diff(&a, &b, "A", "B");
        assert!(d.differs);
        assert!(d.text.contains("-id = 1\n+id = 2\n"), "{}", d.text);
        assert!(
            d.text.contains("~ group.web.owner: \"a\" -> \"b\""),
            "{}",
            d.text
        );
        assert!(d.text.contains("+ peer.c.state = \"up\""), "{}", d.text);
        let mut a2 = a.clone();
        a2.state
            .insert("taken".into(), lit("2027-01-01T00:00:00.000000Z"));
        let same = diff(&a, &a2, "A", "A2");
        assert!(!same.differs, "only the time differs: {}", same.text);
        assert!(same.text.contains("config: identical") && same.text.contains("state: identical"));
    }
}
