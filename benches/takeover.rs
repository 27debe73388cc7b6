//! Client-visible takeover, heartwire against keepalived, in one harness (`make bench`).
//!
//! Per system and trial: a fresh two-node lab, a client namespace probing a UDP service
//! on the service address every 200 µs (the service, `heartwire-lab responder`, runs on both
//! nodes, bound to every address, answering with the node name), then the fault: every
//! cable of the owner pulled at once (`debug link-set`, stamped with CLOCK_MONOTONIC right
//! before the first rtnetlink call) — the owner is gone for the network, exactly as when
//! it dies. Measured from the client's replies (same clock):
//! - failover gap: last reply from the old owner → first reply from the new one;
//! - fault → first reply from the new owner.
//!
//! heartwire: paths e1, e2 (raw Ethernet) and u1 (UDP) at 100 µs / 1 ms, `two_node`, a hot
//! standby group with the address, daemons SCHED_FIFO 50 with cpu_dma_latency 0.
//! keepalived: VRRPv3, `advert_int 0.01` (the fastest it accepts), priorities 150/100,
//! `vrrp_garp_master_delay 0`; stopped with SIGTERM so it stops its own children.
//!
//! Then the planned switch: in one heartwire lab, `HW_BENCH_TRIALS` operator moves of the
//! group back and forth (`heartwire move`), each measured as the client-visible gap (last
//! reply from the old owner → first from the new) and as the command's own time (request
//! → done, as the daemon reports it).
//!
//! Then the faults the sentinel makes definite (issue 18), in a heartwire lab at the
//! default profile (5 ms / 50 ms, real-time, `two_node`: a `hang_timeout` of 25 ms), with an
//! application beside the address (no monitor, `restarts = 0`): kill -9 of the owner's
//! daemon (not of `run`, its sentinel), SIGSTOP of that daemon, kill -9 of the
//! application (its cgroup empties), the owner's cables pulled, its service cable alone
//! pulled (eth1; its paths on eth2 stay), and the owner frozen
//! whole (every process of its namespace SIGSTOPped, resumed after the trial);
//! keepalived (10 ms adverts) with its VRRP process killed and frozen. The client runs at
//! SCHED_FIFO 90 here (`HW_BENCH_PROBE_FIFO`; it stands for another machine) and sleeps in
//! ppoll(2) between its requests. Per fault: fault → first reply from the new owner,
//! the trials in which the old owner still had the address when the new one answered
//! (two owners: looked at once the client's output, written in 8 KiB blocks, shows b's
//! first reply — up to ~25 ms later, which errs towards two owners), the trials with a takeover before the fault (from a live node), and
//! after a frozen owner resumes, how many nodes hold the address. For the kill -9, where
//! the time goes: the sentinel's timeline (`sentinel: gone_at= fenced_at= notified_at=`)
//! with the fence's own steps (cgroup killed, addresses removed, the killed gone), and b's
//! events, each after the fault. `HW_BENCH_FAULTS` picks some of
//! `kill,stop,app,cables,service-cable,freeze`; `HW_BENCH_NO_APP=1` leaves the application out
//! of the group (the address alone: what the survivor's start of an application costs the
//! client, on a host the nodes share; `app` is then skipped); `HW_BENCH_SHOW_MEM=1` prints the daemon's memory (a
//! killed process's exit time grows with what it has mapped and locked).
//!
//! Trials per system: `HW_BENCH_TRIALS` (default 30); `HW_BENCH_SECTIONS` picks some of
//! `cables,faults,moves` (default all). Needs root and keepalived (`make bench` installs
//! it).

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::time::Duration;

use lab::{Lab, LabConfig, mono_ns, percentile};

const SERVICE_IP: &str = "10.200.1.50";
const PORT: u16 = 7000;

#[derive(Clone, Copy, PartialEq)]
enum System {
    Heartwire,
    Keepalived,
}

/// One trial's result, ns.
struct Sample {
    gap: u64,
    to_first: u64,
}

/// A fault of the sentinel's part of the bench.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL of the owner's daemon (keepalived: its VRRP process).
    Kill,
    /// SIGSTOP of the owner's daemon (keepalived: its VRRP process).
    Stop,
    /// SIGSTOP of every process in the owner's namespace.
    Freeze,
    /// SIGKILL of the owner's application (heartwire only).
    App,
    /// Every cable of the owner pulled (its links lose carrier; heartwire only).
    Cables,
    /// The owner's service cable (eth1) pulled, its other network (eth2) up: it knows at
    /// once (carrier), and can say so (heartwire only).
    ServiceCable,
}

/// What one trial of a [`Fault`] showed.
struct Seen {
    /// Fault → first reply from the new owner, ns.
    to_first: u64,
    /// The old owner still had the address when the new one first answered.
    two_owners: bool,
    /// The new owner answered before the fault.
    early: bool,
    /// Nodes holding the address a second after a frozen owner resumed.
    holders_after: usize,
    /// Where the time went (heartwire, kill -9): each step's CLOCK_MONOTONIC ns after the
    /// fault, from the sentinel's and b's logs (see [`STAGES`]).
    stages: Vec<Option<u64>>,
}

/// The steps of a takeover after a kill -9 of the owner's daemon, in order.
const STAGES: [&str; 11] = [
    "a's sentinel sees the end",
    "a: cgroup killed",
    "a: addresses removed",
    "a: the killed are gone",
    "a fenced",
    "a's first notice copy sent",
    "a's notice sent",
    "b: node_fenced",
    "b: group_acquiring",
    "b: address added",
    "b: group_online",
];

/// The steps of a takeover after a kill -9 of the owner's application, in order.
const APP_STAGES: [&str; 6] = [
    "a: resource_failed",
    "a: group_releasing",
    "a: group_offline",
    "b: group_acquiring",
    "b: address added",
    "b: group_online",
];

/// Node `i`'s first event `name` at or after `at`, ns after it.
fn event_after(lab: &Lab, i: usize, name: &str, at: u64) -> Option<u64> {
    lab.events(i)
        .into_iter()
        .find(|e| e.name == name && e.at_ns >= at)
        .map(|e| e.at_ns - at)
}

/// The application takeover's steps after `at` (see [`APP_STAGES`]).
fn app_stages(lab: &Lab, at: u64) -> Vec<Option<u64>> {
    let b_log = std::fs::read_to_string(lab.log_path(1)).unwrap_or_default();
    let added = b_log
        .lines()
        .filter(|l| l.contains(" added on "))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("at=")))
        .filter_map(lab::parse_secs)
        .find(|t| *t >= at);
    vec![
        event_after(lab, 0, "resource_failed", at),
        event_after(lab, 0, "group_releasing", at),
        event_after(lab, 0, "group_offline", at),
        event_after(lab, 1, "group_acquiring", at),
        added.map(|t| t - at),
        event_after(lab, 1, "group_online", at),
    ]
}

/// The takeover's steps after `at` (see [`STAGES`]) from the logs of `lab`.
fn stages(lab: &Lab, at: u64) -> Vec<Option<u64>> {
    let a_log = std::fs::read_to_string(lab.log_path(0)).unwrap_or_default();
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(lab::parse_secs)
    };
    let sentinel = a_log
        .lines()
        .rev()
        .find(|l| l.contains("sentinel: ") && l.contains(" gone_at="));
    let after = |t: Option<u64>| t.filter(|t| *t >= at).map(|t| t - at);
    let event = |name: &str| {
        lab.events(1)
            .into_iter()
            .find(|e| e.name == name && e.at_ns >= at)
            .map(|e| e.at_ns - at)
    };
    let b_log = std::fs::read_to_string(lab.log_path(1)).unwrap_or_default();
    let added = b_log
        .lines()
        .filter(|l| l.contains(" added on "))
        .filter_map(|l| field(l, "at="))
        .find(|t| *t >= at);
    // "fenced this node in N µs: killed [..] (X µs), removed [..] (Y µs), waited for the
    // killed (Z µs), …": the fence's steps, each after the end.
    let steps: Vec<u64> = a_log
        .lines()
        .rev()
        .find(|l| l.contains("fenced this node in"))
        .map(|l| {
            l.split(" µs)")
                .filter_map(|part| part.rsplit('(').next()?.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let gone = sentinel.and_then(|l| field(l, "gone_at="));
    let step = |k: usize| {
        (steps.len() >= k).then(|| gone.map(|g| g + steps[..k].iter().sum::<u64>() * 1000))?
    };
    vec![
        after(gone),
        after(step(1)),
        after(step(2)),
        after(step(3)),
        after(sentinel.and_then(|l| field(l, "fenced_at="))),
        after(sentinel.and_then(|l| field(l, "first_notice_at="))),
        after(sentinel.and_then(|l| field(l, "notified_at="))),
        event("node_fenced"),
        event("group_acquiring"),
        after(added),
        event("group_online"),
    ]
}

fn heartwire_cfg() -> LabConfig {
    LabConfig {
        interval: "100us".into(),
        timeout: "1ms".into(),
        realtime: Some(50),
        two_node: true,
        extra: format!(
            "[[group]]\nname = \"svc\"\nnodes = [\"a\", \"b\"]\n\n[[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"{SERVICE_IP}/24\"\ninterface = \"eth1\"\nannounce_interval = \"10ms\"\n"
        ),
        nonip: None,
        private_run: false,
    }
}

fn keepalived_conf(name: &str, priority: u8) -> String {
    format!(
        "global_defs {{\n  router_id {name}\n  vrrp_version 3\n  vrrp_garp_master_delay 0\n  vrrp_garp_master_repeat 3\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth1\n  virtual_router_id 51\n  priority {priority}\n  advert_int 0.01\n  virtual_ipaddress {{\n    {SERVICE_IP}/24 dev eth1\n  }}\n}}\n"
    )
}

/// Starts keepalived in node `i`'s namespace; returns the helper index.
fn start_keepalived(lab: &mut Lab, i: usize, priority: u8) -> usize {
    let name = lab.names[i].clone();
    let conf = lab.dir.join(format!("keepalived-{name}.conf"));
    std::fs::write(&conf, keepalived_conf(&name, priority)).unwrap();
    let pid = |k: &str| {
        lab.dir
            .join(format!("{k}-{name}.pid"))
            .display()
            .to_string()
    };
    let (main_pid, vrrp_pid) = (pid("keepalived"), pid("vrrp"));
    let ns = lab.ns(i);
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "keepalived", "-n", "-l", "-P", "-f"])
        .arg(&conf)
        .args(["-p", &main_pid, "-r", &vrrp_pid])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn keepalived");
    lab.adopt_helper(child)
}

/// Starts the responders and a 1.5 s client probe of the service address (every 200
/// µs), then waits half a second and a random fraction of a millisecond: the fault comes
/// next. Returns the probe's output file and helper.
fn probe_before_fault(lab: &mut Lab, client: &str) -> (std::path::PathBuf, usize) {
    lab.start_responders(PORT);
    std::thread::sleep(Duration::from_millis(300));
    let out = lab.dir.join("probe.txt");
    let target = format!("{SERVICE_IP}:{PORT}");
    let probe = lab.start_probe(client, &target, 200, 1500, &out);
    std::thread::sleep(Duration::from_millis(500) + Duration::from_nanos(mono_ns() % 1_000_000));
    (out, probe)
}

fn trial(system: System, n: usize) -> Option<Sample> {
    let cfg = match system {
        System::Heartwire => heartwire_cfg(),
        System::Keepalived => LabConfig::default(),
    };
    let mut lab = Lab::new(&format!("bt{n}"), 2, &cfg);
    let client = lab.add_client();
    let mut keepalived = vec![];
    match system {
        System::Heartwire => {
            lab.start_all();
            lab.wait_for(Duration::from_secs(10), "a owns the group", |lab| {
                lab.group_state(0, "svc").as_deref() == Some("online")
            });
        }
        System::Keepalived => {
            keepalived.push(start_keepalived(&mut lab, 0, 150));
            keepalived.push(start_keepalived(&mut lab, 1, 100));
            lab.wait_for(Duration::from_secs(10), "a is VRRP master", |lab| {
                lab.addresses(0, "eth1").contains(SERVICE_IP)
            });
        }
    }
    let (out, probe) = probe_before_fault(&mut lab, &client);
    let fault = lab.cables(0, false)?;
    lab.finish_helper(probe, Duration::from_secs(10));
    for k in keepalived {
        lab.terminate_helper(k, Duration::from_secs(5));
    }
    let replies: Vec<(u64, String)> = lab::replies(&out)
        .into_iter()
        .map(|r| (r.recv_ns, r.from))
        .collect();
    let last_a = replies
        .iter()
        .filter(|(t, who)| *t <= fault && who == "a")
        .map(|(t, _)| *t)
        .next_back()?;
    let first_b = replies
        .iter()
        .find(|(t, who)| *t > fault && who == "b")
        .map(|(t, _)| *t)?;
    Some(Sample {
        gap: first_b - last_a,
        to_first: first_b - fault,
    })
}

/// Sends `sig` to `pids` and returns the time just before (CLOCK_MONOTONIC ns).
fn signal_all(pids: &[i32], sig: i32) -> u64 {
    let t = mono_ns();
    for &p in pids {
        let _ = heartwire_hal::process::signal(p, sig);
    }
    t
}

/// The processes of node `i`'s namespace.
fn ns_pids(lab: &Lab, i: usize) -> Vec<i32> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", &lab.ns(i)])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The client's real-time priority in the faults section: `HW_BENCH_PROBE_FIFO` (default
/// 90; 0: an ordinary process). The client stands for another machine; at an ordinary
/// priority it waits for CPU behind the dying node's exit and fence on this 2-CPU VM (a
/// trace showed it send nothing for 1.5 ms after a kill) and measures its own wait.
fn probe_fifo() -> Option<u8> {
    let p = std::env::var("HW_BENCH_PROBE_FIFO")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90);
    (p > 0).then_some(p)
}

/// `HW_BENCH_NO_APP`: the group holds the address alone.
fn no_app() -> bool {
    std::env::var_os("HW_BENCH_NO_APP").is_some_and(|v| v != "0")
}

/// One trial of `fault` against `system`.
fn fault_trial(system: System, fault: Fault, n: usize) -> Option<Seen> {
    // The default profile (5 ms / 50 ms, real-time; `hang_timeout` 25 ms with two_node).
    let mut cfg = LabConfig {
        two_node: true,
        interval: "5ms".into(),
        timeout: "50ms".into(),
        realtime: Some(50),
        ..LabConfig::default()
    };
    if system == System::Heartwire {
        cfg.extra = format!(
            "[[group]]\nname = \"svc\"\nnodes = [\"a\", \"b\"]\nfallback = \"never\"\n\n\
             [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"{SERVICE_IP}/24\"\n\
             interface = \"eth1\"\nannounce_interval = \"10ms\"\n"
        );
        if !no_app() {
            cfg.extra.push_str(
                "\n[[group.resource]]\nname = \"app\"\nkind = \"application\"\n\
                 start = \"sleep 100000 &\"\nstop = \"true\"\nrestarts = 0\n",
            );
        }
    }
    let mut lab = Lab::new(&format!("bf{n}"), 2, &cfg);
    lab.probe_fifo = probe_fifo();
    let client = lab.add_client();
    let mut keepalived = vec![];
    let victim: Vec<i32> = match system {
        System::Heartwire => {
            lab.start_all();
            lab.wait_for(Duration::from_secs(10), "a owns the group", |lab| {
                lab.group_state(0, "svc").as_deref() == Some("online")
            });
            let pid = lab.status(0)?.pid;
            if std::env::var_os("HW_BENCH_SHOW_MEM").is_some() {
                let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                for l in st
                    .lines()
                    .filter(|l| l.starts_with("Vm") || l.starts_with("Threads"))
                {
                    eprintln!("daemon {pid}: {l}");
                }
            }
            vec![i32::try_from(pid).ok()?]
        }
        System::Keepalived => {
            keepalived.push(start_keepalived(&mut lab, 0, 150));
            keepalived.push(start_keepalived(&mut lab, 1, 100));
            lab.wait_for(Duration::from_secs(10), "a is VRRP master", |lab| {
                lab.addresses(0, "eth1").contains(SERVICE_IP)
            });
            let vrrp = std::fs::read_to_string(lab.dir.join("vrrp-a.pid")).ok()?;
            vec![vrrp.trim().parse().ok()?]
        }
    };
    let (out, probe) = probe_before_fault(&mut lab, &client);
    let frozen = match fault {
        Fault::Freeze => ns_pids(&lab, 0),
        Fault::App => ns_pids(&lab, 0)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim_end() == "sleep")
            })
            .collect(),
        _ => victim.clone(),
    };
    let sig = if matches!(fault, Fault::Kill | Fault::App) {
        9
    } else {
        19
    };
    // Where the client's output stands at the fault: the watch below reads only what
    // comes after (parsing the whole file every millisecond took the harness 1.6 ms of CPU
    // at a time, taken from the takeover it measures).
    let mark = std::fs::metadata(&out).map_or(0, |m| m.len());
    let at = match fault {
        Fault::Cables => lab.cables(0, false)?,
        Fault::ServiceCable => lab.cables_of(0, &["eth1"], false)?,
        _ => signal_all(&frozen, sig),
    };
    // Whether a still has the address once b answers: looked at as soon as the probe shows
    // b's first reply (a little later, so it errs towards two owners). Nothing is started
    // before that: an `ip` every few ms would take CPU from the takeover it measures.
    let mut two_owners = false;
    let end = std::time::Instant::now() + Duration::from_millis(1000);
    while std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
        if lab::replies_from(&out, mark)
            .iter()
            .any(|r| r.recv_ns > at && r.from == "b")
        {
            two_owners = lab.addresses(0, "eth1").contains(SERVICE_IP);
            break;
        }
    }
    lab.finish_helper(probe, Duration::from_secs(10));
    let mut holders_after = 0;
    if matches!(fault, Fault::Stop | Fault::Freeze) {
        signal_all(&frozen, 18);
        std::thread::sleep(Duration::from_secs(1));
        holders_after = (0..2)
            .filter(|&i| lab.addresses(i, "eth1").contains(SERVICE_IP))
            .count();
    }
    for k in keepalived {
        lab.terminate_helper(k, Duration::from_secs(5));
    }
    let rs = lab::replies(&out);
    let early = rs.iter().any(|r| r.recv_ns < at && r.from == "b");
    if early && system == System::Heartwire {
        // A takeover from a live node: say why (the lab's logs go with it).
        for i in 0..2 {
            let log = std::fs::read_to_string(lab.log_path(i)).unwrap_or_default();
            let n = log.lines().count();
            eprintln!(
                "---- takeover before the fault: log of {} ----",
                lab.names[i]
            );
            for l in log.lines().skip(n.saturating_sub(30)) {
                eprintln!("{l}");
            }
        }
    }
    let first = rs.iter().find(|r| r.recv_ns > at && r.from == "b")?.recv_ns;
    if std::env::var_os("HW_BENCH_SHOW_PROBE").is_some() {
        eprintln!(
            "probe: fault at {}.{:09}",
            at / 1_000_000_000,
            at % 1_000_000_000
        );
        // The client's view of the takeover: each reply's send and arrival after the fault.
        for r in rs
            .iter()
            .filter(|r| r.recv_ns + 1_000_000 > at && r.recv_ns < first + 500_000)
        {
            eprintln!(
                "probe: sent {:>+6} µs, answered {:>+6} µs by {}",
                (i128::from(r.sent_ns) - i128::from(at)) / 1000,
                (i128::from(r.recv_ns) - i128::from(at)) / 1000,
                r.from
            );
        }
    }
    let stages = match (system, fault) {
        (System::Heartwire, Fault::Kill) => stages(&lab, at),
        (System::Heartwire, Fault::App | Fault::ServiceCable | Fault::Cables) => {
            app_stages(&lab, at)
        }
        _ => vec![],
    };
    Some(Seen {
        to_first: first - at,
        two_owners,
        early,
        holders_after,
        stages,
    })
}

/// Runs every fault against both systems and prints their lines.
fn faults(trials: usize) {
    println!(
        "definite failures (the default profile, 5 ms / 50 ms, SCHED_FIFO 50, hang_timeout 25 ms; keepalived 10 ms adverts; the client {}; the group: {}), {trials} trials each (µs)",
        probe_fifo().map_or("an ordinary process".to_owned(), |p| format!(
            "at SCHED_FIFO {p}"
        )),
        if no_app() {
            "the address alone"
        } else {
            "the address and an application"
        }
    );
    // HW_BENCH_FAULTS: a comma-separated subset of kill,stop,app,cables,service-cable,freeze (default
    // all); keepalived runs for kill and freeze.
    let only = std::env::var("HW_BENCH_FAULTS").unwrap_or_default();
    let wanted = |k: &str| only.is_empty() || only.split(',').any(|s| s == k);
    for (system, fault, name, key) in [
        (
            System::Heartwire,
            Fault::Kill,
            "heartwire daemon kill -9",
            "kill",
        ),
        (
            System::Heartwire,
            Fault::Stop,
            "heartwire daemon SIGSTOP",
            "stop",
        ),
        (
            System::Heartwire,
            Fault::App,
            "heartwire application kill -9",
            "app",
        ),
        (
            System::Heartwire,
            Fault::Cables,
            "heartwire owner's cables pulled",
            "cables",
        ),
        (
            System::Heartwire,
            Fault::ServiceCable,
            "heartwire owner's service cable pulled",
            "service-cable",
        ),
        (
            System::Heartwire,
            Fault::Freeze,
            "heartwire owner frozen",
            "freeze",
        ),
        (
            System::Keepalived,
            Fault::Kill,
            "keepalived vrrp kill -9",
            "kill",
        ),
        (
            System::Keepalived,
            Fault::Freeze,
            "keepalived owner frozen",
            "freeze",
        ),
    ] {
        if !wanted(key) || (fault == Fault::App && no_app()) {
            continue;
        }
        let (mut firsts, mut two, mut early, mut missed) = (vec![], 0, 0, 0);
        let mut after: Vec<usize> = vec![];
        let mut steps: Vec<Vec<u64>> = vec![vec![]; STAGES.len()];
        for n in 0..trials {
            match fault_trial(system, fault, n) {
                Some(s) => {
                    for (k, t) in s.stages.iter().enumerate() {
                        if let Some(t) = t {
                            steps[k].push(*t);
                        }
                    }
                    firsts.push(s.to_first);
                    two += usize::from(s.two_owners);
                    early += usize::from(s.early);
                    after.push(s.holders_after);
                }
                None => missed += 1,
            }
        }
        let one_after = after.iter().filter(|h| **h == 1).count();
        println!(
            "{name}: {} trials, {missed} without a takeover, {two} with two owners when the new one answered, \
             {early} with a takeover before the fault{}",
            firsts.len(),
            if !matches!(fault, Fault::Stop | Fault::Freeze) {
                String::new()
            } else {
                format!(", {one_after} with exactly one holder after resuming")
            }
        );
        let labels: &[&str] = if matches!(fault, Fault::App | Fault::ServiceCable | Fault::Cables) {
            &APP_STAGES
        } else {
            &STAGES
        };
        for (label, xs) in labels.iter().zip(&mut steps) {
            if !xs.is_empty() {
                summary(&format!("fault → {label}"), xs);
            }
        }
        if !firsts.is_empty() {
            summary("fault → first reply", &mut firsts);
        }
    }
}

/// Operator moves back and forth under a running probe; (client gaps, command times), ns.
fn moves(trials: usize) -> (Vec<u64>, Vec<u64>) {
    let mut lab = Lab::new("bm", 2, &heartwire_cfg());
    let client = lab.add_client();
    lab.start_all();
    lab.wait_for(Duration::from_secs(10), "a owns the group", |lab| {
        lab.group_state(0, "svc").as_deref() == Some("online")
    });
    lab.wait_for(Duration::from_secs(5), "b has authority", |lab| {
        lab.status(1).is_some_and(|s| s.authority)
    });
    lab.start_responders(PORT);
    std::thread::sleep(Duration::from_millis(300));
    let out = lab.dir.join("probe.txt");
    let spacing = Duration::from_millis(150);
    let total = u32::try_from((spacing * u32::try_from(trials + 2).unwrap()).as_millis()).unwrap();
    let probe = lab.start_probe(&client, &format!("{SERVICE_IP}:{PORT}"), 200, total, &out);
    std::thread::sleep(spacing);
    let mut stamps = vec![];
    let mut command = vec![];
    for n in 0..trials {
        let (from, to) = if n % 2 == 0 { (0, 1) } else { (1, 0) };
        let t = mono_ns();
        let r = lab.cli(from, &["move", "svc", &lab.names[to].clone(), "--json"]);
        match serde_json::from_slice::<heartwire::ctl::request::CommandReport>(&r.stdout) {
            Ok(rep) if rep.result == "done" => command.push(rep.elapsed_us * 1000),
            _ => eprintln!(
                "move {n} not done: {}{}",
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            ),
        }
        stamps.push((t, lab.names[from].clone(), lab.names[to].clone()));
        std::thread::sleep(spacing);
    }
    lab.finish_helper(probe, Duration::from_secs(10));
    let rs = lab::replies(&out);
    let mut gaps = vec![];
    for (k, (t, old, new)) in stamps.iter().enumerate() {
        let end = stamps.get(k + 1).map_or(u64::MAX, |s| s.0);
        let window: Vec<_> = rs
            .iter()
            .filter(|r| r.recv_ns >= *t && r.recv_ns < end)
            .collect();
        let Some(first_new) = window.iter().find(|r| &r.from == new).map(|r| r.recv_ns) else {
            continue;
        };
        let last_old = rs
            .iter()
            .filter(|r| r.recv_ns < first_new && &r.from == old)
            .map(|r| r.recv_ns)
            .next_back();
        if let Some(last_old) = last_old {
            gaps.push(first_new - last_old);
        }
    }
    (gaps, command)
}

fn summary(label: &str, xs: &mut [u64]) -> u64 {
    xs.sort_unstable();
    let us = |v: u64| v as f64 / 1e3;
    println!(
        "  {label:<34} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
        us(xs[0]),
        us(percentile(xs, 50)),
        us(percentile(xs, 90)),
        us(percentile(xs, 99)),
        us(xs[xs.len() - 1])
    );
    percentile(xs, 99)
}

fn main() {
    let Some(trials) = lab::bench_trials() else {
        return;
    };
    // HW_BENCH_SECTIONS: a comma-separated subset of cables,faults,moves (default all).
    let sections = std::env::var("HW_BENCH_SECTIONS").unwrap_or_default();
    let run = |name: &str| sections.is_empty() || sections.split(',').any(|s| s == name);
    if run("cables") {
        cables(trials);
    }
    if run("faults") {
        faults(trials);
    }
    if run("moves") {
        moves_section(trials);
    }
}

/// Every cable of the owner pulled: heartwire at 100 µs / 1 ms against keepalived.
fn cables(trials: usize) {
    println!(
        "takeover as the client sees it: every cable of the owner pulled, {trials} trials per system (µs)"
    );
    println!(
        "  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "min", "p50", "p90", "p99", "max"
    );
    let mut p99 = vec![];
    for system in [System::Heartwire, System::Keepalived] {
        let name = match system {
            System::Heartwire => "heartwire 100us/1ms",
            System::Keepalived => "keepalived VRRPv3 10ms",
        };
        let (mut gaps, mut firsts, mut missed) = (vec![], vec![], 0);
        for n in 0..trials {
            match trial(system, n) {
                Some(s) => {
                    gaps.push(s.gap);
                    firsts.push(s.to_first);
                }
                None => missed += 1,
            }
        }
        println!("{name} ({missed} trial(s) without a takeover)");
        if gaps.is_empty() {
            continue;
        }
        summary("failover gap (last→first)", &mut gaps);
        p99.push(summary("fault → first reply", &mut firsts));
    }
    if let [hw, ka] = p99[..] {
        println!(
            "fault → first reply p99: heartwire {:.2} ms, keepalived {:.2} ms: {:.1}x faster",
            hw as f64 / 1e6,
            ka as f64 / 1e6,
            ka as f64 / hw.max(1) as f64
        );
    }
}

/// Planned switches (`heartwire move`) back and forth under the probe.
fn moves_section(trials: usize) {
    let (mut gaps, mut command) = moves(trials);
    println!(
        "heartwire move (planned switch; {} of {trials} moves done, {} switches seen by the client)",
        command.len(),
        gaps.len()
    );
    if !gaps.is_empty() && !command.is_empty() {
        summary("client gap (last→first)", &mut gaps);
        summary("command → done", &mut command);
    }
}
