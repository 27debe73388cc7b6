//! Operator commands on the control socket: names to indexes, the core's refusals to
//! messages that say what to do, and the answer held back until the command is done.

use std::time::Duration;

use super::{Daemon, report};
use crate::core::operator::{Command, CommandState, Op, Refusal};
use crate::core::placement::NodeSet;
use crate::core::{Instant, Node};
use crate::ctl::request::{CommandReport, Request};

/// How long a stop asked by SIGTERM or SIGINT waits for the hand-over before exiting
/// anyway (systemd's default stop timeout is 90 s; a hand-over takes milliseconds).
pub(super) const SIGNAL_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A control connection waiting for a command to finish.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) slot: usize,
    pub(super) request: String,
    pub(super) started: Instant,
    pub(super) groups: u64,
}

/// What to answer a request with.
pub(super) enum Answer {
    /// At once.
    Now(Vec<u8>),
    /// When the command is done (the connection stays open).
    Later,
    /// With this first line, then every event (the connection stays open).
    Follow(Vec<u8>),
}

pub(super) fn error(msg: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": msg })).expect("invariant: json serialises")
}

impl Daemon {
    /// Takes an operator command (anything but `status`).
    pub(super) fn command_request(
        &mut self,
        registry: &mio::Registry,
        req: &Request,
        slot: usize,
        now: Instant,
    ) -> Answer {
        if let Request::Stop { takeover, timeout } = *req {
            if self.stop_waiter.is_some() {
                return Answer::Now(error("a stop is already under way"));
            }
            if let Some(w) = self.waiting.take() {
                self.respond_report(registry, now, &w, "cancelled: the node is stopping");
            }
            let issued = if self.node.leaving() {
                None
            } else {
                self.node.stop(now, takeover, timeout)
            };
            let w = Waiting {
                slot,
                request: req.line(),
                started: now,
                groups: issued.map_or(0, |c| c.groups),
            };
            ::log::warn!(
                "operator: stop ({}): releasing every group{}",
                if takeover {
                    "hand-over"
                } else {
                    "groups offline"
                },
                issued.map_or(String::new(), |c| format!(
                    ", {} {}",
                    report::op_text(&self.node, c.op),
                    report::group_names(&self.groups, c.groups)
                ))
            );
            self.stop_waiter = Some(w);
            return Answer::Later;
        }
        let command = match self.resolve(req) {
            Ok(c) => c,
            Err(e) => return Answer::Now(error(&e)),
        };
        let force = matches!(req, Request::Maintenance { force: true, .. });
        match self.node.command_with(now, command, req.timeout(), force) {
            Err(r) => Answer::Now(error(&refusal_text(&self.node, &self.groups, r))),
            Ok(_) => {
                ::log::info!("operator: {}", req.line());
                let w = Waiting {
                    slot,
                    request: req.line(),
                    started: now,
                    groups: command.groups,
                };
                self.waiting = Some(w);
                Answer::Later
            }
        }
    }

    /// Group and node names to a command; the error lists what exists.
    fn resolve(&self, req: &Request) -> Result<Command, String> {
        let group = |name: &str| {
            self.groups
                .iter()
                .position(|g| g.name == name)
                .map(|g| 1u64 << g)
                .ok_or_else(|| {
                    let known: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
                    if known.is_empty() {
                        format!("unknown group `{name}`: the config has no groups")
                    } else {
                        format!("unknown group `{name}`; groups: {}", known.join(", "))
                    }
                })
        };
        let groups = |names: &[String]| {
            names
                .iter()
                .try_fold(0u64, |acc, n| group(n).map(|b| acc | b))
        };
        match req {
            Request::Move { group: g, node, .. } => {
                let spec = self.node.spec();
                let to = spec.nodes.iter().find(|n| &n.name == node).ok_or_else(|| {
                    let known: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
                    format!("unknown node `{node}`; nodes: {}", known.join(", "))
                })?;
                Ok(Command {
                    op: Op::Move(to.id),
                    groups: group(g)?,
                })
            }
            Request::Online { groups: g, .. } => Ok(Command {
                op: Op::Online,
                groups: groups(g)?,
            }),
            Request::Offline { groups: g, .. } => Ok(Command {
                op: Op::Offline,
                groups: groups(g)?,
            }),
            Request::Cleanup { groups: g, .. } => Ok(Command {
                op: Op::Cleanup,
                groups: groups(g)?,
            }),
            Request::Maintenance { on, .. } => Ok(Command {
                op: Op::Maintenance(self.node.maintenance_target(*on)),
                groups: 0,
            }),
            Request::Status
            | Request::Events
            | Request::Reload
            | Request::Stop { .. }
            | Request::Sync { .. }
            | Request::VerifyCluster { .. } => {
                unreachable!("status, events, reload, stop and offers are answered elsewhere")
            }
        }
    }

    /// Answers a waiting command once it is done or expired. Returns true when a stop is
    /// complete and the daemon should exit.
    pub(super) fn finish_commands(&mut self, registry: &mio::Registry, now: Instant) -> bool {
        if let Some(w) = self.waiting.take() {
            match self.node.command_state() {
                Some(CommandState::Pending) => self.waiting = Some(w),
                state => {
                    let result = match state {
                        Some(CommandState::Done) => "done".to_owned(),
                        Some(CommandState::Superseded(from, op)) => format!(
                            "superseded: node {} asked `{}` of its group(s) after it (an \
                             operator, or a resource that failed fatally there: see the events)",
                            report::node_name(&self.node, from),
                            op.name()
                        ),
                        _ => "expired".to_owned(),
                    };
                    self.respond_report(registry, now, &w, &result);
                }
            }
        }
        if !self.node.stopped() {
            return false;
        }
        if let Some(w) = self.stop_waiter.take() {
            let stuck = self.groups_in_error();
            let result = if stuck.is_empty() {
                "stopped".to_owned()
            } else {
                format!(
                    "stopped with group(s) {} in error: a release failed; their addresses were \
                     removed and their applications killed (fenced), a filesystem may still be \
                     mounted here (see the log; fix the stop command and start heartwire \
                     again to release the rest)",
                    stuck.join(", ")
                )
            };
            self.respond_report(registry, now, &w, &result);
        }
        true
    }

    /// Names of the groups stuck in error here (a release failed).
    pub(super) fn groups_in_error(&self) -> Vec<&str> {
        self.node
            .groups()
            .iter()
            .zip(&self.groups)
            .filter(|(l, _)| l.phase == crate::core::Phase::Error)
            .map(|(_, g)| g.name.as_str())
            .collect()
    }

    pub(super) fn respond_report(
        &mut self,
        registry: &mio::Registry,
        now: Instant,
        w: &Waiting,
        result: &str,
    ) {
        let elapsed_us =
            u64::try_from(now.saturating_since(w.started).as_micros()).unwrap_or(u64::MAX);
        let report = CommandReport {
            request: w.request.clone(),
            result: result.into(),
            elapsed_us,
            groups: (0..self.groups.len())
                .filter(|g| w.groups & (1 << g) != 0)
                .map(|g| report::group_status(&self.node, g))
                .collect(),
        };
        ::log::info!(
            "operator: {} {result} after {:.3} ms",
            w.request,
            elapsed_us as f64 / 1e3
        );
        let body = serde_json::to_vec_pretty(&report).expect("invariant: report serialises");
        self.ctl.respond(w.slot, body, registry);
    }
}

/// A refusal as a sentence that says what to do.
fn refusal_text(node: &Node, groups: &[crate::config::GroupConfig], r: Refusal) -> String {
    let name = |g: u8| groups.get(usize::from(g)).map_or("?", |c| c.name.as_str());
    let names = |set: NodeSet| report::member_names(node, set.bits());
    match r {
        Refusal::Busy => {
            "another command asked of this node is still running; wait for its answer".into()
        }
        Refusal::Leaving => "this node is stopping".into(),
        Refusal::NoQuorum => format!(
            "this node has no quorum (view {}, members {}): placement cannot change until the cluster is quorate",
            node.view().number,
            names(node.view().members)
        ),
        Refusal::NoGroup => "no group named".into(),
        Refusal::Maintenance => "the cluster is in maintenance: nothing is started, stopped \
             or moved until `heartwire maintenance off`"
            .into(),
        Refusal::Concurrent(g) => format!(
            "group {} is concurrent (startup = \"all\"): it runs on every node of its list; use online or offline",
            name(g)
        ),
        Refusal::NotInList(g) => {
            let list: NodeSet = node.spec().groups[usize::from(g)]
                .policy
                .nodes
                .iter()
                .copied()
                .collect();
            format!(
                "that node is not in group {}'s node list ({})",
                name(g),
                names(list)
            )
        }
        Refusal::Absent(set) => format!(
            "{} outside the view: a daemon stopped in maintenance leaves its resources \
             running, and ending maintenance now would let the others take its groups over \
             while they still run there; start heartwire there first (it resumes what runs), \
             or, if {} down for good (powered off, nothing of it running), `heartwire \
             maintenance off --force`",
            if set.len() == 1 {
                format!("{} is", names(set))
            } else {
                format!("{} are", names(set))
            },
            if set.len() == 1 { "it is" } else { "they are" },
        ),
        Refusal::NotMember => format!(
            "that node is not a member of the current view (view {}, members {}): it is down or has not joined",
            node.view().number,
            names(node.view().members)
        ),
    }
}
