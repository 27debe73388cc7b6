//! Failure-detection latency with real daemons in the netns lab (`make bench`).
//!
//! Per profile (interval, timeout) and trial: a fresh two-node lab, both daemons up, a
//! random wait (so the kill lands at a random phase of the heartbeat interval), then
//! CLOCK_MONOTONIC is read and node a is killed with SIGKILL; the detection time is the
//! survivor's `node_down` decision time (from its log, same clock) minus that reading.
//! Also measured per profile: CPU time per second of wall time of one daemon.
//!
//! Trials per profile: `HW_BENCH_TRIALS` (default 30). Needs root.

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::{Lab, LabConfig, mono_ns, percentile};

struct Profile {
    interval: &'static str,
    timeout: &'static str,
}

const PROFILES: [Profile; 2] = [
    Profile {
        interval: "100us",
        timeout: "1ms",
    },
    Profile {
        interval: "1ms",
        timeout: "5ms",
    },
];

/// User + system CPU ticks of `pid` from /proc (clock ticks, 100 Hz on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn cpu_share(lab: &Lab, window: Duration) -> f64 {
    let pid = lab.pid(1);
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(window);
    let (t1, c1) = (Instant::now(), cpu_ticks(pid));
    (c1 - c0) as f64 / 100.0 / (t1 - t0).as_secs_f64()
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
        "profile (µs)                min      p50      p90      p99      max   missed  cpu/s per daemon"
    );
    for p in PROFILES {
        let cfg = LabConfig {
            interval: p.interval.into(),
            timeout: p.timeout.into(),
            realtime: Some(50),
            ..LabConfig::default()
        };
        let interval_ns =
            u64::try_from(humantime::parse_duration(p.interval).unwrap().as_nanos()).unwrap();
        let cpu = {
            let mut lab = Lab::new("benchcpu", 2, &cfg);
            lab.start_all();
            std::thread::sleep(Duration::from_millis(300));
            cpu_share(&lab, Duration::from_secs(3))
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
            println!(
                "{:<22} no detection observed ({missed} missed)",
                format!("{}/{}", p.interval, p.timeout)
            );
            continue;
        }
        println!(
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {:.1}% of a core",
            format!("{}/{}", p.interval, p.timeout),
            us(v[0]),
            us(percentile(&v, 50)),
            us(percentile(&v, 90)),
            us(percentile(&v, 99)),
            us(*v.last().unwrap()),
            missed,
            cpu * 100.0
        );
    }
}
