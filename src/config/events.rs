//! `[[event]]`: commands run on events (DESIGN §6).
//!
//! ```toml
//! [[event]]
//! on = "node_down"      # an event name (as logged) or "*": run `notify` when it happens
//! notify = "/usr/local/sbin/page-oncall"
//!
//! [[event]]
//! on = "acquire"        # acquire | release: steps this node takes for a group
//! group = "web"         # optional: only this group (a group's own entry wins over one
//!                       # without `group`)
//! pre = "..."           # before the first resource; a failure fails the acquisition
//! post = "..."          # after the last resource
//! timeout = "30s"       # each run (default 30s)
//! ```
//!
//! `notify` never delays anything; a `pre` delays its acquisition or release until it
//! exits (within `timeout`). All run as children with `HW_*` variables (see the daemon).

use std::time::Duration;

use serde_spanned::Spanned;

use super::raw::{RawConfig, RawEvent};
use super::{ConfigError, Validator};
use crate::core::{Event, GroupSpec};

/// Default limit for each event command.
pub const EVENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// What an `[[event]]` entry reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOn {
    /// This node acquires a group.
    Acquire,
    /// This node releases a group.
    Release,
    /// A logged event of this name.
    Named(&'static str),
    /// Every logged event.
    Any,
}

/// One validated `[[event]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventConfig {
    /// What it reacts to.
    pub on: EventOn,
    /// Only this group (index), if given.
    pub group: Option<usize>,
    /// Runs before (acquire and release only).
    pub pre: Option<String>,
    /// Runs after (acquire and release only).
    pub post: Option<String>,
    /// Runs when the event happens (logged events only).
    pub notify: Option<String>,
    /// Limit for each run.
    pub timeout: Duration,
}

impl EventConfig {
    /// The entry that supplies the `pre` (or `post`) command of `on` for group `g`: the
    /// group's own entry, else one without `group`.
    pub fn find<'a>(
        events: &'a [EventConfig],
        on: &EventOn,
        g: usize,
        pre: bool,
    ) -> Option<&'a EventConfig> {
        let has = |e: &&EventConfig| {
            e.on == *on
                && if pre {
                    e.pre.is_some()
                } else {
                    e.post.is_some()
                }
        };
        let mut candidates = events.iter().filter(has);
        let own = candidates.clone().find(|e| e.group == Some(g));
        own.or_else(|| candidates.find(|e| e.group.is_none()))
    }
}

impl Validator<'_> {
    /// Validates every `[[event]]` and marks the groups that have a `pre` command.
    pub(super) fn events(
        &self,
        raw: &RawConfig,
        groups: &mut [GroupSpec],
    ) -> Result<Vec<EventConfig>, ConfigError> {
        let mut out: Vec<EventConfig> = Vec::new();
        for (i, e) in raw.events.iter().enumerate() {
            let key = |k: &str| format!("event[{i}].{k}");
            let ev = self.event(e, &key, groups)?;
            for (pre, cmd, k) in [(true, &e.pre, "pre"), (false, &e.post, "post")] {
                let Some(cmd) = cmd else { continue };
                let clash = out.iter().position(|o| {
                    o.on == ev.on
                        && o.group == ev.group
                        && if pre {
                            o.pre.is_some()
                        } else {
                            o.post.is_some()
                        }
                });
                if let Some(j) = clash {
                    let whom = ev.group.map_or("every group".to_owned(), |g| {
                        format!("group {}", groups[g].name)
                    });
                    return Err(self.err(
                        cmd,
                        &key(k),
                        format!(
                            "a second {k} command for {} of {whom} (event[{j}] has one)",
                            e.on.get_ref()
                        ),
                    ));
                }
            }
            out.push(ev);
        }
        for (g, spec) in groups.iter_mut().enumerate() {
            spec.pre_acquire = EventConfig::find(&out, &EventOn::Acquire, g, true).is_some();
            spec.pre_release = EventConfig::find(&out, &EventOn::Release, g, true).is_some();
        }
        Ok(out)
    }

    fn event(
        &self,
        e: &RawEvent,
        key: &dyn Fn(&str) -> String,
        groups: &[GroupSpec],
    ) -> Result<EventConfig, ConfigError> {
        let name = e.on.get_ref().as_str();
        let on = match name {
            "acquire" => EventOn::Acquire,
            "release" => EventOn::Release,
            "*" => EventOn::Any,
            _ => Event::NAMES
                .iter()
                .find(|n| **n == name)
                .map(|n| EventOn::Named(n))
                .ok_or_else(|| {
                    self.err(
                        &e.on,
                        &key("on"),
                        format!(
                            "`{name}`: expected acquire, release, \"*\" or an event name ({})",
                            Event::NAMES.join(", ")
                        ),
                    )
                })?,
        };
        let step = matches!(on, EventOn::Acquire | EventOn::Release);
        if !step {
            for (v, k) in [(&e.pre, "pre"), (&e.post, "post")] {
                if let Some(v) = v {
                    return Err(self.err(
                        v,
                        &key(k),
                        format!(
                            "pre and post apply to on = \"acquire\" or \"release\" (steps this node \
                             takes); `{name}` is an event this node observes: use notify"
                        ),
                    ));
                }
            }
        } else if let Some(v) = &e.notify {
            return Err(self.err(
                v,
                &key("notify"),
                format!(
                    "notify applies to observed events; for {name} use pre or post, or notify on \
                     group_acquiring / group_online / group_releasing / group_offline"
                ),
            ));
        }
        if e.pre.is_none() && e.post.is_none() && e.notify.is_none() {
            return Err(self.err(&e.on, &key("on"), "an [[event]] needs pre, post or notify"));
        }
        for (v, k) in [(&e.pre, "pre"), (&e.post, "post"), (&e.notify, "notify")] {
            if let Some(v) = v.as_ref().filter(|v| v.get_ref().trim().is_empty()) {
                return Err(self.err(v, &key(k), "an empty command"));
            }
        }
        let group = match &e.group {
            None => None,
            Some(gname) => {
                if !(step || matches!(on, EventOn::Named(n) if Event::names_group(n))) {
                    return Err(self.err(
                        gname,
                        &key("group"),
                        format!("`{name}` events do not concern a group"),
                    ));
                }
                Some(
                    groups
                        .iter()
                        .position(|g| &g.name == gname.get_ref())
                        .ok_or_else(|| {
                            self.err(
                                gname,
                                &key("group"),
                                format!("`{}` is not a configured group", gname.get_ref()),
                            )
                        })?,
                )
            }
        };
        let timeout = match &e.timeout {
            None => EVENT_TIMEOUT_DEFAULT,
            Some(t) => self.bounded(t, &key("timeout"))?,
        };
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
        Ok(EventConfig {
            on,
            group,
            pre: text(&e.pre),
            post: text(&e.post),
            notify: text(&e.notify),
            timeout,
        })
    }

    fn bounded(&self, t: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
        let v = self.duration(t, key)?;
        if v < Duration::from_millis(1) || v > Duration::from_secs(3600) {
            return Err(self.err(t, key, "must be 1ms..=1h"));
        }
        Ok(v)
    }
}
