//! `make soak`: does a timing profile take over from a live node under load?
//!
//! A benchmark, not a test: the answer depends on how this machine schedules. Per profile
//! (interval/timeout on every path): a production pair (two nodes, `two_node`, SCHED_FIFO
//! 50 unless told otherwise, the sentinel at its default `hang_timeout`, raw Ethernet on two networks and UDP)
//! holding group `svc` (a service address); both cores kept busy by stress-ng for the
//! whole window; nothing else is done to the cluster. Every takeover in that window is a
//! takeover from a live node. Printed per node:
//!
//! - node_down of the peer (each one a false takeover: the peer was alive), the
//!   sentinel's kills of its own daemon (a stall the sentinel took for a hang: a false
//!   takeover too), group acquisitions after the start;
//! - path_down events (a path lost while the node lived: harmless, counted);
//! - local pauses (the loop's own stalls: count, worst);
//! - the daemon's CPU (share of one core) and its runqueue wait.
//!
//! A profile is usable when every count in the first group is 0 (DESIGN §5 "Choosing a
//! profile"; the default profile is the smallest one that showed that for 10 minutes).
//!
//! `HW_SOAK_PROFILES` (comma-separated interval/timeout pairs, default the default
//! profile), `HW_SOAK_SECS` (default 600), `HW_SOAK_REALTIME=0` (the daemons not
//! real-time). Needs root and stress-ng (`make soak` installs it).

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::{Lab, LabConfig, mono_ns};

/// The default profile (config: the default `interval` and `timeout` of an Ethernet or
/// UDP path).
const DEFAULT_PROFILE: &str = "5ms/50ms";

/// Kills the stress-ng we started (by PID) when dropped.
struct Stress(std::process::Child);

impl Drop for Stress {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fields of /proc/<pid>/stat after the command name.
fn proc_stat(pid: u32) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(end) = stat.rfind(')') else {
        return Vec::new();
    };
    stat[end + 2..]
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect()
}

/// User + system CPU of `pid`, clock ticks (100 Hz).
fn cpu_ticks(pid: u32) -> u64 {
    let f = proc_stat(pid);
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// Runqueue wait of `pid` so far, ns (/proc/<pid>/schedstat, second field).
fn run_delay_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Busy (non-idle, non-iowait) CPU time of the whole machine so far, clock ticks.
fn busy_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    f.iter().sum::<u64>() - f[3] - f[4]
}

/// One node's figures over the window.
#[derive(Default)]
struct Figures {
    node_downs: usize,
    sentinel_kills: usize,
    acquisitions: usize,
    path_downs: usize,
    pauses: usize,
    worst_pause_us: u64,
    /// Share of one core; `None`: the daemon was replaced.
    cpu: Option<f64>,
    runqueue_ms: Option<f64>,
    /// The sentinel stopped restarting (too many kills): the node serves nothing.
    gave_up: bool,
}

fn soak(profile: &str, window: Duration) {
    let (interval, timeout) = profile
        .split_once('/')
        .unwrap_or_else(|| panic!("HW_SOAK_PROFILES: `{profile}` is not interval/timeout"));
    let cfg = LabConfig {
        interval: interval.into(),
        timeout: timeout.into(),
        realtime: realtime(),
        two_node: true,
        extra: "[[group]]\nname = \"svc\"\nnodes = [\"a\", \"b\"]\nfallback = \"never\"\n\n\
                [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"10.200.1.50/24\"\n\
                interface = \"eth1\"\n\n"
            .into(),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("soak", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    let daemons: Vec<u32> = (0..2).map(|i| lab.status(i).expect("status").pid).collect();
    let from = mono_ns();
    let lines0: Vec<usize> = (0..2)
        .map(|i| std::fs::read_to_string(lab.log_path(i)).map_or(0, |t| t.lines().count()))
        .collect();
    let cpu0: Vec<u64> = daemons.iter().map(|p| cpu_ticks(*p)).collect();
    let wait0: Vec<u64> = daemons.iter().map(|p| run_delay_ns(*p)).collect();
    let busy0 = busy_ticks();
    let started = Instant::now();
    let stress = Command::new("stress-ng")
        .args(["--cpu", "0", "--timeout"])
        .arg(format!("{}s", window.as_secs()))
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stress-ng (make soak installs it)");
    let stress = Stress(stress);
    std::thread::sleep(window);
    let secs = started.elapsed().as_secs_f64();
    let busy = (busy_ticks() - busy0) as f64 / 100.0 / secs;
    drop(stress);
    let figures: Vec<Figures> = (0..2)
        .map(|i| {
            let log = std::fs::read_to_string(lab.log_path(i)).unwrap_or_default();
            let after: Vec<&str> = log.lines().skip(lines0[i]).collect();
            let events: Vec<lab::LogEvent> = lab
                .events(i)
                .into_iter()
                .filter(|e| e.at_ns >= from)
                .collect();
            let count = |name: &str| events.iter().filter(|e| e.name == name).count();
            let pauses: Vec<u64> = events
                .iter()
                .filter(|e| e.name == "local_pause")
                .filter_map(|e| e.field("late_us")?.parse().ok())
                .collect();
            Figures {
                node_downs: count("node_down"),
                sentinel_kills: after
                    .iter()
                    .filter(|l| l.contains("sentinel: daemon") && l.contains("killed it"))
                    .count(),
                acquisitions: count("group_acquiring"),
                path_downs: count("path_down"),
                pauses: pauses.len(),
                worst_pause_us: pauses.iter().copied().max().unwrap_or(0),
                // Only for the daemon that ran the whole window (a killed one's figures
                // are gone with it).
                cpu: lab
                    .status(i)
                    .filter(|s| s.pid == daemons[i])
                    .map(|_| (cpu_ticks(daemons[i]) - cpu0[i]) as f64 / 100.0 / secs),
                runqueue_ms: lab
                    .status(i)
                    .filter(|s| s.pid == daemons[i])
                    .map(|_| (run_delay_ns(daemons[i]) - wait0[i]) as f64 / 1e6),
                gave_up: after.iter().any(|l| l.contains("not starting it again")),
            }
        })
        .collect();
    for (i, f) in figures.iter().enumerate() {
        let opt = |v: Option<f64>, unit: &str| {
            v.map_or("replaced".to_owned(), |v| format!("{v:.1}{unit}"))
        };
        println!(
            "{profile:<12} {:<2} {:>5.0} {:>10} {:>9} {:>9} {:>9} {:>7} {:>10} {:>8} {:>9} {:>6.2}{}",
            lab.names[i],
            secs,
            f.node_downs,
            f.sentinel_kills,
            f.acquisitions,
            f.path_downs,
            f.pauses,
            f.worst_pause_us,
            opt(f.cpu.map(|c| c * 100.0), "%"),
            opt(f.runqueue_ms, ""),
            busy,
            if f.gave_up {
                "  the sentinel gave up: no daemon left"
            } else {
                ""
            }
        );
    }
    let false_takeovers: usize = figures
        .iter()
        .map(|f| f.node_downs + f.sentinel_kills + f.acquisitions)
        .sum();
    println!(
        "{profile:<12}    {}",
        if false_takeovers == 0 {
            "usable: no takeover from a live node".to_owned()
        } else {
            format!("NOT usable: {false_takeovers} takeovers from a live node")
        }
    );
}

/// SCHED_FIFO 50 unless `HW_SOAK_REALTIME=0` (then the daemons are ordinary processes,
/// competing with stress-ng).
fn realtime() -> Option<u8> {
    (std::env::var("HW_SOAK_REALTIME").as_deref() != Ok("0")).then_some(50)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let profiles = std::env::var("HW_SOAK_PROFILES").unwrap_or_else(|_| DEFAULT_PROFILE.into());
    let secs: u64 = std::env::var("HW_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    println!(
        "soak: {secs} s per profile, two nodes (two_node, {}, sentinel), both cores busy with \
         stress-ng; every takeover is from a live node (release build)",
        if realtime().is_some() {
            "SCHED_FIFO 50"
        } else {
            "not real-time"
        }
    );
    println!(
        "profile      node  secs  node_down  sentinel  acquired path_down  pauses  worst_µs     cpu  runq_ms  busy"
    );
    for p in profiles.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        soak(p, Duration::from_secs(secs));
    }
}
