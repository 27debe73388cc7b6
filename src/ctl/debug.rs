//! Hidden `heartwire debug …` verbs: raw frame capture and injection on an interface. They
//! exist for the lab (tests and benches drive them inside namespaces) and for operators
//! chasing a wiring problem. They run outside the daemon, so they may block (bounded).

use std::io;
use std::time::{Duration, Instant};

use heartwire_hal::packet::PacketSocket;

/// Sends each hex-encoded frame in `frames` (one per line) to `dst` on `ifname`.
pub fn send_frames(
    ifname: &str,
    ethertype: u16,
    dst: [u8; 6],
    frames: &str,
) -> Result<usize, String> {
    let sock = PacketSocket::open(ifname, ethertype).map_err(|e| e.to_string())?;
    let mut sent = 0;
    for (i, line) in frames
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bytes = hex_decode(line.trim()).ok_or_else(|| format!("line {}: not hex", i + 1))?;
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match sock.send_to(dst, &bytes) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(format!("line {}: send: {e}", i + 1)),
            }
        }
        sent += 1;
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(sent)
}

/// Captures up to `count` frames received on `ifname` within `timeout`; returns them hex
/// encoded, one per line.
pub fn capture(
    ifname: &str,
    ethertype: u16,
    count: usize,
    timeout: Duration,
) -> Result<String, String> {
    let sock = PacketSocket::open(ifname, ethertype).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut out = String::new();
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while got < count && Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(rx) if !rx.outgoing => {
                out.push_str(&hex_encode(&buf[..rx.meta.len]));
                out.push('\n');
                got += 1;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(100))
            }
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    Ok(out)
}

/// Watches heartbeats (kind 1) from node `node` on `ifname` for `duration` and prints
/// how regularly they arrived, by kernel receive time: `frames=N p50_gap_us=… p99_gap_us=…
/// max_gap_us=…`. The lab measures a sender's cadence with it from the receiving side.
pub fn gaps(ifname: &str, ethertype: u16, node: u8, duration: Duration) -> Result<String, String> {
    let sock = PacketSocket::open(ifname, ethertype).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + duration;
    let mut buf = [0u8; 2048];
    let mut stamps: Vec<u64> = Vec::with_capacity(100_000);
    while Instant::now() < deadline && stamps.len() < 10_000_000 {
        match sock.recv(&mut buf) {
            Ok(rx) if !rx.outgoing && rx.meta.len > 7 && buf[3] == 1 && buf[6] == node => {
                stamps.push(
                    rx.meta
                        .rx_realtime_ns
                        .unwrap_or_else(heartwire_hal::clock::realtime_ns),
                );
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    let mut gaps: Vec<u64> = stamps
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    gaps.sort_unstable();
    let pct = |p: usize| {
        gaps.get((gaps.len().saturating_sub(1) * p + 50) / 100)
            .map_or(0, |g| g / 1000)
    };
    Ok(format!(
        "frames={} p50_gap_us={} p99_gap_us={} max_gap_us={}\n",
        stamps.len(),
        pct(50),
        pct(99),
        gaps.last().map_or(0, |g| g / 1000)
    ))
}

/// Lower-case hex.
pub fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses even-length hex.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<_>>()?;
    v.try_into().ok()
}

/// Sets `interfaces` down (or up) back to back over one rtnetlink socket and prints the
/// CLOCK_MONOTONIC ns read just before the first change: the lab's "pull every cable".
pub fn link_set(interfaces: &[String], up: bool) -> Result<(), String> {
    let mut rtnl = heartwire_hal::netlink::Rtnl::open().map_err(|e| e.to_string())?;
    let indexes = interfaces
        .iter()
        .map(|i| heartwire_hal::packet::if_index(i).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let at = heartwire_hal::clock::monotonic_ns();
    for (name, idx) in interfaces.iter().zip(indexes) {
        rtnl.set_link(idx, up).map_err(|e| format!("{name}: {e}"))?;
    }
    println!("{at}");
    Ok(())
}

/// A tiny UDP service for the lab: answers every datagram on `port` (IPv6 and IPv4; IPv4
/// only where IPv6 is off) with `name`, a space and the datagram. Runs until killed.
pub fn responder(port: u16, name: &str) -> Result<(), String> {
    let sock = std::net::UdpSocket::bind(("::", port))
        .or_else(|_| std::net::UdpSocket::bind(("0.0.0.0", port)))
        .map_err(|e| format!("bind: {e}"))?;
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = sock.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
        let mut reply = Vec::with_capacity(name.len() + 1 + n);
        reply.extend_from_slice(name.as_bytes());
        reply.push(b' ');
        reply.extend_from_slice(&buf[..n]);
        // A lost reply is what the probe measures; nothing to do about it here.
        let _ = sock.send_to(&reply, from);
    }
}

/// A lab client: sends a numbered request to `target` every `interval` for `duration` and
/// prints one line per reply: `reply seq=<n> sent=<ns> recv=<ns> from=<name>` (CLOCK_MONOTONIC,
/// shared by every namespace), then `sent=<n>`.
pub fn probe(
    target: std::net::SocketAddr,
    interval: Duration,
    duration: Duration,
) -> Result<(), String> {
    use std::io::Write;
    let any = if target.is_ipv6() { "::" } else { "0.0.0.0" };
    let sock = std::net::UdpSocket::bind((any, 0)).map_err(|e| format!("bind: {e}"))?;
    sock.set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    let now = heartwire_hal::clock::monotonic_ns;
    let start = now();
    let end = start + u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    let step = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut next = start;
    let mut seq: u64 = 0;
    let mut buf = [0u8; 512];
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while now() < end {
        let t = now();
        if t >= next {
            let msg = format!("{seq} {t}");
            // Unreachable while the address moves: that is the gap being measured.
            let _ = sock.send_to(msg.as_bytes(), target);
            seq += 1;
            next += step;
        }
        // Asleep until a reply comes or the next request is due: a client at real-time
        // priority (`--fifo`) takes no CPU from the nodes meanwhile.
        let wait = Duration::from_nanos(next.saturating_sub(now()));
        use std::os::fd::AsFd;
        if !heartwire_hal::wait_readable(sock.as_fd(), wait).map_err(|e| format!("ppoll: {e}"))? {
            continue;
        }
        // Refused (ICMP, while the address moves) is what the probe measures, as a loss.
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let recv = now();
            let text = String::from_utf8_lossy(&buf[..n]);
            let mut w = text.split_whitespace();
            if let (Some(name), Some(s), Some(sent)) = (w.next(), w.next(), w.next()) {
                let _ = writeln!(out, "reply seq={s} sent={sent} recv={recv} from={name}");
            }
        }
    }
    writeln!(out, "sent={seq}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_mac() {
        assert_eq!(
            hex_decode(&hex_encode(&[0, 1, 0xfe])),
            Some(vec![0, 1, 0xfe])
        );
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(
            parse_mac("03:48:57:00:00:07"),
            Some([3, 0x48, 0x57, 0, 0, 7])
        );
        assert_eq!(parse_mac("03:48"), None);
    }
}
