//! Where things are in a config file, for findings about the host rather than the file
//! (`verify`: "path e1: interface eth9 does not exist" points at the path's
//! `interfaces` line).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

use super::ConfigError;
use super::error::line_col;
use super::raw::RawConfig;

/// Line numbers of the config's keys, by dotted name: `cluster.key_file`, `node.a`,
/// `path.e1`, `path.e1.interfaces`, `group.web`, `group.web.resource.vip.address`,
/// `event.0.pre` (events by position).
#[derive(Debug, Clone)]
pub struct Locations {
    file: PathBuf,
    lines: BTreeMap<String, usize>,
}

impl Locations {
    /// `file:line` of `key`, else of the nearest enclosing key that has one, else `file`.
    pub fn at(&self, key: &str) -> String {
        let mut k = key;
        loop {
            if let Some(l) = self.lines.get(k) {
                return format!("{}:{l}", self.file.display());
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => return self.file.display().to_string(),
            }
        }
    }
}

/// Indexes the keys of `text` (read from `file`).
pub fn locate(file: &Path, text: &str) -> Result<Locations, ConfigError> {
    let raw: RawConfig = super::tree::read(text).map_err(|e| ConfigError::toml(file, text, &e))?;
    let mut lines = BTreeMap::new();
    // The table `at` starts where `start` is; each of its keys present, where it is.
    let mut put = |at: String, start: usize, keys: &[(&str, Option<usize>)]| {
        for (k, v) in keys {
            if let Some(v) = v {
                lines
                    .entry(format!("{at}.{k}"))
                    .or_insert(line_col(text, *v).0);
            }
        }
        lines.entry(at).or_insert(line_col(text, start).0);
    };
    fn opt<T>(s: &Option<Spanned<T>>) -> Option<usize> {
        s.as_ref().map(|s| s.span().start)
    }
    let c = &raw.cluster;
    put(
        "cluster".into(),
        c.name.span().start,
        &[
            ("name", Some(c.name.span().start)),
            ("id", Some(c.id.span().start)),
            ("key_file", opt(&c.key_file)),
            ("pause_threshold", opt(&c.pause_threshold)),
            ("on_quorum_loss", opt(&c.on_quorum_loss)),
        ],
    );
    for n in &raw.nodes {
        put(
            format!("node.{}", n.name.get_ref()),
            n.name.span().start,
            &[],
        );
    }
    for p in &raw.paths {
        let at = format!("path.{}", p.name.get_ref());
        put(
            at,
            p.name.span().start,
            &[
                ("kind", Some(p.kind.span().start)),
                ("interval", opt(&p.interval)),
                ("timeout", opt(&p.timeout)),
                ("network", opt(&p.network)),
                ("interfaces", opt(&p.interfaces)),
                ("addresses", opt(&p.addresses)),
                ("devices", opt(&p.devices)),
                ("baud", opt(&p.baud)),
            ],
        );
    }
    for g in &raw.groups {
        let at = format!("group.{}", g.name.get_ref());
        put(at.clone(), g.name.span().start, &[]);
        for r in &g.resources {
            let at = format!("{at}.resource.{}", r.name.get_ref());
            put(
                at,
                r.name.span().start,
                &[
                    ("address", opt(&r.address)),
                    ("interface", opt(&r.interface)),
                    ("interfaces", opt(&r.interfaces)),
                    ("standby", opt(&r.standby)),
                    ("standbys", opt(&r.standbys)),
                    ("start", opt(&r.start)),
                    ("stop", opt(&r.stop)),
                    ("monitor", opt(&r.monitor)),
                    ("agent", opt(&r.agent)),
                    ("params", opt(&r.params)),
                    ("script", opt(&r.script)),
                ],
            );
        }
    }
    for (i, e) in raw.events.iter().enumerate() {
        let at = format!("event.{i}");
        put(
            at,
            e.on.span().start,
            &[
                ("pre", opt(&e.pre)),
                ("post", opt(&e.post)),
                ("notify", opt(&e.notify)),
            ],
        );
    }
    Ok(Locations {
        file: file.to_owned(),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_their_enclosing_keys_have_lines() {
        let text = "[cluster]\nname = \"x\"\nid = 1\n\n[[node]]\nname = \"a\"\nid = 1\n\n\
                    [[path]]\nname = \"e1\"\nkind = \"ether\"\ninterfaces = { a = \"eth1\" }\n\n\
                    [[group]]\nname = \"web\"\nnodes = [\"a\"]\n[[group.resource]]\nname = \"vip\"\n\
                    kind = \"ip\"\naddress = \"10.0.0.1/24\"\n";
        let l = locate(Path::new("c.toml"), text).unwrap();
        assert_eq!(l.at("path.e1.interfaces"), "c.toml:12");
        assert_eq!(
            l.at("path.e1.timeout"),
            "c.toml:10",
            "falls back to the path"
        );
        assert_eq!(l.at("group.web.resource.vip.address"), "c.toml:20");
        assert_eq!(l.at("node.a"), "c.toml:6");
        assert_eq!(l.at("nothing"), "c.toml");
    }
}
