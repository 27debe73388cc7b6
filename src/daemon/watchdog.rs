//! The armed hardware watchdog (DESIGN §4 "The sentinel", §5): opened once per service
//! start, kicked every third of its timeout by whoever watches the loop — the sentinel
//! while the daemon makes progress, or the loop itself when it runs without a sentinel.
//! A frozen host runs neither, and the hardware resets it.
//!
//! `<socket>.watchdog` is present while it is armed: a start that finds it follows a run
//! that ended without disarming it (a crash). A clean exit writes the magic 'V'
//! (disarmed); a crash, a halt or a sentinel that gives up leaves it armed.

use std::path::PathBuf;
use std::time::Duration;

use heartwire_hal::HalError;
use heartwire_hal::watchdog::Watchdog;

use crate::config::Config;
use crate::core::Instant;

/// The armed watchdog and when it is kicked next.
pub(crate) struct Armed {
    dog: Watchdog,
    marker: PathBuf,
    kick_at: Instant,
}

impl Armed {
    /// Opens (arms) the watchdog when one is configured. `socket` names the marker kept
    /// beside the control socket; `by` says who kicks it, for the log.
    pub(crate) fn open(
        cfg: &Config,
        socket: &std::path::Path,
        now: Instant,
        by: &str,
    ) -> Result<Option<Armed>, HalError> {
        let Some(w) = &cfg.watchdog else {
            return Ok(None);
        };
        let marker = socket.with_extension("watchdog");
        if marker.exists() {
            // Reopening pings it: the hardware will not reset this node for the crash.
            ::log::warn!(
                "the previous run ended with the watchdog armed (a crash: {} is still there): \
                 re-arming it does not reset this node; what that run left is fenced before \
                 joining (stale addresses removed, its processes killed)",
                marker.display()
            );
        }
        let dog = Watchdog::open(&w.device, w.timeout_s)?;
        if let Some(dir) = marker.parent() {
            // The control socket's directory (/run/heartwire) may not be there yet.
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&marker, b"armed\n") {
            ::log::warn!("{}: {e}", marker.display());
        }
        let every = kick_interval(&dog);
        ::log::info!(
            "watchdog {} armed: timeout {} s, kicked every {} ms {by}",
            dog.path(),
            dog.timeout_s(),
            every.as_millis()
        );
        Ok(Some(Armed {
            dog,
            marker,
            kick_at: now.saturating_add(every),
        }))
    }

    /// When the next kick is due.
    pub(crate) fn kick_at(&self) -> Instant {
        self.kick_at
    }

    /// Kicks it if due (or `now` when `force`).
    pub(crate) fn kick(&mut self, now: Instant, force: bool) {
        if !force && now < self.kick_at {
            return;
        }
        self.kick_at = now.saturating_add(kick_interval(&self.dog));
        if let Err(e) = self.dog.kick() {
            ::log::error!("{e}");
        }
    }

    /// A clean exit: magic close (disarmed), the marker removed.
    pub(crate) fn disarm(&mut self) {
        self.dog.disarm();
        let _ = std::fs::remove_file(&self.marker);
        ::log::info!("watchdog {} disarmed", self.dog.path());
    }

    /// What it is, for the log.
    pub(crate) fn describe(&self) -> String {
        format!(
            "watchdog {} (timeout {} s)",
            self.dog.path(),
            self.dog.timeout_s()
        )
    }
}

/// A third of the watchdog's timeout: two kicks may be missed before the reset.
fn kick_interval(w: &Watchdog) -> Duration {
    Duration::from_millis(u64::from(w.timeout_s()) * 1000 / 3)
}
