//! Control requests as lines, and the answer to an operator command.
//!
//! ```text
//! status
//! events
//! reload
//! move GROUP NODE [timeout_ms=N]
//! online GROUP... [timeout_ms=N]
//! offline GROUP... [timeout_ms=N]
//! stop [takeover] [timeout_ms=N]
//! sync FILE
//! verify-cluster FILE
//! ```
//!
//! `FILE` (an absolute path, the rest of the line) is the config the operator checked:
//! `sync` pushes it only if it is the file the daemon runs; `verify-cluster` has every
//! member that is up check it (DESIGN §7, `core::offer`).
//!
//! Names are config names (no spaces). The daemon answers `status` at once; an operator
//! command when it is done, expired, or refused.

use core::time::Duration;

use serde::{Deserialize, Serialize};

use super::status::GroupStatus;

/// How long an operator command may take unless the operator says otherwise.
pub const COMMAND_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// Longest timeout accepted (the command frame carries milliseconds in 32 bits; an hour
/// is already far past any sane takeover).
pub const COMMAND_TIMEOUT_MAX: Duration = Duration::from_secs(3600);

/// A parsed control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The status report.
    Status,
    /// Follow the event stream (see [`super::events`]).
    Events,
    /// Reload the config file.
    Reload,
    /// Move a group to a node.
    Move {
        /// Group name.
        group: String,
        /// Node name.
        node: String,
        /// How long to wait.
        timeout: Duration,
    },
    /// Bring groups online.
    Online {
        /// Group names.
        groups: Vec<String>,
        /// How long to wait.
        timeout: Duration,
    },
    /// Forget groups' failures everywhere and retry releases stuck in error, with the
    /// commands of the config loaded now.
    Cleanup {
        /// Group names.
        groups: Vec<String>,
        /// How long to wait.
        timeout: Duration,
    },
    /// Maintenance mode on or off, cluster-wide.
    Maintenance {
        /// On.
        on: bool,
        /// `off` even while configured nodes are outside the view (they are down for
        /// good): see `Node::command_with`.
        force: bool,
        /// How long to wait for every member to follow.
        timeout: Duration,
    },
    /// Push the daemon's config file to every member (two-phase: all or none).
    Sync {
        /// The file the operator verified (must be the daemon's own).
        file: String,
    },
    /// Have every member that is up check a config file.
    VerifyCluster {
        /// The file.
        file: String,
    },
    /// Take groups offline everywhere.
    Offline {
        /// Group names.
        groups: Vec<String>,
        /// How long to wait.
        timeout: Duration,
    },
    /// Stop this node's daemon: release its groups, then hand them over (`takeover`) or
    /// take them offline everywhere.
    Stop {
        /// Hand the groups to the next node of each list.
        takeover: bool,
        /// How long to wait for the hand-over before exiting anyway.
        timeout: Duration,
    },
}

impl Request {
    /// Parses a request line; the error says what is wrong and what is accepted.
    pub fn parse(line: &str) -> Result<Request, String> {
        let trimmed = line.trim();
        for (verb, make) in [
            (
                "sync",
                (|file| Request::Sync { file }) as fn(String) -> Request,
            ),
            ("verify-cluster", |file| Request::VerifyCluster { file }),
        ] {
            if let Some(rest) = trimmed.strip_prefix(verb) {
                let file = rest.trim();
                if rest.starts_with(char::is_whitespace) && file.starts_with('/') {
                    return Ok(make(file.to_owned()));
                }
                if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                    return Err(format!("`{verb}` needs the config file's absolute path"));
                }
            }
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let mut timeout = COMMAND_TIMEOUT_DEFAULT;
        if let Some(last) = words.last().and_then(|w| w.strip_prefix("timeout_ms=")) {
            let ms: u64 = last
                .parse()
                .map_err(|_| format!("timeout_ms=`{last}` is not a number of milliseconds"))?;
            timeout = Duration::from_millis(ms);
            if timeout.is_zero() || timeout > COMMAND_TIMEOUT_MAX {
                return Err(format!(
                    "timeout_ms={ms} is out of range (1..={})",
                    COMMAND_TIMEOUT_MAX.as_millis()
                ));
            }
            words.pop();
        }
        let owned = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match words.as_slice() {
            ["status"] => Ok(Request::Status),
            ["events"] => Ok(Request::Events),
            ["reload"] => Ok(Request::Reload),
            ["move", group, node] => Ok(Request::Move {
                group: (*group).to_owned(),
                node: (*node).to_owned(),
                timeout,
            }),
            ["online", groups @ ..] if !groups.is_empty() => Ok(Request::Online {
                groups: owned(groups),
                timeout,
            }),
            ["offline", groups @ ..] if !groups.is_empty() => Ok(Request::Offline {
                groups: owned(groups),
                timeout,
            }),
            ["maintenance", state @ ("on" | "off")] => Ok(Request::Maintenance {
                on: *state == "on",
                force: false,
                timeout,
            }),
            ["maintenance", "off", "force"] => Ok(Request::Maintenance {
                on: false,
                force: true,
                timeout,
            }),
            ["cleanup", groups @ ..] if !groups.is_empty() => Ok(Request::Cleanup {
                groups: owned(groups),
                timeout,
            }),
            ["stop"] => Ok(Request::Stop {
                takeover: false,
                timeout,
            }),
            ["stop", "takeover"] => Ok(Request::Stop {
                takeover: true,
                timeout,
            }),
            _ => {
                let shown: String = line.chars().take(64).collect();
                Err(format!(
                    "unknown request `{shown}`; known: status, events, reload, move GROUP NODE, online GROUP..., \
                     offline GROUP..., cleanup GROUP..., maintenance on|off, stop [takeover] (each command may end in timeout_ms=N), \
                     sync FILE, verify-cluster FILE"
                ))
            }
        }
    }

    /// The request line (without the newline).
    pub fn line(&self) -> String {
        let t = |d: &Duration| format!("timeout_ms={}", d.as_millis());
        match self {
            Request::Status => "status".into(),
            Request::Events => "events".into(),
            Request::Reload => "reload".into(),
            Request::Sync { file } => format!("sync {file}"),
            Request::VerifyCluster { file } => format!("verify-cluster {file}"),
            Request::Move {
                group,
                node,
                timeout,
            } => format!("move {group} {node} {}", t(timeout)),
            Request::Online { groups, timeout } => {
                format!("online {} {}", groups.join(" "), t(timeout))
            }
            Request::Offline { groups, timeout } => {
                format!("offline {} {}", groups.join(" "), t(timeout))
            }
            Request::Cleanup { groups, timeout } => {
                format!("cleanup {} {}", groups.join(" "), t(timeout))
            }
            Request::Maintenance { on, force, timeout } => {
                format!(
                    "maintenance {}{} {}",
                    if *on { "on" } else { "off" },
                    if *force { " force" } else { "" },
                    t(timeout)
                )
            }
            Request::Stop { takeover, timeout } => {
                format!(
                    "stop{} {}",
                    if *takeover { " takeover" } else { "" },
                    t(timeout)
                )
            }
        }
    }

    /// How long the command may take (zero for `status` and `events`).
    pub fn timeout(&self) -> Duration {
        match self {
            Request::Status | Request::Events | Request::Reload => Duration::ZERO,
            // The daemon answers when the offer is settled; its own deadlines bound it.
            Request::Sync { .. } | Request::VerifyCluster { .. } => {
                crate::core::offer::VERDICT_TIMEOUT + crate::core::offer::COMMIT_TIMEOUT
            }
            Request::Move { timeout, .. }
            | Request::Online { timeout, .. }
            | Request::Offline { timeout, .. }
            | Request::Cleanup { timeout, .. }
            | Request::Maintenance { timeout, .. }
            | Request::Stop { timeout, .. } => *timeout,
        }
    }
}

/// The daemon's answer to an operator command that it took.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandReport {
    /// The request as the daemon understood it.
    pub request: String,
    /// `done`, or `expired` (not carried out within the timeout), or `stopped` (a stop
    /// finished: every group released, the hand-over done or given up).
    pub result: String,
    /// From the request to the result, µs.
    pub elapsed_us: u64,
    /// The groups the command named, as they stand now.
    pub groups: Vec<GroupStatus>,
}

impl CommandReport {
    /// One line per group, after a headline.
    pub fn render(&self) -> String {
        let mut o = format!(
            "{}: {} after {:.3} ms\n",
            self.request,
            self.result,
            self.elapsed_us as f64 / 1e3
        );
        for g in &self.groups {
            let online = if g.online_on.is_empty() {
                "nowhere".to_owned()
            } else {
                g.online_on.join(",")
            };
            o.push_str(&format!(
                "  {}: {}{}, online on {online}{}\n",
                g.name,
                g.placement,
                g.owner
                    .as_deref()
                    .map_or(String::new(), |o| format!(" {o}")),
                if g.held_by.len() > g.online_on.len() {
                    format!(" (held by {})", g.held_by.join(","))
                } else {
                    String::new()
                }
            ));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_errors_say_what_is_accepted() {
        for r in [
            Request::Status,
            Request::Events,
            Request::Reload,
            Request::Move {
                group: "web".into(),
                node: "b".into(),
                timeout: Duration::from_millis(1500),
            },
            Request::Online {
                groups: vec!["web".into(), "db".into()],
                timeout: COMMAND_TIMEOUT_DEFAULT,
            },
            Request::Offline {
                groups: vec!["web".into()],
                timeout: COMMAND_TIMEOUT_DEFAULT,
            },
            Request::Cleanup {
                groups: vec!["web".into()],
                timeout: COMMAND_TIMEOUT_DEFAULT,
            },
            Request::Maintenance {
                on: true,
                force: false,
                timeout: COMMAND_TIMEOUT_DEFAULT,
            },
            Request::Maintenance {
                on: false,
                force: false,
                timeout: COMMAND_TIMEOUT_DEFAULT,
            },
            Request::Maintenance {
                on: false,
                force: true,
                timeout: COMMAND_TIMEOUT_DEFAULT,
            },
            Request::Stop {
                takeover: true,
                timeout: Duration::from_secs(10),
            },
            Request::Sync {
                file: "/etc/heartwire/my cluster.toml".into(),
            },
            Request::VerifyCluster {
                file: "/tmp/x.toml".into(),
            },
        ] {
            assert_eq!(Request::parse(&r.line()), Ok(r.clone()), "{}", r.line());
        }
        assert_eq!(
            Request::parse("stop").unwrap().timeout(),
            COMMAND_TIMEOUT_DEFAULT
        );
        for (bad, says) in [
            ("move web", "unknown request `move web`"),
            ("online", "unknown request"),
            (
                "frobnicate",
                "known: status, events, reload, move GROUP NODE",
            ),
            ("stop takeover timeout_ms=0", "out of range"),
            ("sync", "needs the config file's absolute path"),
            (
                "sync relative.toml",
                "needs the config file's absolute path",
            ),
            ("verify-cluster", "needs the config file's absolute path"),
            ("synchronise", "unknown request"),
            ("offline web timeout_ms=soon", "not a number"),
        ] {
            let e = Request::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
