//! Failure-detection latency with real daemons in the netns lab (`make bench`).
//!
//! Per profile (interval, timeout) and trial: a fresh two-node lab, both daemons up, a
//! random wait (so the kill lands at a random phase of the heartbeat interval), then
//! CLOCK_MONOTONIC is read and node a is killed with SIGKILL; the detection time is the
//! survivor's `node_down` decision time (from its log, same clock) minus that reading.
//! Also measured per profile: CPU time per second of wall time of one daemon.
//!
//! Profiles: raw Ethernet + UDP at 100 µs / 1 ms and 1 ms / 5 ms (three paths each); a
//! serial line alone at 115200 baud (the lab's cable paced at the baud rate, interval and
//! timeout derived from it); a shared disk alone (a file, O_DIRECT). Then the worst gap
//! between a node's Ethernet heartbeats, seen from its peer, while its disk hangs (the
//! disk servant stopped with SIGSTOP), against the same measurement without a hang.
//!
//! Trials per profile: `HW_BENCH_TRIALS` (default 30). Needs root.

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::{Lab, LabConfig, NonIp, mono_ns, percentile};

struct Profile {
    label: &'static str,
    cfg: LabConfig,
}

fn profiles() -> Vec<Profile> {
    let ether = |interval: &str, timeout: &str| LabConfig {
        interval: interval.into(),
        timeout: timeout.into(),
        realtime: Some(50),
        ..LabConfig::default()
    };
    let alone = |nonip: NonIp| LabConfig {
        realtime: Some(50),
        nonip: Some(nonip),
        ..LabConfig::default()
    };
    vec![
        Profile {
            label: "ether+udp 100us/1ms",
            cfg: ether("100us", "1ms"),
        },
        Profile {
            label: "ether+udp 1ms/5ms",
            cfg: ether("1ms", "5ms"),
        },
        Profile {
            label: "serial 115200 13ms/65ms",
            cfg: alone(NonIp {
                baud: Some(115_200),
                pace: true,
                no_ip: true,
                no_disk: true,
                ..NonIp::default()
            }),
        },
        Profile {
            label: "disk 5ms/25ms",
            cfg: alone(NonIp {
                disk_timing: Some(("5ms".into(), "25ms".into())),
                no_ip: true,
                no_serial: true,
                ..NonIp::default()
            }),
        },
    ]
}

/// User + system CPU ticks of `pid` from /proc (clock ticks, 100 Hz on Linux).
/// `None`: the process is gone (its sentinel killed and replaced it).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The daemon of node b (not its sentinel) over `window`: its CPU as a share of one core,
/// and its CPU time per heartbeat frame sent or received (µs); `None` when its sentinel
/// replaced it meanwhile (a profile this host cannot hold).
fn cpu_share(lab: &Lab, window: Duration) -> Option<(f64, f64)> {
    let frames = |lab: &Lab| {
        let s = lab.status(1).expect("b answers");
        let tx: u64 = s.paths.iter().map(|p| p.tx_frames).sum();
        let rx: u64 = s
            .peers
            .iter()
            .flat_map(|p| &p.links)
            .map(|l| l.received)
            .sum();
        (s.pid, tx + rx)
    };
    let (pid, f0) = frames(lab);
    let (t0, c0) = (Instant::now(), cpu_ticks(pid)?);
    std::thread::sleep(window);
    let (t1, c1) = (Instant::now(), cpu_ticks(pid)?);
    let (now, f1) = frames(lab);
    if now != pid {
        return None;
    }
    let cpu_s = (c1 - c0) as f64 / 100.0;
    Some((
        cpu_s / (t1 - t0).as_secs_f64(),
        cpu_s * 1e6 / f1.saturating_sub(f0).max(1) as f64,
    ))
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn trial(cfg: &LabConfig, interval_ns: u64, rng: &mut Rng) -> Option<u64> {
    let interval_ns = interval_ns.max(1);
    let mut lab = Lab::new("bench", 2, cfg);
    lab.start_all();
    std::thread::sleep(Duration::from_millis(200) + Duration::from_nanos(rng.below(interval_ns)));
    let killed_at = mono_ns();
    lab.kill(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(e) = lab
            .events(1)
            .into_iter()
            .find(|e| e.name == "node_down" && e.at_ns > killed_at)
        {
            return Some(e.at_ns - killed_at);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn main() {
    let Some(trials) = lab::bench_trials() else {
        return;
    };
    let mut rng = Rng(mono_ns() | 1);
    println!(
        "detection latency after kill -9, {trials} trials per profile, daemons SCHED_FIFO 50 (release build)"
    );
    println!(
        "profile (µs)                    min      p50      p90      p99      max   missed  daemon cpu (per frame sent or received)"
    );
    for p in profiles() {
        let cfg = p.cfg;
        // The kill lands at a random phase of up to one (longest) interval.
        let interval_ns = 13_000_000;
        let cpu = {
            let mut lab = Lab::new("benchcpu", 2, &cfg);
            lab.start_all();
            std::thread::sleep(Duration::from_millis(300));
            cpu_share(&lab, Duration::from_secs(10))
        };
        let mut v: Vec<u64> = Vec::new();
        let mut missed = 0;
        for _ in 0..trials {
            match trial(&cfg, interval_ns, &mut rng) {
                Some(ns) => v.push(ns),
                None => missed += 1,
            }
        }
        v.sort_unstable();
        let us = |ns: u64| format!("{:.0}", ns as f64 / 1e3);
        if v.is_empty() {
            println!("{:<26} no detection observed ({missed} missed)", p.label);
            continue;
        }
        println!(
            "{:<26} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
            p.label,
            us(v[0]),
            us(percentile(&v, 50)),
            us(percentile(&v, 90)),
            us(percentile(&v, 99)),
            us(*v.last().unwrap()),
            missed,
            cpu.map_or(
                "the daemon was replaced by its sentinel meanwhile".to_owned(),
                |(c, f)| { format!("{:.1}% of a core, {f:.1} µs per frame", c * 100.0) }
            )
        );
    }
    hung_disk_gaps(trials);
}

/// Heartbeat cadence on Ethernet (1 ms interval) seen from the peer for 2 s, with and
/// without the disk servant of the sender stopped.
fn hung_disk_gaps(trials: usize) {
    let cfg = LabConfig {
        interval: "1ms".into(),
        timeout: "5ms".into(),
        realtime: Some(50),
        nonip: Some(NonIp {
            no_serial: true,
            disk_timing: Some(("5ms".into(), "25ms".into())),
            ..NonIp::default()
        }),
        ..LabConfig::default()
    };
    println!();
    println!(
        "gaps between a's heartbeats on e2 (1 ms interval) seen at b over 2 s, {} runs each",
        trials.min(5)
    );
    println!("disk                 frames  p50 µs  p99 µs  max µs");
    for hang in [false, true] {
        let mut worst = lab::Gaps::default();
        for _ in 0..trials.min(5) {
            let mut lab = Lab::new("benchgap", 2, &cfg);
            lab.start_all();
            std::thread::sleep(Duration::from_millis(200));
            let servant = lab
                .status(0)
                .and_then(|s| s.paths.iter().find(|p| p.name == "d1")?.servant_pid)
                .expect("a's disk servant");
            if hang {
                let _ = std::process::Command::new("kill")
                    .args(["-STOP", &servant.to_string()])
                    .status();
            }
            let g = lab.gaps(1, 2, 0, 2000);
            if g.max_us >= worst.max_us {
                worst = g;
            }
            if hang {
                let _ = std::process::Command::new("kill")
                    .args(["-CONT", &servant.to_string()])
                    .status();
            }
        }
        println!(
            "{:<20} {:>6} {:>7} {:>7} {:>7}   (the run with the worst max)",
            if hang {
                "hung (servant SIGSTOP)"
            } else {
                "working"
            },
            worst.frames,
            worst.p50_us,
            worst.p99_us,
            worst.max_us
        );
    }
}
