//! The probe at start (Pacemaker's): before the node joins, every resource agent's
//! monitor (`status` for LSB) runs once, so a resource already running here is known. A
//! node that holds nothing yet must not run one: it is stopped, and a node that cannot
//! stop it does not start (two owners otherwise). Runs before the loop, each command
//! bounded by its resource's timeout.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use heartwire_hal::process::clean_command;

use crate::config::{AgentClass, AppResource, GroupConfig, ResourceKind, Verdict};

/// Runs `action` of `app`'s agent and waits, at most its timeout; `None`: it did not
/// finish in time or could not run (said in the log).
fn run(label: &str, app: &AppResource, action: &str) -> Option<i32> {
    let agent = app.agent.as_ref()?;
    let mut cmd = clean_command(&agent.path);
    cmd.arg(action)
        .envs(app.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if agent.class == AgentClass::Ocf {
        cmd.env("OCF_RESKEY_CRM_meta_interval", "0");
    }
    let mut child: Child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            ::log::error!("{label}: probe: cannot run {}: {e}", agent.path);
            return None;
        }
    };
    let deadline = Instant::now() + app.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                ::log::error!(
                    "{label}: probe: {action} did not finish within {:?}",
                    app.timeout
                );
                return None;
            }
        }
    }
}

/// Probes every agent of `groups`; stops what runs. `Err` names a resource found running
/// that could not be stopped.
pub(crate) fn probe(groups: &[GroupConfig]) -> Result<(), String> {
    for g in groups {
        for r in &g.resources {
            let ResourceKind::Application(app) = &r.kind else {
                continue;
            };
            let Some(agent) = &app.agent else { continue };
            let label = format!("{}/{}", g.name, r.name);
            let monitor = agent.class.monitor_action();
            let Some(code) = run(&label, app, monitor) else {
                continue;
            };
            match agent.class.verdict("monitor", code) {
                Verdict::Ok => {}
                Verdict::Hard | Verdict::Fatal => {
                    ::log::warn!(
                        "{label}: probe: {monitor} exit {code} ({}): it cannot run on this node as configured",
                        agent.name
                    );
                    continue;
                }
                Verdict::Soft => continue,
            }
            ::log::warn!(
                "{label}: probe: {} is running here before this node holds its group (left by a \
                 previous run, or started by hand): stopping it",
                agent.name
            );
            match run(&label, app, "stop") {
                Some(0) => ::log::info!("{label}: probe: stopped"),
                other => {
                    return Err(format!(
                        "{label}: {} runs here and its stop failed ({}): stop it by hand; this \
                         node does not start while a resource it does not hold runs here",
                        agent.name,
                        other.map_or_else(|| "no exit".to_owned(), |c| format!("exit {c}"))
                    ));
                }
            }
        }
    }
    Ok(())
}
