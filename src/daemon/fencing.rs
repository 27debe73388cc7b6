//! Self-fencing and the tie-breaker (DESIGN §4–5).
//!
//! Watchdog (`super::watchdog`): under a sentinel, the sentinel holds and kicks it while
//! this loop makes progress; without one, this loop does, every third of its timeout. A
//! loop that stops turning — hung, SIGSTOPped, stuck in the kernel — stops the kicks (a
//! sentinel kills it first and kicks again for the next daemon), and the hardware resets
//! a node where nothing kicks. `on_quorum_loss = "halt"` stops the kicks and halts at
//! once; the armed watchdog resets the node after its timeout should the halt itself
//! hang, and after that the node comes back and joins with nothing (crash hygiene at
//! start, DESIGN §6).
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
use mio::{Registry, Token};

use super::children::{Children, Finished, Job, Run};
use super::token::TIE_CHILD_BASE;
use super::watchdog::Armed;
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
    /// The watchdog when this loop kicks it (no sentinel).
    watchdog: Option<Armed>,
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
    /// Opens the watchdog (arming it) when one is configured and this loop kicks it
    /// (`sentinel`: false; a sentinel holds and kicks it otherwise). `socket` names the
    /// marker kept beside the control socket while it is armed.
    pub(crate) fn open(
        cfg: &Config,
        socket: &std::path::Path,
        now: Instant,
        sentinel: bool,
    ) -> Result<Fencing, HalError> {
        let watchdog = if sentinel {
            None
        } else {
            Armed::open(cfg, socket, now, "by the loop")?
        };
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
        if let (Some(w), false) = (&mut self.watchdog, self.halting) {
            w.kick(now, false);
        }
        outcome
    }

    /// When the next kick or tie-breaker deadline is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let kick = self
            .watchdog
            .as_ref()
            .filter(|_| !self.halting)
            .map(Armed::kick_at);
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

    /// Stops kicking the watchdog and halts the machine (a sentinel has been told to stop
    /// kicking by the caller). Returns only if the halt failed; an armed watchdog then
    /// resets the node at its timeout.
    pub(crate) fn halt(&mut self) {
        self.halting = true;
        let e = heartwire_hal::watchdog::halt_now();
        ::log::error!(
            "halt failed: {e}; the watchdog, if one is armed, is no longer kicked and resets \
             this node at its timeout"
        );
    }

    /// A clean exit: disarms the watchdog (magic close) and ends the children.
    pub(crate) fn shutdown(&mut self) {
        if let (Some(w), false) = (&mut self.watchdog, self.halting) {
            w.disarm();
        }
        if let Some(t) = &mut self.tie {
            t.children.kill_all();
        }
    }
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
            cgroup: None,
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
