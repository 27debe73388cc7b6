//! Reload (`SIGHUP`, `heartwire reload`): apply a changed config without a restart.
//!
//! What a reload may change: the resources of a group (addresses, applications, their
//! options), the `[[event]]` commands, and `on_quorum_loss`. Everything the cluster must
//! agree on to stay one cluster — its name, id and key, the nodes, the paths, the groups
//! themselves (names, order, node lists, policies, networks) and the interfaces whose
//! carrier is watched — needs a restart: a reload that changes any of it is refused with
//! what changed, and nothing is applied. Heartbeats never stop: the paths are untouched.
//!
//! A group whose resources changed is *bounced* here when this node holds it: held off,
//! it releases with its old resource list while the view keeps it placed on this node
//! (nobody else takes it), and once offline it gets the new list and acquires again.
//! A group this node does not hold just gets the new list. Other groups are untouched.
//!
//! What does not need a bounce is applied in place, to the running resources: an
//! application's `stop`, `monitor`, `monitor_interval`, `timeout` and `restarts` (as
//! Pacemaker does not restart a resource for an operation's interval). A group in
//! `error` (a stop failed) cannot be bounced — its release is what failed — so a reload
//! may change only its applications' commands and options, in place; `heartwire cleanup`
//! then retries the release with them.

use crate::config::{self, Config};
use crate::core::{GroupSpec, Instant, Phase};

use super::Daemon;

/// A group's new resource list, waiting for the group to be released here.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    spec: GroupSpec,
    cfg: crate::config::GroupConfig,
}

/// What differs between two configs that a reload cannot apply, if anything.
pub(super) fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.spec, &new.spec);
    let mut why = Vec::new();
    if a.name != b.name || a.cluster_id != b.cluster_id || old.key != new.key {
        why.push("the cluster's name, id or key");
    }
    if a.nodes != b.nodes || old.local != new.local {
        why.push("the nodes");
    }
    if a.paths != b.paths
        || old.io != new.io
        || a.networks != b.networks
        || a.pause_threshold != b.pause_threshold
        || a.two_node != b.two_node
    {
        why.push("the paths or their timing");
    }
    let shape = |s: &crate::core::spec::ClusterSpec| {
        s.groups
            .iter()
            .map(|g| (g.name.clone(), g.policy.clone(), g.networks))
            .collect::<Vec<_>>()
    };
    if shape(a) != shape(b) {
        why.push("the groups themselves (names, order, nodes, policies, networks)");
    }
    if old.adapters != new.adapters {
        why.push("the interfaces whose carrier is watched");
    }
    if old.realtime != new.realtime
        || old.control_socket != new.control_socket
        || old.control_socket_group != new.control_socket_group
    {
        why.push("real-time settings or the control socket");
    }
    why
}

/// Whether group `new` differs from `old` only where running resources take the change
/// as they are: an application's stop, monitor, monitor_interval, timeout and restarts,
/// and its start too when `start_too` (a group in error runs no start before its
/// release). Names, kinds, order and every other resource stay the same.
fn applies_in_place(
    old: &crate::config::GroupConfig,
    new: &crate::config::GroupConfig,
    start_too: bool,
) -> bool {
    use crate::config::ResourceKind;
    old.resources.len() == new.resources.len()
        && old.resources.iter().zip(&new.resources).all(|(a, b)| {
            a.name == b.name
                && match (&a.kind, &b.kind) {
                    (ResourceKind::Application(x), ResourceKind::Application(y)) => {
                        start_too || x.start == y.start
                    }
                    (x, y) => x == y,
                }
        })
}

impl Daemon {
    /// Reloads the config file; returns what was done, or why nothing (or not all) was.
    pub(super) fn reload(&mut self, now: Instant) -> Result<String, String> {
        let file = self.config.file.clone();
        let node = self.local_name().to_owned();
        let new = config::load(&file, Some(&node))
            .map_err(|e| format!("the config does not load, nothing changed: {e}"))?;
        let why = restart_needed(&self.config, &new);
        if !why.is_empty() {
            return Err(format!(
                "restart needed, nothing changed: the new config changes {}",
                why.join("; ")
            ));
        }
        let old_hash = self.config.spec.config_hash;
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for g in 0..new.groups.len() {
            let spec = new.spec.groups[g].clone();
            let cfg = new.groups[g].clone();
            if spec == self.config.spec.groups[g] && cfg == self.config.groups[g] {
                continue;
            }
            let name = cfg.name.clone();
            let phase = self.node.groups()[g].phase;
            let same_spec = spec == self.config.spec.groups[g];
            let in_place =
                same_spec && applies_in_place(&self.groups[g], &cfg, phase == Phase::Error);
            if phase == Phase::Offline {
                match self.swap(g, spec, cfg) {
                    Ok(()) => done.push(format!("{name}: updated (not held here)")),
                    Err(e) => failed.push(e),
                }
            } else if in_place {
                match self.resources.update_in_place(now, g, cfg.clone()) {
                    Ok(()) => {
                        self.groups[g] = cfg;
                        done.push(if phase == Phase::Error {
                            format!(
                                "{name}: in error here (a stop failed); its commands are updated: \
                                 `heartwire cleanup {name}` retries the release with them"
                            )
                        } else {
                            format!("{name}: updated in place (nothing restarted)")
                        });
                    }
                    Err(e) => failed.push(format!("group {name}: {e}; it keeps its old resources")),
                }
            } else if phase == Phase::Error {
                failed.push(format!(
                    "group {name} is in error here (a stop failed): only its applications' \
                     commands and options can change now, and its resource list must stay \
                     as it is; fix the stop, reload, `heartwire cleanup {name}`, then change \
                     the rest"
                ));
            } else {
                self.pending[g] = Some(Pending { spec, cfg });
                self.node.hold_off_group(now, g, true);
                done.push(format!(
                    "{name}: bounced (released, then acquired with its new resources)"
                ));
            }
        }
        if new.events != self.config.events {
            self.resources.set_events(&new.events);
            done.push("events: replaced".into());
        }
        self.node.set_config_hash(new.spec.config_hash);
        let new_hash = new.spec.config_hash;
        if let Some(s) = &self.sentinel {
            // The next daemon its sentinel starts runs this config too.
            s.words()
                .config_hash
                .store(new_hash, std::sync::atomic::Ordering::Relaxed);
        }
        self.config = new;
        let summary = if done.is_empty() && old_hash == new_hash {
            "nothing changed".to_owned()
        } else if done.is_empty() {
            "no group affected".to_owned()
        } else {
            done.join("; ")
        };
        let what = format!("config {old_hash:016x} -> {new_hash:016x}: {summary}");
        if failed.is_empty() {
            Ok(what)
        } else {
            Err(format!("{what}; but {}", failed.join("; ")))
        }
    }

    /// A group went offline here: if a reload waits for that, give it its new resources
    /// and let it be acquired again.
    pub(super) fn group_offline(&mut self, now: Instant, g: usize) {
        let Some(p) = self.pending.get_mut(g).and_then(Option::take) else {
            return;
        };
        let name = p.cfg.name.clone();
        match self.swap(g, p.spec, p.cfg) {
            Ok(()) => {
                ::log::info!("reload: group {name} released; acquiring it with its new resources");
            }
            Err(e) => ::log::error!("reload: group {name}: {e}"),
        }
        self.node.hold_off_group(now, g, false);
    }

    /// Gives offline group `g` its new resources, in the core and in the daemon together;
    /// when either refuses, both keep the old ones.
    fn swap(&mut self, g: usize, spec: GroupSpec, cfg: config::GroupConfig) -> Result<(), String> {
        let name = cfg.name.clone();
        let old = self.node.spec().groups[g].clone();
        self.node
            .respec_group(g, spec)
            .map_err(|_| format!("group {name} is not offline here; it keeps its old resources"))?;
        if let Err(e) = self.resources.set_group(g, cfg.clone()) {
            self.node
                .respec_group(g, old)
                .expect("invariant: still offline, nothing ran in between");
            return Err(format!("group {name}: {e}; it keeps its old resources"));
        }
        self.groups[g] = cfg;
        Ok(())
    }
}
