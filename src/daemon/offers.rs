//! Configuration offers in the daemon (DESIGN §7): the I/O around `core::offer`.
//!
//! **Origin** (`sync FILE`, `verify-cluster FILE` on the control socket): checks that it
//! may offer (a key, the daemon's own file for sync, a change a reload can apply, every
//! node up for sync), hands the bytes to the core and answers the operator when the core
//! says the offer is settled. On commit it reloads its own file (the offered bytes).
//!
//! **Member**: writes a complete offer next to its config as a hidden staging file,
//! checks it in a child (`heartwire offer-check`: fsync, then every `verify` check for
//! this node), adds what only the daemon knows (can a reload apply it?), and gives the
//! core its verdict. On commit it renames the staged file over its config (atomic) and
//! reloads; on abort or expiry it deletes it. The loop never waits: the check runs in a
//! child, the staging write is one page-cache write, the reload test parses the bytes
//! already in memory (reading only the key file, as a reload does), the install is one
//! rename. The
//! directory is not fsynced from the loop: the file's data is on disk before the rename,
//! and after a crash within the journal's commit interval the node comes back with the
//! old or the new file whole, never a mix (its hash then shows in `verify`).

use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::children::{Children, Finished, Job, Run};
use super::commands::{Answer, error};
use super::reload::restart_needed;
use super::{Daemon, report, token};
use crate::config;
use crate::core::event::OfferResult;
use crate::core::node::OfferRefusal;
use crate::core::offer::{StartError, TargetState, Text, Verdict};
use crate::core::placement::NodeSet;
use crate::core::{Event, Instant, NodeId};
use crate::ctl::offer::{CheckVerdict, MemberAnswer, OfferReport};
use crate::ctl::request::Request;
use crate::wire::offer::{CONFIG_MAX, OfferId, OfferMode};

/// Longest an offer check may run (it probes the segments for service addresses, about
/// a second per address family).
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// The daemon's offer state, besides the core's.
pub(super) struct OfferIo {
    /// The control connection waiting for this node's offer, and when it asked.
    waiter: Option<(usize, Instant)>,
    /// What this node's own reload said when its offer was committed.
    own_reload: Option<String>,
    /// The offer staged here as a member.
    staged: Option<Staged>,
    checks: Children<OfferId>,
}

#[derive(Debug)]
struct Staged {
    offer: OfferId,
    mode: OfferMode,
    path: PathBuf,
}

impl OfferIo {
    pub(super) fn new() -> OfferIo {
        OfferIo {
            waiter: None,
            own_reload: None,
            staged: None,
            checks: Children::with_tokens(token::OFFER_CHILD_BASE, 1),
        }
    }

    /// Whether `t` is the check child's.
    pub(super) fn owns(&self, t: mio::Token) -> bool {
        self.checks.owns(t)
    }

    /// The check child's deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.checks.next_deadline()
    }

    /// Kills a check past its deadline; returns one abandoned (see `children`).
    pub(super) fn on_timer(&mut self, now: Instant) -> Option<Finished<OfferId>> {
        self.checks.on_timer(now)
    }

    /// Removes a staged file and kills a running check (daemon exit).
    pub(super) fn shutdown(&mut self) {
        self.checks.kill_all();
        if let Some(s) = self.staged.take() {
            let _ = std::fs::remove_file(&s.path);
        }
    }
}

impl Daemon {
    /// `sync FILE` / `verify-cluster FILE`: starts this node's offer, answered when settled.
    pub(super) fn offer_request(&mut self, now: Instant, slot: usize, req: &Request) -> Answer {
        match self.start_own_offer(now, req) {
            Ok(()) => {
                self.offer_io.waiter = Some((slot, now));
                Answer::Later
            }
            Err(why) => {
                ::log::warn!("operator: {}: refused: {why}", req.line());
                Answer::Now(error(&why))
            }
        }
    }

    fn start_own_offer(&mut self, now: Instant, req: &Request) -> Result<(), String> {
        let (mode, file) = match req {
            Request::Sync { file } => (OfferMode::Install, file),
            Request::VerifyCluster { file } => (OfferMode::Verify, file),
            _ => unreachable!("only sync and verify-cluster are offers"),
        };
        if !self.keyed {
            return Err(
                "the cluster runs without a key: a configuration offer would travel \
                        unauthenticated and anyone on the network could push one; set \
                        cluster.key_file on every node first"
                    .into(),
            );
        }
        if self.offer_io.waiter.is_some() {
            return Err(
                "this node's previous offer is still under way; try again once it is answered"
                    .into(),
            );
        }
        let path = PathBuf::from(file);
        if mode == OfferMode::Install {
            let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            if canon(&path) != canon(&self.config.file) {
                return Err(format!(
                    "sync pushes the config this daemon runs, {}; edit that file (or run the \
                     daemon with -c {file})",
                    self.config.file.display()
                ));
            }
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {file}: {e}"))?;
        if bytes.len() > CONFIG_MAX {
            return Err(format!(
                "{file} is {} bytes; an offer carries at most {CONFIG_MAX}",
                bytes.len()
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| format!("{file} is not UTF-8 text"))?;
        let node = self.local_name().to_owned();
        let new = config::parse(&path, &text, Some(&node))
            .map_err(|e| format!("the file does not load here: {e}"))?;
        let spec = self.node.spec();
        let peers = || {
            spec.nodes
                .iter()
                .map(|n| n.id)
                .filter(|&id| id != self.node.local())
        };
        let up = |id: NodeId| {
            spec.node_index(id)
                .is_some_and(|i| self.node.peers()[i].state == crate::core::node::PeerState::Up)
        };
        let targets: NodeSet = if mode == OfferMode::Install {
            let why = restart_needed(&self.config, &new);
            if !why.is_empty() {
                return Err(format!(
                    "this change needs a restart of every node (it changes {}); sync applies \
                     only what a reload can: install the file on each node and restart them",
                    why.join("; ")
                ));
            }
            if let Some(down) = peers().find(|&id| !up(id)) {
                return Err(format!(
                    "node {} is not up: sync needs every node (one that misses it would run \
                     another config); start it, or wait for it",
                    report::node_name(&self.node, down)
                ));
            }
            peers().collect()
        } else {
            peers().filter(|&id| up(id)).collect()
        };
        let hash = new.spec.config_hash;
        match self
            .node
            .start_offer(now, mode, text.as_bytes(), hash, targets)
        {
            Ok(id) => {
                ::log::info!(
                    "operator: {}: offer {id} of config {hash:016x} ({} bytes) to {}",
                    req.line(),
                    text.len(),
                    report::member_names(&self.node, targets.bits())
                );
                self.offer_io.own_reload = None;
                Ok(())
            }
            Err(OfferRefusal::NoKey) => Err("the cluster runs without a key".into()),
            Err(OfferRefusal::Start(e)) => Err(match e {
                StartError::Busy => "this node's previous offer is still under way".into(),
                StartError::Size => format!("{file} is empty or too large"),
                StartError::NoTargets => "no other node is up to ask".into(),
                StartError::SelfTarget => {
                    "an offer goes to the other nodes, not to this one".into()
                }
                StartError::Unreachable(n) => format!(
                    "node {} shares no Ethernet or UDP path with this node (offers do not \
                     travel on serial lines or disks)",
                    report::node_name(&self.node, n)
                ),
            }),
        }
    }

    /// An offer event from the core.
    pub(super) fn offer_event(&mut self, registry: &mio::Registry, now: Instant, event: Event) {
        match event {
            Event::OfferReceived { .. } => self.stage_offer(registry, now),
            Event::OfferCommit { origin, id } if origin == self.node.local() => {
                let offered = self.node.offers().own().map_or(0, |o| o.hash);
                let r = match self.reload(now) {
                    Ok(what) if self.config.spec.config_hash == offered => what,
                    Ok(what) => format!(
                        "{what}; but the file changed while it was offered: this node runs {:016x}, the members {offered:016x}",
                        self.config.spec.config_hash
                    ),
                    Err(why) => format!("reload failed: {why}"),
                };
                ::log::info!("offer {id}: committed; this node: {r}");
                self.offer_io.own_reload = Some(r);
            }
            Event::OfferCommit { .. } => self.install_offer(now),
            Event::OfferDropped { .. } => self.unstage(),
            Event::OfferSettled { id, result } => self.answer_offer(registry, now, id, result),
            _ => {}
        }
    }

    /// A complete offer arrived: stage it and start its check.
    fn stage_offer(&mut self, registry: &mio::Registry, now: Instant) {
        self.unstage();
        let Some((offer, mode, bytes)) = self.node.offers().offered() else {
            return;
        };
        let target = self.config.file.clone();
        let dir = target.parent().unwrap_or(Path::new("/"));
        let name = target
            .file_name()
            .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
        let path = dir.join(format!(".{name}.offer-{}-{}", offer.origin, offer.id));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes));
        self.offer_io.staged = Some(Staged {
            offer,
            mode,
            path: path.clone(),
        });
        if let Err(e) = written {
            self.refuse_offer(
                now,
                offer,
                &format!("cannot stage the offer as {}: {e}", path.display()),
            );
            return;
        }
        let argv: Vec<OsString> = vec![
            "/proc/self/exe".into(),
            "offer-check".into(),
            "--file".into(),
            path.clone().into(),
            "--target".into(),
            target.into(),
            "--node".into(),
            self.local_name().into(),
            "--socket".into(),
            self.ctl.path().into(),
        ];
        let job = Job {
            run: Run::Exec(&argv),
            env: &[],
            timeout: CHECK_TIMEOUT,
            label: format!("offer {} of node id {}: check", offer.id, offer.origin),
            keep_output: true,
            cgroup: None,
        };
        if let Err(e) = self.offer_io.checks.spawn(registry, now, job, offer) {
            self.refuse_offer(now, offer, &format!("cannot start the check: {e}"));
        }
    }

    /// The check child ended: the verdict, plus whether a reload can apply the offer.
    pub(super) fn offer_checked(&mut self, registry: &mio::Registry, now: Instant, t: mio::Token) {
        if let Some(done) = self.offer_io.checks.on_event(registry, t) {
            self.offer_finished(now, done);
        }
    }

    /// The check child ended (or was abandoned at its timeout).
    pub(super) fn offer_finished(&mut self, now: Instant, done: Finished<OfferId>) {
        let offer = done.purpose;
        let Some(staged) = self.offer_io.staged.as_ref().filter(|s| s.offer == offer) else {
            return;
        };
        let (mode, path) = (staged.mode, staged.path.clone());
        // The offered bytes are still in the core (checked, not yet judged).
        let text = self
            .node
            .offers()
            .offered()
            .map(|(_, _, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let out = String::from_utf8_lossy(&done.output);
        let parsed = out
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<CheckVerdict>(l).ok());
        let Some(v) = parsed.filter(|_| done.exit.success()) else {
            let tail: String = out
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            self.refuse_offer(
                now,
                offer,
                &format!("the check failed ({}): {}", done.exit, tail.trim()),
            );
            return;
        };
        let hash = v
            .config_hash
            .as_deref()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        let mut findings = v.findings;
        let mut errors = v.errors;
        if mode == OfferMode::Install && errors == 0 {
            let node = self.local_name().to_owned();
            match config::parse(&path, &text, Some(&node)) {
                Ok(new) => {
                    let why = restart_needed(&self.config, &new);
                    if !why.is_empty() {
                        errors += 1;
                        findings = format!(
                            "error\tcluster\ta reload cannot apply it here: it changes {}\tinstall it on every node and restart\n{findings}",
                            why.join("; ")
                        );
                    }
                }
                Err(e) => {
                    errors += 1;
                    findings = format!("error\t\t{e}\t\n{findings}");
                }
            }
        }
        let accepted = errors == 0;
        ::log::info!(
            "offer {} of node id {}: {} ({errors} errors, {} warnings)",
            offer.id,
            offer.origin,
            if accepted { "accepted" } else { "refused" },
            v.warnings
        );
        if !(accepted && mode == OfferMode::Install) {
            self.unstage();
        }
        self.node.judge_offer(
            now,
            offer,
            Verdict {
                accepted,
                hash,
                errors,
                warnings: v.warnings,
                text: Text::new(&findings),
            },
        );
    }

    fn refuse_offer(&mut self, now: Instant, offer: OfferId, why: &str) {
        ::log::error!(
            "offer {} of node id {}: refused: {why}",
            offer.id,
            offer.origin
        );
        self.unstage();
        let findings = format!("error\thost\t{}\t\n", why.replace(['\t', '\n'], " "));
        self.node.judge_offer(
            now,
            offer,
            Verdict {
                accepted: false,
                hash: 0,
                errors: 1,
                warnings: 0,
                text: Text::new(&findings),
            },
        );
    }

    /// Commit: the staged file replaces the config, then a reload applies it.
    fn install_offer(&mut self, now: Instant) {
        let Some(staged) = self.offer_io.staged.take() else {
            return;
        };
        let offer = staged.offer;
        let (ok, text) = match std::fs::rename(&staged.path, &self.config.file) {
            Err(e) => {
                let _ = std::fs::remove_file(&staged.path);
                (
                    false,
                    format!("cannot install {}: {e}", self.config.file.display()),
                )
            }
            Ok(()) => match self.reload(now) {
                Ok(what) => {
                    ::log::info!(
                        "offer {} of node id {}: installed: {what}",
                        offer.id,
                        offer.origin
                    );
                    (true, String::new())
                }
                Err(why) => {
                    ::log::error!(
                        "offer {} of node id {}: installed, but {why}",
                        offer.id,
                        offer.origin
                    );
                    (false, format!("installed, but the reload said: {why}"))
                }
            },
        };
        self.node.offer_installed(now, offer, ok, &text);
    }

    /// Forgets what is staged here (abort, expiry, a newer offer).
    fn unstage(&mut self) {
        if let Some(s) = self.offer_io.staged.take() {
            let offer = s.offer;
            self.offer_io.checks.kill_where(|o| *o == offer);
            if let Err(e) = std::fs::remove_file(&s.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    ::log::warn!("cannot remove the staged offer {}: {e}", s.path.display());
                }
            }
        }
    }

    /// This node's offer is settled: answer the operator.
    fn answer_offer(
        &mut self,
        registry: &mio::Registry,
        now: Instant,
        id: u32,
        result: OfferResult,
    ) {
        let Some((slot, asked)) = self.offer_io.waiter.take() else {
            return;
        };
        let Some(own) = self.node.offers().own() else {
            return;
        };
        let members = own
            .targets
            .iter()
            .map(|t| {
                let a = self.node.offers().answer(t);
                MemberAnswer {
                    node: report::node_name(&self.node, t).to_owned(),
                    state: match a.state {
                        TargetState::Sending => "sending",
                        TargetState::Checking => "checking",
                        TargetState::Judged => "judged",
                        TargetState::Done => "done",
                        TargetState::Silent => "silent",
                    }
                    .into(),
                    accepted: a.verdict.map(|v| v.accepted),
                    config_hash: a
                        .verdict
                        .filter(|v| v.hash != 0)
                        .map(|v| format!("{:016x}", v.hash)),
                    errors: a.verdict.map_or(0, |v| v.errors),
                    warnings: a.verdict.map_or(0, |v| v.warnings),
                    findings: a
                        .verdict
                        .map(|v| v.text.lossy().into_owned())
                        .unwrap_or_default(),
                    installed: a.done.map(|(ok, _)| ok),
                    detail: a
                        .done
                        .map(|(_, t)| t.lossy().into_owned())
                        .unwrap_or_default(),
                }
            })
            .collect();
        let rep = OfferReport {
            result: result.name().into(),
            mode: report::mode_name(own.mode).into(),
            offer: id,
            origin: self.local_name().to_owned(),
            config_hash: format!("{:016x}", own.hash),
            elapsed_us: u64::try_from(now.saturating_since(asked).as_micros()).unwrap_or(u64::MAX),
            origin_reload: self.offer_io.own_reload.take(),
            members,
        };
        let bytes = serde_json::to_vec(&rep).expect("invariant: json serialises");
        self.ctl.respond(slot, bytes, registry);
    }
}
