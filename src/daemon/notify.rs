//! The systemd notify protocol (`sd_notify(3)`), written out: one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `$NOTIFY_SOCKET` (a path, or an abstract
//! name when it starts with `@`). `READY=1` once the loop runs, `WATCHDOG=1` every half
//! `$WATCHDOG_USEC` from the loop (so a hung loop is restarted by systemd), `STOPPING=1`
//! when the loop has ended. Without `$NOTIFY_SOCKET` nothing is sent. Sends never block: a full
//! socket drops the message.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager.
#[derive(Debug)]
pub(crate) struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// Half the watchdog timeout systemd set, if any.
    pub(crate) watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment; `None` when not run by a service manager (or the variable is
    /// unusable, which is logged).
    pub(crate) fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let path = path.to_string_lossy().into_owned();
        let addr = if let Some(name) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        } else {
            SocketAddr::from_pathname(&path)
        };
        let sock = UnixDatagram::unbound().and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match (addr, sock) {
            (Ok(addr), Ok(sock)) => {
                let watchdog = std::env::var("WATCHDOG_USEC")
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|us| *us > 0)
                    .map(|us| Duration::from_micros(us / 2));
                Some(Notifier {
                    sock,
                    addr,
                    watchdog,
                })
            }
            (Err(e), _) | (_, Err(e)) => {
                ::log::warn!("NOTIFY_SOCKET={path}: {e}; not notifying the service manager");
                None
            }
        }
    }

    /// Sends `msg` (newline-separated `KEY=VALUE` lines).
    pub(crate) fn send(&self, msg: &str) {
        if let Err(e) = self.sock.send_to_addr(msg.as_bytes(), &self.addr) {
            ::log::debug!("sd_notify {msg:?}: {e}");
        }
    }
}
