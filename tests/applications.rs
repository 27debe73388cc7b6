//! Applications as an operator writes them: a start command that backgrounds its server,
//! a stop command that signals it, no monitor; a stop that fails and the way out of the
//! error it leaves. Real daemons in the netns lab.

mod lab;

use std::time::Duration;

use lab::{Lab, LabConfig};

/// Kills, when the test ends (also on failure), the processes whose pids the test's
/// applications wrote into `files` (processes this test's daemons started).
struct Leftovers(Vec<std::path::PathBuf>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(pid) = read_pid(f) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn read_pid(f: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose (its parent may be gone with the lab).
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn status_field(pid: u32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// A two-node lab (`two_node = true`) and its directory.
fn two_nodes(tag: &str) -> (Lab, String) {
    let cfg = LabConfig {
        two_node: true,
        ..LabConfig::default()
    };
    let lab = Lab::new(tag, 2, &cfg);
    let dir = lab.dir.display().to_string();
    (lab, dir)
}

/// Two real-time nodes, one group `app` with an application `svc` whose start backgrounds a loop
/// that detaches into a session of its own (`setsid`: out of the start's process group),
/// prints a line every 100 ms and records its pid; stop sends it SIGTERM (and, as OCF
/// asks of every stop, succeeds when it is not running); no monitor, and a
/// monitor_interval longer than any wait of the test: the server's end must be an event.
fn background_lab(tag: &str) -> (Lab, String) {
    let cfg = LabConfig {
        two_node: true,
        realtime: Some(10),
        ..LabConfig::default()
    };
    let lab = Lab::new(tag, 2, &cfg);
    let dir = lab.dir.display().to_string();
    let extra = format!(
        "[[group]]\nname = \"app\"\nnodes = [\"a\", \"b\"]\nfallback = \"never\"\n\n\
         [[group.resource]]\nname = \"svc\"\nkind = \"application\"\n\
         start = \"setsid sh -c 'echo $$ > {dir}/pid-$HW_NODE; i=0; while [ $i -lt 3000 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done' &\"\n\
         stop = \"kill $(cat {dir}/pid-$HW_NODE) 2>/dev/null; true\"\n\
         monitor_interval = \"1h\"\ntimeout = \"5s\"\nrestarts = 0\n"
    );
    let text = std::fs::read_to_string(&lab.config_path).unwrap() + &extra;
    std::fs::write(&lab.config_path, text).unwrap();
    (lab, dir)
}

#[test]
fn a_backgrounded_server_keeps_running_is_logged_stops_on_sigterm_and_is_watched() {
    let (mut lab, dir) = background_lab("ab");
    let pid_file = |n: &str| std::path::PathBuf::from(format!("{dir}/pid-{n}"));
    let _leftovers = Leftovers(vec![pid_file("a"), pid_file("b")]);
    lab.start_all();
    lab.wait_group(0, "app", "online", Duration::from_secs(10));
    lab.wait_for(Duration::from_secs(5), "a's server wrote its pid", |_| {
        read_pid(&pid_file("a")).is_some()
    });
    let server = read_pid(&pid_file("a")).unwrap();

    // It outlives its start command and keeps writing: its output is logged, never cut.
    lab.wait_for(Duration::from_secs(5), "a's server output logged", |l| {
        std::fs::read_to_string(l.log_path(0)).is_ok_and(|s| s.contains("app/svc start: tick 8"))
    });
    assert!(
        alive(server),
        "the backgrounded server died of its own output"
    );
    assert_eq!(status_field(server, "SigBlk:"), "0000000000000000");
    // The daemon runs SCHED_FIFO; what it starts does not (SCHED_RESET_ON_FORK).
    let policy = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/sched"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("policy"))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_owned())
    };
    let daemon = lab.status(0).unwrap().pid;
    assert_eq!(
        policy(daemon).as_deref(),
        Some("1"),
        "the daemon is SCHED_FIFO"
    );
    assert_eq!(
        policy(server).as_deref(),
        Some("0"),
        "its application is not"
    );

    // A move stops it with the operator's stop command: a plain SIGTERM.
    let out = lab.cli(0, &["move", "app", "b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    lab.wait_for(Duration::from_secs(5), "SIGTERM stopped a's server", |_| {
        !alive(server)
    });
    lab.wait_for(Duration::from_secs(5), "b's server runs", |_| {
        read_pid(&pid_file("b")).is_some_and(alive)
    });

    // No monitor configured: b watches what the start left in the application's cgroup,
    // detached or not. The server dies, the cgroup empties (an event: the monitor
    // interval is an hour), and with no restarts left the group falls over to a.
    let b_server = read_pid(&pid_file("b")).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &b_server.to_string()])
        .status();
    lab.wait_group(0, "app", "online", Duration::from_secs(5));
    let log = std::fs::read_to_string(lab.log_path(1)).unwrap();
    assert!(
        log.contains("app/svc: watching what its start left running (cgroup "),
        "b watches the server's cgroup"
    );
    assert!(
        log.contains(".app.svc is empty)"),
        "b says why the group fell over"
    );
}

/// A stop command that fails leaves the group in error on its node (held: nobody else
/// takes it). The operator fixes the stop command: `reload` says what it did (commands
/// updated in place, not a bounce), `cleanup` retries the release with the new command
/// and the group runs on the other node; `stop` of a node whose release fails says so
/// and exits 1. A change of monitor_interval alone does not restart the application.
#[test]
fn a_failed_stop_is_fixed_with_reload_and_cleanup_and_stop_tells_the_truth() {
    let (mut lab, dir) = two_nodes("ae");
    let base = std::fs::read_to_string(&lab.config_path).unwrap();
    let group = |stop: &str, interval: &str| {
        format!(
            "[[group]]\nname = \"app\"\nnodes = [\"a\", \"b\"]\nfallback = \"never\"\n\n\
             [[group.resource]]\nname = \"svc\"\nkind = \"application\"\n\
             start = \"echo x >> {dir}/starts-$HW_NODE; touch {dir}/up-$HW_NODE\"\n\
             stop = \"{stop}\"\nmonitor = \"test -e {dir}/up-$HW_NODE\"\n\
             monitor_interval = \"{interval}\"\ntimeout = \"5s\"\n"
        )
    };
    let broken = "echo cannot stop; exit 3";
    let fixed = format!("echo stopping; rm -f {dir}/up-$HW_NODE");
    std::fs::write(&lab.config_path, base.clone() + &group(&fixed, "1s")).unwrap();
    lab.start_all();
    lab.wait_group(0, "app", "online", Duration::from_secs(10));
    let starts = |n: &str| {
        std::fs::read_to_string(format!("{dir}/starts-{n}"))
            .unwrap_or_default()
            .lines()
            .count()
    };

    // monitor_interval alone: applied in place, nothing restarted.
    std::fs::write(&lab.config_path, base.clone() + &group(&fixed, "2s")).unwrap();
    let out = lab.cli(0, &["reload"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("app: updated in place (nothing restarted)"),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(starts("a"), 1, "the application was not restarted");
    assert_eq!(lab.group_state(0, "app").as_deref(), Some("online"));

    // The stop breaks (applied in place too), and a move needs it: a is left in error.
    std::fs::write(&lab.config_path, base.clone() + &group(broken, "2s")).unwrap();
    assert!(lab.cli(0, &["reload"]).status.success());
    let out = lab.cli(0, &["move", "app", "b", "--timeout", "1"]);
    assert!(!out.status.success(), "the move cannot finish");
    lab.wait_group(0, "app", "error", Duration::from_secs(5));
    assert_eq!(
        lab.group_state(1, "app").as_deref(),
        Some("offline"),
        "b waits"
    );
    let svc = |lab: &Lab| lab.status(0).unwrap().groups[0].resources[0].clone();
    let r = svc(&lab);
    assert_eq!(
        (r.kind.as_str(), r.state.as_str(), r.fail_count),
        ("application", "stop failed", 1)
    );
    assert!(
        r.last_failure
            .as_deref()
            .unwrap_or("")
            .ends_with("Z stop: exit 3"),
        "{r:?}"
    );
    let text = String::from_utf8_lossy(&lab.cli(0, &["status"]).stdout).into_owned();
    assert!(
        text.contains("svc            (application) stop failed  fail count 1, last 20"),
        "{text}"
    );

    // Fixed stop: reload tells the truth, cleanup releases with the new command.
    std::fs::write(&lab.config_path, base.clone() + &group(&fixed, "2s")).unwrap();
    let out = lab.cli(0, &["reload"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("in error here (a stop failed); its commands are updated"),
        "{text}"
    );
    assert!(!text.contains("bounced"), "{text}");
    let out = lab.cli(0, &["cleanup", "app", "--timeout", "5"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    lab.wait_group(1, "app", "online", Duration::from_secs(5));
    assert_eq!(lab.group_state(0, "app").as_deref(), Some("offline"));
    let log = std::fs::read_to_string(lab.log_path(0)).unwrap();
    assert!(log.contains("app/svc stop: stopping"), "the fixed stop ran");
    let r = svc(&lab);
    assert_eq!(
        (r.state.as_str(), r.fail_count),
        ("stopped", 0),
        "cleanup cleared it"
    );

    // b's stop breaks; stopping b cannot release the group: it says so, exit 1.
    std::fs::write(&lab.config_path, base + &group(broken, "2s")).unwrap();
    assert!(lab.cli(1, &["reload"]).status.success());
    let out = lab.cli(1, &["stop", "--timeout", "3"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("in error: a release failed"), "{text}");
}

/// Maintenance for an upgrade: `maintenance on` stops monitoring and refuses moves; the
/// owner's daemon is stopped and started again (as an upgrade does) while its address and
/// application stay up and the other node takes nothing over; the new daemon resumes the
/// group online; `maintenance off` monitors again. Nothing was restarted.
#[test]
fn maintenance_lets_a_daemon_restart_without_touching_the_service() {
    let (mut lab, dir) = two_nodes("am");
    let extra = format!(
        "[[group]]\nname = \"app\"\nnodes = [\"a\", \"b\"]\nfallback = \"never\"\n\n\
         [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"10.200.1.50/24\"\ninterface = \"eth1\"\n\n\
         [[group.resource]]\nname = \"svc\"\nkind = \"application\"\n\
         start = \"echo x >> {dir}/starts-$HW_NODE; touch {dir}/up-$HW_NODE\"\n\
         stop = \"rm -f {dir}/up-$HW_NODE\"\n\
         monitor = \"echo x >> {dir}/monitors-$HW_NODE; test -e {dir}/up-$HW_NODE\"\n\
         monitor_interval = \"100ms\"\ntimeout = \"5s\"\n"
    );
    let text = std::fs::read_to_string(&lab.config_path).unwrap() + &extra;
    std::fs::write(&lab.config_path, text).unwrap();
    let count = |what: &str| {
        std::fs::read_to_string(format!("{dir}/{what}"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    lab.start_all();
    lab.wait_group(0, "app", "online", Duration::from_secs(10));

    let out = lab.cli(1, &["maintenance", "on"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(lab.status(0).unwrap().maintenance, "a follows b's toggle");
    let out = lab.cli(0, &["move", "app", "b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in maintenance"));
    std::thread::sleep(Duration::from_millis(300));
    let monitors = count("monitors-a");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count("monitors-a"),
        monitors,
        "no monitor runs in maintenance"
    );

    // The upgrade: a's daemon stops and starts again; the service stays where it is.
    assert_eq!(lab.stop(0), Some(0));
    assert!(
        lab.addresses(0, "eth1").contains("10.200.1.50"),
        "the address stays"
    );
    assert!(
        std::path::Path::new(&format!("{dir}/up-a")).exists(),
        "the app stays"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        lab.group_state(1, "app").as_deref(),
        Some("offline"),
        "b takes nothing"
    );
    assert!(!lab.addresses(1, "eth1").contains("10.200.1.50"));
    lab.start(0);
    lab.wait_all_up();
    assert_eq!(
        lab.group_state(0, "app").as_deref(),
        Some("online"),
        "resumed"
    );
    assert!(lab.addresses(0, "eth1").contains("10.200.1.50"));
    let log = std::fs::read_to_string(lab.log_path(0)).unwrap();
    assert!(
        log.contains("resuming with group(s) [app] online here"),
        "{log}"
    );
    assert!(!log.contains("removed stale service address"), "{log}");

    let out = lab.cli(0, &["maintenance", "off"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    lab.wait_for(Duration::from_secs(5), "a monitors again", |_| {
        count("monitors-a") > monitors
    });
    assert_eq!(lab.group_state(0, "app").as_deref(), Some("online"));
    assert_eq!(count("starts-a"), 1, "the application never restarted");
    assert_eq!(count("starts-b"), 0);
    assert!(!lab.status(1).unwrap().maintenance);
}

/// A stop that SIGKILL cannot end (here: its process is held by a tracer, as a umount in
/// uninterruptible sleep is held by the kernel) is abandoned after its timeout and the
/// grace after the kill: the group goes to `error` instead of `releasing` for ever, the
/// log names the pid and its state, and the process is reaped once it ends at last.
#[test]
fn a_stop_that_cannot_be_killed_is_abandoned_and_the_group_goes_to_error() {
    let (mut lab, dir) = two_nodes("ab");
    let tracer = std::path::PathBuf::from(format!("{dir}/tracer"));
    let _leftovers = Leftovers(vec![tracer.clone()]);
    // The tracer leaves the stop's process group (setsid), so the kill at the timeout
    // does not reach it, and seizes the stop's shell (ptrace(PTRACE_SEIZE) is x86_64
    // syscall 101, request 0x4206) without ever waiting for it.
    let stop = format!(
        "setsid perl -e 'syscall(101, 0x4206, $ARGV[0] + 0, 0, 0) == 0 or die \\\"seize: $!\\\"; \
         sleep 120' $$ & echo $! > {dir}/tracer; sleep 600"
    );
    let base = std::fs::read_to_string(&lab.config_path).unwrap();
    let group = format!(
        "[[group]]\nname = \"app\"\nnodes = [\"a\", \"b\"]\nfallback = \"never\"\n\n\
         [[group.resource]]\nname = \"svc\"\nkind = \"application\"\n\
         start = \"touch {dir}/up-$HW_NODE\"\nstop = \"{stop}\"\n\
         monitor = \"test -e {dir}/up-$HW_NODE\"\ntimeout = \"1s\"\n"
    );
    std::fs::write(&lab.config_path, base + &group).unwrap();
    lab.start_all();
    lab.wait_group(0, "app", "online", Duration::from_secs(10));

    let out = lab.cli(0, &["move", "app", "b", "--timeout", "1"]);
    assert!(!out.status.success(), "the move cannot finish");
    lab.wait_group(0, "app", "error", Duration::from_secs(15));
    assert_eq!(
        lab.group_state(1, "app").as_deref(),
        Some("offline"),
        "b waits: a may still hold the group"
    );
    let log = std::fs::read_to_string(lab.log_path(0)).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("s after SIGKILL") && l.contains("abandoned"))
        .unwrap_or_else(|| panic!("no abandonment in the log:\n{log}"));
    assert!(line.contains("traced by pid"), "{line}");
    let r = lab.status(0).unwrap().groups[0].resources[0].clone();
    assert_eq!(r.state, "stop failed", "{r:?}");
    assert!(
        r.last_failure
            .as_deref()
            .unwrap_or("")
            .ends_with("stop: timed out and abandoned (does not end when killed)"),
        "{r:?}"
    );

    // The tracer lets go: the killed shell ends and is reaped.
    let pid = read_pid(&tracer).expect("the tracer's pid");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(lab.log_path(0)).unwrap();
        if log.contains("ended at last") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned stop was not reaped:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
