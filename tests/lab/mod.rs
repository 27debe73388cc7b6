//! The netns lab (DESIGN §8): an N-node cluster on this one machine.
//!
//! Topology: a "switch" namespace holds two bridges, `br1` and `br2` (two independent
//! networks). Each node is a namespace with `eth1` on br1 and `eth2` on br2 (veth pairs),
//! addresses 10.200.1.<id>/24 and 10.200.2.<id>/24, which exist only inside these
//! namespaces. Paths: `e1` raw Ethernet on eth1, `e2` raw Ethernet on eth2, `u1` UDP on
//! net1. Every node runs the real `heartwire` binary.
//!
//! Rules kept here: namespace names carry a per-lab prefix (test tag + pid); every
//! namespace, process and file created is removed in `Drop`, also when a test panics (the
//! node logs are printed first); every wait is bounded in time; processes are killed only
//! by the PID we started.
#![allow(dead_code, unreachable_pub)]

pub mod serial;
pub mod web;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use heartwire::ctl::client;
use heartwire::ctl::status::StatusReport;

/// The heartwire binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heartwire"))
}

/// The lab's tools (`heartwire-lab`: capture, send-frames, link-set, responder, probe, ...).
pub fn lab_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heartwire-lab"))
}

/// A heartbeat frame on path 0 in the name of `node`, sealed with `key` (none: a keyless
/// cluster's frame), carrying `state`: what a forger or a replaying injector sends.
pub fn heartbeat_frame(
    key: Option<&heartwire::wire::auth::AuthKey>,
    cluster: u16,
    node: u8,
    (incarnation, seq, timestamp_ns): (u32, u32, u64),
    state: heartwire::wire::state::StateRepr,
) -> Vec<u8> {
    use heartwire::wire::frame::{FRAME_MAX, HeaderRepr, Kind};
    use heartwire::wire::heartbeat::HeartbeatRepr;
    let hb = HeartbeatRepr {
        state,
        config_hash: 0,
        refused: 0,
        echo: None,
        path_count: 0,
        heard: [0; 8],
    };
    let h = HeaderRepr {
        kind: Kind::Heartbeat,
        cluster,
        node,
        path: 0,
        incarnation,
        seq,
        timestamp_ns,
    };
    let mut buf = [0u8; FRAME_MAX];
    let n = h
        .emit(&mut buf, hb.buffer_len(), key, |p| hb.emit(p))
        .expect("a heartbeat fits a frame");
    buf[..n].to_vec()
}

/// CLOCK_MONOTONIC now, ns: the clock every namespace on the host shares and the daemon
/// logs with.
pub fn mono_ns() -> u64 {
    heartwire_hal::clock::monotonic_ns()
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Timing and options of one lab cluster.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Heartbeat interval of every path, e.g. "1ms".
    pub interval: String,
    /// Timeout of every path, e.g. "5ms".
    pub timeout: String,
    /// Run the daemons SCHED_FIFO at this priority.
    pub realtime: Option<u8>,
    /// `two_node = true` in `[cluster]`.
    pub two_node: bool,
    /// Config text appended as is (groups).
    pub extra: String,
    /// Non-IP paths: a serial line between the first two nodes and a shared disk file
    /// for all; the Ethernet paths then name their networks (`svc`: e1 and u1, `hb`: e2).
    pub nonip: Option<NonIp>,
    /// Each daemon gets a private /run (a tmpfs in a mount namespace of its own, with an
    /// empty /run/resource-agents), where resource agents and init scripts keep their
    /// state and pid files: as on separate machines.
    pub private_run: bool,
}

/// The non-IP paths of a lab cluster.
#[derive(Debug, Clone, Default)]
pub struct NonIp {
    /// `baud` of the serial path (config default when `None`).
    pub baud: Option<u32>,
    /// Pace the lab's serial cable at the baud rate (a pty has no speed of its own).
    pub pace: bool,
    /// Serial `interval` / `timeout` (derived from the baud rate when `None`).
    pub serial_timing: Option<(String, String)>,
    /// Disk `interval` / `timeout` (config defaults when `None`).
    pub disk_timing: Option<(String, String)>,
    /// Leave out the serial path.
    pub no_serial: bool,
    /// Leave out the disk path.
    pub no_disk: bool,
    /// Leave out the Ethernet and UDP paths (detection over one non-IP path alone).
    pub no_ip: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        // Functional tests check logic, not timing: a timeout far above this VM's worst
        // scheduling stall (32 ms measured) keeps them from flaking. Timing is measured by
        // the bench and the stress test, which set their own profiles.
        LabConfig {
            interval: "10ms".into(),
            timeout: "200ms".into(),
            realtime: None,
            two_node: false,
            extra: String::new(),
            nonip: None,
            private_run: false,
        }
    }
}

/// How regularly a node's heartbeats arrived (see [`Lab::gaps`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gaps {
    pub frames: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// A parsed `event=` log line.
#[derive(Debug, Clone)]
pub struct LogEvent {
    /// Event name, e.g. `node_down`.
    pub name: String,
    /// Decision time, CLOCK_MONOTONIC ns.
    pub at_ns: u64,
    /// The whole line.
    pub line: String,
}

impl LogEvent {
    /// The value of `key=` in the line.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// One lab cluster; dropping it tears everything down.
pub struct Lab {
    prefix: String,
    pub dir: PathBuf,
    pub names: Vec<String>,
    procs: Vec<Option<Child>>,
    /// Helpers (responders, probes) started by the test, killed by PID on drop.
    helpers: Vec<Child>,
    namespaces: Vec<String>,
    pub config_path: PathBuf,
    pub cluster_id: u16,
    /// The serial cable between nodes 0 and 1, when the config has one.
    pub serial: Option<serial::SerialBridge>,
    /// Cluster names of the configs its daemons ran (their cgroups are named after them).
    clusters: Vec<String>,
    /// The real-time priority `start_probe` runs its client at (benches: the client
    /// stands for another machine, which the lab's nodes would not delay).
    pub probe_fifo: Option<u8>,
    /// [`LabConfig::private_run`].
    pub private_run: bool,
    /// Node whose daemon runs as systemd runs a unit's: its stderr a journal stream
    /// (`systemd-cat`) named by `JOURNAL_STREAM`, with the lab's journald (see
    /// [`Lab::journal_store`]) at /run/systemd/journal in a mount namespace of its own.
    pub journal_node: Option<usize>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Trials per bench profile: `HW_BENCH_TRIALS`, default 30; `None` when cargo only lists
/// the benches (`--list`).
pub fn bench_trials() -> Option<usize> {
    if std::env::args().any(|a| a == "--list") {
        return None;
    }
    Some(
        std::env::var("HW_BENCH_TRIALS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    )
}

/// One reply the lab probe saw: when its request was sent and when the reply arrived
/// (CLOCK_MONOTONIC ns), and from which node.
#[derive(Debug, Clone)]
pub struct Reply {
    pub sent_ns: u64,
    pub recv_ns: u64,
    pub from: String,
}

/// The replies in a probe's output file.
pub fn replies(path: &std::path::Path) -> Vec<Reply> {
    replies_from(path, 0)
}

/// The replies in a probe's output file from byte `offset` on (a reply cut by the offset
/// is skipped): cheap enough to look at while the probe runs.
pub fn replies_from(path: &std::path::Path, offset: u64) -> Vec<Reply> {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_string(&mut text);
        }
    }
    text.lines()
        .filter(|l| l.starts_with("reply "))
        .filter_map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            };
            Some(Reply {
                sent_ns: field("sent")?.parse().ok()?,
                recv_ns: field("recv")?.parse().ok()?,
                from: field("from")?.to_owned(),
            })
        })
        .collect()
}

/// Nearest-rank percentile of a sorted sample, `p` in whole percent.
pub fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = ((sorted.len() - 1) * p + 50) / 100;
    sorted[rank.min(sorted.len() - 1)]
}

/// Parses `s.nnnnnnnnn` into ns.
pub fn parse_secs(s: &str) -> Option<u64> {
    let (a, b) = s.split_once('.')?;
    Some(a.parse::<u64>().ok()? * 1_000_000_000 + b.parse::<u64>().ok()?)
}

impl Lab {
    /// Builds the namespaces and writes the config; starts no daemon yet.
    pub fn new(tag: &str, nodes: usize, cfg: &LabConfig) -> Lab {
        assert!((2..=8).contains(&nodes));
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("hw{tag}{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let names: Vec<String> = (0..nodes)
            .map(|i| ((b'a' + u8::try_from(i).unwrap()) as char).to_string())
            .collect();
        let mut lab = Lab {
            prefix: prefix.clone(),
            dir: dir.clone(),
            names: names.clone(),
            procs: (0..nodes).map(|_| None).collect(),
            helpers: vec![],
            namespaces: vec![],
            config_path: dir.join("cluster.toml"),
            cluster_id: 4242,
            serial: None,
            clusters: vec![prefix.clone()],
            probe_fifo: None,
            private_run: cfg.private_run,
            journal_node: None,
        };
        lab.add_ns(&lab.switch_ns());
        ip(&[
            "-n",
            &lab.switch_ns(),
            "link",
            "add",
            "br1",
            "type",
            "bridge",
        ]);
        ip(&[
            "-n",
            &lab.switch_ns(),
            "link",
            "add",
            "br2",
            "type",
            "bridge",
        ]);
        ip(&["-n", &lab.switch_ns(), "link", "set", "br1", "up"]);
        ip(&["-n", &lab.switch_ns(), "link", "set", "br2", "up"]);
        for (i, name) in names.iter().enumerate() {
            let ns = lab.ns(i);
            lab.add_ns(&ns);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            for net in 1..=2 {
                lab.plug(&ns, &format!("{name}{net}"), &format!("eth{net}"), net);
                ip(&[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("10.200.{net}.{}/24", i + 1),
                    "dev",
                    &format!("eth{net}"),
                ]);
            }
        }
        if let Some(n) = &cfg.nonip {
            if !n.no_serial {
                lab.serial = Some(serial::SerialBridge::new(
                    n.pace.then(|| n.baud.unwrap_or(115_200)),
                ));
            }
            if !n.no_disk {
                std::fs::write(lab.disk_path(), vec![0u8; 1 << 20]).expect("disk file");
            }
        }
        lab.write_config(cfg);
        lab
    }

    /// Watches node `from`'s heartbeats on `eth<net>` from node `at`'s namespace for
    /// `ms` milliseconds (`heartwire debug gaps`, kernel receive times) and returns how
    /// regularly they arrived.
    pub fn gaps(&mut self, at: usize, net: u8, from: usize, ms: u32) -> Gaps {
        let h = self.start_gaps(at, net, from, ms);
        self.finish_gaps(h)
    }

    /// Starts [`Lab::gaps`] in the background; [`Lab::finish_gaps`] waits for it.
    pub fn start_gaps(&mut self, at: usize, net: u8, from: usize, ms: u32) -> (usize, PathBuf) {
        let out = self.dir.join(format!("gaps-{at}-{from}.txt"));
        let (ns, ifname) = (self.ns(at), format!("eth{net}"));
        let (id, ms) = ((from + 1).to_string(), ms.to_string());
        let h = self.spawn_helper(
            &ns,
            &[
                "gaps",
                "--interface",
                &ifname,
                "--node",
                &id,
                "--duration-ms",
                &ms,
            ],
            Some(&out),
        );
        (h, out)
    }

    /// Waits for a measurement [`Lab::start_gaps`] started and reads it.
    pub fn finish_gaps(&mut self, (h, out): (usize, PathBuf)) -> Gaps {
        self.finish_helper(h, Duration::from_secs(30));
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let field = |k: &str| {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {k} in {text:?}"))
        };
        Gaps {
            frames: field("frames"),
            p50_us: field("p50_gap_us"),
            p99_us: field("p99_gap_us"),
            max_us: field("max_gap_us"),
        }
    }

    /// The shared disk file of the non-IP lab.
    pub fn disk_path(&self) -> PathBuf {
        self.dir.join("disk.img")
    }

    fn add_ns(&mut self, ns: &str) {
        ip(&["netns", "add", ns]);
        self.namespaces.push(ns.to_owned());
    }

    /// Connects interface `inside` of namespace `ns` to bridge `br<net>` of the switch
    /// through a veth pair whose switch end is `port`.
    pub fn plug(&self, ns: &str, port: &str, inside: &str, net: u8) {
        let sw = self.switch_ns();
        ip(&[
            "-n", &sw, "link", "add", port, "type", "veth", "peer", "name", inside, "netns", ns,
        ]);
        ip(&[
            "-n",
            &sw,
            "link",
            "set",
            port,
            "master",
            &format!("br{net}"),
            "up",
        ]);
        ip(&["-n", ns, "link", "set", inside, "up"]);
    }

    /// Adds an extra namespace (e.g. a frame injector) plugged into network `net`.
    pub fn add_host(&mut self, name: &str, net: u8) -> String {
        let ns = format!("{}-{name}", self.prefix);
        self.add_ns(&ns);
        self.plug(&ns, &format!("x{name}{net}"), "eth0", net);
        ns
    }

    pub fn switch_ns(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    pub fn ns(&self, i: usize) -> String {
        format!("{}-{}", self.prefix, self.names[i])
    }

    pub fn socket(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.sock", self.names[i]))
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.names[i]))
    }

    pub fn write_config(&self, c: &LabConfig) {
        let key = self.dir.join("key");
        std::fs::write(&key, b"lab-cluster-key-0123456789abcdef").unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let mut t = format!(
            // named after the lab: a restarted daemon kills what carries its cluster and
            // node name, and two labs on this host must not share one
            "[cluster]\nname = \"{}\"\nid = {}\nkey_file = \"key\"\ntwo_node = {}\n\n",
            self.prefix, self.cluster_id, c.two_node
        );
        if let Some(p) = c.realtime {
            t += &format!("[realtime]\npriority = {p}\ncpu_dma_latency_us = 0\n\n");
        }
        for (i, n) in self.names.iter().enumerate() {
            t += &format!("[[node]]\nname = \"{n}\"\nid = {}\n\n", i + 1);
        }
        let per_node = |f: &dyn Fn(usize) -> String| {
            self.names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n} = \"{}\"", f(i)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let nonip = c.nonip.clone();
        let network = |n: &str| {
            if nonip.is_some() {
                format!("network = \"{n}\"\n")
            } else {
                String::new()
            }
        };
        if !nonip.as_ref().is_some_and(|n| n.no_ip) {
            for net in 1..=2 {
                t += &format!(
                    "[[path]]\nname = \"e{net}\"\nkind = \"ether\"\ninterval = \"{}\"\ntimeout = \"{}\"\n{}interfaces = {{ {} }}\n\n",
                    c.interval,
                    c.timeout,
                    network(if net == 1 { "svc" } else { "hb" }),
                    per_node(&|_| format!("eth{net}"))
                );
            }
            t += &format!(
                "[[path]]\nname = \"u1\"\nkind = \"udp\"\ninterval = \"{}\"\ntimeout = \"{}\"\n{}port = 5405\naddresses = {{ {} }}\n\n",
                c.interval,
                c.timeout,
                network("svc"),
                per_node(&|i| format!("10.200.1.{}", i + 1))
            );
        }
        if let Some(n) = &nonip {
            let timing = |tm: &Option<(String, String)>| {
                tm.as_ref().map_or(String::new(), |(i, o)| {
                    format!("interval = \"{i}\"\ntimeout = \"{o}\"\n")
                })
            };
            if let Some(s) = &self.serial {
                t += &format!(
                    "[[path]]\nname = \"s1\"\nkind = \"serial\"\n{}{}devices = {{ {} = \"{}\", {} = \"{}\" }}\n\n",
                    timing(&n.serial_timing),
                    n.baud.map_or(String::new(), |b| format!("baud = {b}\n")),
                    self.names[0],
                    s.devices[0],
                    self.names[1],
                    s.devices[1]
                );
            }
            if !n.no_disk {
                let disk = self.disk_path();
                t += &format!(
                    "[[path]]\nname = \"d1\"\nkind = \"disk\"\n{}devices = {{ {} }}\n\n",
                    timing(&n.disk_timing),
                    per_node(&|_| disk.display().to_string())
                );
            }
        }
        t += &c.extra;
        std::fs::write(&self.config_path, t).unwrap();
    }

    /// Starts node `i` (appending to its log).
    pub fn start(&mut self, i: usize) {
        let config = self.config_path.clone();
        self.start_with(i, &config);
    }

    /// Starts node `i` with config file `config`.
    pub fn start_with(&mut self, i: usize, config: &std::path::Path) {
        assert!(self.procs[i].is_none(), "node {i} already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        // The cluster's name, for its cgroups (the config's first `name = "…"`).
        let text = std::fs::read_to_string(config).unwrap_or_default();
        if let Some(name) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = \""))
            .and_then(|r| r.split('"').next())
        {
            if !self.clusters.iter().any(|c| c == name) {
                self.clusters.push(name.to_owned());
            }
        }
        // nsenter, not `ip netns exec`: that one mounts a fresh /sys, without
        // /sys/fs/cgroup, and the daemon would run without the cgroups a service has.
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.ns(i)))
            .arg("--");
        // A mount namespace of its own, set up by `script` before it execs the daemon
        // (unshare and the shell exec, no fork: the PID kept is the daemon's).
        let private = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ];
        if self.private_run {
            cmd.args(private).arg(
                "mount -t tmpfs hwlab /run && mkdir /run/resource-agents && exec \"$0\" \"$@\"",
            );
        }
        if self.journal_node == Some(i) {
            // A /run of its own with the lab journald's sockets; systemd-cat and its
            // shell exec too.
            let sockets = self.dir.join("journal-sockets");
            cmd.args(private).arg(
                "mount -t tmpfs hwlab /run && mkdir -p /run/systemd/journal /run/resource-agents \
                 && mount --bind \"$HW_JOURNAL\" /run/systemd/journal \
                 && exec systemd-cat -t heartwire -- sh -c \
                 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" \"$@\"' \"$0\" \"$@\"",
            )
            .env("HW_JOURNAL", sockets);
        }
        let child = cmd
            .arg(binary())
            .args(["run", "--foreground", "-c"])
            .arg(config)
            .args(["--node", &self.names[i], "--socket"])
            .arg(self.socket(i))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn heartwire");
        self.procs[i] = Some(child);
    }

    /// Starts every node and waits until each sees every other up on every path, in both
    /// directions.
    pub fn start_all(&mut self) {
        for i in 0..self.names.len() {
            self.start(i);
        }
        self.wait_all_up();
    }

    /// Gives node `i` a config file of its own (a copy of the lab's, with the key next to
    /// it) in its own directory, as on separate machines; returns its path.
    pub fn own_config(&self, i: usize) -> PathBuf {
        let dir = self.dir.join(format!("etc-{}", self.names[i]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(self.dir.join("key"), dir.join("key")).unwrap();
        let path = dir.join("cluster.toml");
        std::fs::copy(&self.config_path, &path).unwrap();
        path
    }

    /// Waits until each node sees every other up on every path, in both directions.
    pub fn wait_all_up(&mut self) {
        for i in 0..self.names.len() {
            self.wait_for(
                Duration::from_secs(10),
                &format!("{} sees all peers up", self.names[i]),
                |lab| {
                    // The serial line joins the first two nodes only.
                    let on_line = |n: &str| n == lab.names[0] || n == lab.names[1];
                    lab.status(i).is_some_and(|s| {
                        s.peers.iter().all(|p| {
                            p.state == "up"
                                && p.links.iter().all(|l| {
                                    // Up, and the peer's latest heartbeat there says it
                                    // hears us too (a disk slot is read once per interval).
                                    (l.state == "up" && l.peer_hears_us == Some(true))
                                        || (l.path == "s1"
                                            && !(on_line(&s.node) && on_line(&p.name)))
                                })
                        })
                    })
                },
            );
        }
    }

    /// The PID of node `i`'s daemon.
    pub fn pid(&self, i: usize) -> u32 {
        self.procs[i].as_ref().expect("running").id()
    }

    /// SIGKILL node `i` (the process we started, by PID) and reap it.
    pub fn kill(&mut self, i: usize) {
        let mut c = self.procs[i].take().expect("node running");
        c.kill().expect("kill");
        c.wait().expect("reap");
    }

    /// SIGTERM node `i` and wait (bounded) for it to exit; returns its exit code.
    pub fn stop(&mut self, i: usize) -> Option<i32> {
        let mut c = self.procs[i].take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Runs the `heartwire` CLI against node `i`'s control socket (`--socket` appended).
    pub fn cli(&self, i: usize, args: &[&str]) -> std::process::Output {
        let socket = self.socket(i);
        Command::new(binary())
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .output()
            .expect("run the heartwire CLI")
    }

    /// Waits (bounded) for node `i`'s daemon to exit by itself; returns its exit code,
    /// `None` if it is still running after `limit`.
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(Ok(Some(st))) = self.procs[i].as_mut().map(Child::try_wait) {
                self.procs[i] = None;
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Takes node `i`'s cables (eth1, eth2) out, or puts them back (`up`), at once with
    /// `debug link-set`; returns CLOCK_MONOTONIC read just before the first rtnetlink call.
    pub fn cables(&self, i: usize, up: bool) -> Option<u64> {
        self.cables_of(i, &["eth1", "eth2"], up)
    }

    /// Like [`Lab::cables`], for the interfaces `ifaces` of node `i` only.
    pub fn cables_of(&self, i: usize, ifaces: &[&str], up: bool) -> Option<u64> {
        let mut args = vec!["link-set"];
        for f in ifaces {
            args.extend(["--interface", f]);
        }
        if up {
            args.push("--up");
        }
        let out = self.run_tool(&self.ns(i), &args, "");
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Whether node `i`'s process is still alive.
    pub fn alive(&mut self, i: usize) -> bool {
        self.procs[i]
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Node `i`'s status, if its daemon answers.
    pub fn status(&self, i: usize) -> Option<StatusReport> {
        let json = client::request(&self.socket(i), "status").ok()?;
        serde_json::from_str(&json).ok()
    }

    /// Sets link `eth<net>` of node `i` down or up (a cut cable inside its namespace).
    pub fn set_link(&self, i: usize, net: u8, up: bool) {
        ip(&[
            "-n",
            &self.ns(i),
            "link",
            "set",
            &format!("eth{net}"),
            if up { "up" } else { "down" },
        ]);
    }

    /// Every `event=` line node `i` has logged.
    pub fn events(&self, i: usize) -> Vec<LogEvent> {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let name = l
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("event="))?
                    .to_owned();
                let at = l
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("at="))
                    .and_then(parse_secs)?;
                Some(LogEvent {
                    name,
                    at_ns: at,
                    line: l.to_owned(),
                })
            })
            .collect()
    }

    /// Polls `cond` every 10 ms until it holds or `limit` passes (then panics with `what`).
    pub fn wait_for(&self, limit: Duration, what: &str, mut cond: impl FnMut(&Lab) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if cond(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for: {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `heartwire` with `args` inside namespace `ns`, feeding `stdin`.
    pub fn run_in(&self, ns: &str, args: &[&str], stdin: &str) -> std::process::Output {
        Self::run_program(&binary(), ns, args, stdin)
    }

    /// Runs the lab tool `heartwire-lab` with `args` inside namespace `ns`.
    pub fn run_tool(&self, ns: &str, args: &[&str], stdin: &str) -> std::process::Output {
        Self::run_program(&lab_binary(), ns, args, stdin)
    }

    fn run_program(
        program: &std::path::Path,
        ns: &str,
        args: &[&str],
        stdin: &str,
    ) -> std::process::Output {
        use std::io::Write;
        let mut c = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    }

    /// Sends `frames` as Ethernet frames to the cluster's multicast address from the
    /// interface eth0 of namespace `ns` (a host added with [`Lab::add_host`]).
    pub fn send_frames(&self, ns: &str, frames: &[Vec<u8>]) {
        use heartwire::ctl::debug::hex_encode;
        let hex: String = frames.iter().map(|f| hex_encode(f) + "\n").collect();
        let dst = heartwire::wire::ethernet::cluster_mac(self.cluster_id)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let out = self.run_tool(
            ns,
            &["send-frames", "--interface", "eth0", "--dst", &dst],
            &hex,
        );
        assert!(
            out.status.success(),
            "send-frames: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds a client namespace on network 1 (the service network), address 10.200.1.100.
    pub fn add_client(&mut self) -> String {
        let ns = self.add_host("cl", 1);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "addr", "add", "10.200.1.100/24", "dev", "eth0"]);
        ns
    }

    /// Starts the lab tool `heartwire-lab ARGS` in namespace `ns` as a helper (killed by
    /// PID on drop), its stdout to `out`; returns its index for [`Lab::finish_helper`].
    pub fn spawn_helper(
        &mut self,
        ns: &str,
        args: &[&str],
        out: Option<&std::path::Path>,
    ) -> usize {
        let stdout = match out {
            Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
            None => Stdio::null(),
        };
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(lab_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn helper");
        self.helpers.push(child);
        self.helpers.len() - 1
    }

    /// Starts Debian's systemd-journald for the lab, in a mount namespace of its own: its
    /// sockets in `journal-sockets` of the lab's directory, its journal files in
    /// `journal` (returned: `journalctl -D` reads them). Stopped with the lab.
    pub fn journal_store(&mut self) -> PathBuf {
        let sockets = self.dir.join("journal-sockets");
        let store = self.dir.join("journal");
        std::fs::create_dir_all(&sockets).unwrap();
        std::fs::create_dir_all(&store).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount -t tmpfs hwlab /run && mkdir -p /run/systemd/journal /run/log/journal \
                 && mount --bind \"$0\" /run/systemd/journal && mount --bind \"$1\" /run/log/journal \
                 && { [ ! -d /var/log/journal ] || mount --bind \"$1\" /var/log/journal; } \
                 && exec /lib/systemd/systemd-journald",
            )
            .arg(&sockets)
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn systemd-journald");
        self.helpers.push(child);
        let socket = sockets.join("socket");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "journald made no socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        store
    }

    /// The PID of helper `i`.
    pub fn helper_pid(&self, i: usize) -> u32 {
        self.helpers[i].id()
    }

    /// Takes a helper process the caller spawned (killed by PID on drop like the rest).
    pub fn adopt_helper(&mut self, child: Child) -> usize {
        self.helpers.push(child);
        self.helpers.len() - 1
    }

    /// SIGTERMs helper `i` and waits (bounded) for it to exit, so a helper that forks
    /// (keepalived) can stop its own children; SIGKILL if it does not.
    pub fn terminate_helper(&mut self, i: usize, limit: Duration) {
        let c = &mut self.helpers[i];
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Waits (bounded) for helper `i` to exit on its own; returns its exit code.
    pub fn finish_helper(&mut self, i: usize, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.helpers[i].try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("helper {i} still running after {limit:?}");
    }

    /// Starts the lab probe (`heartwire-lab probe`) in namespace `ns` against `target`, one
    /// request every `interval_us` for `duration_ms`, its replies to `out`.
    pub fn start_probe(
        &mut self,
        ns: &str,
        target: &str,
        interval_us: u32,
        duration_ms: u32,
        out: &std::path::Path,
    ) -> usize {
        let (interval, duration) = (interval_us.to_string(), duration_ms.to_string());
        let fifo = self.probe_fifo.map(|p| p.to_string());
        let mut args = vec![
            "probe",
            "--target",
            target,
            "--interval-us",
            &interval,
            "--duration-ms",
            &duration,
        ];
        if let Some(p) = &fifo {
            args.extend(["--fifo", p]);
        }
        self.spawn_helper(ns, &args, Some(out))
    }

    /// Starts the lab service (`heartwire-lab responder`, answering with the node name) on UDP
    /// port `port` in every node's namespace.
    pub fn start_responders(&mut self, port: u16) {
        for i in 0..self.names.len() {
            let (ns, name) = (self.ns(i), self.names[i].clone());
            let port = port.to_string();
            self.spawn_helper(&ns, &["responder", "--port", &port, "--name", &name], None);
        }
    }

    /// The addresses on interface `ifname` of node `i` (`ip -o addr` lines).
    pub fn addresses(&self, i: usize, ifname: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.ns(i), "-o", "addr", "show", "dev", ifname])
            .output()
            .expect("ip addr");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until node `i` has group `group` in `state`.
    pub fn wait_group(&self, i: usize, group: &str, state: &str, limit: Duration) {
        self.wait_for(
            limit,
            &format!("{} has group {group} {state}", self.names[i]),
            |lab| lab.group_state(i, group).as_deref() == Some(state),
        );
    }

    /// Node `i`'s state of group `name`, if its daemon answers.
    pub fn group_state(&self, i: usize, name: &str) -> Option<String> {
        self.status(i)?
            .groups
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.state)
    }

    /// The lab's key bytes.
    pub fn key(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("key")).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.helpers {
            let _ = c.kill();
            let _ = c.wait();
        }
        for c in self.procs.iter_mut().filter_map(Option::take) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for i in 0..self.names.len() {
                let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!(
                    "---- log of node {} (last {} lines) ----",
                    self.names[i],
                    tail.len()
                );
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        // What the daemons started and left (a killed `run` takes its daemon, not its
        // applications), in their nodes' cgroups, and the cgroups themselves.
        if let Ok(own) = heartwire_hal::cgroup::own_dir() {
            let nodes = self
                .clusters
                .iter()
                .flat_map(|c| self.names.iter().map(move |n| (c, n)));
            for (c, n) in nodes {
                let dir = own.join(format!("heartwire.{c}.{n}"));
                if !dir.is_dir() {
                    continue;
                }
                if let Ok(cg) = heartwire_hal::cgroup::Cgroup::create(&dir) {
                    let _ = cg.kill();
                    let _ = cg.wait_empty(Duration::from_secs(5));
                    let _ = cg.remove();
                }
            }
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// Cuts node `i` off from both networks at the switch (its ports leave the bridges,
    /// its own links keep carrier: a silent cut it cannot see locally), or plugs it back.
    pub fn isolate(&self, i: usize, cut: bool) {
        let sw = self.switch_ns();
        for net in 1..=2u8 {
            let port = format!("{}{net}", self.names[i]);
            let br = format!("br{net}");
            if cut {
                ip(&["-n", &sw, "link", "set", &port, "nomaster"]);
            } else {
                ip(&["-n", &sw, "link", "set", &port, "master", &br]);
            }
        }
    }

    /// Isolates node `i`'s switch ports on both networks (the bridge's `isolated` flag:
    /// isolated ports do not reach each other, every port still reaches the others), or
    /// lifts it. Isolating two nodes cuts them from each other and from nothing else: a
    /// non-transitive cut.
    pub fn port_isolated(&self, i: usize, on: bool) {
        let sw = self.switch_ns();
        for net in 1..=2u8 {
            let port = format!("{}{net}", self.names[i]);
            let flag = if on { "on" } else { "off" };
            ip(&[
                "-n",
                &sw,
                "link",
                "set",
                &port,
                "type",
                "bridge_slave",
                "isolated",
                flag,
            ]);
        }
    }

    /// The processes of node `i`'s namespace whose command name is `comm`.
    pub fn processes(&self, i: usize, comm: &str) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.ns(i)])
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim_end() == comm)
            })
            .collect()
    }
}
