//! Shared-storage settings: the `reservation` and `filesystem` resources, the
//! `[tie_breaker]` disk and the `[watchdog]` (DESIGN §4–6).
//!
//! ```toml
//! [[group.resource]]
//! name = "disk"
//! kind = "reservation"
//! device = "/dev/sda"          # or devices = { a = "/dev/sda", b = "/dev/sdb" }
//! type = "write-exclusive-registrants-only"   # default; or write-exclusive,
//!                              # exclusive-access, exclusive-access-registrants-only, scsi2
//! timeout = "30s"              # per acquisition or release
//!
//! [[group.resource]]
//! name = "data"
//! kind = "filesystem"
//! device = "/dev/sda1"
//! mountpoint = "/srv/data"
//! fstype = "ext4"
//! options = "noatime"          # default "defaults"
//! fsck = true                  # `fsck -a` before mounting (default false)
//! timeout = "60s"              # per mount or unmount, holders' SIGTERM→SIGKILL included
//!
//! [tie_breaker]                # decides a view of exactly half the nodes
//! device = "/dev/sdb"          # or devices = { … }
//!
//! [watchdog]                   # self-fencing: the loop kicks it; a hung node is reset
//! device = "/dev/watchdog"     # default
//! timeout = "10s"              # whole seconds, 1..=600
//! ```

use core::time::Duration;
use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::Validator;
use super::raw::{RawConfig, RawDevices, RawGroup, RawResource};
use crate::config::ConfigError;
use crate::core::placement::Startup;
use crate::core::spec::NodeSpec;
use crate::storage::reservation::{self, Kind};

/// A `reservation` resource on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationResource {
    /// This node's path to the disk (`None`: this node cannot host the group).
    pub device: Option<String>,
    /// How it is reserved.
    pub kind: Kind,
    /// Limit for each acquisition and release.
    pub timeout: Duration,
}

/// A `filesystem` resource on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsResource {
    /// This node's path to the block device.
    pub device: Option<String>,
    /// Mount point.
    pub mountpoint: String,
    /// Filesystem type.
    pub fstype: String,
    /// Mount options.
    pub options: String,
    /// `fsck -a` before mounting.
    pub fsck: bool,
    /// Limit for each mount and unmount.
    pub timeout: Duration,
}

impl FsResource {
    /// Time between SIGTERM and SIGKILL to the holders on release: a third of the
    /// timeout, so the unmount itself has time left.
    pub fn grace(&self) -> Duration {
        self.timeout / 3
    }
}

/// The hardware watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// Its device.
    pub device: String,
    /// Timeout in seconds.
    pub timeout_s: u32,
}

/// The sentinel (`[sentinel]`, DESIGN §4): the process that watches the daemon, fences
/// this node when the daemon dies or hangs, and tells the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentinelConfig {
    /// Whether `run` starts one (default: yes).
    pub enabled: bool,
    /// A daemon whose loop makes no progress this long is killed and its node fenced.
    /// Default and most: the node timeout (the longest path timeout), whose expiry a
    /// peer follows with 1.5 leases of waiting before it takes over; half of it in
    /// `two_node` mode, where a peer takes over as soon as the timeout passes (the fence
    /// gets the other half).
    pub hang_timeout: Duration,
    /// After fencing a crashed daemon, start a new one (`after_crash = "restart"`, the
    /// default) or exit with the daemon's status (`"exit"`: the service manager decides).
    pub restart: bool,
}

/// Default limit of a reservation step.
const RESERVATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit of a mount or unmount.
const FILESYSTEM_TIMEOUT: Duration = Duration::from_secs(60);

impl Validator<'_> {
    /// This node's device from `device = …` or `devices = { node = … }` (an entry for
    /// each of `members` and only them). `what` names the owner in errors.
    fn device_of(
        &self,
        device: Option<&Spanned<String>>,
        devices: Option<&Spanned<BTreeMap<String, Spanned<String>>>>,
        at: &Spanned<String>,
        key: &dyn Fn(&str) -> String,
        members: &[&String],
        local: &str,
    ) -> Result<Option<String>, ConfigError> {
        let check = |d: &Spanned<String>, k: &str| {
            if d.get_ref().starts_with('/') {
                Ok(d.get_ref().clone())
            } else {
                Err(self.err(d, k, format!("`{}` is not an absolute path", d.get_ref())))
            }
        };
        match (device, devices) {
            (Some(d), None) => check(d, &key("device")).map(Some),
            (None, Some(map)) => {
                if let Some(extra) = map.get_ref().keys().find(|k| !members.contains(k)) {
                    return Err(self.err(
                        map,
                        &key("devices"),
                        format!("`{extra}` is not a node here"),
                    ));
                }
                for n in members {
                    let Some(d) = map.get_ref().get(*n) else {
                        return Err(self.err(
                            map,
                            &key("devices"),
                            format!("no entry for node `{n}`"),
                        ));
                    };
                    check(d, &key(&format!("devices.{n}")))?;
                }
                Ok(map.get_ref().get(local).map(|d| d.get_ref().clone()))
            }
            (Some(d), Some(_)) => {
                Err(self.err(d, &key("device"), "give `device` or `devices`, not both"))
            }
            (None, None) => Err(self.err(
                at,
                &key("device"),
                "a disk is needed: `device = \"/dev/…\"` or `devices = { <node> = \"/dev/…\" }`",
            )),
        }
    }

    /// This node's device of a group's resource (an entry per node of the group).
    fn resource_device(
        &self,
        g: &RawGroup,
        res: &RawResource,
        key: &dyn Fn(&str) -> String,
        local: &str,
    ) -> Result<Option<String>, ConfigError> {
        let members: Vec<&String> = g.nodes.get_ref().iter().map(|n| n.get_ref()).collect();
        self.device_of(
            res.device.as_ref(),
            res.devices.as_ref(),
            &res.kind,
            key,
            &members,
            local,
        )
    }

    fn timeout(
        &self,
        v: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(d) = v else {
            return Ok(default);
        };
        let t = self.duration(d, key)?;
        if t < Duration::from_millis(100) || t > Duration::from_secs(3600) {
            return Err(self.err(d, key, "must be 100ms..=1h"));
        }
        Ok(t)
    }

    pub(super) fn reservation(
        &self,
        g: &RawGroup,
        startup: Startup,
        res: &RawResource,
        key: &dyn Fn(&str) -> String,
        local: &str,
    ) -> Result<ReservationResource, ConfigError> {
        if startup == Startup::All {
            return Err(self.err(
                &res.kind,
                &key("kind"),
                "a reservation gives the disk to one node; a concurrent group (startup = \
                 \"all\") cannot have one",
            ));
        }
        let device = self.resource_device(g, res, key, local)?;
        let kind = match &res.reservation_type {
            None => Kind::Persistent(heartwire_hal::scsi::PrType::WriteExclusiveRegistrantsOnly),
            Some(t) => reservation::kind_named(t.get_ref()).ok_or_else(|| {
                self.err(
                    t,
                    &key("type"),
                    format!("`{}`: expected {}", t.get_ref(), reservation::kind_names()),
                )
            })?,
        };
        Ok(ReservationResource {
            device,
            kind,
            timeout: self.timeout(res.timeout.as_ref(), &key("timeout"), RESERVATION_TIMEOUT)?,
        })
    }

    pub(super) fn filesystem(
        &self,
        g: &RawGroup,
        res: &RawResource,
        key: &dyn Fn(&str) -> String,
        local: &str,
    ) -> Result<FsResource, ConfigError> {
        let device = self.resource_device(g, res, key, local)?;
        let mountpoint = self.word(res, &res.mountpoint, "mountpoint", key)?;
        if !mountpoint.get_ref().starts_with('/') || mountpoint.get_ref() == "/" {
            return Err(self.err(
                mountpoint,
                &key("mountpoint"),
                "must be an absolute path other than /",
            ));
        }
        let fstype = self.word(res, &res.fstype, "fstype", key)?;
        let options = match &res.options {
            None => "defaults".to_owned(),
            Some(_) => self
                .word(res, &res.options, "options", key)?
                .get_ref()
                .clone(),
        };
        Ok(FsResource {
            device,
            mountpoint: mountpoint.get_ref().trim_end_matches('/').to_owned(),
            fstype: fstype.get_ref().clone(),
            options,
            fsck: res.fsck.as_ref().is_some_and(|f| *f.get_ref()),
            timeout: self.timeout(res.timeout.as_ref(), &key("timeout"), FILESYSTEM_TIMEOUT)?,
        })
    }

    /// A required one-word value of a filesystem resource.
    fn word<'v>(
        &self,
        res: &RawResource,
        v: &'v Option<Spanned<String>>,
        k: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Result<&'v Spanned<String>, ConfigError> {
        let s = v.as_ref().ok_or_else(|| {
            self.err(
                &res.kind,
                &key(k),
                format!("a filesystem resource needs `{k}`"),
            )
        })?;
        if s.get_ref().trim().is_empty() || s.get_ref().contains(char::is_whitespace) {
            return Err(self.err(s, &key(k), "must be one word"));
        }
        Ok(s)
    }

    /// This node's tie-breaker disk, if one is configured.
    pub(super) fn tie_breaker(
        &self,
        raw: &RawConfig,
        nodes: &[NodeSpec],
        local: usize,
    ) -> Result<Option<String>, ConfigError> {
        let Some(RawDevices { device, devices }) = &raw.tie_breaker else {
            return Ok(None);
        };
        if let Some(two) = raw.cluster.two_node.as_ref().filter(|s| *s.get_ref()) {
            return Err(self.err(
                two,
                "cluster.two_node",
                "two_node = true does not go with a [tie_breaker]: two_node keeps a lone node \
                 quorate whether or not it wins the race, so after a cut both nodes would hold \
                 every group and preempt each other's disks. Remove two_node: with a \
                 tie-breaker the node that wins the race keeps quorum alone",
            ));
        }
        let names: Vec<&String> = nodes.iter().map(|n| &n.name).collect();
        let key = |k: &str| format!("tie_breaker.{k}");
        self.device_of(
            device.as_ref(),
            devices.as_ref(),
            &raw.cluster.name,
            &key,
            &names,
            &nodes[local].name,
        )
        .map(|d| Some(d.expect("invariant: every node has an entry")))
    }

    /// `[sentinel]`: `hang_timeout` lies between three of the shortest path interval
    /// (the loop turns at least once an interval) and the most [`SentinelConfig`] allows.
    pub(super) fn sentinel(
        &self,
        raw: &RawConfig,
        paths: &[crate::core::PathSpec],
    ) -> Result<SentinelConfig, ConfigError> {
        let timeout = paths.iter().map(|p| p.timeout).max().unwrap_or_default();
        let interval = paths.iter().map(|p| p.interval).min().unwrap_or_default();
        let two_node = raw.cluster.two_node.as_ref().is_some_and(|s| *s.get_ref());
        let (most, why) = if two_node {
            (
                timeout / 2,
                "half the node timeout: with two_node a peer takes over as soon as the \
                 timeout passes, and the fence needs the other half",
            )
        } else {
            (
                timeout,
                "the node timeout: a hung daemon must be fenced before a peer may take over",
            )
        };
        let mut c = SentinelConfig {
            enabled: true,
            hang_timeout: most,
            restart: true,
        };
        let Some(s) = &raw.sentinel else {
            return Ok(c);
        };
        c.enabled = s.enabled.unwrap_or(true);
        if let Some(t) = &s.hang_timeout {
            let v = self.duration(t, "sentinel.hang_timeout")?;
            if v < interval * 3 || v > most {
                return Err(self.err(
                    t,
                    "sentinel.hang_timeout",
                    format!(
                        "must lie between three heartbeat intervals ({:?}: the loop turns at \
                         least once an interval) and {most:?} ({why})",
                        interval * 3,
                    ),
                ));
            }
            c.hang_timeout = v;
        }
        if let Some(a) = &s.after_crash {
            c.restart = match a.get_ref().as_str() {
                "restart" => true,
                "exit" => false,
                other => {
                    return Err(self.err(
                        a,
                        "sentinel.after_crash",
                        format!("`{other}` is not one of \"restart\", \"exit\""),
                    ));
                }
            };
        }
        Ok(c)
    }

    pub(super) fn watchdog(&self, raw: &RawConfig) -> Result<Option<WatchdogConfig>, ConfigError> {
        let Some(w) = &raw.watchdog else {
            return Ok(None);
        };
        let device = match &w.device {
            None => "/dev/watchdog".to_owned(),
            Some(d) if d.get_ref().starts_with('/') => d.get_ref().clone(),
            Some(d) => {
                return Err(self.err(d, "watchdog.device", "must be an absolute path"));
            }
        };
        let timeout_s = match &w.timeout {
            None => 10,
            Some(t) => {
                let v = self.duration(t, "watchdog.timeout")?;
                if v.subsec_nanos() != 0 || !(1..=600).contains(&v.as_secs()) {
                    return Err(self.err(
                        t,
                        "watchdog.timeout",
                        "must be whole seconds, 1s..=600s (watchdog drivers count seconds)",
                    ));
                }
                u32::try_from(v.as_secs()).expect("invariant: <= 600")
            }
        };
        Ok(Some(WatchdogConfig { device, timeout_s }))
    }
}
