//! Resource agents from Debian's resource-agents package in the netns lab (issue 20):
//! `ocf:heartbeat:IPaddr2` (the service address), `ocf:heartbeat:Dummy` (state in a
//! file) and `ocf:heartbeat:anything` running a real HTTP server (python3 -m http.server),
//! watched from a client with curl; and `kind = "lsb"` with Debian's own init script
//! for snmptrapd. Each daemon has a private /run (the agents' state directory, the
//! scripts' pid files), as on separate machines.
//!
//! Shown: the group starts with its agents; a monitor that says "not running" (7) is a
//! soft error, restarted here; a hung owner's sentinel stops every agent (IPaddr2's
//! address gone) before the survivor takes over; kill -9 of the owner's whole `run`
//! moves the group, and the client is served by the survivor; a resource found running
//! at a daemon's start (the probe) is stopped before the node joins.

mod lab;

use std::process::Command;
use std::time::Duration;

use lab::{Lab, LabConfig};

const VIP: &str = "10.200.1.60";

fn group() -> String {
    format!(
        "[[group]]\nname = \"web\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n\n\
         [[group.resource]]\nname = \"vip\"\nkind = \"ocf\"\nagent = \"heartbeat:IPaddr2\"\n\
         params = {{ ip = \"{VIP}\", cidr_netmask = \"24\", nic = \"eth1\" }}\nmonitor_interval = \"1s\"\n\n\
         [[group.resource]]\nname = \"flag\"\nkind = \"ocf\"\nagent = \"heartbeat:Dummy\"\nmonitor_interval = \"200ms\"\nrestarts = 1\n\n\
         [[group.resource]]\nname = \"http\"\nkind = \"ocf\"\nagent = \"ocf:heartbeat:anything\"\n\
         params = {{ binfile = \"/usr/bin/python3\", cmdline_options = \"-m http.server 8080 --bind {VIP}\", \
         pidfile = \"/run/resource-agents/http.pid\", workdir = \"/\" }}\nmonitor_interval = \"500ms\"\n\n"
    )
}

/// The HTTP status of `http://VIP:8080/` from the client namespace (0: no answer).
fn get(ns: &str) -> u16 {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["--max-time", "2", &format!("http://{VIP}:8080/")])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn log_has(lab: &Lab, i: usize, needle: &str) -> bool {
    std::fs::read_to_string(lab.log_path(i)).is_ok_and(|t| t.contains(needle))
}

#[test]
fn debian_agents_start_restart_fail_over_and_are_probed() {
    let cfg = LabConfig {
        two_node: true,
        extra: group(),
        private_run: true,
        ..LabConfig::default()
    };
    let mut lab = Lab::new("ocf", 2, &cfg);
    let client = lab.add_client();
    lab.start_all();
    lab.wait_group(0, "web", "online", Duration::from_secs(30));
    assert!(
        lab.addresses(0, "eth1").contains(VIP),
        "IPaddr2 put the address on a"
    );
    lab.wait_for(Duration::from_secs(10), "the client is served", |_| {
        get(&client) == 200
    });
    let status = lab.status(0).unwrap();
    let web = status.groups.iter().find(|g| g.name == "web").unwrap();
    let kinds: Vec<(&str, &str)> = web
        .resources
        .iter()
        .map(|r| (r.kind.as_str(), r.state.as_str()))
        .collect();
    assert_eq!(kinds, [("ocf", "started"); 3], "{web:?}");

    // Dummy's state file gone: its monitor says 7 (not running), a soft error: restarted
    // here, the group stays.
    let daemon = lab.status(0).unwrap().pid;
    let rm = Command::new("nsenter")
        .arg(format!("--mount=/proc/{daemon}/ns/mnt"))
        .args(["rm", "/run/resource-agents/Dummy-web-flag.state"])
        .status()
        .unwrap();
    assert!(
        rm.success(),
        "Dummy keeps its state in a's private /run/resource-agents"
    );
    lab.wait_for(Duration::from_secs(10), "a restarts flag", |lab| {
        log_has(
            lab,
            0,
            "web/flag: monitor failed (exit 7): local restart 1 of 1",
        )
    });
    lab.wait_for(Duration::from_secs(10), "flag runs again", |lab| {
        lab.status(0).is_some_and(|s| {
            s.groups[0].resources[1].state == "started" && s.groups[0].resources[1].fail_count == 1
        })
    });
    assert_eq!(lab.group_state(0, "web").as_deref(), Some("online"));
    assert_eq!(lab.group_state(1, "web").as_deref(), Some("offline"));

    // a's daemon hangs (SIGSTOP): its sentinel fences the node, which runs every agent's
    // stop (IPaddr2's removes the address it added) before the death notice lets b take
    // over: never both holding the address.
    let hung = lab.status(0).unwrap().pid;
    let stop = Command::new("kill")
        .args(["-STOP", &hung.to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    lab.wait_group(1, "web", "online", Duration::from_secs(30));
    assert!(
        !lab.addresses(0, "eth1").contains(VIP),
        "the fence stopped IPaddr2 on a before b took over"
    );
    lab.wait_for(
        Duration::from_secs(5),
        "the sentinel says what it stopped",
        |lab| log_has(lab, 0, "stopped agents [web/vip, web/flag, web/http]"),
    );
    lab.wait_for(Duration::from_secs(10), "the client is served by b", |_| {
        get(&client) == 200
    });
    // The sentinel restarts a's daemon; the group goes back to a by hand.
    lab.wait_for(
        Duration::from_secs(30),
        "a's next daemon is in the view",
        |lab| {
            lab.status(0)
                .is_some_and(|s| s.pid != hung && s.view_members.len() == 2)
        },
    );
    let back = lab.cli(1, &["move", "web", "a", "--timeout", "30"]);
    assert!(back.status.success(), "{back:?}");
    lab.wait_group(0, "web", "online", Duration::from_secs(30));
    assert!(!lab.addresses(1, "eth1").contains(VIP), "b stopped IPaddr2");

    // The owner's whole `run` killed: b takes over, the client is served again.
    lab.kill(0);
    lab.wait_group(1, "web", "online", Duration::from_secs(30));
    assert!(lab.addresses(1, "eth1").contains(VIP));
    lab.wait_for(Duration::from_secs(10), "the client is served by b", |_| {
        get(&client) == 200
    });

    // kill -9 of the whole `run` (its sentinel too) left IPaddr2's address on a: nothing
    // of heartwire was left to take it away (README: prefer kind = "ip" for addresses,
    // which a new start removes at once). a's probe finds it with IPaddr2's own monitor
    // and stops it before a joins.
    assert!(
        lab.addresses(0, "eth1").contains(VIP),
        "the probe's case: a leftover"
    );
    lab.start(0);
    lab.wait_for(
        Duration::from_secs(30),
        "a's probe stops the leftover",
        |lab| {
            log_has(
                lab,
                0,
                "web/vip: probe: ocf:heartbeat:IPaddr2 is running here",
            ) && log_has(lab, 0, "web/vip: probe: stopped")
        },
    );
    lab.wait_all_up();
    assert!(!lab.addresses(0, "eth1").contains(VIP), "gone from a");
    assert!(lab.addresses(1, "eth1").contains(VIP), "still on b");
    assert_eq!(lab.group_state(1, "web").as_deref(), Some("online"));
    assert_eq!(lab.group_state(0, "web").as_deref(), Some("offline"));
    assert_eq!(get(&client), 200);
}

/// The UDP sockets on port 162 in namespace `ns` (`ss`'s lines: process and PID).
fn trap_port(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-Hulnp", "sport = :162"])
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kind = "lsb"` with a real Debian init script: /etc/init.d/snmptrapd (net-snmp's trap
/// daemon; Debian's init-d-script, start-stop-daemon and status_of_proc behind it), each
/// daemon with a /run of its own for the script's pid file. It starts on a (the daemon
/// listens on UDP 162 in a's namespace, not in b's); killed by hand, its `status` says
/// 1 ("dead, pid file left"), a soft error: restarted here; `move` runs the script's stop
/// on a and its start on b.
#[test]
fn a_debian_init_script_starts_is_watched_restarted_and_moved() {
    let cfg = LabConfig {
        two_node: true,
        extra: "[[group]]\nname = \"traps\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\n\
                fallover = \"next\"\nfallback = \"never\"\n\n[[group.resource]]\n\
                name = \"trapd\"\nkind = \"lsb\"\nscript = \"snmptrapd\"\n\
                monitor_interval = \"300ms\"\nrestarts = 1\n\n"
            .into(),
        private_run: true,
        ..LabConfig::default()
    };
    let mut lab = Lab::new("lsb", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "traps", "online", Duration::from_secs(30));
    let (a, b) = (lab.ns(0), lab.ns(1));
    lab.wait_for(Duration::from_secs(10), "snmptrapd listens on a", |_| {
        trap_port(&a).contains("snmptrapd")
    });
    assert_eq!(trap_port(&b), "", "nothing on b");

    // Killed behind the script's back: `status` says 1, a soft error, restarted here.
    let listening = trap_port(&a);
    let pid = listening
        .split("pid=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("ss names the pid: {listening}"));
    let kill = Command::new("kill").args(["-KILL", pid]).status().unwrap();
    assert!(kill.success());
    lab.wait_for(Duration::from_secs(10), "a restarts trapd", |lab| {
        log_has(
            lab,
            0,
            "traps/trapd: monitor failed (exit 1): local restart 1 of 1",
        )
    });
    lab.wait_for(
        Duration::from_secs(10),
        "snmptrapd listens on a again",
        |_| {
            let now = trap_port(&a);
            now.contains("snmptrapd") && !now.contains(&format!("pid={pid},"))
        },
    );
    assert_eq!(lab.group_state(0, "traps").as_deref(), Some("online"));

    // Moved: the script's stop on a, its start on b.
    let moved = lab.cli(0, &["move", "traps", "b", "--timeout", "30"]);
    assert!(moved.status.success(), "{moved:?}");
    lab.wait_group(1, "traps", "online", Duration::from_secs(30));
    lab.wait_for(Duration::from_secs(10), "snmptrapd listens on b", |_| {
        trap_port(&b).contains("snmptrapd")
    });
    assert_eq!(trap_port(&a), "", "the script's stop ended it on a");
}

/// An agent's "not configured" (OCF 6) is fatal: the group cannot run anywhere with this
/// config, so it is taken offline on every node instead of failing on each in turn.
/// IPaddr2 runs on a; the operator pushes `arp_count = "0"` (`reload` on both nodes:
/// params change in place), which IPaddr2 refuses with 6 for every action: a's next
/// monitor exits 6, and a asks `offline` of the group before b starts it; the group is in
/// error on a (its stop exits 6 too: the address stays, it may still run there) and b
/// never acquires it. Then the probe fails closed: a's `run` killed and started again,
/// its probe's monitor and stop both exit 6, and a does not start (the address is up).
#[test]
fn an_agent_s_fatal_error_takes_the_group_offline_everywhere() {
    const BAD: &str = "10.200.1.61";
    let cfg = LabConfig {
        two_node: true,
        extra: format!(
            "[[group]]\nname = \"bad\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\n\
             fallover = \"next\"\nfallback = \"never\"\n\n[[group.resource]]\nname = \"vip\"\n\
             kind = \"ocf\"\nagent = \"heartbeat:IPaddr2\"\nparams = {{ ip = \"{BAD}\", \
             cidr_netmask = \"24\", nic = \"eth1\" }}\n\n"
        ),
        private_run: true,
        ..LabConfig::default()
    };
    let mut lab = Lab::new("ocff", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "bad", "online", Duration::from_secs(30));
    assert!(lab.addresses(0, "eth1").contains(BAD));

    let text = std::fs::read_to_string(&lab.config_path).unwrap();
    let broken = text.replace("nic = \"eth1\" }", "nic = \"eth1\", arp_count = \"0\" }");
    assert_ne!(text, broken);
    std::fs::write(&lab.config_path, broken).unwrap();
    for i in [1, 0] {
        let out = lab.cli(i, &["reload"]);
        assert!(out.status.success(), "reload on {i}: {out:?}");
    }
    lab.wait_for(Duration::from_secs(20), "a's monitor exits 6", |lab| {
        log_has(lab, 0, "bad/vip: monitor: exit 6: not configured")
            && log_has(lab, 0, "event=group_fatal")
    });
    lab.wait_for(Duration::from_secs(10), "error on a, offline on b", |lab| {
        lab.group_state(0, "bad").as_deref() == Some("error")
            && lab.group_state(1, "bad").as_deref() == Some("offline")
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        assert!(!lab.addresses(1, "eth1").contains(BAD), "b started it");
        std::thread::sleep(Duration::from_millis(20));
    }
    let b_log = std::fs::read_to_string(lab.log_path(1)).unwrap_or_default();
    assert!(
        !b_log.contains("event=group_acquiring"),
        "b never acquires the group"
    );
    assert!(
        lab.addresses(0, "eth1").contains(BAD),
        "a's stop failed: the address stays"
    );

    // The probe fails closed: it cannot tell whether the address is up, nor remove it.
    lab.kill(0);
    lab.start(0);
    assert!(
        lab.wait_exit(0, Duration::from_secs(20))
            .is_some_and(|c| c != 0),
        "a must not start"
    );
    assert!(
        log_has(
            &lab,
            0,
            "bad/vip: ocf:heartbeat:IPaddr2 stop failed (exit 6)"
        ) && log_has(&lab, 0, "its config is wrong"),
        "the refusal says why"
    );
    assert!(
        !lab.addresses(1, "eth1").contains(BAD),
        "nor did b start it"
    );
}

/// `verify` reads each OCF agent's meta-data and runs its validate-all with the params:
/// a parameter the agent does not declare is a warning, a required one missing or one
/// validate-all refuses is an error at the line of `params`; an agent not installed is
/// an error at `agent`.
#[test]
fn verify_checks_agents_with_their_meta_data_and_validate_all() {
    let bad = group()
        .replace("ip = \"10.200.1.60\", ", "tpyo = \"x\", ")
        .replace("heartbeat:Dummy", "heartbeat:NoSuchAgent");
    let cfg = LabConfig {
        two_node: true,
        extra: bad,
        ..LabConfig::default()
    };
    let lab = Lab::new("ocfv", 2, &cfg);
    let file = lab.config_path.display().to_string();
    let out = lab.run_in(
        &lab.ns(0),
        &["verify", "--json", "--node", "a", "-c", &file],
        "",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify prints JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let text = std::fs::read_to_string(&lab.config_path).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let find = |needle: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["what"].as_str().unwrap().contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("no finding `{needle}`: {v:#}"))
    };
    let typo = find("`tpyo` is not a parameter of ocf:heartbeat:IPaddr2");
    assert_eq!(typo["severity"], "warning");
    let params_at = format!("{file}:{}", line_of("tpyo"));
    assert_eq!(typo["at"], params_at.as_str());
    let required = find("ocf:heartbeat:IPaddr2 requires the parameter `ip`");
    assert_eq!(required["severity"], "error");
    let validate = find("ocf:heartbeat:IPaddr2 validate-all: exit");
    assert_eq!(validate["severity"], "error", "{validate}");
    let missing = find(
        "ocf:heartbeat:NoSuchAgent: /usr/lib/ocf/resource.d/heartbeat/NoSuchAgent is not an executable file",
    );
    assert_eq!(
        missing["at"],
        format!("{file}:{}", line_of("NoSuchAgent")).as_str()
    );
    assert_eq!(out.status.code(), Some(2), "errors: exit 2");
    // anything with its params is fine: no finding names it.
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["what"].as_str().unwrap().contains("web/http")),
        "{v:#}"
    );
}
