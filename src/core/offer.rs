//! Configuration offers (DESIGN §7): `heartwire sync` and the cluster-wide half of
//! `heartwire verify`, as a two-phase exchange over the cluster's IP paths.
//!
//! The **origin** (the node the operator asked) sends its config in chunks to every
//! target. A **member** that has every chunk checks the SHA-256, says `received`, and
//! hands the bytes to its daemon, which checks them in a child process and gives the
//! verdict back ([`Offers::judge`]). The origin collects one verdict per target:
//! - verify: the verdicts are the result; nothing else happens;
//! - install: if every target accepted with the origin's own config hash, the origin
//!   sends `commit` until each target answered `done`; otherwise it sends `abort` and
//!   nothing is installed anywhere (members staged the file, they did not install it).
//!
//! Loss is handled by repetition, never by waiting: every copy of a message goes out on
//! every IP path shared with its target, the origin repeats what is unanswered every
//! [`RESEND`] (whole offer to targets that did not get it, one chunk as a poke to those
//! checking it), and members answer every repeat with their current state. Every stage
//! has a deadline. A member holds one offer at a time and refuses a second origin while
//! it holds an accepted, uncommitted one, so two concurrent syncs cannot interleave.
//!
//! No allocation after [`Offers::new`]: the config buffers and reply texts are fixed.

use core::time::Duration;

use sha2::{Digest, Sha256};

use super::event::{Event, OfferDrop, OfferResult};
use super::node::Dest;
use super::placement::NodeSet;
use super::spec::NodeId;
use super::time::Instant;
use crate::wire::MAX_NODES;
use crate::wire::offer::{CHUNK_MAX, CONFIG_MAX, OfferId, OfferMode, OfferMsg, TEXT_MAX};

/// How often the origin repeats what is unanswered, and the least time between two
/// repeats of a member's answer.
pub const RESEND: Duration = Duration::from_millis(250);
/// How long the origin waits for every verdict (a member's check probes the segment for
/// service addresses, about a second).
pub const VERDICT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the origin waits for every `done` after it committed.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a member waits for the missing chunks of an offer.
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a member keeps an accepted offer staged waiting for commit or abort.
pub const STAGE_TTL: Duration = Duration::from_secs(60);
/// How long a member remembers a settled offer to answer repeats of it.
pub const REMEMBER: Duration = Duration::from_secs(30);
/// Most frames sent in one burst; the rest follow after [`PACE`], so an offer never
/// holds the loop for long and heartbeats keep their slots.
pub const BURST: usize = 32;
/// Pause between bursts.
pub const PACE: Duration = Duration::from_millis(1);
/// Times an abort is sent (it is not acknowledged: a member that misses it drops the
/// staged file at [`STAGE_TTL`]).
const ABORT_ROUNDS: u32 = 3;

/// A path an offer may use: Ethernet or UDP, with this node on it.
#[derive(Debug, Clone, Copy)]
pub struct OfferPath {
    /// Index of the path in the config.
    pub index: usize,
    /// UDP (unicast to each node) rather than Ethernet (one multicast).
    pub udp: bool,
    /// Nodes on the path.
    pub nodes: NodeSet,
}

/// A reply text in a fixed buffer.
#[derive(Clone, Copy)]
pub struct Text {
    len: usize,
    buf: [u8; TEXT_MAX],
}

impl Text {
    const EMPTY: Text = Text {
        len: 0,
        buf: [0; TEXT_MAX],
    };

    /// `text`, cut at [`TEXT_MAX`] bytes (on a character boundary).
    pub fn new(text: &str) -> Text {
        let mut t = Text::EMPTY;
        let _ = core::fmt::Write::write_str(&mut t, text);
        t
    }

    fn set(&mut self, bytes: &[u8]) {
        self.len = bytes.len().min(TEXT_MAX);
        self.buf[..self.len].copy_from_slice(&bytes[..self.len]);
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text, with invalid UTF-8 replaced.
    pub fn lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.bytes())
    }
}

impl core::fmt::Debug for Text {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.lossy())
    }
}

impl core::fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let mut n = s.len().min(TEXT_MAX - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A verdict: what a member's check found.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// No errors, and the member can apply it by reload.
    pub accepted: bool,
    /// Config hash of the offered file as the member loaded it (0: it did not load).
    pub hash: u64,
    /// Errors found.
    pub errors: u16,
    /// Warnings found.
    pub warnings: u16,
    /// Reason or findings.
    pub text: Text,
}

/// Where one target of this node's offer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Not every chunk confirmed yet.
    Sending,
    /// It has the offer and is checking it.
    Checking,
    /// Its verdict arrived.
    Judged,
    /// It answered the commit.
    Done,
    /// It went down, or did not answer before the phase's deadline.
    Silent,
}

/// One target's answers.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// Where it stands.
    pub state: TargetState,
    /// Its verdict, once in.
    pub verdict: Option<Verdict>,
    /// Its commit result, once in: installed and reloaded, or what failed.
    pub done: Option<(bool, Text)>,
}

const NO_ANSWER: Answer = Answer {
    state: TargetState::Sending,
    verdict: None,
    done: None,
};

/// The origin's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for verdicts.
    Offering,
    /// Committed; waiting for `done`.
    Committing,
    /// Finished with this result.
    Settled(OfferResult),
}

/// This node's own offer.
#[derive(Debug)]
struct Outgoing {
    offer: OfferId,
    mode: OfferMode,
    len: usize,
    sha: [u8; 32],
    hash: u64,
    targets: NodeSet,
    phase: Phase,
    deadline: Instant,
    resend_at: Instant,
    aborts_left: u32,
}

/// Where a member stands with an offer it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Chunks arriving.
    Receiving,
    /// Complete; the daemon is checking it.
    Checking,
    /// Judged (the verdict is in `verdict`).
    Judged,
    /// Commit received; the daemon is installing it.
    Installing,
    /// Installed (or failed: `done`).
    Done,
}

/// An offer this node holds as a member.
#[derive(Debug)]
struct Incoming {
    offer: OfferId,
    mode: OfferMode,
    total: usize,
    sha: [u8; 32],
    have: u128,
    stage: Stage,
    verdict: Option<Verdict>,
    done: Option<(bool, Text)>,
    /// When the current stage gives up (receive timeout, staging TTL, memory).
    expires: Instant,
}

/// What goes out next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    /// Chunk `i` of this node's offer.
    Chunk(usize),
    Commit,
    Abort,
    /// This member's current answer about the offer it holds.
    Reply,
    /// The answer held in `side`.
    Side,
}

/// A run of messages to a set of nodes, one copy per (path, destination).
#[derive(Debug, Clone, Copy)]
struct Round {
    msg: Msg,
    /// Index of the last chunk to send (chunk rounds).
    last_chunk: usize,
    targets: NodeSet,
    /// Position in the offer paths, and the last node sent to on a UDP path.
    path: usize,
    node: u8,
}

/// An answer about an offer this member does not hold as it is asked: a refusing verdict
/// (busy with another origin's offer) or a failed `done` (a commit for an offer it does
/// not have staged).
#[derive(Debug, Clone, Copy)]
struct Side {
    offer: OfferId,
    done: bool,
    text: Text,
}

/// One frame to send: its payload goes on config path `path` to `dest`; `bump` when it
/// is the last copy of its message on that path (the path's sequence number moves on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Send {
    /// Config path index.
    pub path: usize,
    /// Destination.
    pub dest: Dest,
    /// Last copy on this path.
    pub bump: bool,
    /// Payload length written.
    pub len: usize,
}

/// This node's own offer as the daemon reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnOffer {
    /// Its number.
    pub id: u32,
    /// Verify or install.
    pub mode: OfferMode,
    /// Where it stands.
    pub phase: Phase,
    /// The nodes asked.
    pub targets: NodeSet,
    /// The offered config's hash, as computed here.
    pub hash: u64,
}

/// Why this node cannot start an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// One of this node's offers is not settled yet.
    Busy,
    /// Empty or larger than [`CONFIG_MAX`].
    Size,
    /// A target shares no Ethernet or UDP path with this node.
    Unreachable(NodeId),
    /// No targets.
    NoTargets,
    /// This node among the targets (it has the config already; an offer to itself would
    /// be a frame addressed to itself).
    SelfTarget,
}

/// Both roles' state. See the module docs.
pub struct Offers {
    local: NodeId,
    incarnation: u32,
    paths: Vec<OfferPath>,
    next_id: u32,
    out: Option<Outgoing>,
    out_data: Box<[u8]>,
    answers: Box<[Answer]>,
    inc: Option<Incoming>,
    in_data: Box<[u8]>,
    /// The latest answer about an offer this member does not hold as asked.
    side: Option<Side>,
    /// What the origin sends (its offer, commit or abort).
    round: Option<Round>,
    /// What the member sends (its answer, or the side answer).
    reply: Option<Round>,
    reply_due: bool,
    side_due: bool,
    reply_sent_at: Option<Instant>,
    burst: usize,
    pace_at: Option<Instant>,
}

impl core::fmt::Debug for Offers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Offers")
            .field("out", &self.out)
            .field("inc", &self.inc)
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

impl Offers {
    /// Offer state for node `local` (in `incarnation`) on `paths` (its IP paths).
    pub fn new(local: NodeId, incarnation: u32, paths: Vec<OfferPath>) -> Offers {
        Offers {
            local,
            incarnation,
            paths,
            next_id: 1,
            out: None,
            out_data: vec![0; CONFIG_MAX].into_boxed_slice(),
            answers: vec![NO_ANSWER; MAX_NODES].into_boxed_slice(),
            inc: None,
            in_data: vec![0; CONFIG_MAX].into_boxed_slice(),
            side: None,
            round: None,
            reply: None,
            reply_due: false,
            side_due: false,
            reply_sent_at: None,
            burst: 0,
            pace_at: None,
        }
    }

    /// Starts offering `config` (whose hash is `hash` here) to `targets`. Returns the
    /// offer number.
    pub fn start(
        &mut self,
        now: Instant,
        mode: OfferMode,
        config: &[u8],
        hash: u64,
        targets: NodeSet,
    ) -> Result<u32, StartError> {
        // A refused offer may still be repeating its abort: a new offer replaces it (the
        // members drop an origin's older offer when a newer one arrives).
        if self
            .out
            .as_ref()
            .is_some_and(|o| !matches!(o.phase, Phase::Settled(_)))
        {
            return Err(StartError::Busy);
        }
        if config.is_empty() || config.len() > CONFIG_MAX {
            return Err(StartError::Size);
        }
        if targets.is_empty() {
            return Err(StartError::NoTargets);
        }
        if targets.contains(self.local) {
            return Err(StartError::SelfTarget);
        }
        if let Some(t) = targets
            .iter()
            .find(|&t| !self.paths.iter().any(|p| p.nodes.contains(t)))
        {
            return Err(StartError::Unreachable(t));
        }
        self.out_data[..config.len()].copy_from_slice(config);
        let offer = OfferId {
            origin: self.local.get(),
            incarnation: self.incarnation,
            id: self.next_id,
        };
        self.next_id += 1;
        self.answers.fill(NO_ANSWER);
        self.out = Some(Outgoing {
            offer,
            mode,
            len: config.len(),
            sha: Sha256::digest(config).into(),
            hash,
            targets,
            phase: Phase::Offering,
            deadline: now.saturating_add(VERDICT_TIMEOUT),
            resend_at: now.saturating_add(RESEND),
            aborts_left: 0,
        });
        self.round = Some(self.chunks_round(targets));
        Ok(offer.id)
    }

    /// Feeds a valid offer message from `from`. Events go to `events`.
    pub fn receive(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: &OfferMsg<'_>,
        events: &mut dyn FnMut(Event),
    ) {
        let me = self.local.get();
        match *msg {
            // The origin's own messages: only the origin may send them.
            OfferMsg::Chunk {
                offer,
                mode,
                total,
                offset,
                sha,
                targets,
                data,
            } if offer.origin == from.get() && targets & self.local.bit() != 0 => {
                self.chunk(now, offer, mode, (total, offset, sha, data), events);
            }
            OfferMsg::Commit { offer, sha } if offer.origin == from.get() => {
                self.commit(now, offer, sha, events);
            }
            OfferMsg::Abort { offer }
                if offer.origin == from.get()
                    && self.inc.as_ref().is_some_and(|i| i.offer == offer) =>
            {
                self.drop_incoming(OfferDrop::Aborted, events);
            }
            // Answers to this node's offer.
            OfferMsg::Checking { offer, to } if to == me => {
                if let Some(a) = self.answer_for(offer, from) {
                    if a.state == TargetState::Sending {
                        a.state = TargetState::Checking;
                    }
                }
            }
            OfferMsg::Verdict {
                offer,
                to,
                accepted,
                hash,
                errors,
                warnings,
                text,
            } if to == me => {
                let offering = self.phase() == Some(Phase::Offering);
                let Some(a) = self.answer_for(offer, from) else {
                    return;
                };
                if offering && a.verdict.is_none() && a.state != TargetState::Silent {
                    let mut t = Text::EMPTY;
                    t.set(text);
                    a.verdict = Some(Verdict {
                        accepted,
                        hash,
                        errors,
                        warnings,
                        text: t,
                    });
                    a.state = TargetState::Judged;
                    self.advance(now, events);
                }
            }
            OfferMsg::Done {
                offer,
                to,
                ok,
                text,
            } if to == me => {
                let committing = self.phase() == Some(Phase::Committing);
                let Some(a) = self.answer_for(offer, from) else {
                    return;
                };
                if committing && a.done.is_none() && a.state != TargetState::Silent {
                    let mut t = Text::EMPTY;
                    t.set(text);
                    a.done = Some((ok, t));
                    a.state = TargetState::Done;
                    self.advance(now, events);
                }
            }
            // Someone else's offer, or an answer meant for another node (Ethernet
            // multicast reaches everyone).
            _ => {}
        }
    }

    fn phase(&self) -> Option<Phase> {
        self.out.as_ref().map(|o| o.phase)
    }

    /// The answer slot of target `from` for this node's current offer `offer`.
    fn answer_for(&mut self, offer: OfferId, from: NodeId) -> Option<&mut Answer> {
        let o = self.out.as_ref()?;
        (o.offer == offer && o.targets.contains(from))
            .then(|| &mut self.answers[usize::from(from.get() - 1)])
    }

    fn chunk(
        &mut self,
        now: Instant,
        offer: OfferId,
        mode: OfferMode,
        (total, offset, sha, data): (u32, u32, [u8; 32], &[u8]),
        events: &mut dyn FnMut(Event),
    ) {
        let origin = NodeId::new(offer.origin).expect("invariant: origin checked by parse");
        if let Some(inc) = &self.inc {
            if inc.offer == offer {
                if inc.stage != Stage::Receiving {
                    // A repeat: the origin missed our answer, or pokes while we check.
                    self.repeat_reply(now);
                    return;
                }
            } else if inc.offer.origin != offer.origin && self.holding() {
                let (held, id) = (inc.offer.origin, inc.offer.id);
                let mut text = Text::EMPTY;
                let _ = core::fmt::write(
                    &mut text,
                    format_args!(
                        "busy: this node holds offer {id} of node id {held}; try again once it is settled"
                    ),
                );
                self.side_answer(
                    now,
                    Side {
                        offer,
                        done: false,
                        text,
                    },
                );
                return;
            } else {
                // The same origin moved on (a newer offer, or it restarted), or the
                // offer held is settled.
                self.drop_incoming(OfferDrop::Superseded, events);
            }
        }
        let inc = self.inc.get_or_insert(Incoming {
            offer,
            mode,
            total: total as usize,
            sha,
            have: 0,
            stage: Stage::Receiving,
            verdict: None,
            done: None,
            expires: now.saturating_add(RECEIVE_TIMEOUT),
        });
        if inc.total != total as usize || inc.sha != sha || inc.mode != mode {
            // The same offer number with other content: ignore the stray.
            return;
        }
        let at = offset as usize;
        self.in_data[at..at + data.len()].copy_from_slice(data);
        inc.have |= 1u128 << (at / CHUNK_MAX);
        inc.expires = now.saturating_add(RECEIVE_TIMEOUT);
        if inc.have != chunk_bits(inc.total) {
            return;
        }
        let digest: [u8; 32] = Sha256::digest(&self.in_data[..inc.total]).into();
        if digest != inc.sha {
            self.drop_incoming(OfferDrop::Corrupt, events);
            return;
        }
        inc.stage = Stage::Checking;
        inc.expires = Instant::MAX;
        events(Event::OfferReceived {
            origin,
            id: offer.id,
            mode,
        });
        self.send_reply(now);
    }

    /// Whether this member holds an offer another origin must not disturb: one being
    /// received, checked or installed, or accepted for install and not yet committed.
    fn holding(&self) -> bool {
        self.inc.as_ref().is_some_and(|i| match i.stage {
            Stage::Receiving | Stage::Checking | Stage::Installing => true,
            Stage::Judged => i.mode == OfferMode::Install && i.verdict.is_some_and(|v| v.accepted),
            Stage::Done => false,
        })
    }

    fn commit(
        &mut self,
        now: Instant,
        offer: OfferId,
        sha: [u8; 32],
        events: &mut dyn FnMut(Event),
    ) {
        let refuse = |why: &[u8]| {
            let mut text = Text::EMPTY;
            text.set(why);
            Side {
                offer,
                done: true,
                text,
            }
        };
        let Some(inc) = self.inc.as_mut().filter(|i| i.offer == offer) else {
            let side =
                refuse(b"no such offer staged here (expired or superseded): nothing installed");
            self.side_answer(now, side);
            return;
        };
        match inc.stage {
            Stage::Judged
                if inc.mode == OfferMode::Install
                    && inc.verdict.is_some_and(|v| v.accepted)
                    && inc.sha == sha =>
            {
                inc.stage = Stage::Installing;
                inc.expires = Instant::MAX;
                events(Event::OfferCommit {
                    origin: NodeId::new(offer.origin).expect("invariant: origin checked"),
                    id: offer.id,
                });
            }
            Stage::Done | Stage::Installing => self.repeat_reply(now),
            _ => {
                let side =
                    refuse(b"commit for an offer this node did not accept: nothing installed");
                self.side_answer(now, side);
            }
        }
    }

    /// The daemon's verdict on the offer it was handed ([`Event::OfferReceived`]).
    /// Ignored unless `offer` is still the one being checked.
    pub fn judge(&mut self, now: Instant, offer: OfferId, verdict: Verdict) {
        let Some(inc) = self
            .inc
            .as_mut()
            .filter(|i| i.offer == offer && i.stage == Stage::Checking)
        else {
            return;
        };
        inc.stage = Stage::Judged;
        inc.verdict = Some(verdict);
        let keep = if inc.mode == OfferMode::Install && verdict.accepted {
            STAGE_TTL
        } else {
            REMEMBER
        };
        inc.expires = now.saturating_add(keep);
        self.send_reply(now);
    }

    /// The daemon's result of installing a committed offer ([`Event::OfferCommit`]).
    pub fn installed(&mut self, now: Instant, offer: OfferId, ok: bool, text: &str) {
        let Some(inc) = self
            .inc
            .as_mut()
            .filter(|i| i.offer == offer && i.stage == Stage::Installing)
        else {
            return;
        };
        let mut t = Text::EMPTY;
        t.set(text.as_bytes());
        inc.stage = Stage::Done;
        inc.done = Some((ok, t));
        inc.expires = now.saturating_add(REMEMBER);
        self.send_reply(now);
    }

    /// `node` went down: as a target of this node's offer it will not answer; as the
    /// origin of the offer held here, an uncommitted offer is dropped.
    pub fn node_down(&mut self, now: Instant, node: NodeId, events: &mut dyn FnMut(Event)) {
        if let Some(o) = &self.out {
            let a = &mut self.answers[usize::from(node.get() - 1)];
            if o.targets.contains(node) && awaited(o.phase, a) {
                a.state = TargetState::Silent;
                self.advance(now, events);
            }
        }
        if self.inc.as_ref().is_some_and(|i| {
            i.offer.origin == node.get()
                && matches!(i.stage, Stage::Receiving | Stage::Checking | Stage::Judged)
        }) {
            self.drop_incoming(OfferDrop::OriginDown, events);
        }
    }

    /// Deadlines: the origin's repeats and phase timeout, the member's expiry.
    pub fn on_timer(&mut self, now: Instant, events: &mut dyn FnMut(Event)) {
        if let Some(inc) = self.inc.as_ref().filter(|i| i.expires <= now) {
            let staged = match inc.stage {
                Stage::Receiving => true,
                Stage::Judged => {
                    inc.mode == OfferMode::Install && inc.verdict.is_some_and(|v| v.accepted)
                }
                _ => false,
            };
            if staged {
                self.drop_incoming(OfferDrop::Expired, events);
            } else {
                self.inc = None;
            }
        }
        let Some(o) = self.out.as_mut() else {
            return;
        };
        if o.deadline <= now && !matches!(o.phase, Phase::Settled(_)) {
            for t in o.targets.iter() {
                let a = &mut self.answers[usize::from(t.get() - 1)];
                if awaited(o.phase, a) {
                    a.state = TargetState::Silent;
                }
            }
            self.advance(now, events);
            return;
        }
        if o.resend_at > now {
            return;
        }
        o.resend_at = now.saturating_add(RESEND);
        let (phase, targets) = (o.phase, o.targets);
        let waiting = |state: TargetState| -> NodeSet {
            targets
                .iter()
                .filter(|&t| self.answers[usize::from(t.get() - 1)].state == state)
                .collect()
        };
        let (sending, checking, judged) = (
            waiting(TargetState::Sending),
            waiting(TargetState::Checking),
            waiting(TargetState::Judged),
        );
        self.round = match phase {
            Phase::Offering if !sending.is_empty() => Some(self.chunks_round(sending)),
            Phase::Offering if !checking.is_empty() => {
                // A poke: one chunk, answered with the member's current state.
                let mut r = self.chunks_round(checking);
                r.msg = Msg::Chunk(r.last_chunk);
                Some(r)
            }
            Phase::Committing if !judged.is_empty() => Some(round(Msg::Commit, judged)),
            Phase::Settled(_) => {
                let o = self.out.as_mut().expect("invariant: matched above");
                if o.aborts_left == 0 {
                    return;
                }
                o.aborts_left -= 1;
                Some(round(Msg::Abort, targets))
            }
            _ => return,
        };
    }

    /// Moves the origin on when every target answered the current phase.
    fn advance(&mut self, now: Instant, events: &mut dyn FnMut(Event)) {
        let Some(o) = self.out.as_mut() else {
            return;
        };
        let answers = &self.answers;
        let each = |f: &dyn Fn(&Answer) -> bool| {
            o.targets
                .iter()
                .all(|t| f(&answers[usize::from(t.get() - 1)]))
        };
        if o.targets
            .iter()
            .any(|t| awaited(o.phase, &answers[usize::from(t.get() - 1)]))
        {
            return;
        }
        let next = match o.phase {
            Phase::Offering => {
                let agreed = each(&|a| a.verdict.is_some_and(|v| v.accepted && v.hash == o.hash));
                match (o.mode, agreed) {
                    (OfferMode::Verify, true) => Phase::Settled(OfferResult::Verified),
                    (OfferMode::Install, true) => Phase::Committing,
                    (_, false) => Phase::Settled(OfferResult::Refused),
                }
            }
            Phase::Committing if each(&|a| a.done.is_some_and(|(ok, _)| ok)) => {
                Phase::Settled(OfferResult::Installed)
            }
            Phase::Committing => Phase::Settled(OfferResult::Failed),
            Phase::Settled(_) => return,
        };
        o.phase = next;
        o.resend_at = now.saturating_add(RESEND);
        let (id, targets) = (o.offer.id, o.targets);
        match next {
            Phase::Committing => {
                o.deadline = now.saturating_add(COMMIT_TIMEOUT);
                self.round = Some(round(Msg::Commit, targets));
                events(Event::OfferCommit {
                    origin: self.local,
                    id,
                });
            }
            Phase::Settled(result) => {
                self.round = None;
                if result == OfferResult::Refused && o.mode == OfferMode::Install {
                    o.aborts_left = ABORT_ROUNDS - 1;
                    self.round = Some(round(Msg::Abort, targets));
                }
                events(Event::OfferSettled { id, result });
            }
            Phase::Offering => {}
        }
    }

    fn drop_incoming(&mut self, why: OfferDrop, events: &mut dyn FnMut(Event)) {
        if let Some(inc) = self.inc.take() {
            // A superseded offer that was settled here has nothing left to clean up.
            if why != OfferDrop::Superseded || matches!(inc.stage, Stage::Checking | Stage::Judged)
            {
                events(Event::OfferDropped {
                    origin: NodeId::new(inc.offer.origin).expect("invariant: origin checked"),
                    id: inc.offer.id,
                    why,
                });
            }
            self.reply_due = false;
            self.reply = None;
        }
    }

    fn send_reply(&mut self, now: Instant) {
        self.reply_due = true;
        self.reply_sent_at = Some(now);
    }

    /// Answers a repeat, at most once per [`RESEND`].
    fn repeat_reply(&mut self, now: Instant) {
        if self
            .reply_sent_at
            .is_none_or(|t| now.saturating_since(t) >= RESEND)
        {
            self.send_reply(now);
        }
    }

    fn side_answer(&mut self, now: Instant, side: Side) {
        let repeat = self.side.is_some_and(|s| s.offer == side.offer);
        if repeat
            && self
                .reply_sent_at
                .is_some_and(|t| now.saturating_since(t) < RESEND)
        {
            return;
        }
        self.side = Some(side);
        self.side_due = true;
        self.reply_sent_at = Some(now);
    }

    fn chunks_round(&self, targets: NodeSet) -> Round {
        let len = self.out.as_ref().map_or(1, |o| o.len);
        Round {
            last_chunk: len.div_ceil(CHUNK_MAX) - 1,
            ..round(Msg::Chunk(0), targets)
        }
    }

    /// The next frame to send: writes its payload into `payload` (at least
    /// [`crate::wire::frame::PAYLOAD_MAX`] bytes). After [`BURST`] frames it pauses for
    /// [`PACE`] (see [`Offers::next_deadline`]).
    pub fn poll(&mut self, now: Instant, payload: &mut [u8]) -> Option<Send> {
        match self.pace_at {
            Some(t) if t > now => return None,
            Some(_) => (self.pace_at, self.burst) = (None, 0),
            None => {}
        }
        loop {
            if self.round.is_none() && self.reply.is_none() {
                let origin = |o: OfferId| NodeSet::from_iter(NodeId::new(o.origin));
                if let Some(inc) = self.inc.as_ref().filter(|_| self.reply_due) {
                    self.reply_due = false;
                    self.reply = Some(round(Msg::Reply, origin(inc.offer)));
                } else if let Some(side) = self.side.filter(|_| self.side_due) {
                    self.side_due = false;
                    self.reply = Some(round(Msg::Side, origin(side.offer)));
                } else {
                    self.burst = 0;
                    return None;
                }
            }
            let r = match (self.round.as_mut(), self.reply.as_mut()) {
                (Some(r), _) | (None, Some(r)) => r,
                (None, None) => unreachable!("invariant: one is set above"),
            };
            let Some((path, dest, bump)) = next_copy(&self.paths, r) else {
                match r.msg {
                    Msg::Chunk(i) if i < r.last_chunk => {
                        r.msg = Msg::Chunk(i + 1);
                        (r.path, r.node) = (0, 0);
                    }
                    Msg::Reply | Msg::Side => self.reply = None,
                    _ => self.round = None,
                }
                continue;
            };
            let msg = r.msg;
            let Some(m) = self.message(msg) else {
                match msg {
                    Msg::Reply | Msg::Side => self.reply = None,
                    _ => self.round = None,
                }
                continue;
            };
            let len = m.emit(payload);
            self.burst += 1;
            if self.burst >= BURST {
                self.pace_at = Some(now.saturating_add(PACE));
            }
            return Some(Send {
                path,
                dest,
                bump,
                len,
            });
        }
    }

    /// The wire form of `msg`, if it still means something.
    fn message(&self, msg: Msg) -> Option<OfferMsg<'_>> {
        match msg {
            Msg::Chunk(i) => {
                let o = self.out.as_ref()?;
                let at = i * CHUNK_MAX;
                Some(OfferMsg::Chunk {
                    offer: o.offer,
                    mode: o.mode,
                    total: u32::try_from(o.len).expect("invariant: <= CONFIG_MAX"),
                    offset: u32::try_from(at).expect("invariant: <= CONFIG_MAX"),
                    sha: o.sha,
                    targets: o.targets.bits(),
                    data: &self.out_data[at..o.len.min(at + CHUNK_MAX)],
                })
            }
            Msg::Commit => self.out.as_ref().map(|o| OfferMsg::Commit {
                offer: o.offer,
                sha: o.sha,
            }),
            Msg::Abort => self
                .out
                .as_ref()
                .map(|o| OfferMsg::Abort { offer: o.offer }),
            Msg::Reply => {
                let inc = self.inc.as_ref()?;
                let (offer, to) = (inc.offer, inc.offer.origin);
                match (inc.stage, &inc.verdict, &inc.done) {
                    (Stage::Checking | Stage::Installing, _, _) => {
                        Some(OfferMsg::Checking { offer, to })
                    }
                    (Stage::Judged, Some(v), _) => Some(OfferMsg::Verdict {
                        offer,
                        to,
                        accepted: v.accepted,
                        hash: v.hash,
                        errors: v.errors,
                        warnings: v.warnings,
                        text: v.text.bytes(),
                    }),
                    (Stage::Done, _, Some((ok, text))) => Some(OfferMsg::Done {
                        offer,
                        to,
                        ok: *ok,
                        text: text.bytes(),
                    }),
                    _ => None,
                }
            }
            Msg::Side => {
                let s = self.side.as_ref()?;
                let (offer, to, text) = (s.offer, s.offer.origin, s.text.bytes());
                Some(if s.done {
                    OfferMsg::Done {
                        offer,
                        to,
                        ok: false,
                        text,
                    }
                } else {
                    OfferMsg::Verdict {
                        offer,
                        to,
                        accepted: false,
                        hash: 0,
                        errors: 1,
                        warnings: 0,
                        text,
                    }
                })
            }
        }
    }

    /// The earliest time [`Offers::on_timer`] or [`Offers::poll`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let out = self.out.as_ref().and_then(|o| match o.phase {
            Phase::Settled(_) if o.aborts_left == 0 => None,
            Phase::Settled(_) => Some(o.resend_at),
            _ => Some(o.deadline.min(o.resend_at)),
        });
        [out, self.inc.as_ref().map(|i| i.expires), self.pace_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The offer this member was handed to check: its id, mode and bytes.
    pub fn offered(&self) -> Option<(OfferId, OfferMode, &[u8])> {
        let inc = self.inc.as_ref()?;
        (inc.stage != Stage::Receiving).then(|| (inc.offer, inc.mode, &self.in_data[..inc.total]))
    }

    /// This node's own offer, the latest one.
    pub fn own(&self) -> Option<OwnOffer> {
        self.out.as_ref().map(|o| OwnOffer {
            id: o.offer.id,
            mode: o.mode,
            phase: o.phase,
            targets: o.targets,
            hash: o.hash,
        })
    }

    /// A target's answers to this node's offer.
    pub fn answer(&self, node: NodeId) -> &Answer {
        &self.answers[usize::from(node.get() - 1)]
    }
}

/// Whether the origin, in `phase`, still waits for this target's answer.
fn awaited(phase: Phase, a: &Answer) -> bool {
    match phase {
        Phase::Offering => a.verdict.is_none() && a.state != TargetState::Silent,
        Phase::Committing => a.done.is_none() && a.state != TargetState::Silent,
        Phase::Settled(_) => false,
    }
}

fn round(msg: Msg, targets: NodeSet) -> Round {
    Round {
        msg,
        last_chunk: 0,
        targets,
        path: 0,
        node: 0,
    }
}

/// Bits 0..n-1 for an offer of `total` bytes.
fn chunk_bits(total: usize) -> u128 {
    let n = total.div_ceil(CHUNK_MAX);
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// The next (path, destination) of the current message of `r`: one multicast per
/// Ethernet path that reaches a target, one unicast per target on each UDP path.
fn next_copy(paths: &[OfferPath], r: &mut Round) -> Option<(usize, Dest, bool)> {
    while let Some(p) = paths.get(r.path) {
        let on = NodeSet::from_bits(p.nodes.bits() & r.targets.bits());
        let next = on.iter().find(|t| t.get() > r.node);
        match next {
            Some(_) if !p.udp => {
                (r.path, r.node) = (r.path + 1, 0);
                return Some((p.index, Dest::All, true));
            }
            Some(t) => {
                r.node = t.get();
                let last = !on.iter().any(|u| u.get() > t.get());
                return Some((p.index, Dest::Node(t), last));
            }
            None => (r.path, r.node) = (r.path + 1, 0),
        }
    }
    None
}

#[cfg(test)]
#[path = "offer_tests.rs"]
mod tests;
