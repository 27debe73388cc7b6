//! Self-fencing and the tie-breaker (DESIGN §4–5).
//!
//! Watchdog: `/dev/watchdog` is opened at start (which arms it) and written from the
//! loop every third of its timeout; a loop that stops turning — hung, SIGSTOPped, stuck
//! in the kernel — stops writing, and the hardware resets the node. A clean exit writes
//! the magic 'V' first (disarmed); a crash leaves it armed. `on_quorum_loss = "halt"`
//! stops kicking and halts at once; the armed watchdog resets the node after its timeout
//! should the halt itself hang, and after that the node comes back and joins with
//! nothing (crash hygiene at start, DESIGN §6).
//!
//! Tie-breaker: the core decides the steps (`Action::TieBreaker`, see `core::authority`):
//! in a view holding a strict majority, register on the tie-breaker disk (`heartwire
//! reservation tie-register`, checked every 10 s and made again when missing, while no other step comes); in a view
//! of exactly half the nodes, race (`heartwire reservation tie-break`, preempting the
//! keys of the nodes outside it) and report the outcome (`Node::tie_breaker_result`).
//! Both run as children: SCSI commands wait for the device.

use std::ffi::OsString;
use std::time::Duration;

use heartwire_hal::HalError;
use heartwire_hal::watchdog::Watchdog;
use mio::{Registry, Token};

use super::children::{Children, Finished, Job, Run};
use super::token::TIE_CHILD_BASE;
use crate::config::Config;
use crate::core::placement::NodeSet;
use crate::core::{Instant, TieStep};

/// Limit of a tie-breaker step (a few SCSI commands).
const TIE_TIMEOUT: Duration = Duration::from_secs(20);

/// While in a majority view, the registration on the tie-breaker is checked (READ
/// KEYS) and made again when missing this often: a reconnect of the transport (a new
/// I_T nexus, an old session torn down late) loses it silently, and a node without one
/// loses the next tie. The SAN lab saw a registration vanish seconds after it was made.
const REREGISTER: Duration = Duration::from_secs(10);

/// What a tie-breaker child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Register,
    /// The race for the view with these members.
    Race(NodeSet),
}

/// The watchdog and the tie-breaker of this node.
pub(crate) struct Fencing {
    watchdog: Option<Watchdog>,
    /// Present while the watchdog is armed (`<socket>.watchdog`): a start that finds it
    /// follows a run that ended without disarming it (a crash).
    armed_marker: std::path::PathBuf,
    kick_at: Instant,
    /// Halting: the watchdog is not kicked any more.
    halting: bool,
    tie: Option<Tie>,
}

struct Tie {
    device: String,
    cluster: u16,
    node: u8,
    /// Every configured node.
    all: NodeSet,
    children: Children<Step>,
    /// In a majority view: when the registration is made again.
    register_at: Option<Instant>,
}

/// A race's outcome for the core: the members it was run for, and whether it was won.
pub(crate) type TieOutcome = (NodeSet, bool);

impl Fencing {
    /// Opens the watchdog (arming it) when configured. `socket` names the marker kept
    /// beside the control socket while it is armed.
    pub(crate) fn open(
        cfg: &Config,
        socket: &std::path::Path,
        now: Instant,
    ) -> Result<Fencing, HalError> {
        let armed_marker = socket.with_extension("watchdog");
        if cfg.watchdog.is_some() && armed_marker.exists() {
            // Reopening pings it: the hardware will not reset this node for the crash.
            ::log::warn!(
                "the previous run ended with the watchdog armed (a crash: {} is still there): \
                 re-arming it does not reset this node; what that run left was fenced before \
                 joining (stale addresses removed, its processes killed)",
                armed_marker.display()
            );
        }
        let watchdog = cfg
            .watchdog
            .as_ref()
            .map(|w| Watchdog::open(&w.device, w.timeout_s))
            .transpose()?;
        if watchdog.is_some() {
            if let Err(e) = std::fs::write(&armed_marker, b"armed\n") {
                ::log::warn!("{}: {e}", armed_marker.display());
            }
        }
        if let Some(w) = &watchdog {
            ::log::info!(
                "watchdog {} armed: timeout {} s, kicked every {} ms by the loop",
                w.path(),
                w.timeout_s(),
                kick_interval(w).as_millis()
            );
        }
        let tie = cfg.tie_breaker.as_ref().map(|device| Tie {
            device: device.clone(),
            cluster: cfg.spec.cluster_id,
            node: cfg.local.get(),
            all: cfg.spec.nodes.iter().fold(NodeSet::EMPTY, |mut s, n| {
                s.insert(n.id);
                s
            }),
            children: Children::with_tokens(TIE_CHILD_BASE, 2),
            register_at: None,
        });
        Ok(Fencing {
            armed_marker,
            kick_at: now.saturating_add(watchdog.as_ref().map_or(Duration::ZERO, kick_interval)),
            watchdog,
            halting: false,
            tie,
        })
    }

    /// Time-driven work: tie-breaker child timeouts, the registration's renewal, and the
    /// watchdog's kick when due (not while halting). A race child abandoned at its
    /// timeout is a lost race.
    pub(crate) fn on_timer(&mut self, registry: &Registry, now: Instant) -> Option<TieOutcome> {
        let mut outcome = None;
        if let Some(t) = &mut self.tie {
            while let Some(done) = t.children.on_timer(now) {
                outcome = outcome.or(t.finished(done));
            }
            if t.register_at.is_some_and(|at| at <= now) {
                t.register_at = Some(now.saturating_add(REREGISTER));
                t.spawn(registry, now, Step::Register, &[]);
            }
        }
        if self.halting || now < self.kick_at {
            return outcome;
        }
        if let Some(w) = &mut self.watchdog {
            self.kick_at = now.saturating_add(kick_interval(w));
            if let Err(e) = w.kick() {
                ::log::error!("{e}");
            }
        }
        outcome
    }

    /// When the next kick or tie-breaker deadline is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let kick = (self.watchdog.is_some() && !self.halting).then_some(self.kick_at);
        let tie = self.tie.as_ref().and_then(|t| {
            t.children
                .next_deadline()
                .into_iter()
                .chain(t.register_at)
                .min()
        });
        kick.into_iter().chain(tie).min()
    }

    /// Carries out the core's tie-breaker `step`. A race that cannot start is lost at
    /// once (the outcome is returned).
    pub(crate) fn step(
        &mut self,
        registry: &Registry,
        now: Instant,
        step: TieStep,
    ) -> Option<TieOutcome> {
        let Some(t) = self.tie.as_mut() else {
            ::log::error!("tie-breaker step {step:?} without a [tie_breaker]");
            return None;
        };
        match step {
            TieStep::Register => {
                t.register_at = Some(now.saturating_add(REREGISTER));
                t.spawn(registry, now, Step::Register, &[]);
                None
            }
            TieStep::Race(members) => {
                t.register_at = None;
                let rivals: Vec<u8> = t
                    .all
                    .iter()
                    .filter(|id| !members.contains(*id))
                    .map(|id| id.get())
                    .collect();
                (!t.spawn(registry, now, Step::Race(members), &rivals)).then_some((members, false))
            }
            TieStep::Idle => {
                t.register_at = None;
                None
            }
        }
    }

    /// Whether `token` is a tie-breaker child's.
    pub(crate) fn owns(&self, token: Token) -> bool {
        self.tie.as_ref().is_some_and(|t| t.children.owns(token))
    }

    /// A tie-breaker child's readiness event; a race's outcome when one ended (the core
    /// ignores it if the view it ran for is gone).
    pub(crate) fn on_child_event(
        &mut self,
        registry: &Registry,
        token: Token,
    ) -> Option<TieOutcome> {
        let t = self.tie.as_mut()?;
        let done = t.children.on_event(registry, token)?;
        t.finished(done)
    }

    /// Stops kicking the watchdog and halts the machine. Returns only if the halt failed;
    /// the watchdog then resets the node at its timeout.
    pub(crate) fn halt(&mut self) {
        self.halting = true;
        let e = heartwire_hal::watchdog::halt_now();
        ::log::error!(
            "halt failed: {e}; the watchdog is no longer kicked{}",
            if self.watchdog.is_some() {
                " and resets this node at its timeout"
            } else {
                ""
            }
        );
    }

    /// A clean exit: disarms the watchdog (magic close) and ends the children.
    pub(crate) fn shutdown(&mut self) {
        if let Some(w) = &mut self.watchdog {
            if !self.halting {
                w.disarm();
                let _ = std::fs::remove_file(&self.armed_marker);
                ::log::info!("watchdog {} disarmed", w.path());
            }
        }
        if let Some(t) = &mut self.tie {
            t.children.kill_all();
        }
    }
}

/// A third of the watchdog's timeout: two kicks may be missed before the reset.
fn kick_interval(w: &Watchdog) -> Duration {
    Duration::from_millis(u64::from(w.timeout_s()) * 1000 / 3)
}

impl Tie {
    /// A tie-breaker child ended (or was abandoned): a race's outcome.
    fn finished(&self, done: Finished<Step>) -> Option<TieOutcome> {
        let (step, label, exit) = (done.purpose, done.label, done.exit);
        match step {
            Step::Register => {
                if !exit.success() {
                    ::log::error!("{label}: {exit}: this node cannot win a tie");
                }
                None
            }
            Step::Race(members) => {
                let won = exit.success();
                let lost = super::children::Exit::Code(i32::from(crate::ctl::storage::LOST));
                if !won && exit != lost {
                    ::log::error!("{label}: {exit}: counted as lost");
                }
                Some((members, won))
            }
        }
    }

    /// Starts a child for `step`; false when it could not start.
    fn spawn(&mut self, registry: &Registry, now: Instant, step: Step, rivals: &[u8]) -> bool {
        let (cluster, node) = (self.cluster.to_string(), self.node.to_string());
        let ids: Vec<String> = rivals.iter().map(u8::to_string).collect();
        let ids = ids.join(",");
        let verb = match step {
            Step::Register => "tie-register",
            Step::Race(_) => "tie-break",
        };
        let mut argv: Vec<OsString> = [
            "/proc/self/exe",
            "reservation",
            verb,
            "--device",
            &self.device,
            "--cluster",
            &cluster,
            "--node",
            &node,
        ]
        .map(OsString::from)
        .to_vec();
        if matches!(step, Step::Race(_)) {
            argv.extend(["--rivals", &ids].map(OsString::from));
        }
        let label = format!("tie-breaker {verb}");
        let job = Job {
            run: Run::Exec(&argv),
            env: &[],
            timeout: TIE_TIMEOUT,
            label: label.clone(),
            keep_output: false,
        };
        match self.children.spawn(registry, now, job, step) {
            Ok(()) => true,
            Err(e) => {
                ::log::error!("{label}: could not start: {e}");
                false
            }
        }
    }
}
