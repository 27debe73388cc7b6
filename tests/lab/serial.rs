//! The lab's RS232 "cable": two pseudo-terminal pairs, one per node, whose master ends
//! a bridge thread joins. The test can cut the cable, inject bytes (line noise, half
//! frames) towards either node, and pace the line at a baud rate (a pty itself has no
//! speed; a real 115200-baud line moves 11 520 bytes per second with 8N1 framing).
//!
//! The thread stops when the bridge is dropped, and after `LIFETIME_MAX` in any case.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bridge thread ends after this long whatever happens (bounded loops).
const LIFETIME_MAX: Duration = Duration::from_secs(600);

struct Shared {
    stop: AtomicBool,
    cut: AtomicBool,
    /// Bytes to deliver to node 0 / node 1 ahead of the line's own traffic.
    inject: [Mutex<Vec<u8>>; 2],
}

/// A serial cable between two lab nodes.
pub struct SerialBridge {
    /// The device each node opens (the slave ends).
    pub devices: [String; 2],
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Slave ends held open so the lines stay up while daemons restart.
    _slaves: [File; 2],
}

impl SerialBridge {
    /// Two pty pairs joined at `baud` (bytes are paced at baud/10 per second; `None`:
    /// as fast as the ptys go).
    pub fn new(baud: Option<u32>) -> SerialBridge {
        let (m0, s0, d0) = heartwire_hal::serial::pty_pair().expect("pty pair");
        let (m1, s1, d1) = heartwire_hal::serial::pty_pair().expect("pty pair");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            inject: [Mutex::new(vec![]), Mutex::new(vec![])],
        });
        let sh = Arc::clone(&shared);
        let thread = std::thread::spawn(move || bridge(&sh, [m0, m1], baud));
        SerialBridge {
            devices: [d0, d1],
            shared,
            thread: Some(thread),
            _slaves: [s0, s1],
        }
    }

    /// Cuts the cable (`true`: bytes are lost both ways) or mends it.
    pub fn cut(&self, cut: bool) {
        self.shared.cut.store(cut, Ordering::SeqCst);
    }

    /// Queues `bytes` for delivery to node `to` (0 or 1), as line noise would arrive.
    pub fn inject(&self, to: usize, bytes: &[u8]) {
        self.shared.inject[to]
            .lock()
            .unwrap()
            .extend_from_slice(bytes);
    }
}

impl Drop for SerialBridge {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bridge(sh: &Shared, mut masters: [File; 2], baud: Option<u32>) {
    let started = Instant::now();
    // Per direction: when the line is free again (pacing).
    let mut free_at = [Instant::now(); 2];
    let byte_time = baud.map(|b| Duration::from_nanos(10_000_000_000 / u64::from(b)));
    let mut buf = [0u8; 256];
    while !sh.stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME_MAX {
        let mut idle = true;
        for from in 0..2 {
            let to = 1 - from;
            let injected: Vec<u8> = std::mem::take(&mut *sh.inject[to].lock().unwrap());
            if !injected.is_empty() {
                let _ = masters[to].write_all(&injected);
            }
            // Paced: forward only what the line could have carried by now.
            if byte_time.is_some() && Instant::now() < free_at[from] {
                continue;
            }
            let want = match byte_time {
                Some(_) => 16,
                None => buf.len(),
            };
            let n = match masters[from].read(&mut buf[..want]) {
                Ok(n) if n > 0 => n,
                _ => continue,
            };
            idle = false;
            if sh.cut.load(Ordering::SeqCst) {
                continue;
            }
            if let Some(bt) = byte_time {
                free_at[from] = free_at[from].max(Instant::now()) + bt * u32::try_from(n).unwrap();
            }
            // A pty master write of a few bytes does not block unless the other side
            // stopped reading for kilobytes; then the bytes are lost like on a real line.
            let _ = masters[to].write_all(&buf[..n]);
        }
        if idle {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}
