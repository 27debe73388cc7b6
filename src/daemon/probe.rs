//! Resource agents outside the loop: the probe at start (Pacemaker's) and the sentinel's
//! fence. Before the node joins, every agent's monitor (`status` for LSB) runs once, so a
//! resource already running here is known: a node that holds nothing yet must not run
//! one. "Not running", and as Pacemaker masks them "not installed" and "invalid
//! arguments" (it cannot run here), pass. Anything else is taken as possibly running, as
//! Pacemaker does, and stopped; a node that cannot stop it does not start (two owners
//! otherwise). "Not configured" (OCF 6: it cannot run anywhere with this config) is
//! stopped the same way — the agent cannot tell whether it runs — and then is fatal for
//! its group, which the node asks offline everywhere once it may act. The sentinel's fence runs every agent's stop the same
//! way ([`stop_all`]): what an agent started outside heartwire's cgroup (an address
//! IPaddr2 added, a service an init script handed to systemd) is undone before the death
//! notice lets a peer take over. Each run is bounded by its resource's timeout and runs
//! in a process group of its own, killed whole at the timeout.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use heartwire_hal::process::{SIGKILL, clean_command, signal_group};

use crate::config::{Agent, AgentClass, AppResource, GroupConfig, ResourceKind, Verdict};

/// What an agent may print that `verify` reads (each stream; the rest is read and
/// dropped, so an agent that prints without end neither blocks nor fills memory). The
/// largest meta-data of Debian's resource-agents is about 40 KB.
const OUTPUT_MAX: usize = 1024 * 1024;

/// Runs `action` of `app`'s agent and waits, at most `limit`, in a process group of its
/// own (killed whole at the limit: what the agent forked goes too). Returns its exit
/// code (`None`: killed by a signal) and, with `capture`, what it printed on stdout and
/// stderr (each cut at [`OUTPUT_MAX`]; what a process the agent left running still
/// writes after a second past its exit, or past the limit, is not waited for); `Err`
/// says it could not run or did not finish.
/// The probe, the fence and `verify` all run agents through here.
pub(crate) fn run_agent(
    agent: &Agent,
    app: &AppResource,
    action: &str,
    limit: Duration,
    capture: bool,
) -> Result<(Option<i32>, String, String), String> {
    let output = || {
        if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    let mut child = clean_command(&agent.path)
        .arg(action)
        .envs(app.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(app.interval_env(false))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", agent.path))?;
    let readers = [
        child.stdout.take().map(read_capped),
        child.stderr.take().map(read_capped),
    ];
    let deadline = Instant::now() + limit;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                // Not reaped yet, so the group is still its own.
                if let Ok(pgid) = i32::try_from(child.id()) {
                    let _ = signal_group(pgid, SIGKILL);
                }
                let _ = child.wait();
                return Err(format!("{action} did not finish within {limit:?}"));
            }
        }
    };
    // A process the agent left running may hold its output open: wait for the rest only
    // until the limit (a second at least).
    let until = deadline.max(Instant::now() + Duration::from_secs(1));
    let [out, err] = readers.map(|r| {
        r.and_then(|rx| {
            rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
    });
    Ok((code, out, err))
}

/// Reads `from` to its end on a thread of its own, keeping the first [`OUTPUT_MAX`]
/// bytes.
fn read_capped(mut from: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut kept, mut buf) = (Vec::new(), [0u8; 8192]);
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_MAX.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

/// [`run_agent`] for the probe and the fence: at most the resource's timeout, output
/// not kept; `None` when it did not finish or could not run (said in the log).
fn run(label: &str, agent: &Agent, app: &AppResource, action: &str) -> Option<i32> {
    match run_agent(agent, app, action, app.timeout, false) {
        Ok((code, _, _)) => code,
        Err(e) => {
            ::log::error!("{label}: {e}");
            None
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
                 hold may run here{}",
                if code == Some(6) {
                    " (the agent says its config is wrong: `heartwire verify` runs its \
                     validate-all; fix the params, then start again)"
                } else {
                    ""
                }
            )
        })?;
        ::log::info!("{label}: probe: stopped");
        if code.is_some_and(|c| agent.class.verdict("monitor", c) == Verdict::Fatal) {
            ::log::error!(
                "{label}: probe: {} {monitor} exit 6: {}: the group is taken offline on every \
                 node (`heartwire verify` runs the agent's validate-all; `heartwire online` \
                 after the fix)",
                agent.name,
                agent.class.meaning(6)
            );
            fatal.push((g, r));
        }
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

#[cfg(test)]
mod tests {
    //! The probe fails closed, with a script of the test's own as the agent (an LSB
    //! script by absolute path): what it is asked is written to a file; `HW_T_*`
    //! variables in the environment would not reach it (agents run with a clean one), so
    //! each case writes its answers into the script.
    use std::path::Path;

    use super::*;

    /// Group `g` with one LSB resource running `script`, whose timeout is 300 ms.
    fn groups(script: &Path) -> Vec<GroupConfig> {
        let text = format!(
            "{}\n[[group]]\nname = \"g\"\nnodes = [\"a\", \"b\"]\n\n[[group.resource]]\n\
             name = \"r\"\nkind = \"lsb\"\nscript = \"{}\"\ntimeout = \"300ms\"\n",
            crate::config::tests::GOOD,
            script.display()
        );
        crate::config::parse(Path::new("t.toml"), &text, Some("a"))
            .unwrap()
            .groups
    }

    /// An init script that logs each action to `log` and answers `status` with
    /// `status` (a shell fragment) and `stop` with exit `stop`.
    fn agent(dir: &Path, status: &str, stop: i32) -> std::path::PathBuf {
        let path = dir.join("agent");
        let log = dir.join("log");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$1\" >> {}\ncase \"$1\" in\nstatus|monitor) {status} ;;\n\
                 stop) exit {stop} ;;\nesac\nexit 0\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let _ = std::fs::remove_file(&log);
        path
    }

    fn asked(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("log"))
            .unwrap_or_default()
            .replace('\n', " ")
    }

    #[test]
    fn the_probe_stops_what_may_run_and_a_node_that_cannot_stop_it_does_not_start() {
        let dir = std::env::temp_dir().join(format!("hw-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Not running (LSB 3): nothing to do.
        assert_eq!(probe(&groups(&agent(&dir, "exit 3", 0))), Ok(vec![]));
        assert_eq!(asked(&dir), "status ");
        // Running, and an unknown answer (1: dead, pid file left): stopped.
        for status in ["exit 0", "exit 1", "exit 4"] {
            assert_eq!(probe(&groups(&agent(&dir, status, 0))), Ok(vec![]));
            assert_eq!(asked(&dir), "status stop ", "{status}");
        }
        // No answer within the timeout (its whole process group killed): stopped.
        let started = Instant::now();
        assert_eq!(probe(&groups(&agent(&dir, "sleep 30", 0))), Ok(vec![]));
        assert_eq!(asked(&dir), "status stop ");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "killed at 300 ms"
        );
        // May run and cannot be stopped: the node does not start.
        let e = probe(&groups(&agent(&dir, "exit 0", 1))).unwrap_err();
        assert!(
            e.contains("g/r: ") && e.contains("stop failed (exit 1)"),
            "{e}"
        );
        // LSB reserves status 5 to 99: 6 is no verdict of its own, stopped as unknown.
        assert_eq!(probe(&groups(&agent(&dir, "exit 6", 0))), Ok(vec![]));
        assert_eq!(asked(&dir), "status stop ");
        // An OCF agent's "not configured" (6): stopped (it cannot tell whether it runs),
        // then fatal for the group; if that stop fails, the node does not start.
        let as_ocf = |script: &Path| {
            let mut g = groups(script);
            if let ResourceKind::Application(app) = &mut g[0].resources[0].kind {
                app.agent.as_mut().unwrap().class = AgentClass::Ocf;
            }
            g
        };
        assert_eq!(probe(&as_ocf(&agent(&dir, "exit 6", 0))), Ok(vec![(0, 0)]));
        assert_eq!(asked(&dir), "monitor stop ");
        let e = probe(&as_ocf(&agent(&dir, "exit 6", 6))).unwrap_err();
        assert!(e.contains("its config is wrong"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What `verify` reads of an agent is capped: an agent that prints 3 MB is read
    /// to its end (it does not block on a full pipe) and kept to the cap.
    #[test]
    fn an_agent_s_output_is_capped() {
        let dir = std::env::temp_dir().join(format!("hw-probe-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = agent(&dir, "head -c 3000000 /dev/zero | tr '\\0' x", 0);
        let g = groups(&script);
        let ResourceKind::Application(app) = &g[0].resources[0].kind else {
            panic!("lsb is an application");
        };
        let agent = app.agent.as_ref().unwrap();
        let (code, out, _) = run_agent(agent, app, "status", Duration::from_secs(5), true).unwrap();
        assert_eq!(code, Some(0));
        assert_eq!(out.len(), OUTPUT_MAX);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
