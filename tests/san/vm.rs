//! The SAN lab (LAB-NOTES "the SAN lab"): a real SCSI target and the guests sharing it.
//!
//! Topology, all inside one network namespace the lab creates (`hws<pid>`): tgtd serves
//! two file-backed LUNs over iSCSI on 127.0.0.1 (LUN 1: the group's disk, LUN 2: the
//! tie-breaker); two qemu guests (TCG, Debian's kernel, the busybox initramfs of
//! `tests/san/build.sh` plus an appended archive with the static heartwire binary and
//! the configs) see them through virtio-scsi + scsi-block (as /dev/lun-data and /dev/lun-tie, links
//! the guest makes by SCSI target: sdX names change from boot to boot), each
//! with its own initiator name (its own I_T nexus, so its own registrations), an
//! i6300esb watchdog, and a virtio-net NIC; the NICs are joined by qemu's UDP socket
//! backend on loopback (10.77.0.1 and .2 inside the guests), or, for more than two
//! guests (`boot_tap`), are taps on a switch of two bridges joined by a veth pair
//! (`switch`, `split`: 10.77.0.<i+1>). The test drives each guest through its serial
//! console and cuts a NIC with the qemu monitor's `set_link`.
//!
//! Cleanup in `Drop`, also on panic (after printing the consoles): the qemu and tgtd
//! processes (by their PIDs), tgtd's control socket, the namespace and the scratch
//! folder. Every wait is bounded.
// Shared by two test crates (san, san_long), each using part of it.
#![allow(unreachable_pub, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The IQN of the lab's target.
pub const IQN: &str = "iqn.2026-11.org.heartwire:san";

/// Where `make san` put the parts.
pub fn parts() -> PathBuf {
    let dir = std::env::var_os("HW_SAN_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/san"),
        PathBuf::from,
    );
    assert!(
        dir.join("root/usr/bin/qemu-system-x86_64").exists() && dir.join("initrd.cpio.gz").exists(),
        "the SAN lab's parts are missing in {}: run `make san` (make test does)",
        dir.display()
    );
    dir
}

/// The static binary the guests run.
pub fn static_binary() -> PathBuf {
    let p = std::env::var_os("HW_STATIC_BIN").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/x86_64-unknown-linux-musl/release/heartwire")
        },
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} is missing: run `make static` (make test does)",
        p.display()
    );
    p
}

/// One guest.
pub struct Guest {
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Every console line so far (printed when a test fails).
    console: Arc<Mutex<Vec<String>>>,
    monitor: PathBuf,
    /// The daemon's log: the guest's second serial port, a file here.
    log: PathBuf,
    seq: u32,
    /// PID of heartwire inside the guest, from the init's "started" line.
    pub daemon_pid: Option<u32>,
}

/// A command's result on a guest console.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub out: String,
}

impl Guest {
    /// Waits for a console line containing `what`; returns it.
    pub fn wait_line(&mut self, what: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    // The line may follow the firmware's terminal escapes.
                    if let Some(p) = l
                        .split_once("guest: heartwire started as ")
                        .and_then(|(_, r)| r.split("(pid ").nth(1))
                        .and_then(|r| r.trim_end_matches(')').parse().ok())
                    {
                        self.daemon_pid = Some(p);
                    }
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no console line with {what:?} within {limit:?}",
                        self.name
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}: console closed before {what:?}", self.name)
                }
            }
        }
    }

    /// Runs `cmd` in the guest's shell; its output and exit code.
    pub fn sh(&mut self, cmd: &str, limit: Duration) -> Run {
        self.seq += 1;
        let n = self.seq;
        // Markers as the shell prints them differ from the command line the terminal
        // echoes back (which may also wrap): only lines between them are output.
        let line = format!("echo \"@@S:$(({n}+0))\"; {cmd}; echo \"@@R:$?:$(({n}+0))\"\n");
        self.stdin
            .write_all(line.as_bytes())
            .expect("write console");
        self.stdin.flush().expect("flush console");
        let (start, tail) = (format!("@@S:{n}"), format!(":{n}"));
        let end = Instant::now() + limit;
        let mut out = Vec::new();
        let mut started = false;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let l = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!(
                    "{}: `{cmd}` did not finish within {limit:?}; output so far: {out:?}",
                    self.name
                ),
            };
            if l.trim() == start {
                started = true;
                continue;
            }
            if let Some(code) = l
                .trim()
                .strip_prefix("@@R:")
                .and_then(|r| r.strip_suffix(&tail))
            {
                return Run {
                    code: code.parse().unwrap_or(-1),
                    out: out.join("\n"),
                };
            }
            if started {
                out.push(l);
            }
        }
    }

    /// Like `sh`, and the command must succeed.
    pub fn ok(&mut self, cmd: &str) -> String {
        let r = self.sh(cmd, Duration::from_secs(30));
        assert_eq!(r.code, 0, "{}: `{cmd}` failed: {}", self.name, r.out);
        r.out
    }

    /// The daemon's status, or `None` when it does not answer.
    pub fn status(&mut self) -> Option<heartwire::ctl::status::StatusReport> {
        let name = self.name.clone();
        let r = self.sh(
            &format!("heartwire status --json -c /etc/heartwire/{name}.toml 2>/dev/null"),
            Duration::from_secs(20),
        );
        if r.code != 0 {
            return None;
        }
        // Kernel messages may interleave with the JSON on the console.
        let json: String = r.out.lines().filter(|l| !l.starts_with('[')).collect();
        serde_json::from_str(&json).ok()
    }

    /// Polls the status until `cond` holds.
    pub fn wait_status(
        &mut self,
        what: &str,
        limit: Duration,
        mut cond: impl FnMut(&heartwire::ctl::status::StatusReport) -> bool,
    ) -> heartwire::ctl::status::StatusReport {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.status() {
                if cond(&s) {
                    return s;
                }
                if Instant::now() > end {
                    let log = self.log_tail(40);
                    panic!(
                        "{}: {what} not reached within {limit:?}; last status {s:?}\nlog:\n{log}",
                        self.name
                    );
                }
            } else if Instant::now() > end {
                panic!(
                    "{}: {what} not reached within {limit:?}; the daemon does not answer",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// A qemu monitor (HMP) command, e.g. `set_link n0 off`.
    pub fn monitor(&self, cmd: &str) {
        let mut s = UnixStream::connect(&self.monitor).expect("connect to the qemu monitor");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(format!("{cmd}\n").as_bytes())
            .expect("monitor write");
        // Wait for the prompt after the command so it has been carried out.
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&seen);
            if text.matches("(qemu)").count() >= 2 {
                break;
            }
        }
    }

    /// The daemon's log so far (every boot of the guest, in order).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .replace('\r', "")
    }

    /// Its last `n` lines.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The console so far.
    pub fn console(&self) -> Vec<String> {
        self.console.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The lab.
pub struct San {
    pub ns: String,
    pub dir: PathBuf,
    parts: PathBuf,
    ctl_port: u16,
    tgtd: Option<Child>,
    pub guests: Vec<Guest>,
    /// Links made in the namespace (taps, bridges, the veth between them), removed first
    /// on drop.
    links: Vec<String>,
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl San {
    /// LUN 1 (`lun1_mb` MiB, an ext2 filesystem over its first `fs_mb` MiB) and LUN 2
    /// (16 MiB, the tie-breaker), served by tgtd in a fresh namespace.
    pub fn new(tag: &str, lun1_mb: u64, fs_mb: u64) -> San {
        let parts = parts();
        let pid = std::process::id();
        let ns = format!("hws{tag}{pid}");
        let dir = std::env::temp_dir().join(format!("hw-san-{tag}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let mut san = San {
            ns: ns.clone(),
            dir: dir.clone(),
            parts: parts.clone(),
            ctl_port: u16::try_from(1000 + pid % 30000).expect("small"),
            tgtd: None,
            guests: Vec::new(),
            links: Vec::new(),
        };
        run_ok(Command::new("ip").args(["netns", "add", &ns]));
        run_ok(Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]));
        let lun1 = dir.join("lun1.img");
        let lun2 = dir.join("lun2.img");
        std::fs::File::create(&lun1)
            .and_then(|f| f.set_len(lun1_mb << 20))
            .expect("lun1");
        std::fs::File::create(&lun2)
            .and_then(|f| f.set_len(16 << 20))
            .expect("lun2");
        run_ok(
            Command::new(parts.join("root/bin/busybox"))
                .args(["mke2fs", "-F", "-q"])
                .arg(&lun1)
                .arg((fs_mb * 1024).to_string()),
        );
        let lib = san.lib_path();
        let tgtd = Command::new("ip")
            .args(["netns", "exec", &ns, "env"])
            .arg(format!("LD_LIBRARY_PATH={lib}"))
            .arg(parts.join("root/usr/sbin/tgtd"))
            .args(["-f", "--iscsi", "portal=127.0.0.1:3260", "-C"])
            .arg(san.ctl_port.to_string())
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("tgtd.log")).expect("tgtd log"),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("tgtd.err")).expect("tgtd err"),
            ))
            .spawn()
            .expect("start tgtd");
        san.tgtd = Some(tgtd);
        // tgtd's control socket appears once it listens.
        let sock = PathBuf::from(format!("/var/run/tgtd/socket.{}", san.ctl_port));
        let end = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                Instant::now() < end,
                "tgtd did not start: {}",
                san.file("tgtd.err")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        san.tgtadm(&["--op", "new", "--mode", "target", "--tid", "1", "-T", IQN]);
        for (lun, f) in [("1", &lun1), ("2", &lun2)] {
            san.tgtadm(&[
                "--op",
                "new",
                "--mode",
                "logicalunit",
                "--tid",
                "1",
                "--lun",
                lun,
                "-b",
                f.to_str().expect("utf-8"),
            ]);
        }
        san.tgtadm(&[
            "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL",
        ]);
        san
    }

    fn lib_path(&self) -> String {
        let r = self.parts.join("root");
        [
            "usr/lib/x86_64-linux-gnu",
            "lib/x86_64-linux-gnu",
            "usr/lib",
        ]
        .iter()
        .map(|p| r.join(p).display().to_string())
        .collect::<Vec<_>>()
        .join(":")
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn tgtadm(&self, args: &[&str]) {
        run_ok(
            Command::new(self.parts.join("root/usr/sbin/tgtadm"))
                .env("LD_LIBRARY_PATH", self.lib_path())
                .args(["-C", &self.ctl_port.to_string(), "--lld", "iscsi"])
                .args(args),
        );
    }

    /// The initramfs of the guests: the lab's, plus an archive with the static binary
    /// and `configs` (name, text) as /etc/heartwire/NAME.toml.
    pub fn initrd(&self, configs: &[(&str, String)]) -> PathBuf {
        let extra = self.dir.join("extra");
        std::fs::create_dir_all(extra.join("bin")).expect("mkdir");
        std::fs::create_dir_all(extra.join("etc/heartwire")).expect("mkdir");
        std::fs::copy(static_binary(), extra.join("bin/heartwire")).expect("copy binary");
        for (name, text) in configs {
            std::fs::write(extra.join(format!("etc/heartwire/{name}.toml")), text).expect("config");
        }
        let bb = self.parts.join("root/bin/busybox");
        let cpio = self.dir.join("extra.cpio.gz");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd {} && find . | {} cpio -o -H newc 2>/dev/null | gzip -1 > {}",
                extra.display(),
                bb.display(),
                cpio.display()
            ))
            .status()
            .expect("cpio");
        assert!(out.success(), "cpio failed");
        // Concatenated compressed archives: the kernel unpacks each in turn.
        let path = self.dir.join("initrd.img");
        let mut all = std::fs::read(self.parts.join("initrd.cpio.gz")).expect("initrd");
        all.extend(std::fs::read(&cpio).expect("extra cpio"));
        std::fs::write(&path, all).expect("write initrd");
        path
    }

    /// Boots guest `name` (index `i`: address 10.77.0.<i+1>, UDP port 4440+i, peer port
    /// 4440+(1-i)) with `initrd`.
    pub fn boot(&mut self, i: usize, name: &str, initrd: &Path) {
        let (port, peer) = (4440 + i, 4440 + (1 - i));
        let netdev = format!("socket,id=n0,udp=127.0.0.1:{peer},localaddr=127.0.0.1:{port}");
        self.start(i, name, initrd, &netdev);
    }

    /// Boots guest `name` (index `i`: address 10.77.0.<i+1>) with `initrd`, its NIC on
    /// the tap `hwt<i>` of [`San::switch`].
    pub fn boot_tap(&mut self, i: usize, name: &str, initrd: &Path) {
        let netdev = format!("tap,id=n0,ifname=hwt{i},script=no,downscript=no");
        self.start(i, name, initrd, &netdev);
    }

    /// A switch of two halves: a tap `hwt<i>` for each guest index of `halves[h]` on the
    /// bridge `hwb<h>`, and the two bridges joined by the veth pair `hwx0`/`hwx1`, which
    /// [`San::split`] takes down and up.
    pub fn switch(&mut self, halves: &[&[usize]; 2]) {
        let ip = |args: &[&str]| run_ok(Command::new("ip").args(["-n", &self.ns]).args(args));
        for (h, guests) in halves.iter().enumerate() {
            let br = format!("hwb{h}");
            ip(&["link", "add", &br, "type", "bridge"]);
            ip(&["link", "set", &br, "up"]);
            self.links.push(br.clone());
            for i in guests.iter() {
                let tap = format!("hwt{i}");
                ip(&["tuntap", "add", "dev", &tap, "mode", "tap"]);
                ip(&["link", "set", &tap, "master", &br]);
                ip(&["link", "set", &tap, "up"]);
                self.links.push(tap);
            }
        }
        ip(&[
            "link", "add", "hwx0", "type", "veth", "peer", "name", "hwx1",
        ]);
        self.links.push("hwx0".into());
        for (h, x) in ["hwx0", "hwx1"].iter().enumerate() {
            ip(&["link", "set", x, "master", &format!("hwb{h}")]);
            ip(&["link", "set", x, "up"]);
        }
    }

    /// Cuts (`true`) or mends the link between the two halves of [`San::switch`].
    pub fn split(&self, cut: bool) {
        let state = if cut { "down" } else { "up" };
        run_ok(Command::new("ip").args(["-n", &self.ns, "link", "set", "hwx0", state]));
    }

    fn start(&mut self, i: usize, name: &str, initrd: &Path, netdev: &str) {
        let qemu = self.parts.join("root/usr/bin/qemu-system-x86_64");
        let monitor = self.dir.join(format!("{name}.mon"));
        let log = self.dir.join(format!("{name}.hwlog"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "env"])
            .arg(format!("LD_LIBRARY_PATH={}", self.lib_path()))
            .arg(format!(
                "QEMU_MODULE_DIR={}",
                self.parts
                    .join("root/usr/lib/x86_64-linux-gnu/qemu")
                    .display()
            ))
            .arg(qemu)
            .arg("-L")
            .arg(self.parts.join("root/usr/share/seabios"))
            .arg("-L")
            .arg(self.parts.join("root/usr/share/qemu"))
            .args(["-accel", "tcg", "-m", "256", "-nographic", "-nodefaults"])
            .args(["-serial", "stdio"])
            .arg("-serial")
            .arg(format!("file:{}", log.display()))
            .arg("-monitor")
            .arg(format!("unix:{},server,nowait", monitor.display()))
            .arg("-kernel")
            .arg(self.parts.join("kernel/vmlinuz"))
            .arg("-initrd")
            .arg(initrd)
            .arg("-append")
            .arg(format!(
                "console=ttyS0 quiet printk.time=1 panic=-1 hw.ip=10.77.0.{}/24 hw.node={name}",
                i + 1
            ))
            .args(["-device", "virtio-scsi-pci,id=scsi0"]);
        for (lun, id) in [(1, 0), (2, 1)] {
            cmd.args([
                "-drive",
                &format!(
                    "file=iscsi://127.0.0.1/{IQN}/{lun},if=none,id=d{lun},format=raw,cache=none"
                ),
                "-device",
                &format!("scsi-block,drive=d{lun},bus=scsi0.0,scsi-id={id},lun=0"),
            ]);
        }
        cmd.arg("-iscsi")
            .arg(format!(
                "initiator-name=iqn.2026-11.org.heartwire:node-{name}"
            ))
            .args(["-device", "i6300esb", "-watchdog-action", "reset"])
            .arg("-netdev")
            .arg(netdev)
            .arg("-device")
            .arg(format!(
                "virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:77:00:0{}",
                i + 1
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.join(format!("{name}.qemu.err"))).expect("err"),
            ));
        let mut child = cmd.spawn().expect("start qemu");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        let console = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&console);
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let l = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\r', '\n'])
                            .to_owned();
                        if let Ok(mut c) = keep.lock() {
                            c.push(l.clone());
                        }
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        self.guests.push(Guest {
            name: name.to_owned(),
            child,
            stdin,
            lines: rx,
            console,
            monitor,
            log,
            seq: 0,
            daemon_pid: None,
        });
    }

    /// Bytes of LUN 1's backing file at `offset` (what reached the disk).
    pub fn lun1_at(&self, offset: u64, len: usize) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(self.dir.join("lun1.img")).expect("lun1");
        let mut b = vec![0u8; len];
        f.read_exact_at(&mut b, offset).expect("read lun1");
        b
    }
}

/// A console line the kernel printed: `[  12.345678] …`.
fn is_printk(l: &str) -> bool {
    let t = l.trim_start_matches(|c: char| !c.is_ascii_graphic());
    t.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .is_some_and(|(n, _)| n.trim().parse::<f64>().is_ok())
}

impl Drop for San {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for g in &self.guests {
                // Kernel messages (printk timestamps) first: a failed mount or I/O error
                // is explained there, and the status dumps push it out of the tail.
                eprintln!("===== kernel messages of {} =====", g.name);
                for l in g.console().iter().filter(|l| is_printk(l)) {
                    eprintln!("{l}");
                }
                eprintln!("===== console of {} (last 150 lines) =====", g.name);
                let c = g.console();
                for l in &c[c.len().saturating_sub(150)..] {
                    eprintln!("{l}");
                }
                eprintln!("{}", self.file(&format!("{}.qemu.err", g.name)));
                eprintln!(
                    "===== log of {} (last 60 lines) =====\n{}",
                    g.name,
                    g.log_tail(60)
                );
            }
            eprintln!(
                "===== tgtd =====\n{}{}",
                self.file("tgtd.log"),
                self.file("tgtd.err")
            );
        }
        for g in &mut self.guests {
            let _ = g.child.kill();
            let _ = g.child.wait();
        }
        if let Some(t) = &mut self.tgtd {
            let _ = t.kill();
            let _ = t.wait();
        }
        for l in &self.links {
            let _ = Command::new("ip")
                .args(["-n", &self.ns, "link", "del", l])
                .output();
        }
        for suffix in ["", ".lock"] {
            let _ = std::fs::remove_file(format!("/var/run/tgtd/socket.{}{suffix}", self.ctl_port));
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The part of the lab clusters' configs that is about the SAN: the tie-breaker LUN, the
/// guest's watchdog, and group `db` (the data LUN's reservation and its ext2 filesystem)
/// on `nodes`, in that order, with `fallback = "never"`.
pub fn shared_config(nodes: [&str; 2]) -> String {
    format!(
        r#"
[tie_breaker]
device = "/dev/lun-tie"

[watchdog]
timeout = "10s"

[[group]]
name = "db"
nodes = ["{}", "{}"]
fallback = "never"

[[group.resource]]
name = "disk"
kind = "reservation"
device = "/dev/lun-data"

[[group.resource]]
name = "data"
kind = "filesystem"
device = "/dev/lun-data"
mountpoint = "/mnt/data"
fstype = "ext2"
timeout = "20s"
"#,
        nodes[0], nodes[1]
    )
}
