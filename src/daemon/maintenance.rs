//! The maintenance marker: while the cluster is in maintenance, the daemon keeps a small
//! file next to its control socket (`<socket>.maintenance`) with the mode's epoch and the
//! groups not offline here. A daemon that stops (or crashes) in maintenance leaves every
//! resource running; the next start finds the file, keeps the service addresses it would
//! otherwise remove as stale, and resumes those groups online instead of starting them
//! again (`Node::resume_maintenance`). Leaving maintenance removes the file.
//!
//! Format, one item per line: `epoch N`, then `group NAME` for each group not offline here.

use std::path::{Path, PathBuf};

use crate::config::GroupConfig;

/// What a marker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The maintenance epoch (odd).
    pub(crate) epoch: u64,
    /// Groups online here, as a bitmap over the config's groups.
    pub(crate) groups: u64,
}

/// The marker's path for the daemon whose control socket is `socket`.
pub(crate) fn marker_path(socket: &Path) -> PathBuf {
    socket.with_extension("maintenance")
}

/// Reads the marker at `path`: `Ok(None)` when there is none. A group the config no
/// longer has is reported in the error (the operator changed the config in maintenance).
pub(crate) fn read(path: &Path, groups: &[GroupConfig]) -> Result<Option<Marker>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut marker = Marker {
        epoch: 0,
        groups: 0,
    };
    for (n, line) in text.lines().enumerate() {
        let bad = |what: &str| format!("{}:{}: {what}", path.display(), n + 1);
        match line.split_once(' ') {
            Some(("epoch", e)) => {
                marker.epoch = e.parse().map_err(|_| bad("`epoch` needs a number"))?;
            }
            Some(("group", name)) => {
                let g = groups
                    .iter()
                    .position(|g| g.name == name)
                    .ok_or_else(|| bad(&format!("the config has no group `{name}`")))?;
                marker.groups |= 1 << g;
            }
            _ if line.trim().is_empty() || line.starts_with('#') => {}
            _ => return Err(bad("expected `epoch N` or `group NAME`")),
        }
    }
    if marker.epoch % 2 == 0 {
        return Err(format!(
            "{}: epoch {} is not a maintenance epoch (odd)",
            path.display(),
            marker.epoch
        ));
    }
    Ok(Some(marker))
}

/// Writes `marker` to `path` (through a temporary file and a rename: a crash leaves the
/// old one or the new one).
pub(crate) fn write(path: &Path, marker: &Marker, groups: &[GroupConfig]) -> std::io::Result<()> {
    let mut text = format!(
        "# heartwire: the cluster is in maintenance; a daemon started here resumes it\nepoch {}\n",
        marker.epoch
    );
    for (g, cfg) in groups.iter().enumerate() {
        if marker.groups & (1 << g) != 0 {
            text.push_str(&format!("group {}\n", cfg.name));
        }
    }
    let tmp = path.with_extension("maintenance.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Removes the marker at `path`, if there is one.
pub(crate) fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> GroupConfig {
        GroupConfig {
            name: name.into(),
            resources: Vec::new(),
            failure_timeout: None,
        }
    }

    #[test]
    fn a_marker_round_trips_and_bad_ones_say_where() {
        let dir = std::env::temp_dir().join(format!("hw-maint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let groups = [group("web"), group("db")];
        let path = marker_path(&dir.join("heartwire.sock"));
        assert_eq!(read(&path, &groups), Ok(None));
        let m = Marker {
            epoch: 3,
            groups: 0b10,
        };
        write(&path, &m, &groups).unwrap();
        assert_eq!(read(&path, &groups), Ok(Some(m)));
        let e = read(&path, &groups[..1]).unwrap_err();
        assert!(e.ends_with(":3: the config has no group `db`"), "{e}");
        std::fs::write(&path, "epoch 4\n").unwrap();
        assert!(
            read(&path, &groups)
                .unwrap_err()
                .contains("not a maintenance epoch")
        );
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert_eq!(read(&path, &groups), Ok(None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
