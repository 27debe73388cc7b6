//! Fencing proven against a real SCSI target (issue 7; LAB-NOTES "the SAN lab"): two
//! qemu guests running the static heartwire binary share iSCSI LUNs served by tgtd.
//! One boot of the pair runs the scenarios in turn (a boot costs seconds under TCG):
//!
//! 1. a owns the group: registered, reserved, writes succeed; b's get RESERVATION CONFLICT.
//! 2. a's heartwire is killed (SIGKILL of `run`, the sentinel; its daemon dies with it):
//!    b wins the tie-breaker, preempts and aborts a's key,
//!    mounts the filesystem and sees a's completed writes; a's later writes fail and
//!    never reach the disk (read from the LUN's backing file). a's watchdog then resets
//!    it; it rejoins owning nothing.
//! 4. b's heartwire hangs (SIGSTOP of the sentinel and the daemon): a takes over; b's
//!    watchdog resets it; it rejoins owning nothing.
//! 5. b's daemon alone is killed (kill -9): its sentinel, which holds the watchdog,
//!    fences b and starts a new daemon; b is not reset and rejoins.
//! 3. both cut off from each other (qemu `set_link off`): exactly one wins the
//!    tie-breaker and holds the group; the other halts (on_quorum_loss = "halt").
//! 6. the loser is started again with the link still off: it boots alone (not
//!    registered), waits for its peer without halting again, and rejoins when the link
//!    is back.
//!
//! Needs root, `make san` and `make static` (make test runs both first).

#[path = "san/vm.rs"]
mod vm;

use std::time::{Duration, Instant};

use vm::{Guest, San};

/// The cluster's config (the same file on both nodes).
fn config() -> String {
    r#"
[cluster]
name = "san"
id = 42
on_quorum_loss = "halt"

[[node]]
name = "a"
id = 1

[[node]]
name = "b"
id = 2

# TCG guests on a shared 2-core host stall for more than a second now and then (both
# at once, seen at 1.5 s): a functional test needs a timeout above that.
[[path]]
name = "net"
kind = "udp"
interval = "200ms"
timeout = "3s"
port = 5405
addresses = { a = "10.77.0.1", b = "10.77.0.2" }
"#
    .to_owned()
        + &vm::shared_config(["a", "b"])
}

/// The raw area of LUN 1 past the filesystem, in 4 KiB blocks.
const RAW_BLOCK: u64 = 12288;

const BOOT: Duration = Duration::from_secs(60);
/// The config's `[watchdog] timeout`.
const WATCHDOG: Duration = Duration::from_secs(10);
const TAKEOVER: Duration = Duration::from_secs(40);

/// `dd` of one 4 KiB block carrying `text` to LUN 1's raw area, bypassing the cache.
fn write_raw(g: &mut Guest, block: u64, text: &str) -> vm::Run {
    g.sh(
        &format!(
            "echo {text} | dd of=/dev/lun-data bs=4096 count=1 seek={block} conv=sync oflag=direct 2>&1"
        ),
        Duration::from_secs(30),
    )
}

/// The tie-breaker's keys and holder, as a guest sees them.
const TIE_SHOW: &str = "heartwire reservation show /dev/lun-tie --cluster 42";

fn both_registered(show: &str) -> bool {
    show.contains("(node id 1)") && show.contains("(node id 2)")
}

fn owner(s: &heartwire::ctl::status::StatusReport) -> Option<String> {
    let g = s.groups.iter().find(|g| g.name == "db")?;
    (g.state == "online").then(|| s.node.clone())
}

#[test]
fn fencing_against_a_real_scsi_target() {
    let t0 = Instant::now();
    let mut san = San::new("f", 64, 32);
    let cfg = config();
    let initrd = san.initrd(&[("a", cfg.clone()), ("b", cfg)]);
    san.boot(0, "a", &initrd);
    // b starts a little later, so a (home) acquires first and b joins.
    san.boot(1, "b", &initrd);
    for g in &mut san.guests {
        g.wait_line("guest: ready", BOOT);
    }
    let booted = t0.elapsed();

    // 1. a owns the group: registered and reserved; its writes succeed, b's conflict.
    let (a, b) = pair(&mut san);
    let s = a.wait_status("a online with db", TAKEOVER, |s| {
        s.view_members.len() == 2 && owner(s).as_deref() == Some("a")
    });
    assert!(s.quorate);
    let show = a.ok("heartwire reservation show /dev/lun-data --cluster 42");
    assert!(
        show.contains("registered: 0x48570000002a0001 (node id 1)")
            && show.contains(
                "reservation: 0x48570000002a0001 (node id 1) type write-exclusive-registrants-only"
            ),
        "{show}"
    );
    assert!(
        !show.contains("node id 2"),
        "a standby is not registered: {show}"
    );
    let w = write_raw(a, RAW_BLOCK, "BEFORE-FAULT");
    assert_eq!(w.code, 0, "a's write: {}", w.out);
    a.ok("echo before > /mnt/data/before && sync");
    let w = write_raw(b, RAW_BLOCK + 1, "FROM-STANDBY");
    assert_ne!(w.code, 0, "b's write must be refused: {}", w.out);
    assert_eq!(
        san.lun1_at((RAW_BLOCK + 1) * 4096, 12),
        vec![0u8; 12],
        "b's refused write must not reach the disk"
    );
    let tie = san.guests[1].ok(TIE_SHOW);
    assert!(
        both_registered(&tie),
        "both registered on the tie-breaker: {tie}"
    );
    let scenario1 = t0.elapsed();

    // 2. a's daemon crashes: b takes over, a is fenced.
    let (a, b) = pair(&mut san);
    let pid = a.daemon_pid.expect("a's daemon pid");
    let killed = Instant::now();
    a.ok(&format!("kill -9 {pid}"));
    let s = b.wait_status("b online with db", TAKEOVER, |s| {
        owner(s).as_deref() == Some("b")
    });
    let takeover = killed.elapsed();
    assert_eq!(s.view_members, vec!["b".to_owned()]);
    let log = b.log();
    assert!(log.contains("tie_breaker won"), "{log}");
    assert!(log.contains("preempted node 1's key"), "{log}");
    let ls = b.ok("ls /mnt/data");
    assert!(ls.contains("before"), "b sees a's completed write: {ls}");
    // a still has the filesystem mounted, but every write of it now fails.
    let w = write_raw(a, RAW_BLOCK + 2, "AFTER-FAULT");
    assert_ne!(w.code, 0, "a's write after the fault must fail: {}", w.out);
    let after = a.sh(
        "echo after > /mnt/data/after; dd if=/dev/zero of=/mnt/data/after2 bs=4096 count=4 conv=fsync 2>&1",
        Duration::from_secs(30),
    );
    assert_ne!(
        after.code, 0,
        "a's filesystem write must fail: {}",
        after.out
    );
    assert_eq!(&san.lun1_at(RAW_BLOCK * 4096, 12), b"BEFORE-FAULT");
    assert_eq!(san.lun1_at((RAW_BLOCK + 2) * 4096, 11), vec![0u8; 11]);
    let (a, b) = pair(&mut san);
    let ls = b.ok("sync; echo 3 > /proc/sys/vm/drop_caches; ls /mnt/data");
    assert!(
        !ls.contains("after"),
        "a's later writes never reach the disk: {ls}"
    );
    // a's watchdog (not kicked since the crash) resets it; it comes back empty.
    a.wait_line("guest: ready", BOOT);
    let s = a.wait_status("a rejoined", TAKEOVER, |s| s.view_members.len() == 2);
    assert_eq!(owner(&s), None, "a rejoins owning nothing");
    let s = b.status().expect("b answers");
    assert_eq!(owner(&s).as_deref(), Some("b"));
    let scenario2 = t0.elapsed();

    // 4. b's heartwire hangs, sentinel and daemon: a takes over, b's watchdog resets b,
    // b rejoins empty.
    let (a, b) = pair(&mut san);
    let sentinel = b.daemon_pid.expect("b's heartwire pid");
    let daemon = b.status().expect("b answers").pid;
    assert_ne!(
        daemon, sentinel,
        "run is the sentinel; the daemon is its child"
    );
    b.ok(&format!("kill -STOP {sentinel} {daemon}"));
    a.wait_status("a online with db", TAKEOVER, |s| {
        owner(s).as_deref() == Some("a")
    });
    b.wait_line("guest: ready", BOOT);
    let s = b.wait_status("b rejoined", TAKEOVER, |s| s.view_members.len() == 2);
    assert_eq!(owner(&s), None, "b rejoins owning nothing");
    let scenario4 = t0.elapsed();

    // 5. b's daemon alone is killed: its sentinel fences b and starts a new daemon, and
    // holds the watchdog throughout: b is not reset, its new daemon rejoins.
    let (a, b) = pair(&mut san);
    let boots = |g: &Guest| {
        g.console()
            .iter()
            .filter(|l| l.contains("guest: ready"))
            .count()
    };
    let booted_before = boots(b);
    let old = b.status().expect("b answers").pid;
    b.ok(&format!("kill -9 {old}"));
    let end = Instant::now() + TAKEOVER;
    let s = loop {
        match b.status() {
            Some(s) if s.pid != old && s.view_members.len() == 2 => break s,
            s if Instant::now() > end => panic!(
                "b's new daemon did not rejoin within {TAKEOVER:?}: {s:?}\nb:\n{}\nb's sockets: {}\na:\n{}",
                b.log_tail(60),
                b.sh("ip addr; cat /proc/net/udp; ps", Duration::from_secs(20))
                    .out,
                a.log_tail(60),
            ),
            _ => std::thread::sleep(Duration::from_millis(300)),
        }
    };
    // Past the watchdog's timeout: nothing reset b.
    std::thread::sleep(WATCHDOG + Duration::from_secs(2));
    assert_eq!(boots(b), booted_before, "b was reset: {:?}", b.console());
    assert_eq!(b.status().expect("b answers").pid, s.pid);
    let log = b.log();
    assert!(
        log.contains("kicked every 3333 ms by the sentinel while the daemon progresses")
            && log.contains("sentinel: starting a new daemon"),
        "{log}"
    );
    let scenario5 = t0.elapsed();

    // 3. both cut off: exactly one wins the tie-breaker and keeps or takes the group;
    // the other halts.
    // b registers again at the view it rejoined in; the race needs both registrations.
    let end = Instant::now() + TAKEOVER;
    while !both_registered(&san.guests[0].ok(TIE_SHOW)) {
        assert!(
            Instant::now() < end,
            "b did not register on the tie-breaker again"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (a, b) = pair(&mut san);
    a.monitor("set_link n0 off");
    b.monitor("set_link n0 off");
    let end = Instant::now() + TAKEOVER;
    let (winner, loser) = loop {
        let halted: Vec<bool> = san
            .guests
            .iter()
            .map(|g| g.console().iter().any(|l| l.contains("System halted")))
            .collect();
        match halted[..] {
            [true, false] => break (1, 0),
            [false, true] => break (0, 1),
            [true, true] => panic!("both nodes halted"),
            _ => {}
        }
        assert!(
            Instant::now() < end,
            "no node lost the tie-breaker within {TAKEOVER:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let w = &mut san.guests[winner];
    let s = w.wait_status("the winner holds db", TAKEOVER, |s| owner(s).is_some());
    assert!(s.quorate);
    let log = w.log();
    assert!(log.contains("tie_breaker won"), "{log}");
    assert!(
        san.guests[loser]
            .console()
            .iter()
            .any(|l| l.contains("System halted"))
    );
    let scenario3 = t0.elapsed();

    // 6. the loser starts again while the link is still off (the operator powers it
    // on — this lab's i6300esb stops on a halt, as many watchdog drivers do; others
    // keep counting and reset it): it boots alone, not registered (the winner preempted
    // it). It waits for its peer, not quorate, owning nothing, and does not halt again
    // (review F-f feared a halt, a reset and a halt again for as long as the cut lasts:
    // a lone node of two stays in its start view and does not race; a race lost before
    // any authority would not apply on_quorum_loss either, `core::authority`). When the
    // link is back it rejoins, owning nothing.
    let halts = |g: &Guest| {
        g.console()
            .iter()
            .filter(|l| l.contains("System halted"))
            .count()
    };
    let l = &mut san.guests[loser];
    l.monitor("system_reset");
    l.wait_line("guest: ready", BOOT);
    let name = l.name.clone();
    l.wait_status("the rebooted loser runs alone", TAKEOVER, |s| {
        s.view_members == [name.clone()]
    });
    // Past its peer's timeout and a watchdog period: still up, not halted again.
    std::thread::sleep(WATCHDOG + Duration::from_secs(5));
    assert_eq!(
        halts(l),
        1,
        "the rebooted loser halted again: {}",
        l.log_tail(30)
    );
    let s = l.status().expect("the rebooted loser answers");
    assert!(!s.quorate && owner(&s).is_none(), "{s:?}");
    for g in &san.guests {
        g.monitor("set_link n0 on");
    }
    let s = san.guests[loser].wait_status("the loser rejoined", TAKEOVER, |s| {
        s.view_members.len() == 2
    });
    assert_eq!(owner(&s), None, "the loser rejoins owning nothing");
    let s = san.guests[winner].status().expect("the winner answers");
    assert_eq!(
        owner(&s).as_deref(),
        Some(s.node.as_str()),
        "the winner keeps db"
    );
    let scenario6 = t0.elapsed();

    eprintln!(
        "san: boot {:.1} s, scenario 1 at {:.1} s, 2 at {:.1} s (crash to takeover {:.2} s), 4 at {:.1} s, 5 at {:.1} s, 3 at {:.1} s, 6 at {:.1} s",
        booted.as_secs_f64(),
        scenario1.as_secs_f64(),
        scenario2.as_secs_f64(),
        takeover.as_secs_f64(),
        scenario4.as_secs_f64(),
        scenario5.as_secs_f64(),
        scenario3.as_secs_f64(),
        scenario6.as_secs_f64()
    );
}

fn pair(san: &mut San) -> (&mut Guest, &mut Guest) {
    let (a, b) = san.guests.split_at_mut(1);
    (&mut a[0], &mut b[0])
}
