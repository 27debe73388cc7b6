//! heartwire's fuzzer: every wire parser, the control request, the config loader and the
//! core, each under a mutation loop with its own oracles (issue 21).
//!
//! A run is deterministic for a seed. Each target starts from valid encodings (its
//! corpus) and mutates them: bit flips, random and "interesting" bytes and integers at
//! random offsets (0, 1, 0x7f.., 0xff.., `u64::MAX - 1`), inserts, deletes, duplicated
//! ranges, splices with another corpus entry, truncation. An input a parser accepts joins
//! the corpus (up to a bound), so later mutations start from deeper inputs. Every
//! execution runs under `catch_unwind`; the first panic of a target is reported with its
//! input in hex and the run exits 1.
//!
//! Oracles besides "no panic": a parsed wire message emits back to the bytes it came
//! from; an accepted control request re-parses from its own line; a config that loads
//! has an idempotent canonical form meaning the same (same hash), loads the same for
//! every node it names, and runs in the core; the core, fed authentic frames with
//! hostile fields between timeouts and operator calls, never addresses a frame to itself
//! (asserted inside the core), and after a timeout and a full drain never has a deadline
//! in the past (the daemon's loop would spin).
//!
//! Usage: `heartwire-fuzz [--seconds S | --execs N] [--seed X] [TARGET…]` (default: all).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant as Clock};

use heartwire::core::placement::{Fallback, Fallover, GroupPolicy, NodeSet, Startup};
use heartwire::core::{
    Action, ClusterSpec, Command, GroupSpec, Instant, Node, NodeId, NodeSpec, Op, PathKind,
    PathSpec,
};
use heartwire::wire::auth::AuthKey;
use heartwire::wire::frame::{FRAME_MAX, Frame, HeaderRepr, Kind, PAYLOAD_MAX};
use heartwire::wire::heartbeat::{CompactRepr, HeartbeatRepr};
use heartwire::wire::state::StateRepr;
use heartwire::wire::view::ViewRepr;
use heartwire::wire::{MAX_PATHS, announce, cobs, command, disk, offer, state};

/// wyrand: tiny, fast, good enough for mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn interesting(&mut self) -> u64 {
        const I: [u64; 10] = [
            0,
            1,
            2,
            0x7f,
            0xff,
            0x7fff,
            0xffff,
            0xffff_ffff,
            u64::MAX - 1,
            u64::MAX,
        ];
        I[self.below(I.len())]
    }
}

/// One mutation (or a few) of `input`, with `other` for splices.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], max: usize) {
    for _ in 0..1 + rng.below(4) {
        let n = input.len();
        match rng.below(9) {
            0 if n > 0 => {
                let i = rng.below(n);
                input[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                input[i] = rng.next() as u8;
            }
            2 if n > 0 => {
                // An interesting integer, big-endian, of 1, 2, 4 or 8 bytes.
                let w = 1 << rng.below(4);
                let i = rng.below(n);
                let v = rng.interesting().to_be_bytes();
                for (k, b) in v[8 - w..].iter().enumerate() {
                    if let Some(slot) = input.get_mut(i + k) {
                        *slot = *b;
                    }
                }
            }
            3 => {
                let i = rng.below(n + 1);
                let len = 1 + rng.below(16);
                let fill = rng.next() as u8;
                input.splice(i..i, std::iter::repeat_n(fill, len));
            }
            4 if n > 0 => {
                let i = rng.below(n);
                let len = 1 + rng.below((n - i).min(32));
                input.drain(i..i + len);
            }
            5 if n > 0 => {
                // Duplicate a range, now and then many times.
                let i = rng.below(n);
                let len = 1 + rng.below((n - i).min(64));
                let times = if rng.chance(16) { 1 + rng.below(50) } else { 1 };
                let part: Vec<u8> = input[i..i + len].to_vec();
                for _ in 0..times {
                    let at = rng.below(input.len() + 1);
                    input.splice(at..at, part.iter().copied());
                }
            }
            6 if !other.is_empty() => {
                let i = rng.below(n + 1);
                let j = rng.below(other.len());
                let len = 1 + rng.below(other.len() - j);
                input.truncate(i);
                input.extend_from_slice(&other[j..j + len]);
            }
            7 if n > 0 => input.truncate(rng.below(n)),
            _ => {
                let i = rng.below(n + 1);
                let b = rng.next() as u8;
                input.insert(i, b);
            }
        }
    }
    input.truncate(max);
}

/// What one execution found.
enum Outcome {
    /// Rejected cleanly.
    Rejected,
    /// Accepted: worth keeping as a starting point.
    Accepted,
}

struct Target {
    name: &'static str,
    max: usize,
    seeds: fn() -> Vec<Vec<u8>>,
    run: fn(&[u8]) -> Outcome,
}

const KEY: &[u8] = b"fuzz-cluster-key-0123456789";

fn key() -> AuthKey {
    AuthKey::new(KEY).expect("a valid key")
}

fn frame_bytes(kind: Kind, node: u8, payload: &[u8], key: Option<&AuthKey>) -> Vec<u8> {
    let h = HeaderRepr {
        kind,
        cluster: 7,
        node,
        path: 0,
        incarnation: 9,
        seq: 1,
        timestamp_ns: 1_000,
    };
    let mut buf = [0u8; FRAME_MAX];
    let n = h
        .emit(&mut buf, payload.len(), key, |p| p.copy_from_slice(payload))
        .expect("fits");
    buf[..n].to_vec()
}

fn sample_state() -> StateRepr {
    StateRepr {
        view: 5,
        installed: 5,
        agreed_number: 5,
        agreed: 0b11,
        holds: 1,
        failed: 0,
        online: 1,
        generation: 3,
        lost: 0,
        maintenance: 0,
        offline: 0,
        race: 0,
        race_outcome: 0,
        placed: 1,
        joining: 0,
    }
}

fn heartbeat_payload(state: StateRepr) -> Vec<u8> {
    let hb = HeartbeatRepr {
        state,
        config_hash: 42,
        refused: 0,
        echo: None,
        path_count: 2,
        heard: [0b11; MAX_PATHS],
    };
    let mut p = vec![0u8; hb.buffer_len()];
    hb.emit(&mut p);
    p
}

fn view_payload(number: u64, members: u64, groups: u8) -> Vec<u8> {
    let v = ViewRepr {
        number,
        members,
        groups,
        plan: [0; state::MAX_GROUPS],
    };
    let mut p = vec![0u8; v.buffer_len()];
    v.emit(&mut p);
    p
}

fn command_payload(op: u8, node: u8, groups: u64, id: u32) -> Vec<u8> {
    let c = command::CommandRepr {
        id,
        op,
        node,
        valid_ms: 100,
        groups,
    };
    let mut p = vec![0u8; command::LEN];
    c.emit(&mut p);
    p
}

// ---------------------------------------------------------------------------- wire

fn frame_seeds() -> Vec<Vec<u8>> {
    let hb = heartbeat_payload(sample_state());
    vec![
        frame_bytes(Kind::Heartbeat, 2, &hb, Some(&key())),
        frame_bytes(Kind::Heartbeat, 2, &hb, None),
        frame_bytes(Kind::ViewPropose, 1, &view_payload(3, 3, 1), Some(&key())),
    ]
}

fn frame_run(b: &[u8]) -> Outcome {
    let k = key();
    let mut accepted = false;
    for keyed in [false, true] {
        let Ok(f) = Frame::new_checked(b, keyed) else {
            continue;
        };
        let crc = f.check_crc().is_ok();
        let tag = f.check_tag(keyed.then_some(&k)).is_ok();
        let h = f.header();
        let payload = f.payload().to_vec();
        if crc && tag && payload.len() <= PAYLOAD_MAX {
            let mut buf = [0u8; FRAME_MAX];
            let n = h
                .emit(&mut buf, payload.len(), keyed.then_some(&k), |p| {
                    p.copy_from_slice(&payload)
                })
                .expect("fits");
            assert_eq!(&buf[..n], &b[..n], "a valid frame re-emits to its bytes");
            accepted = true;
        }
    }
    if accepted {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

fn heartbeat_seeds() -> Vec<Vec<u8>> {
    let c = CompactRepr {
        generation: 7,
        path_count: 2,
        hears_you: 3,
    };
    let mut compact = vec![0u8; heartwire::wire::heartbeat::COMPACT_LEN];
    c.emit(&mut compact);
    vec![heartbeat_payload(sample_state()), compact]
}

fn heartbeat_run(b: &[u8]) -> Outcome {
    let mut ok = false;
    if let Ok(hb) = HeartbeatRepr::parse(b) {
        let mut p = vec![0u8; hb.buffer_len()];
        hb.emit(&mut p);
        assert_eq!(HeartbeatRepr::parse(&p), Ok(hb), "heartbeat round trip");
        ok = true;
    }
    if let Ok(c) = CompactRepr::parse(b) {
        let mut p = vec![0u8; heartwire::wire::heartbeat::COMPACT_LEN];
        c.emit(&mut p);
        assert_eq!(CompactRepr::parse(&p), Ok(c), "compact round trip");
        ok = true;
    }
    if ok {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

fn state_seeds() -> Vec<Vec<u8>> {
    let mut p = vec![0u8; state::LEN];
    sample_state().emit(&mut p);
    vec![p]
}

fn state_run(b: &[u8]) -> Outcome {
    let Ok(s) = StateRepr::parse(b) else {
        assert!(StateRepr::parse_exact(b).is_err(), "exact is stricter");
        return Outcome::Rejected;
    };
    let mut p = vec![0u8; state::LEN];
    s.emit(&mut p);
    assert_eq!(&p[..], &b[..state::LEN], "state re-emits to its bytes");
    if let Ok(e) = StateRepr::parse_exact(b) {
        assert_eq!(e, s);
    }
    Outcome::Accepted
}

fn view_seeds() -> Vec<Vec<u8>> {
    vec![view_payload(3, 0b111, 2), view_payload(u64::MAX, 1, 0)]
}

fn view_run(b: &[u8]) -> Outcome {
    let Ok(v) = ViewRepr::parse(b) else {
        return Outcome::Rejected;
    };
    let mut p = vec![0u8; v.buffer_len()];
    v.emit(&mut p);
    assert_eq!(&p[..], &b[..p.len()], "view re-emits to its bytes");
    heartwire::core::placement::Plan::from_codes(&v.plan[..usize::from(v.groups)]);
    let _ = NodeSet::from_bits(v.members).iter().count();
    Outcome::Accepted
}

fn command_seeds() -> Vec<Vec<u8>> {
    vec![
        command_payload(command::OP_MOVE, 2, 1, 1),
        command_payload(command::OP_OFFLINE, 0, 3, 2),
    ]
}

fn command_run(b: &[u8]) -> Outcome {
    let Ok(r) = command::CommandRepr::parse(b) else {
        return Outcome::Rejected;
    };
    let mut p = vec![0u8; command::LEN];
    r.emit(&mut p);
    assert_eq!(&p[..], &b[..command::LEN], "command re-emits to its bytes");
    for (members, groups) in [(0b11u64, 2usize), (0b1, 0), (u64::MAX, 64)] {
        if let Some(c) = Command::from_repr(&r, NodeSet::from_bits(members), groups) {
            let _ = c.group_indexes().count();
        }
    }
    Outcome::Accepted
}

fn offer_seeds() -> Vec<Vec<u8>> {
    use offer::{OfferId, OfferMode, OfferMsg};
    let id = OfferId {
        origin: 1,
        incarnation: 9,
        id: 1,
    };
    let data = b"[cluster]\nname = \"x\"\n";
    let msgs = [
        OfferMsg::Chunk {
            offer: id,
            mode: OfferMode::Install,
            total: data.len() as u32,
            offset: 0,
            sha: [7; 32],
            targets: 0b110,
            data,
        },
        OfferMsg::Abort { offer: id },
    ];
    msgs.iter()
        .map(|m| {
            let mut p = vec![0u8; PAYLOAD_MAX];
            let n = m.emit(&mut p);
            p.truncate(n);
            p
        })
        .collect()
}

fn offer_run(b: &[u8]) -> Outcome {
    let Ok(m) = offer::OfferMsg::parse(b) else {
        return Outcome::Rejected;
    };
    let mut p = vec![0u8; PAYLOAD_MAX];
    let n = m.emit(&mut p);
    assert_eq!(offer::OfferMsg::parse(&p[..n]), Ok(m), "offer round trip");
    Outcome::Accepted
}

fn disk_seeds() -> Vec<Vec<u8>> {
    let mut h = vec![0u8; 512];
    disk::Header {
        cluster: 7,
        slots: 4,
        sector: 512,
    }
    .emit(&mut h);
    let mut s = vec![0u8; 512];
    let f = frame_seeds().remove(0);
    assert!(disk::emit_slot(&f, &mut s));
    vec![h, s]
}

fn disk_run(b: &[u8]) -> Outcome {
    let mut ok = false;
    if let Ok(h) = disk::Header::parse(b) {
        let mut p = vec![0u8; b.len().max(20)];
        h.emit(&mut p);
        assert_eq!(disk::Header::parse(&p), Ok(h), "header round trip");
        ok = true;
    }
    if let disk::Slot::Frame(f) = disk::parse_slot(b) {
        let mut p = vec![0u8; b.len()];
        assert!(disk::emit_slot(f, &mut p), "a parsed slot fits again");
        assert_eq!(
            disk::parse_slot(&p),
            disk::Slot::Frame(f),
            "slot round trip"
        );
        ok = true;
    }
    if ok {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

fn cobs_seeds() -> Vec<Vec<u8>> {
    let f = frame_seeds().remove(0);
    let mut e = vec![0u8; f.len() * 2 + 2];
    let n = cobs::encode(&f, &mut e).expect("fits");
    e.truncate(n - 1);
    vec![e]
}

fn cobs_run(b: &[u8]) -> Outcome {
    let mut out = vec![0u8; b.len() + 1];
    let mut ok = false;
    if let Ok(n) = cobs::decode(b, &mut out) {
        let mut enc = vec![0u8; n * 2 + 2];
        let m = cobs::encode(&out[..n], &mut enc).expect("room");
        assert_eq!(enc[m - 1], 0, "the block ends with its delimiter");
        assert!(!enc[..m - 1].contains(&0), "no delimiter inside a block");
        let mut back = vec![0u8; m];
        let k = cobs::decode(&enc[..m - 1], &mut back).expect("decodes what it encoded");
        assert_eq!(&back[..k], &out[..n], "cobs round trip");
        ok = true;
    }
    let mut d = cobs::Deframer::default();
    let mut frame = [0u8; FRAME_MAX];
    for &byte in b.iter().take(4000) {
        let _ = d.push_byte(byte, &mut frame);
    }
    if ok {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

fn announce_seeds() -> Vec<Vec<u8>> {
    let mut arp = [0u8; announce::ARP_LEN];
    announce::gratuitous_arp(
        &mut arp,
        announce::ArpOp::Reply,
        [2, 0, 0, 0, 0, 2],
        "10.0.0.9".parse().unwrap(),
    );
    let mut na = [0u8; announce::NA_LEN];
    announce::unsolicited_na(&mut na, [2, 0, 0, 0, 0, 2], "fd00::9".parse().unwrap());
    vec![arp.to_vec(), na.to_vec()]
}

fn announce_run(b: &[u8]) -> Outcome {
    let own = [2, 0, 0, 0, 0, 1];
    let hit = announce::arp_conflict(b, "10.0.0.9".parse().unwrap(), own).is_some()
        | announce::ns_conflict(b, "fd00::9".parse().unwrap(), [2, 0, 0, 0, 0, 2], own);
    if b.len() >= 16 {
        let ip = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&b[..16]).unwrap());
        let _ = announce::solicited_node(ip);
    }
    if hit {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

fn request_seeds() -> Vec<Vec<u8>> {
    [
        "status",
        "move web b timeout_ms=5000",
        "online web db",
        "maintenance off force",
        "cleanup db",
        "stop takeover",
        "sync /etc/heartwire/heartwire.toml",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn request_run(b: &[u8]) -> Outcome {
    use heartwire::ctl::request::Request;
    let line = String::from_utf8_lossy(b);
    let Ok(r) = Request::parse(&line) else {
        return Outcome::Rejected;
    };
    let _ = r.timeout();
    assert_eq!(
        Request::parse(&r.line()),
        Ok(r.clone()),
        "request round trip"
    );
    Outcome::Accepted
}

// -------------------------------------------------------------------------- config

const CONFIG: &str = r#"[cluster]
name = "fuzz"
id = 7
two_node = false

[[node]]
name = "a"
id = 1

[[node]]
name = "b"
id = 2

[[node]]
name = "c"
id = 3

[[path]]
name = "net1"
kind = "ether"
interval = "1ms"
timeout = "5ms"
interfaces = { a = "eth1", b = "eth1", c = "eth1" }

[[path]]
name = "ip"
kind = "udp"
interval = "2ms"
timeout = "10ms"
port = 5405
addresses = { a = "10.2.0.1", b = "10.2.0.2", c = "10.2.0.3" }

[[group]]
name = "web"
nodes = ["a", "b"]
fallback = "never"
failure_timeout = "1min"

[[group.resource]]
name = "vip"
kind = "ip"
address = "10.0.0.100/24"
interface = "eth1"

[[group.resource]]
name = "app"
kind = "application"
start = "true"
stop = "true"
monitor_interval = "1s"
"#;

fn config_seeds() -> Vec<Vec<u8>> {
    vec![CONFIG.as_bytes().to_vec()]
}

fn config_run(b: &[u8]) -> Outcome {
    use heartwire::config;
    let text = String::from_utf8_lossy(b);
    // A mutated path could name a device that blocks when read (`key_file`).
    if text.contains("key_file") {
        return Outcome::Rejected;
    }
    let file = Path::new("/nonexistent/fuzz.toml");
    let Ok(cfg) = config::parse(file, &text, Some("a")) else {
        return Outcome::Rejected;
    };
    let canon = config::canonical(file, &text).expect("what parses is canonicalised");
    assert_eq!(
        config::canonical(file, &canon).expect("canonical of canonical"),
        canon,
        "canonical form idempotent"
    );
    let again = config::parse(file, &canon, Some("a")).expect("the canonical form loads");
    assert_eq!(
        again.spec.config_hash, cfg.spec.config_hash,
        "the canonical form means the same"
    );
    for n in &cfg.spec.nodes {
        let other = config::parse(file, &text, Some(&n.name)).expect("loads for every node");
        assert_eq!(other.spec.config_hash, cfg.spec.config_hash, "one hash");
    }
    // The core accepts what the config accepted.
    let mut node = Node::new(cfg.spec.clone(), cfg.local, 1, None, Instant::from_nanos(0));
    let mut buf = [0u8; FRAME_MAX];
    for step in 0..6u64 {
        let now = Instant::from_nanos(step * 3_000_000);
        node.handle_timeout(now);
        while node.poll_action(now, &mut buf).is_some() {}
    }
    Outcome::Accepted
}

// ---------------------------------------------------------------------------- core

/// A cluster of 2..=4 nodes with 1..=3 paths and up to 3 groups, from `b`'s first bytes.
fn core_spec(b: &mut impl Iterator<Item = u8>) -> ClusterSpec {
    let mut byte = || b.next().unwrap_or(0);
    let n = 2 + usize::from(byte() % 3);
    let p = 1 + usize::from(byte() % 3);
    let all = NodeSet::from_bits((1u64 << n) - 1);
    let id = |i: usize| NodeId::new(u8::try_from(i).unwrap()).unwrap();
    let paths = (0..p)
        .map(|i| {
            let kind = match byte() % 4 {
                0 => PathKind::Ether,
                1 => PathKind::Udp,
                2 => PathKind::Serial,
                _ => PathKind::Disk,
            };
            PathSpec {
                name: format!("p{i}"),
                kind,
                interval: Duration::from_millis(1),
                timeout: Duration::from_millis(5),
                nodes: all,
                network: kind.on_network().then_some(0),
            }
        })
        .collect();
    let groups = (0..usize::from(byte() % 4))
        .map(|g| GroupSpec {
            name: format!("g{g}"),
            policy: GroupPolicy {
                nodes: (1..=n).map(id).collect(),
                startup: if byte() % 4 == 0 {
                    Startup::All
                } else {
                    Startup::Home
                },
                fallover: Fallover::Next,
                fallback: Fallback::Never,
            },
            resources: byte() % 3,
            pre_acquire: byte() % 2 == 0,
            pre_release: false,
            networks: u64::from(byte() % 2),
            failure_timeout: None,
            release_bound: None,
        })
        .collect();
    ClusterSpec {
        name: "fuzz".into(),
        cluster_id: 7,
        nodes: (1..=n)
            .map(|i| NodeSpec {
                id: id(i),
                name: format!("n{i}"),
            })
            .collect(),
        paths,
        networks: vec!["net".into()],
        config_hash: 42,
        pause_threshold: Duration::from_micros(2500),
        two_node: byte() % 8 == 0,
        groups,
        on_quorum_loss: match byte() % 3 {
            0 => heartwire::core::QuorumLoss::Freeze,
            1 => heartwire::core::QuorumLoss::Stop,
            _ => heartwire::core::QuorumLoss::Halt,
        },
        tie_breaker: false,
    }
}

fn core_seeds() -> Vec<Vec<u8>> {
    let mut r = Rng(1);
    (0..8)
        .map(|_| (0..256).map(|_| r.next() as u8).collect())
        .collect()
}

/// Drives one `Node` (id 1) with a program read from the input: authentic frames from
/// its peers with fuzzed header fields and payloads, timeouts, operator calls.
fn core_run(b: &[u8]) -> Outcome {
    let mut it = b.iter().copied();
    let spec = core_spec(&mut it);
    let n = spec.nodes.len();
    let paths = spec.paths.len();
    let groups = spec.groups.len();
    let k = key();
    let mut node = Node::new(
        spec,
        NodeId::new(1).unwrap(),
        0xabc,
        Some(key()),
        Instant::from_nanos(0),
    );
    let mut t: u64 = 0;
    let mut buf = [0u8; FRAME_MAX];
    let mut requests = Vec::new();
    let rest: Vec<u8> = it.collect();
    let mut views = 0u64;
    // 13 bytes an operation: `get(12)` (the race and joining words) was past the end of
    // 12-byte chunks, and always 0.
    for op in rest.chunks(13) {
        let get = |i: usize| op.get(i).copied().unwrap_or(0);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            for (k, slot) in w.iter_mut().enumerate() {
                *slot = get(i + k);
            }
            u64::from_be_bytes(w)
        };
        let now = Instant::from_nanos(t);
        match get(0) % 8 {
            0..=3 => {
                // A frame from a peer.
                let from = 2 + get(1) % u8::try_from(n - 1).unwrap();
                let kind = [
                    Kind::Heartbeat,
                    Kind::Heartbeat,
                    Kind::GroupState,
                    Kind::ViewPropose,
                    Kind::ViewAck,
                    Kind::ViewCommit,
                    Kind::Command,
                ][usize::from(get(2) % 7)];
                let number = match get(3) % 4 {
                    0 if get(4) % 2 == 0 => {
                        [u64::MAX, u64::MAX - 1, 1 << 62, (1 << 62) + 1, 1 << 20]
                            [usize::from(get(5) % 5)]
                    }
                    0 => word(4),
                    1 => views + u64::from(get(4) % 3),
                    _ => u64::from(get(4) % 8),
                };
                let payload = match kind {
                    Kind::Heartbeat | Kind::GroupState => {
                        let s = StateRepr {
                            view: number,
                            installed: number,
                            agreed_number: number,
                            agreed: word(5) & ((1 << n) - 1),
                            holds: u64::from(get(6)),
                            failed: u64::from(get(7) & 1),
                            online: u64::from(get(6)),
                            generation: if get(8) % 4 == 0 {
                                word(8)
                            } else {
                                u64::from(get(8))
                            },
                            lost: u64::from(get(9) & 1),
                            maintenance: u64::from(get(10) % 4),
                            offline: u64::from(get(11) & 1),
                            // A half view's race word now and then (review S3).
                            race: if get(12) & 4 != 0 {
                                word(5) & ((1 << n) - 1)
                            } else {
                                0
                            },
                            race_outcome: u64::from(get(12) % 3),
                            placed: u64::from(get(6) | get(11) >> 1),
                            // A rejoining node held off now and then (the heal rules).
                            joining: if get(12) & 8 != 0 {
                                word(5) & ((1 << n) - 1)
                            } else {
                                0
                            },
                        };
                        if kind == Kind::Heartbeat {
                            heartbeat_payload(s)
                        } else {
                            let mut p = vec![0u8; state::LEN];
                            s.emit(&mut p);
                            p
                        }
                    }
                    Kind::Command => command_payload(
                        1 + get(5) % 6,
                        get(6) % 5,
                        word(7) & 0xff,
                        u32::from(get(8)),
                    ),
                    _ => view_payload(
                        number,
                        (u64::from(get(5)) & ((1 << n) - 1)) | (1 << (from - 1)),
                        u8::try_from(groups).unwrap(),
                    ),
                };
                views = views.max(number.min(1 << 20));
                let h = HeaderRepr {
                    kind,
                    cluster: 7,
                    node: from,
                    path: get(11) % u8::try_from(paths).unwrap(),
                    incarnation: [0x10, 0x20, u32::from(get(9))][usize::from(get(9) % 3)],
                    seq: u32::from(get(10)) + (t / 1_000_000) as u32,
                    timestamp_ns: match get(7) % 8 {
                        0 => 0,
                        1 => u64::MAX,
                        _ => t,
                    },
                };
                let len = h
                    .emit(&mut buf, payload.len(), Some(&k), |p| {
                        p.copy_from_slice(&payload)
                    })
                    .expect("fits");
                let frame = buf[..len].to_vec();
                let _ = node.handle_frame(now, now, usize::from(h.path), &frame);
            }
            4 => {
                t += 1 + u64::from(get(1)) * 50_000;
                let now = Instant::from_nanos(t);
                node.handle_timeout(now);
                drain(&mut node, now, &mut buf, &mut requests);
                assert!(
                    node.next_deadline().is_none_or(|d| d > now),
                    "a deadline in the past after a timeout and a drain"
                );
            }
            5 if !requests.is_empty() => {
                let r = requests.remove(usize::from(get(1)) % requests.len());
                let _ = node.resource_done(now, r, get(2) % 4 != 0);
            }
            6 if groups > 0 => {
                let g = 1u64 << (get(1) % u8::try_from(groups).unwrap());
                let op = match get(2) % 5 {
                    0 => Op::Online,
                    1 => Op::Offline,
                    2 => Op::Cleanup,
                    3 => Op::Move(NodeId::new(1 + get(3) % u8::try_from(n).unwrap()).unwrap()),
                    _ => Op::Maintenance(node.maintenance_target(get(3) % 2 == 0)),
                };
                let groups = if matches!(op, Op::Maintenance(_)) {
                    0
                } else {
                    g
                };
                let _ = node.command_with(
                    now,
                    Command { op, groups },
                    Duration::from_millis(20),
                    get(4) % 2 == 0,
                );
            }
            7 => {
                node.set_carrier_lost(now, u64::from(get(1) % 2));
            }
            _ => {
                let _ = node.stop(now, get(1) % 2 == 0, Duration::from_millis(20));
            }
        }
        drain(&mut node, now, &mut buf, &mut requests);
    }
    Outcome::Accepted
}

fn drain(
    node: &mut Node,
    now: Instant,
    buf: &mut [u8],
    requests: &mut Vec<heartwire::core::ResourceRequest>,
) {
    for _ in 0..20_000 {
        match node.poll_action(now, buf) {
            None => return,
            Some(Action::Resource(r)) => requests.push(r),
            Some(_) => {}
        }
    }
    panic!("more than 20000 actions in one drain");
}

// ---------------------------------------------------------------------------- loop

const TARGETS: &[Target] = &[
    Target {
        name: "frame",
        max: FRAME_MAX + 8,
        seeds: frame_seeds,
        run: frame_run,
    },
    Target {
        name: "heartbeat",
        max: 256,
        seeds: heartbeat_seeds,
        run: heartbeat_run,
    },
    Target {
        name: "state",
        max: 128,
        seeds: state_seeds,
        run: state_run,
    },
    Target {
        name: "view",
        max: 128,
        seeds: view_seeds,
        run: view_run,
    },
    Target {
        name: "command",
        max: 64,
        seeds: command_seeds,
        run: command_run,
    },
    // A frame carries at most PAYLOAD_MAX payload bytes.
    Target {
        name: "offer",
        max: PAYLOAD_MAX,
        seeds: offer_seeds,
        run: offer_run,
    },
    Target {
        name: "disk",
        max: 1024,
        seeds: disk_seeds,
        run: disk_run,
    },
    Target {
        name: "cobs",
        max: 4096,
        seeds: cobs_seeds,
        run: cobs_run,
    },
    Target {
        name: "announce",
        max: 128,
        seeds: announce_seeds,
        run: announce_run,
    },
    Target {
        name: "request",
        max: 512,
        seeds: request_seeds,
        run: request_run,
    },
    Target {
        name: "config",
        max: 16 * 1024,
        seeds: config_seeds,
        run: config_run,
    },
    Target {
        name: "core",
        max: 4096,
        seeds: core_seeds,
        run: core_run,
    },
];

/// How long a target runs.
#[derive(Clone, Copy)]
enum Budget {
    Seconds(u64),
    Execs(u64),
}

/// Runs `t`; returns executions and the accepted count, or the panic and its input.
fn fuzz(t: &Target, budget: Budget, seed: u64) -> Result<(u64, u64), (String, Vec<u8>)> {
    let mut rng = Rng(seed
        ^ t.name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)));
    let mut corpus = (t.seeds)();
    let start = Clock::now();
    let (mut execs, mut accepted) = (0u64, 0u64);
    let mut input = Vec::new();
    loop {
        let done = match budget {
            Budget::Seconds(s) => execs % 256 == 0 && start.elapsed() >= Duration::from_secs(s),
            Budget::Execs(n) => execs >= n,
        };
        if done {
            return Ok((execs, accepted));
        }
        let a = rng.below(corpus.len());
        let o = rng.below(corpus.len());
        input.clear();
        input.extend_from_slice(&corpus[a]);
        if execs >= corpus.len() as u64 {
            let other = corpus[o].clone();
            mutate(&mut rng, &mut input, &other, t.max);
        }
        execs += 1;
        match catch_unwind(AssertUnwindSafe(|| (t.run)(&input))) {
            Ok(Outcome::Accepted) => {
                accepted += 1;
                if corpus.len() < 4096 && rng.chance(64) {
                    corpus.push(input.clone());
                }
            }
            Ok(Outcome::Rejected) => {}
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic".into());
                return Err((msg, input));
            }
        }
    }
}

fn main() {
    let mut budget = Budget::Seconds(3);
    let mut seed = 1u64;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--seconds" => budget = Budget::Seconds(value("--seconds")),
            "--execs" => budget = Budget::Execs(value("--execs")),
            "--seed" => seed = value("--seed"),
            "--list" => {
                for t in TARGETS {
                    println!("{}", t.name);
                }
                return;
            }
            name => names.push(name.to_owned()),
        }
    }
    let chosen: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .collect();
    if chosen.is_empty() {
        eprintln!("heartwire-fuzz: no target named {names:?} (try --list)");
        std::process::exit(2);
    }
    // Panics are reported by the loop, with their input.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    println!(
        "{:<10} {:>12} {:>12} {:>9}  result",
        "target", "executions", "accepted", "seconds"
    );
    for t in chosen {
        let start = Clock::now();
        match fuzz(t, budget, seed) {
            Ok((execs, accepted)) => println!(
                "{:<10} {execs:>12} {accepted:>12} {:>9.1}  no finding",
                t.name,
                start.elapsed().as_secs_f64()
            ),
            Err((msg, input)) => {
                failed = true;
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                println!(
                    "{:<10} {:>12} {:>12} {:>9.1}  PANIC: {msg}\n  input: {hex}",
                    t.name,
                    "-",
                    "-",
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
