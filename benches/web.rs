//! What `heartwire-web` costs and shows (`make bench`; issue 20).
//!
//! - A scrape of `/metrics`: its latency at the client (curl's own timing, inside node b's
//!   namespace, over `HW_BENCH_TRIALS` × 5 scrapes), and the CPU it costs the daemon and
//!   the web process: CPU time from /proc/<pid>/schedstat (ns) over 20 s without scrapes,
//!   then over 20 s with one scrape a second and 20 s with ten a second.
//! - The page in headless Chromium: from kill -9 of the owner's daemon to the group drawn
//!   on the survivor's card (a MutationObserver in the page stamps `Date.now()`; the kill
//!   is stamped with the same wall clock just before it), `HW_BENCH_TRIALS` trials in one
//!   lab at the default profile (5 ms / 50 ms) and in one at 1 ms / 10 ms, the group moved
//!   back between trials; beside it, the daemon's own kill → `group_online` from the
//!   survivor's log.
//!
//! Needs root, curl, chromium and chromium-driver (`make bench` installs them).

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::web::{Browser, PORT, start_web};
use lab::{Lab, LabConfig, percentile};

fn config() -> LabConfig {
    LabConfig {
        two_node: true,
        extra: "[[group]]\nname = \"svc\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n\n\
                [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"10.200.1.50/24\"\ninterface = \"eth1\"\nannounce_count = 1\n\n"
            .into(),
        ..LabConfig::default()
    }
}

/// CPU time of `pid` so far, ns (/proc/<pid>/schedstat: time on a CPU).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn wall_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn main() {
    let Some(trials) = lab::bench_trials() else {
        return;
    };
    scrapes(trials);
    // The default profile (README, Timing), and 1 ms / 10 ms: what the page adds shows
    // against a takeover of about ten milliseconds.
    page(trials, "5ms", "50ms", Kill::Daemon);
    page(trials, "5ms", "50ms", Kill::Run);
    page(trials, "1ms", "10ms", Kill::Run);
}

/// One scrape timed by curl itself (`time_total`), µs.
fn timed_scrape(lab: &Lab) -> u64 {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns(1),
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total}",
        ])
        .arg(format!("http://127.0.0.1:{PORT}/metrics"))
        .output()
        .expect("curl");
    let secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let us = (secs * 1e6) as u64;
    us
}

fn scrapes(trials: usize) {
    let mut lab = Lab::new("bweb", 2, &config());
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    let web = start_web(&mut lab, 1, &[]);
    let (daemon, web) = (lab.status(1).expect("b answers").pid, lab.helper_pid(web));
    let mut lat: Vec<u64> = (0..trials * 5).map(|_| timed_scrape(&lab)).collect();
    lat.sort_unstable();
    println!(
        "GET /metrics at the client, {} scrapes (µs): min {} p50 {} p90 {} p99 {} max {}",
        lat.len(),
        lat[0],
        percentile(&lat, 50),
        percentile(&lat, 90),
        percentile(&lat, 99),
        lat[lat.len() - 1]
    );
    println!("CPU over 20 s (ms): scrapes/s   daemon b   heartwire-web   per scrape: daemon, web");
    let mut idle = (0.0, 0.0);
    for rate in [0u32, 1, 10] {
        let (d0, w0) = (cpu_ns(daemon), cpu_ns(web));
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_secs(20) {
            if rate > 0 && start.elapsed() >= Duration::from_secs(1) * n / rate {
                timed_scrape(&lab);
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        #[allow(clippy::cast_precision_loss)]
        let (d, w) = (
            (cpu_ns(daemon) - d0) as f64 / 1e6,
            (cpu_ns(web) - w0) as f64 / 1e6,
        );
        if rate == 0 {
            idle = (d, w);
            println!("                     0   {d:8.1}   {w:13.1}");
        } else {
            let k = f64::from(n);
            println!(
                "                    {rate:2}   {d:8.1}   {w:13.1}   {:.3} ms, {:.3} ms",
                (d - idle.0) / k,
                (w - idle.1) / k
            );
        }
    }
}

/// What a trial kills on the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// Its daemon (kill -9): a definite failure, its sentinel fences and sends the death
    /// notice, then starts a new daemon.
    Daemon,
    /// Its whole `run`, sentinel and daemon: silent, the survivor waits out the timeout.
    Run,
}

fn page(trials: usize, interval: &str, timeout: &str, kill: Kill) {
    let what = match kill {
        Kill::Daemon => "kill -9 of the owner's daemon",
        Kill::Run => "kill -9 of the owner's whole run (sentinel too)",
    };
    println!("profile {interval} / {timeout}, {what}:");
    let cfg = LabConfig {
        interval: interval.into(),
        timeout: timeout.into(),
        realtime: Some(50),
        ..config()
    };
    let mut lab = Lab::new("bwebui", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    start_web(&mut lab, 1, &[]);
    let browser = Browser::start(&mut lab, 1);
    browser.go(&format!("http://127.0.0.1:{PORT}/"));
    let (mut shown, mut online) = (Vec::new(), Vec::new());
    for t in 0..trials {
        lab.wait_for(Duration::from_secs(10), "the page shows svc on a", |_| {
            browser.shows("svc", "a")
        });
        browser.js(
            "window.__moved=null; new MutationObserver(function(){ if(!window.__moved && \
             document.querySelector('.node[data-node=\"b\"] .group[data-group=\"svc\"]')) \
             window.__moved=Date.now(); }).observe(document.getElementById('view'), \
             {childList:true,subtree:true}); return true",
        );
        let daemon = lab.status(0).map(|s| s.pid);
        let (killed, killed_mono) = (wall_ms(), lab::mono_ns());
        match (kill, daemon) {
            (Kill::Daemon, Some(pid)) => {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            _ => lab.kill(0),
        }
        lab.wait_for(Duration::from_secs(10), "the page stamps the move", |_| {
            browser.js("return window.__moved").is_u64()
        });
        let at = browser.js("return window.__moved").as_u64().unwrap();
        shown.push(at.saturating_sub(killed));
        let came = lab
            .events(1)
            .iter()
            .rev()
            .find(|e| e.name == "group_online" && e.at_ns > killed_mono)
            .map_or(0, |e| e.at_ns - killed_mono);
        online.push(came / 1_000_000);
        if kill == Kill::Daemon {
            // A fresh `run` each trial: a sentinel gives up after 5 deaths in 600 s.
            lab.kill(0);
        }
        lab.start(0);
        lab.wait_for(Duration::from_secs(10), "a is back in b's view", |lab| {
            lab.status(1).is_some_and(|s| s.view_members.len() == 2)
        });
        let out = lab.cli(1, &["move", "svc", "a", "--timeout", "10"]);
        assert!(out.status.success(), "trial {t}: move back: {out:?}");
    }
    shown.sort_unstable();
    online.sort_unstable();
    println!(
        "  {what} -> group_online at the survivor (its log), {} trials (ms): \
         min {} p50 {} p90 {} max {}",
        online.len(),
        online[0],
        percentile(&online, 50),
        percentile(&online, 90),
        online[online.len() - 1]
    );
    println!(
        "  {what} -> group on the survivor's card in Chromium, {} trials (ms): \
         min {} p50 {} p90 {} max {}",
        shown.len(),
        shown[0],
        percentile(&shown, 50),
        percentile(&shown, 90),
        shown[shown.len() - 1]
    );
    drop(browser);
}
