//! The hot path allocates nothing (issue 18: "0 heap allocations per frame in steady
//! state"): two nodes of a keyed cluster with three paths and a group, driven through the
//! core's whole public cycle — timers, heartbeats out, frames in (HMAC checked), group
//! state — for 10 s of simulated time after they settled, counted by a global allocator
//! that counts per thread (`hal::alloc_count`). The test's own loop keeps its frames in
//! fixed buffers, so every allocation counted is the core's.

use std::path::Path;
use std::time::Duration;

use heartwire::core::{Action, Instant, Node};
use heartwire::wire::auth::AuthKey;
use heartwire::wire::frame::FRAME_MAX;
use heartwire_hal::alloc_count::Counting;

#[global_allocator]
static ALLOC: Counting = Counting;

const CONFIG: &str = r#"
[cluster]
name = "alloc"
id = 5
key_file = "key"
two_node = true

[[node]]
name = "a"
id = 1

[[node]]
name = "b"
id = 2

[[path]]
name = "e1"
kind = "ether"
interval = "1ms"
timeout = "10ms"
interfaces = { a = "eth1", b = "eth1" }

[[path]]
name = "e2"
kind = "ether"
interval = "1ms"
timeout = "10ms"
interfaces = { a = "eth2", b = "eth2" }

[[path]]
name = "u1"
kind = "udp"
interval = "1ms"
timeout = "10ms"
port = 5405
addresses = { a = "10.9.0.1", b = "10.9.0.2" }

[[group]]
name = "web"
nodes = ["a", "b"]

[[group.resource]]
name = "vip"
kind = "ip"
address = "10.9.0.50/24"
interface = "eth1"
"#;

/// Frames in flight: up to this many per node per step.
const SLOTS: usize = 32;

struct Wire {
    bufs: Vec<[u8; FRAME_MAX]>,
    lens: Vec<(usize, usize)>,
}

fn node(name: &str, dir: &Path) -> Node {
    let file = dir.join("cluster.toml");
    let cfg = heartwire::config::parse(&file, CONFIG, Some(name)).expect("config");
    let key = cfg.key.as_deref().map(|k| AuthKey::new(k).expect("key"));
    let inc = if name == "a" { 11 } else { 22 };
    Node::new(cfg.spec, cfg.local, inc, key, Instant::from_nanos(0))
}

/// One 100 µs step of both nodes; returns the frames delivered.
fn step(nodes: &mut [Node; 2], wires: &mut [Wire; 2], t: u64) -> u64 {
    let now = Instant::from_nanos(t);
    for (n, w) in nodes.iter_mut().zip(wires.iter_mut()) {
        if n.next_deadline().is_some_and(|d| d <= now) {
            n.handle_timeout(now);
        }
        w.lens.clear();
        let mut scratch = [0u8; FRAME_MAX];
        while let Some(act) = n.poll_action(now, &mut scratch) {
            match act {
                Action::Transmit { path, len, .. } => {
                    let k = w.lens.len();
                    assert!(k < SLOTS, "more than {SLOTS} frames in one step");
                    w.bufs[k][..len].copy_from_slice(&scratch[..len]);
                    w.lens.push((usize::from(path), len));
                }
                Action::Resource(r) => n.resource_done(now, r, true).expect("in flight"),
                _ => {}
            }
        }
    }
    let mut delivered = 0;
    for (from, to) in [(0, 1), (1, 0)] {
        for k in 0..wires[from].lens.len() {
            let (path, len) = wires[from].lens[k];
            let _ = nodes[to].handle_frame(now, now, path, &wires[from].bufs[k][..len]);
            delivered += 1;
        }
    }
    delivered
}

#[test]
fn the_core_allocates_nothing_per_frame_in_steady_state() {
    let dir = std::env::temp_dir().join(format!("hwalloc{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, b"alloc-test-key-0123456789abcdefg").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut nodes = [node("a", &dir), node("b", &dir)];
    std::fs::remove_dir_all(&dir).unwrap();
    let wire = || Wire {
        bufs: vec![[0u8; FRAME_MAX]; SLOTS],
        lens: Vec::with_capacity(SLOTS),
    };
    let mut wires = [wire(), wire()];
    let step_ns = 100_000;
    let settle = u64::try_from(Duration::from_secs(2).as_nanos()).unwrap();
    let mut t = 0;
    while t < settle {
        step(&mut nodes, &mut wires, t);
        t += step_ns;
    }
    assert_eq!(
        nodes[0].groups()[0].phase,
        heartwire::core::Phase::Online,
        "a holds the group before counting"
    );
    let before = Counting::count();
    let mut frames = 0;
    let end = t + u64::try_from(Duration::from_secs(10).as_nanos()).unwrap();
    while t < end {
        frames += step(&mut nodes, &mut wires, t);
        t += step_ns;
    }
    let allocs = Counting::count() - before;
    assert!(frames > 50_000, "only {frames} frames exchanged");
    assert_eq!(
        allocs, 0,
        "the core allocated {allocs} times over {frames} frames in steady state"
    );
    eprintln!("{frames} frames in 10 s of steady state, {allocs} allocations");
}
