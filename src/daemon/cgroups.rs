//! The node's cgroups (docs/DESIGN.md §3, Processes): every process the daemon starts is in
//! `heartwire.<cluster>.<node>`, a cgroup v2 directory beside the one `run` was started
//! in (with systemd: inside the unit's, which `Delegate=yes` gives to heartwire):
//!
//! - `app.<group>.<resource>`: an application's start and everything it leaves running,
//!   whatever it forks or however it detaches (`setsid`, a double fork);
//! - `cmd`: every other command (stops, monitors, event commands, storage steps).
//!
//! What that buys, against process groups and a walk of `/proc`:
//! - an application's end is an event (`cgroup.events` says `populated 0` as the last of
//!   it exits), so the daemon learns of it at once instead of at its next monitor;
//! - a child is born in its cgroup (`CLONE_INTO_CGROUP`): no migration, which would
//!   wait an RCU grace period (milliseconds) in the loop's spawn;
//! - a fence kills what a cgroup holds (`hal::cgroup`: the members, round after round),
//!   per application, or for the whole node;
//! - the sentinel's fence, and a new daemon's start, kill what a dead daemon left by
//!   killing the node's cgroup and waiting for it to empty: no read of every process's
//!   environment.
//!
//! Without a cgroup v2 hierarchy the daemon says so once and falls back to process groups
//! and the `HW_CLUSTER`/`HW_NODE` sweep of `/proc`.

use std::path::PathBuf;

use heartwire_hal::cgroup::{self, Cgroup};

use crate::config::GroupConfig;

/// The node's cgroup tree, its control files open.
#[derive(Debug)]
pub(crate) struct NodeCgroups {
    node: Cgroup,
    cmd: Cgroup,
    /// Per group and resource: an application's cgroup.
    apps: Vec<Vec<Option<Cgroup>>>,
}

/// The node's directory: `heartwire.<cluster>.<node>` beside this process's own cgroup.
fn node_dir(cluster: &str, node: &str) -> std::io::Result<PathBuf> {
    Ok(cgroup::own_dir()?.join(format!("heartwire.{cluster}.{node}")))
}

impl NodeCgroups {
    /// Opens (creating them as needed) the node's cgroups for `groups`; `Err` says why
    /// there are none (no cgroup v2, not allowed, no `clone3` into a cgroup).
    pub(crate) fn open(
        cluster: &str,
        node: &str,
        groups: &[GroupConfig],
    ) -> Result<NodeCgroups, String> {
        let dir = node_dir(cluster, node).map_err(|e| e.to_string())?;
        let node = Cgroup::create(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cmd =
            Cgroup::create(&dir.join("cmd")).map_err(|e| format!("{}/cmd: {e}", dir.display()))?;
        probe(&cmd)?;
        let mut n = NodeCgroups {
            node,
            cmd,
            apps: Vec::new(),
        };
        for (g, cfg) in groups.iter().enumerate() {
            n.set_group(g, cfg)?;
        }
        Ok(n)
    }

    /// Opens the cgroups of group `g`'s applications as `cfg` names them (a reload).
    pub(crate) fn set_group(&mut self, g: usize, cfg: &GroupConfig) -> Result<(), String> {
        if self.apps.len() <= g {
            self.apps.resize_with(g + 1, Vec::new);
        }
        let mut apps = Vec::with_capacity(cfg.resources.len());
        for r in &cfg.resources {
            let app = matches!(r.kind, crate::config::ResourceKind::Application(_));
            apps.push(if app {
                let dir = self
                    .node
                    .path()
                    .join(format!("app.{}.{}", cfg.name, r.name));
                Some(Cgroup::create(&dir).map_err(|e| format!("{}: {e}", dir.display()))?)
            } else {
                None
            });
        }
        self.apps[g] = apps;
        Ok(())
    }

    /// Application (g, r)'s cgroup.
    pub(crate) fn app(&self, g: u8, r: u8) -> Option<&Cgroup> {
        self.apps.get(usize::from(g))?.get(usize::from(r))?.as_ref()
    }

    /// The cgroup of every command that is not an application's start.
    pub(crate) fn cmd(&self) -> &Cgroup {
        &self.cmd
    }

    /// Kills every process of the node's tree (what a dead daemon left): one round of
    /// SIGKILL, returning at once with who got it ([`NodeCgroups::finish_kill`] kills what
    /// they forked meanwhile and waits for them to be gone).
    pub(crate) fn kill_all(&self) -> std::io::Result<Vec<i32>> {
        let mut killed = Vec::new();
        // The cgroups it made, each read through its open `cgroup.procs`: what an
        // application made below its own is found by the walks of `finish_kill`.
        let known = [&self.node, &self.cmd]
            .into_iter()
            .chain(self.apps.iter().flatten().flatten());
        for c in known {
            c.kill_members_here(&mut killed)?;
        }
        Ok(killed)
    }

    /// Kills on what [`NodeCgroups::kill_all`] began until the tree is empty, for at most
    /// `limit`: `false` if it still is not then (a process stuck in the kernel).
    pub(crate) fn finish_kill(&self, killed: &mut Vec<i32>, limit: std::time::Duration) -> bool {
        self.node.kill_until_empty(killed, limit).unwrap_or(false)
    }

    /// The processes still in the node's tree (for the log).
    pub(crate) fn members(&self) -> Vec<i32> {
        self.node.members()
    }
}

/// Starts `/bin/true` in `cg` and reaps it: a kernel before 5.7 or a seccomp filter
/// that refuses `clone3` says so here, once, not at the first takeover.
fn probe(cg: &Cgroup) -> Result<(), String> {
    use std::ffi::CString;
    use std::os::fd::AsFd;
    let devnull = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    let t = CString::from(c"/bin/true");
    let failed = |e: std::io::Error| format!("starting /bin/true in {}: {e}", cg.path().display());
    let mut child = cg
        .spawn(&t, std::slice::from_ref(&t), &[], devnull.as_fd())
        .map_err(failed)?;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < end {
        if heartwire_hal::sentinel::try_wait(child.pid).is_ok_and(|e| e.is_some()) {
            // Its exec's error, if it had one (the spawn returns before the exec).
            return child.exec.outcome().unwrap_or(Ok(())).map_err(failed);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(format!(
        "/bin/true started in {} did not end",
        cg.path().display()
    ))
}

impl Drop for NodeCgroups {
    /// Removes the tree where it is empty (a daemon that ends in maintenance leaves its
    /// applications, and their cgroups, running for the next one).
    fn drop(&mut self) {
        let dirs = self
            .apps
            .iter()
            .flatten()
            .flatten()
            .chain([&self.cmd, &self.node])
            .map(|c| c.path().to_owned());
        for d in dirs.collect::<Vec<_>>() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
