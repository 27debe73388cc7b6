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
