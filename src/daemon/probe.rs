//! Resource agents outside the loop: the probe at start (Pacemaker's) and the sentinel's
//! fence. Before the node joins, every agent's monitor (`status` for LSB) runs once, so a
//! resource already running here is known: a node that holds nothing yet must not run
//! one. "Not running", and as Pacemaker masks them "not installed" and "invalid
//! arguments" (it cannot run here), pass; "not configured" (OCF 6: it cannot run anywhere
//! with this config, nor can its agent tell) is fatal for its group, which the node asks
//! offline everywhere once it may act. Anything else is taken as possibly running, as
//! Pacemaker does, and stopped; a node that cannot stop it does not start (two owners
//! otherwise). The sentinel's fence runs every agent's stop the same
//! way ([`stop_all`]): what an agent started outside heartwire's cgroup (an address
//! IPaddr2 added, a service an init script handed to systemd) is undone before the death
//! notice lets a peer take over. Each run is bounded by its resource's timeout and runs
//! in a process group of its own, killed whole at the timeout.

use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use heartwire_hal::process::{SIGKILL, clean_command, signal_group};

use crate::config::{Agent, AgentClass, AppResource, GroupConfig, ResourceKind, Verdict};

/// Runs `action` of `app`'s agent and waits, at most its timeout; `None`: it did not
/// finish by itself in time, or could not run (said in the log).
fn run(label: &str, agent: &Agent, app: &AppResource, action: &str) -> Option<i32> {
    let mut cmd = clean_command(&agent.path);
    cmd.arg(action)
        .envs(app.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if agent.class == AgentClass::Ocf {
        cmd.env("OCF_RESKEY_CRM_meta_interval", "0");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            ::log::error!("{label}: {action}: cannot run {}: {e}", agent.path);
            return None;
        }
    };
    let deadline = Instant::now() + app.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                // Its process group: what the agent forked goes too. The child is not
                // reaped yet, so the group is still its own.
                if let Ok(pgid) = i32::try_from(child.id()) {
                    let _ = signal_group(pgid, SIGKILL);
                }
                let _ = child.wait();
                ::log::error!("{label}: {action} did not finish within {:?}", app.timeout);
                return None;
            }
        }
    }
}

/// Every agent resource of `groups`, with its `group/resource` label and indexes.
fn agents(
    groups: &[GroupConfig],
) -> impl Iterator<Item = (String, (usize, u8), &Agent, &AppResource)> {
    groups.iter().enumerate().flat_map(|(gi, g)| {
        g.resources
            .iter()
            .enumerate()
            .filter_map(move |(ri, r)| match &r.kind {
                ResourceKind::Application(app) => app.agent.as_ref().map(|agent| {
                    let ri = u8::try_from(ri).expect("invariant: <= 255 resources");
                    (format!("{}/{}", g.name, r.name), (gi, ri), agent, app)
                }),
                _ => None,
            })
    })
}

/// Whether a probe's exit says the resource is not running here (OCF 7, LSB status 3),
/// or cannot be (OCF 5: not installed; 2: invalid arguments, as Pacemaker masks them).
fn stopped(class: AgentClass, code: Option<i32>) -> bool {
    matches!(
        (class, code),
        (AgentClass::Ocf, Some(7 | 5 | 2)) | (AgentClass::Lsb, Some(3))
    )
}

/// Stops `app`'s resource: `Err` says why it may still run.
fn stop(label: &str, agent: &Agent, app: &AppResource) -> Result<(), String> {
    match run(label, agent, app, "stop") {
        Some(0) => Ok(()),
        other => Err(format!(
            "{label}: {} stop failed ({})",
            agent.name,
            other.map_or_else(|| "no exit".to_owned(), |c| format!("exit {c}"))
        )),
    }
}

/// The probe: monitors every agent of `groups`, stops what may run. Returns the
/// (group, resource) indexes whose agent said "not configured" (fatal: for the core);
/// `Err` names a resource that may run here and could not be stopped.
pub(crate) fn probe(groups: &[GroupConfig]) -> Result<Vec<(usize, u8)>, String> {
    let mut fatal = Vec::new();
    for (label, (g, r), agent, app) in agents(groups) {
        let monitor = agent.class.monitor_action();
        let code = run(&label, agent, app, monitor);
        if stopped(agent.class, code) {
            continue;
        }
        if code.is_some_and(|c| agent.class.verdict("monitor", c) == Verdict::Fatal) {
            ::log::error!(
                "{label}: probe: {} {monitor} exit 6: {}: the group is taken offline on every \
                 node (`heartwire verify` runs the agent's validate-all; `heartwire online` \
                 after the fix)",
                agent.name,
                agent.class.meaning(6)
            );
            fatal.push((g, r));
            continue;
        }
        let how = match code {
            Some(c) if agent.class.verdict("monitor", c) == Verdict::Ok => {
                "is running here".to_owned()
            }
            Some(c) => format!(
                "may be running here ({monitor} exit {c}: {})",
                agent.class.meaning(c)
            ),
            None => format!("may be running here ({monitor} gave no answer)"),
        };
        ::log::warn!(
            "{label}: probe: {} {how} before this node holds its group (left by a previous \
             run, or started by hand): stopping it",
            agent.name
        );
        stop(&label, agent, app).map_err(|e| {
            format!(
                "{e}: stop it by hand; this node does not start while a resource it does not \
                 hold may run here"
            )
        })?;
        ::log::info!("{label}: probe: stopped");
    }
    Ok(fatal)
}

/// The fence's part: every agent's stop. `Err` lists the resources that may still run.
pub(crate) fn stop_all(groups: &[GroupConfig]) -> Result<Vec<String>, String> {
    let (mut stopped, mut failed) = (Vec::new(), Vec::new());
    for (label, _, agent, app) in agents(groups) {
        match stop(&label, agent, app) {
            Ok(()) => stopped.push(label),
            Err(e) => failed.push(e),
        }
    }
    if failed.is_empty() {
        Ok(stopped)
    } else {
        Err(failed.join("; "))
    }
}
