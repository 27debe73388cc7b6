//! The node: heartbeat sender and failure detector (DESIGN §4).
//!
//! Driving order, for the daemon and the simulator alike:
//! 1. feed every received frame with [`Node::handle_frame`] (drain every socket first:
//!    silence is judged by kernel arrival times, never by when the loop looked);
//! 2. when `now >= next_deadline()`, call [`Node::handle_timeout`];
//! 3. drain [`Node::poll_action`] until `None`, carrying out each action;
//! 4. arm the timer for [`Node::next_deadline`].
//!
//! Detection is per (peer, path): a link is down when nothing valid arrived for the path's
//! timeout; a peer is down when all its links are. A loop wake-up later than the pause
//! threshold is a local pause: it is reported and every silence is extended by it, so a
//! slow observer never declares a live peer dead.
//!
//! On top of detection the node runs membership (`membership`) and its resource groups
//! (`groups`): resource operations come out of `poll_action` as [`Action::Resource`] and
//! their outcome goes back in through [`Node::resource_done`].

use core::time::Duration;
use std::collections::VecDeque;

use super::authority::{Authority, Consequence, TieStep};
use super::churn::Churn;
use super::event::{DropCounters, DropReason, Event};
use super::groups::{
    self, Context, Groups, LocalGroup, ResourceRequest, Standing, UnexpectedCompletion,
};
use super::link::{Link, LinkState, SeqCheck};
use super::maintenance::{Heard, Maintenance};
use super::membership::{Membership, View, ViewMsg, ViewMsgKind};
use super::offer::{OfferPath, Offers, StartError, Verdict};
use super::operator::{self, Command, CommandState, Pin};
use super::placement::{NodeSet, Plan};
use super::spec::{ClusterSpec, GroupSpec, NodeId, PathKind};
use super::time::{Instant, nanos};
use crate::wire::MAX_PATHS;
use crate::wire::auth::AuthKey;
use crate::wire::command::CommandRepr;
use crate::wire::frame::{FRAME_MAX, Frame, HeaderRepr, Kind};
use crate::wire::heartbeat::{CompactRepr, Echo, FULL_EVERY, HeartbeatRepr};
use crate::wire::notice::Cause;
use crate::wire::offer::{OfferId, OfferMode, OfferMsg};
use crate::wire::state::{self as state_block, StateRepr};
use crate::wire::view::ViewRepr;

/// Past incarnations remembered per peer: frames from them are replays.
const PAST_INCARNATIONS: usize = 4;

/// Events buffered between two drains of `poll_action`. One handle call produces at most
/// two per link plus a few per peer, far below this.
const EVENT_QUEUE_MAX: usize = 2048;

/// Why this node cannot start a configuration offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferRefusal {
    /// The cluster runs without a key.
    NoKey,
    /// See [`StartError`].
    Start(StartError),
}

/// Where a transmit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// Every node on the path (the cluster multicast address on Ethernet).
    All,
    /// One node (UDP unicast).
    Node(NodeId),
}

/// A request from the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the first `len` bytes of the buffer given to `poll_action` on path `path`.
    Transmit {
        /// Path index.
        path: u8,
        /// Destination.
        dest: Dest,
        /// Frame length in the buffer.
        len: usize,
    },
    /// Start or stop a resource; report the outcome with [`Node::resource_done`].
    Resource(ResourceRequest),
    /// Fence group `group` now, without waiting for anything: remove its service
    /// addresses and SIGKILL its applications' process groups (this node lost authority;
    /// the release that follows runs the stop commands to clean up). Nothing to report.
    Fence {
        /// Group index.
        group: u8,
    },
    /// Halt this node now (see [`Halt`]).
    Halt(Halt),
    /// Keep, where the next daemon on this host reads it ([`Node::resume_promise`]), that
    /// this node agreed to view (`number`, `members`) and to nothing newer; before any
    /// action that follows (the frames that follow may carry the agreement). A new
    /// daemon that forgot it could vouch for a view its predecessor had left.
    Promise {
        /// View number.
        number: u64,
        /// Members (bitmap by node id).
        members: u64,
    },
    /// Run this tie-breaker step; a race's outcome comes back through
    /// [`Node::tie_breaker_result`].
    TieBreaker(TieStep),
    /// Announce group `group`'s service addresses again (gratuitous ARP / unsolicited
    /// NA): nodes joined the view, and one of them may have held and announced the group
    /// while it was cut off from this node; its release does not move the neighbours'
    /// caches back.
    Announce {
        /// Group index.
        group: u8,
    },
    /// Report an event decided at `at`.
    Event {
        /// Decision time.
        at: Instant,
        /// What happened.
        event: Event,
    },
}

/// Why the core halts the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// The release of fenced group `group` did not end within its bound (or failed), and
    /// a gainer may take it once the bound has passed.
    ReleaseBound {
        /// Group index.
        group: u8,
    },
    /// Authority was lost (or the tie-breaker race) and `on_quorum_loss = "halt"`.
    QuorumLoss,
}

/// What this node believes about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Not heard yet, still within the startup grace.
    Unknown,
    /// Heard on at least one path.
    Up,
    /// Silent on every path.
    Down,
}

impl PeerState {
    /// Status name.
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Unknown => "unknown",
            PeerState::Up => "up",
            PeerState::Down => "down",
        }
    }
}

/// A peer and its links. Read-only outside the core.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its id.
    pub id: NodeId,
    /// Up, down or not yet known.
    pub state: PeerState,
    /// When `state` last changed.
    pub since: Instant,
    /// Current incarnation, once heard.
    pub incarnation: Option<u32>,
    past: [u32; PAST_INCARNATIONS],
    past_len: usize,
    /// Restarts seen (incarnation changes).
    pub restarts: u64,
    /// Newest sender timestamp seen from the current incarnation.
    pub newest_sent_ns: u64,
    /// Its config hash, from its last heartbeat.
    pub config_hash: Option<u64>,
    /// Its current incarnation ran this node's config at some time: it may stay in, or
    /// join, this node's views although its hash differs now (a reload in place, as
    /// `sync` does, keeps a member). A node that starts with another config is not
    /// admitted until the configs agree (review S7: a rolling restart that grew the
    /// node list made two quorate views with no partition at all).
    pub config_matched: bool,
    /// One link per path (first `paths.len()` are used).
    pub links: [Link; MAX_PATHS],
    /// Its newest node-state block (membership and holdings), ordered by generation.
    pub report: Option<StateRepr>,
    /// Arrival of the newest frame carrying `report`.
    pub report_at: Option<Instant>,
    /// Views it agreed to, each with the arrival of the newest frame that said so: its
    /// word for a view outlives its ack of the next one by up to a lease (see
    /// `Node::lease_end`). The first is its newest word; of the older ones, those for this
    /// node's installed and previous views are kept before any other (see
    /// [`Peer::vouch`]).
    vouches: [Vouch; 3],
    /// Newest command id taken from its current incarnation: the operator's, and those
    /// asked for fatal failures (`node_commands::FATAL_IDS`).
    command_ids: [u32; 2],
    /// Per path, whom it heard there, from its last full heartbeat.
    pub heard: [u64; MAX_PATHS],
    /// The nodes it hears but keeps out of its views (another config), from its last
    /// full heartbeat.
    pub refuses: u64,
    /// Networks reported down to it (`NetworkDown` without `NetworkUp` since).
    pub networks_down: u64,
    /// Its sentinel's death notice for its last incarnation was taken: that daemon is
    /// gone and its host fenced, so it holds nothing and no lease of it is waited for.
    /// Cleared when a new incarnation is heard.
    pub fenced: bool,
}

impl Peer {
    /// Incarnation `inc` is over (a restart or a death notice): frames of it are stale
    /// from now on, and what it said — its report, its word for views, its commands,
    /// its sequence numbers — no longer counts (a restart keeps the word it gave until
    /// its lease ends: see `Node::restart_peer`).
    fn end_incarnation(&mut self, inc: u32) {
        self.past.rotate_right(1);
        self.past[0] = inc;
        self.past_len = (self.past_len + 1).min(PAST_INCARNATIONS);
        self.newest_sent_ns = 0;
        self.report = None;
        self.report_at = None;
        self.vouches = [Vouch::default(); 3];
        self.command_ids = [0; 2];
        self.config_matched = false;
        for link in &mut self.links {
            link.replay = Default::default();
            link.last_transit_ns = None;
            link.echo_src = None;
            link.peer_hears_us = None;
        }
    }
}

/// The death notice a sentinel sends on `path` for daemon `incarnation` of node `local`
/// (DESIGN §4 "The sentinel"), written into `buf` (at least [`FRAME_MAX`] bytes);
/// returns its length. Only keyed clusters believe one, so `key` is required.
pub fn death_notice(
    spec: &ClusterSpec,
    key: &AuthKey,
    (local, incarnation): (NodeId, u32),
    path: usize,
    now: Instant,
    cause: Cause,
    buf: &mut [u8],
) -> usize {
    let header = HeaderRepr {
        kind: Kind::DeathNotice,
        cluster: spec.cluster_id,
        node: local.get(),
        path: path_id(path),
        incarnation,
        // Not checked: a notice is idempotent (it only ever says this incarnation is over).
        seq: 0,
        timestamp_ns: now.as_nanos(),
    };
    header
        .emit(buf, crate::wire::notice::LEN, Some(key), |p| cause.emit(p))
        .expect("invariant: buf holds FRAME_MAX bytes")
}

/// A view a peer agreed to, and when its word for it last arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Vouch {
    number: u64,
    members: u64,
    at: Instant,
}

impl Peer {
    /// A peer never heard from.
    pub(crate) fn new(id: NodeId, now: Instant) -> Peer {
        Peer {
            id,
            state: PeerState::Unknown,
            since: now,
            incarnation: None,
            past: [0; PAST_INCARNATIONS],
            past_len: 0,
            fenced: false,
            restarts: 0,
            newest_sent_ns: 0,
            config_hash: None,
            config_matched: false,
            links: [Link::new(now); MAX_PATHS],
            report: None,
            report_at: None,
            vouches: [Vouch::default(); 3],
            command_ids: [0; 2],
            heard: [0; MAX_PATHS],
            refuses: 0,
            networks_down: 0,
        }
    }

    fn last_heard(&self) -> Option<Instant> {
        self.links.iter().filter_map(|l| l.heard_at).max()
    }

    /// It said at `arrival` that the newest view it agreed to is (`number`, `members`).
    /// The older words kept are those for the views of `keep` (the local node's installed
    /// and previous views, which its lease counts), then others, in the order held. Keeping only
    /// the last two lost a member's word for the installed view when it agreed to two
    /// newer ones in quick succession (a proposal of its own, then another coordinator's,
    /// as a split healed): its mate lost its lease and released every group it held
    /// (sim `an_even_split_…`, seed 2).
    fn vouch(&mut self, number: u64, members: u64, arrival: Instant, keep: [(u64, u64); 2]) {
        let said = |v: &Vouch| (v.number, v.members) == (number, members);
        let mut next = [Vouch::default(); 3];
        next[0] = Vouch {
            number,
            members,
            at: self
                .vouches
                .iter()
                .find(|v| said(v))
                .map_or(arrival, |v| v.at.max(arrival)),
        };
        let mut n = 1;
        for kept in [true, false] {
            for v in &self.vouches {
                if n < next.len()
                    && v.members != 0
                    && !said(v)
                    && keep.contains(&(v.number, v.members)) == kept
                {
                    next[n] = *v;
                    n += 1;
                }
            }
        }
        self.vouches = next;
    }

    /// When its word for view (`number`, `members`) last arrived.
    fn vouched_at(&self, number: u64, members: u64) -> Option<Instant> {
        self.vouches
            .iter()
            .find(|v| v.number == number && v.members == members && v.members != 0)
            .map(|v| v.at)
    }
}

/// Per-path transmit state.
#[derive(Debug, Clone, Copy)]
struct Tx {
    next_at: Instant,
    seq: u32,
    /// Next peer index to unicast to in the current round (UDP).
    cursor: usize,
    /// Next peer index to consider for the echo (Ethernet).
    echo_rr: usize,
    frames: u64,
}

/// Incarnation of an arriving frame relative to what is known of its sender.
enum Incarnation {
    First,
    Same,
    Restart(u32),
    Stale,
}

/// What a valid frame carries.
enum Body<'a> {
    Heartbeat(HeartbeatRepr),
    Compact(CompactRepr),
    View(ViewMsgKind, View),
    State(StateRepr),
    Command(Command, Duration, u32),
    Offer(OfferMsg<'a>),
    /// A death notice from the sender's sentinel for the header's incarnation.
    Notice(Cause),
}

/// A non-heartbeat frame waiting to go out on every path.
#[derive(Debug, Clone, Copy)]
enum Outgoing {
    View(ViewMsg),
    /// This node's current state block (read when sent, so one queued entry suffices).
    State,
    /// An operator command asked of this node.
    Command(CommandRepr),
}

/// An operator command asked of this node, until it is done or expires.
#[derive(Debug, Clone, Copy)]
struct Asked {
    command: Command,
    repr: CommandRepr,
    deadline: Instant,
    resend_at: Instant,
    state: CommandState,
}

/// A frame that passed every stateless check.
struct Valid<'a> {
    peer: usize,
    header: HeaderRepr,
    body: Body<'a>,
}

/// Membership and group-state frames waiting to go out (bounded; see `push_out`).
const OUTBOX_MAX: usize = 64;

/// One cluster node's detector. See the module docs for the driving order.
#[derive(Debug)]
pub struct Node {
    spec: ClusterSpec,
    local: NodeId,
    local_idx: usize,
    incarnation: u32,
    key: Option<AuthKey>,
    grace_from: Instant,
    peers: Vec<Peer>,
    tx: Vec<Tx>,
    drops: Vec<DropCounters>,
    events: VecDeque<(Instant, Event)>,
    /// Events or membership messages dropped because a bounded queue was full.
    overflows: u64,
    /// Something that feeds the membership decision changed since it last ran.
    membership_dirty: bool,
    pauses: u64,
    pause_total: Duration,
    membership: Membership,
    configured: NodeSet,
    out: VecDeque<Outgoing>,
    /// Progress through the head of `out`: (path index, next peer index for UDP).
    out_cursor: (usize, usize),
    /// A group-state frame is queued in `out`.
    state_queued: bool,
    groups: Groups,
    /// Something that feeds the groups' decision changed since they last ran.
    groups_dirty: bool,
    /// When the installed view was installed here.
    installed_at: Instant,
    /// How often this node installs a new view (status shows the rate).
    churn: Churn,
    /// Generation of the published state block, and what it covered.
    generation: u64,
    published: Published,
    /// Operator commands pinned per group (see `operator`).
    pins: Vec<Option<Pin>>,
    /// The command asked of this node, if any.
    asked: Option<Asked>,
    /// The `offline` this node asked itself for groups that failed fatally here.
    fatal_asked: Option<Asked>,
    /// Groups that failed fatally here, whose `offline` is not asked yet.
    fatal: u64,
    /// Id of the last command asked of this node in this incarnation.
    command_id: u32,
    /// Count of the commands this node asked for fatal failures (their ids: with
    /// `node_commands::FATAL_IDS`).
    fatal_command_id: u32,
    /// Networks whose every local adapter is without carrier (from the daemon).
    carrier_lost: u64,
    /// Networks this node lost (published in its state block).
    lost: u64,
    /// Something that feeds `lost` changed.
    lost_dirty: bool,
    /// Configuration offers, as origin and as member.
    offers: Offers,
    /// Maintenance mode (see `maintenance`).
    maintenance: Maintenance,
    /// Stopping in maintenance, it leaves its resources to the next daemon here
    /// (`Node::stop`).
    keeps_resources: bool,
    /// The tie-breaker steps and `on_quorum_loss` (see `authority`).
    authority: Authority,
    /// `on_quorum_loss` ordered a halt, not yet polled.
    halt: bool,
    /// `on_quorum_loss = "stop"` made this node leave.
    left_for_quorum_loss: bool,
    /// The agreement last handed out as [`Action::Promise`]: (number, members).
    promised: (u64, u64),
    /// Members of the view installed before the current one.
    prev_members: NodeSet,
    /// Groups to announce again (see [`Action::Announce`]).
    reannounce: u64,
    /// The peers that came up here less than a lease ago (published in the state block;
    /// see [`Node::joining`]).
    joining_here: NodeSet,
    /// When a heartbeat last said some node holds off a joining node (its own, or the
    /// state block of an admitted peer with a `joining` set).
    joining_seen: Instant,
}

/// What a published state block covered: every field but the generation and the highest
/// view number seen (which heartbeats carry as it is; a change of it alone decides
/// nothing). The agreed members were not covered: a block that changed only in them kept
/// its generation (review P3).
type Published = StateRepr;

impl Node {
    /// A node `local` of the cluster `spec`, starting at `now` with a fresh `incarnation`.
    ///
    /// # Panics
    /// If `spec` is invalid or does not contain `local` (config validates both first).
    pub fn new(
        spec: ClusterSpec,
        local: NodeId,
        incarnation: u32,
        key: Option<AuthKey>,
        now: Instant,
    ) -> Node {
        spec.assert_valid();
        let local_idx = spec.node_index(local).expect("local node is in the spec");
        let peers = spec.nodes.iter().map(|n| Peer::new(n.id, now)).collect();
        // No heartbeats on a path this node is not on (a serial line between two others).
        let tx = spec
            .paths
            .iter()
            .map(|p| Tx {
                next_at: if p.nodes.contains(local) {
                    now
                } else {
                    Instant::MAX
                },
                seq: 0,
                cursor: 0,
                echo_rr: 0,
                frames: 0,
            })
            .collect();
        let drops = vec![DropCounters::default(); spec.paths.len()];
        let configured: NodeSet = spec.nodes.iter().map(|n| n.id).collect();
        let configured_count = u32::try_from(spec.nodes.len()).expect("invariant: <= 64 nodes");
        let two_node = spec.two_node;
        let (spec_policy, spec_tie_breaker) = (spec.on_quorum_loss, spec.tie_breaker);
        let groups = Groups::new(spec.groups.clone(), now);
        let group_count = spec.groups.len();
        let offer_paths = spec
            .paths
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind.carries_offers() && p.nodes.contains(local))
            .map(|(index, p)| OfferPath {
                index,
                udp: p.kind == PathKind::Udp,
                nodes: p.nodes,
            })
            .collect();
        Node {
            offers: Offers::new(local, incarnation, offer_paths),
            spec,
            local,
            local_idx,
            incarnation,
            key,
            grace_from: now,
            peers,
            tx,
            drops,
            events: VecDeque::with_capacity(EVENT_QUEUE_MAX),
            overflows: 0,
            membership_dirty: true,
            pauses: 0,
            pause_total: Duration::ZERO,
            membership: Membership::new(local, configured_count, two_node, group_count, now),
            configured,
            out: VecDeque::with_capacity(OUTBOX_MAX),
            out_cursor: (0, 0),
            state_queued: false,
            groups,
            groups_dirty: true,
            installed_at: now,
            churn: Churn::new(now),
            generation: 0,
            published: StateRepr::default(),
            joining_here: NodeSet::EMPTY,
            joining_seen: now,
            pins: vec![None; group_count],
            asked: None,
            fatal_asked: None,
            fatal: 0,
            command_id: 0,
            fatal_command_id: 0,
            carrier_lost: 0,
            lost: 0,
            lost_dirty: false,
            maintenance: Maintenance::default(),
            keeps_resources: false,
            authority: Authority::new(local, spec_policy, spec_tie_breaker, configured_count),
            halt: false,
            left_for_quorum_loss: false,
            prev_members: NodeSet::EMPTY,
            reannounce: 0,
            promised: (0, local.bit()),
        }
    }

    /// Starts this node with the promise the daemon before it on this host kept
    /// ([`Action::Promise`]): it agreed to view (`number`, `members`) and to nothing newer
    /// (see `Membership::resume_promise`). Call before the first frame or timeout.
    ///
    /// # Panics
    /// If the node already ran.
    pub fn resume_promise(&mut self, number: u64, members: u64) {
        assert_eq!(self.generation, 0, "resume_promise before the node runs");
        self.membership
            .resume_promise(number, NodeSet::from_bits(members));
        let agreed = self.membership.agreed();
        self.promised = (agreed.number, agreed.members.bits());
        self.membership_dirty = true;
    }

    /// Feeds one received frame that arrived on `path` at kernel time `arrival` (clamped to
    /// `now`). A frame that fails any check is counted under its reason and changes nothing.
    ///
    /// # Panics
    /// If `path` is not a configured path index.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        arrival: Instant,
        path: usize,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        assert!(path < self.spec.paths.len(), "path {path} not configured");
        let arrival = arrival.min(now);
        let result = self
            .validate(path, bytes)
            .and_then(|v| self.admit(now, arrival, path, &v));
        if let Err(reason) = result {
            self.drops[path].count(reason);
        }
        result
    }

    /// Counts a drop the daemon decided on before the core saw the frame (e.g. truncated
    /// by the socket buffer).
    pub fn count_drop(&mut self, path: usize, reason: DropReason) {
        self.drops[path].count(reason);
    }

    /// Stateless checks in DESIGN §3 order: structure, CRC, cluster, tag, sender, path,
    /// kind, payload.
    fn validate<'a>(&self, path: usize, bytes: &'a [u8]) -> Result<Valid<'a>, DropReason> {
        let frame = Frame::new_checked(bytes, self.key.is_some())?;
        frame.check_crc()?;
        if frame.cluster() != self.spec.cluster_id {
            return Err(DropReason::ForeignCluster);
        }
        frame.check_tag(self.key.as_ref())?;
        let sender = NodeId::new(frame.node()).ok_or(DropReason::UnknownNode)?;
        let peer = self
            .spec
            .node_index(sender)
            .ok_or(DropReason::UnknownNode)?;
        if peer == self.local_idx {
            return Err(DropReason::OwnNodeId);
        }
        if usize::from(frame.path()) != path || !self.spec.paths[path].nodes.contains(sender) {
            return Err(DropReason::WrongPath);
        }
        // Kinds taken only from authenticated senders: a death notice lets peers take over
        // at once; an offer changes the config (and travels on IP paths only).
        let keyless = self.key.is_none();
        let payload = frame.payload_ref();
        let trusted = match frame.kind() {
            Kind::DeathNotice if keyless => return Err(DropReason::RefusedNotice),
            Kind::DeathNotice => Some(Body::Notice(
                Cause::parse(payload).map_err(|_| DropReason::BadPayload)?,
            )),
            Kind::ConfigOffer if keyless || !self.spec.paths[path].kind.carries_offers() => {
                return Err(DropReason::RefusedOffer);
            }
            Kind::ConfigOffer => Some(Body::Offer(
                OfferMsg::parse(payload).map_err(|_| DropReason::BadPayload)?,
            )),
            _ => None,
        };
        if let Some(body) = trusted {
            return Ok(Valid {
                peer,
                header: frame.header(),
                body,
            });
        }
        let view_kind = match frame.kind() {
            Kind::Heartbeat | Kind::GroupState | Kind::Command => None,
            Kind::ViewPropose => Some(ViewMsgKind::Propose),
            Kind::ViewAck => Some(ViewMsgKind::Ack),
            Kind::ViewCommit => Some(ViewMsgKind::Commit),
            _ => return Err(DropReason::UnsupportedKind),
        };
        let payload = frame.payload();
        let body = match view_kind {
            None if frame.kind() == Kind::Heartbeat
                && self.spec.paths[path].kind == PathKind::Serial
                && payload.len() == crate::wire::heartbeat::COMPACT_LEN =>
            {
                Body::Compact(CompactRepr::parse(payload).map_err(|_| DropReason::BadPayload)?)
            }
            None if frame.kind() == Kind::Heartbeat => {
                Body::Heartbeat(HeartbeatRepr::parse(payload).map_err(|_| DropReason::BadPayload)?)
            }
            None if frame.kind() == Kind::Command => self.parse_command(payload)?,
            None => {
                Body::State(StateRepr::parse_exact(payload).map_err(|_| DropReason::BadPayload)?)
            }
            Some(kind) => Body::View(kind, self.parse_view(payload)?),
        };
        Ok(Valid {
            peer,
            header: frame.header(),
            body,
        })
    }

    /// A membership payload, checked against the config: only configured nodes can be
    /// members, a view is never empty, and its plan covers exactly the configured groups.
    fn parse_view(&self, payload: &[u8]) -> Result<View, DropReason> {
        let v = ViewRepr::parse(payload).map_err(|_| DropReason::BadPayload)?;
        let members = NodeSet::from_bits(v.members);
        if members.is_empty() || members.bits() & !self.configured.bits() != 0 {
            return Err(DropReason::BadPayload);
        }
        let groups = usize::from(v.groups);
        if groups != self.spec.groups.len() {
            return Err(DropReason::BadPayload);
        }
        let plan = Plan::from_codes(&v.plan[..groups]).ok_or(DropReason::BadPayload)?;
        Ok(View {
            number: v.number,
            members,
            plan,
        })
    }

    /// An operator command payload, checked against the config.
    fn parse_command(&self, payload: &[u8]) -> Result<Body<'static>, DropReason> {
        let r = CommandRepr::parse(payload).map_err(|_| DropReason::BadPayload)?;
        let cmd = Command::from_repr(&r, self.configured, self.spec.groups.len())
            .filter(|_| r.id != 0)
            .ok_or(DropReason::BadPayload)?;
        let valid = Duration::from_millis(u64::from(r.valid_ms));
        Ok(Body::Command(cmd, valid, r.id))
    }

    /// Whether a frame's incarnation is the current one, a restart, or stale. While the
    /// peer is up, a new incarnation is a restart only if its frame was sent later (sender
    /// clock) than the newest frame of the current one: a late or replayed frame of an
    /// older incarnation this node never saw must not replace the live one. A peer that is
    /// down (a reboot resets its clock) may come back with any new incarnation.
    fn classify_incarnation(&self, peer: usize, inc: u32, sent_ns: u64) -> Incarnation {
        let p = &self.peers[peer];
        if p.past[..p.past_len].contains(&inc) {
            return Incarnation::Stale;
        }
        match p.incarnation {
            None => Incarnation::First,
            Some(cur) if cur == inc => Incarnation::Same,
            Some(_) if p.state == PeerState::Up && sent_ns <= p.newest_sent_ns => {
                Incarnation::Stale
            }
            Some(cur) => Incarnation::Restart(cur),
        }
    }

    /// Replay checks, then the state changes of a valid frame.
    fn admit(
        &mut self,
        now: Instant,
        arrival: Instant,
        path: usize,
        v: &Valid,
    ) -> Result<(), DropReason> {
        self.plausible(now, v)?;
        let inc = v.header.incarnation;
        if let Body::Notice(cause) = v.body {
            self.take_notice(now, v.peer, inc, cause);
            self.settle(now);
            return Ok(());
        }
        match self.classify_incarnation(v.peer, inc, v.header.timestamp_ns) {
            Incarnation::Stale => return Err(DropReason::Replay),
            Incarnation::Same => {
                if self.peers[v.peer].links[path].replay.check(v.header.seq) == SeqCheck::Replay {
                    return Err(DropReason::Replay);
                }
            }
            Incarnation::First => {
                self.peers[v.peer].incarnation = Some(inc);
                self.peers[v.peer].fenced = false;
            }
            Incarnation::Restart(old) => self.restart_peer(now, v.peer, old, inc),
        }
        self.update_link(now, arrival, path, v);
        self.update_peer(now, v);
        match v.body {
            Body::View(kind, view) => {
                self.handle_view(now, v.peer, kind, view);
                self.membership_dirty = true;
            }
            Body::Heartbeat(hb) => self.update_report(arrival, v.peer, hb.state),
            Body::Compact(c) => self.renew_report(arrival, v.peer, c.generation),
            Body::State(state) => self.update_report(arrival, v.peer, state),
            Body::Offer(msg) => {
                let from = self.peers[v.peer].id;
                let Node {
                    offers,
                    events,
                    overflows,
                    ..
                } = self;
                offers.receive(now, from, &msg, &mut |e| {
                    push_event_to(events, overflows, now, e);
                });
            }
            Body::Notice(_) => unreachable!("notices are taken above"),
            Body::Command(cmd, valid, id) => {
                // Copies arrive on every path, and retransmissions repeat the id.
                let kind = usize::from(id & commands::FATAL_IDS != 0);
                if id > self.peers[v.peer].command_ids[kind] {
                    self.peers[v.peer].command_ids[kind] = id;
                    let from = self.peers[v.peer].id;
                    self.take_command(now, from, cmd, valid);
                }
            }
        }
        // A heartbeat that changed no link, peer or report state cannot change a decision:
        // skip the O(nodes x paths) alive computation on the hot path.
        self.settle(now);
        Ok(())
    }

    /// A peer's state block, from a heartbeat or a group-state frame that arrived at
    /// `arrival`. Older generations than the one held are ignored (frames overtake each
    /// other across paths).
    fn update_report(&mut self, arrival: Instant, idx: usize, state: StateRepr) {
        let lease = self.spec.lease();
        let keep = self.vouches_kept();
        let p = &mut self.peers[idx];
        if p.report.is_some_and(|r| r.generation > state.generation) {
            return;
        }
        // A changed report, or a renewal after the peer's word had lapsed, can change a
        // decision; a plain renewal cannot.
        if p.report != Some(state) {
            self.groups_dirty = true;
            self.membership_dirty = true;
        } else if p
            .report_at
            .is_none_or(|t| t.saturating_add(lease) <= arrival)
        {
            self.groups_dirty = true;
        }
        p.report = Some(state);
        p.report_at = Some(p.report_at.map_or(arrival, |t| t.max(arrival)));
        p.vouch(state.agreed_number, state.agreed, arrival, keep);
        if state.joining != 0 && p.config_matched {
            self.joining_seen = self.joining_seen.max(arrival);
        }
        self.hear_maintenance(arrival, state.maintenance);
        let p = &mut self.peers[idx];
        let id = p.id;
        if !p.config_matched {
            // Not admitted (another config): no view of this node is its to install.
            return;
        }
        let Node {
            membership,
            out,
            overflows,
            ..
        } = self;
        membership.resync(id, state.installed, &mut |m| {
            push_out(out, overflows, Outgoing::View(m))
        });
    }

    /// A compact heartbeat: the peer's state block of `generation` still stands. It renews
    /// the report held only when that is the same generation (a newer one is on its way
    /// as a group-state frame or the next full heartbeat).
    fn renew_report(&mut self, arrival: Instant, idx: usize, generation: u64) {
        let lease = self.spec.lease();
        let keep = self.vouches_kept();
        let p = &mut self.peers[idx];
        let Some(r) = p.report.filter(|r| r.generation == generation) else {
            return;
        };
        if p.report_at
            .is_none_or(|t| t.saturating_add(lease) <= arrival)
        {
            self.groups_dirty = true;
        }
        p.report_at = Some(p.report_at.map_or(arrival, |t| t.max(arrival)));
        p.vouch(r.agreed_number, r.agreed, arrival, keep);
        if r.joining != 0 && p.config_matched {
            self.joining_seen = self.joining_seen.max(arrival);
        }
    }

    /// Re-runs what a change fed into: membership, then the groups, then publishes a
    /// changed state block.
    fn settle(&mut self, now: Instant) {
        self.take_race_word(now);
        if self.lost_dirty {
            self.update_lost(now);
        }
        if self.membership_dirty {
            self.drive_membership(now);
        }
        if self.authority.race_owed() {
            let outside = self.alive().bits() & !self.membership.view().members.bits();
            self.authority.may_race(outside != 0);
        }
        if self.groups_dirty {
            self.drive_groups(now);
        }
        self.publish();
        self.progress_command(now);
    }

    /// A new incarnation: the peer left and rejoined. Treated as down, then up.
    fn restart_peer(&mut self, now: Instant, idx: usize, old: u32, new: u32) {
        let p = &mut self.peers[idx];
        // The old incarnation's word for a view was given: the lease it granted runs out
        // as it would have (a restart is no death notice: nothing says that host was
        // fenced). Dropping it cost a holder its authority in that view at once — with
        // `on_quorum_loss = "halt"`, a halt because the standby's daemon restarted.
        let word = p.vouches;
        p.end_incarnation(old);
        p.vouches = word;
        p.incarnation = Some(new);
        p.fenced = false;
        p.restarts += 1;
        let (peer, was_up, last_heard) = (p.id, p.state == PeerState::Up, p.last_heard());
        self.membership.forget_proposals(peer);
        self.push_event(now, Event::NodeRestart { peer, old, new });
        if was_up {
            self.peers[idx].state = PeerState::Down;
            self.peers[idx].since = now;
            self.push_event(now, Event::NodeDown { peer, last_heard });
        }
    }

    /// A death notice for incarnation `inc` of peer `idx`. For its current incarnation:
    /// that daemon is gone and its sentinel fenced the host (DESIGN §4 "The sentinel"),
    /// so the peer is down now — every link with it, and the node — and, marked fenced,
    /// holds nothing: no lease of it is waited for. Frames of that incarnation still in
    /// flight are stale from now on. For an incarnation this node never heard, only the
    /// latter; a copy of a notice already taken (another path, a replay) changes nothing.
    fn take_notice(&mut self, now: Instant, idx: usize, inc: u32, cause: Cause) {
        let p = &mut self.peers[idx];
        if p.past[..p.past_len].contains(&inc) {
            return;
        }
        if p.incarnation != Some(inc) {
            p.past.rotate_right(1);
            p.past[0] = inc;
            p.past_len = (p.past_len + 1).min(PAST_INCARNATIONS);
            return;
        }
        p.end_incarnation(inc);
        p.incarnation = None;
        p.fenced = true;
        let peer = p.id;
        self.membership.forget_proposals(peer);
        for path in 0..self.spec.paths.len() {
            if self.peers[idx].links[path].state == LinkState::Up {
                self.link_down(now, idx, path);
            }
        }
        self.check_networks(now, idx);
        self.lost_dirty = true;
        self.push_event(
            now,
            Event::NodeFenced {
                peer,
                incarnation: inc,
                cause,
            },
        );
        let p = &self.peers[idx];
        if p.state != PeerState::Down {
            let last_heard = p.last_heard();
            self.peers[idx].state = PeerState::Down;
            self.peers[idx].since = now;
            self.push_event(now, Event::NodeDown { peer, last_heard });
        }
    }

    fn update_link(&mut self, now: Instant, arrival: Instant, path: usize, v: &Valid) {
        let local = self.local;
        let link = &mut self.peers[v.peer].links[path];
        link.record_seq(v.header.seq);
        link.record_transit(arrival, v.header.timestamp_ns);
        link.heard_at = Some(arrival);
        link.silence_from = link.silence_from.max(arrival);
        let mut one_way = false;
        let hears = match &v.body {
            Body::Heartbeat(hb) => {
                link.echo_src = Some((v.header.timestamp_ns, arrival));
                if let Some(e) = hb.echo.filter(|e| e.node == local.get()) {
                    let sent = e.timestamp_ns.saturating_add(u64::from(e.hold_ns));
                    if let Some(rtt) = arrival.as_nanos().checked_sub(sent) {
                        link.rtt = Some(Duration::from_nanos(rtt));
                    }
                }
                Some(hb.hears(path, local.get()))
            }
            Body::Compact(c) => Some(c.hears(path)),
            _ => None,
        };
        if let Some(hears) = hears {
            one_way = link.peer_hears_us == Some(true) && !hears;
            if link.peer_hears_us != Some(hears) {
                // Mutual hearing decides who is alive for membership.
                self.membership_dirty = true;
            }
            link.peer_hears_us = Some(hears);
        }
        let came_up = link.state != LinkState::Up;
        if came_up {
            link.state = LinkState::Up;
            link.down_at = None;
        }
        let (peer, path) = (self.peers[v.peer].id, path_id(path));
        if one_way {
            self.push_event(now, Event::PathOneWay { peer, path });
        }
        if came_up {
            self.push_event(now, Event::PathUp { peer, path });
            self.check_networks(now, v.peer);
            self.lost_dirty = true;
        }
    }

    fn update_peer(&mut self, now: Instant, v: &Valid) {
        let ours = self.spec.config_hash;
        let p = &mut self.peers[v.peer];
        p.newest_sent_ns = p.newest_sent_ns.max(v.header.timestamp_ns);
        let mut mismatch = None;
        if let Body::Heartbeat(hb) = &v.body {
            if p.heard != hb.heard {
                p.heard = hb.heard;
                // Who hears whom decides the leader too (`neighbours`).
                self.lost_dirty = true;
                self.membership_dirty = true;
            }
            if p.refuses != hb.refused {
                p.refuses = hb.refused;
                self.membership_dirty = true;
            }
            self.membership.observe(hb.state.view);
            let theirs = hb.config_hash;
            if theirs != ours && p.config_hash != Some(theirs) {
                mismatch = Some(theirs);
            }
            if theirs == ours && !p.config_matched {
                p.config_matched = true;
                self.membership_dirty = true;
            }
            p.config_hash = Some(theirs);
        }
        let came_up = p.state != PeerState::Up;
        if came_up {
            p.state = PeerState::Up;
            p.since = now;
        }
        let (peer, incarnation) = (p.id, v.header.incarnation);
        if let Some(theirs) = mismatch {
            self.push_event(now, Event::ConfigMismatch { peer, theirs });
        }
        if came_up {
            self.push_event(now, Event::NodeUp { peer, incarnation });
        }
    }

    /// Decides what silence means at `now`. Call after feeding every pending frame.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_pause(now);
        let Node {
            offers,
            events,
            overflows,
            ..
        } = self;
        offers.on_timer(now, &mut |e| push_event_to(events, overflows, now, e));
        for idx in 0..self.peers.len() {
            if idx != self.local_idx {
                self.check_peer(now, idx);
            }
        }
        self.membership_dirty = true;
        self.groups_dirty = true;
        self.settle(now);
    }

    /// The daemon's carrier view: bit n set while every local adapter of network n is
    /// without carrier (rtnetlink). Feeds the networks this node has lost.
    pub fn set_carrier_lost(&mut self, now: Instant, networks: u64) {
        if networks != self.carrier_lost {
            self.carrier_lost = networks;
            self.lost_dirty = true;
            self.settle(now);
        }
    }

    /// Networks this node has lost (bit = network index).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Recomputes the networks this node lost and reports the changes. A network is lost
    /// when the daemon says every local adapter on it is without carrier, or when this
    /// node hears no peer on any of its paths while some live peer hears another node
    /// there: then the fault is on this side. When nobody hears anybody, the network as a
    /// whole is down and no node is better placed than another.
    fn update_lost(&mut self, now: Instant) {
        self.lost_dirty = false;
        let mut lost = self.carrier_lost;
        for n in 0..self.spec.networks.len() {
            if self.unreachable(n) {
                lost |= 1 << n;
            }
        }
        let changed = lost ^ self.lost;
        if changed == 0 {
            return;
        }
        self.lost = lost;
        self.membership_dirty = true;
        for n in (0..self.spec.networks.len()).filter(|n| changed & (1 << n) != 0) {
            let network = u8::try_from(n).expect("invariant: <= 64 networks");
            let event = if lost & (1 << n) != 0 {
                Event::NetworkLost {
                    network,
                    carrier: self.carrier_lost & (1 << n) != 0,
                }
            } else {
                Event::NetworkRegained { network }
            };
            self.push_event(now, event);
        }
    }

    /// Whether this node hears nobody on network `n` while a live peer hears another node
    /// there.
    fn unreachable(&self, n: usize) -> bool {
        let local = self.local;
        let on_n = |i: usize| {
            let p = &self.spec.paths[i];
            p.network == Some(u8::try_from(n).expect("invariant: small")) && p.nodes.contains(local)
        };
        let paths = self.spec.paths.len();
        if !(0..paths).any(on_n) {
            return false;
        }
        let hear_someone = self.peers.iter().any(|p| {
            p.id != local && (0..paths).any(|i| on_n(i) && p.links[i].state == LinkState::Up)
        });
        if hear_someone {
            return false;
        }
        self.peers
            .iter()
            .filter(|p| p.id != local && p.state == PeerState::Up)
            .any(|p| (0..paths).any(|i| on_n(i) && p.heard[i] & !(local.bit() | p.id.bit()) != 0))
    }

    /// Reports `network_down` / `network_up` to peer `idx`: every path of a network that
    /// both are on is silent (and was heard before) while another path to it is alive.
    fn check_networks(&mut self, now: Instant, idx: usize) {
        let paths = self.spec.paths.len();
        for n in 0..self.spec.networks.len() {
            let (local, peer) = (self.local, self.peers[idx].id);
            let net = Some(u8::try_from(n).expect("invariant: small"));
            let shared = |i: usize| {
                let p = &self.spec.paths[i];
                p.nodes.contains(local) && p.nodes.contains(peer)
            };
            let links = &self.peers[idx].links;
            let mut on_n = (0..paths).filter(|&i| shared(i) && self.spec.paths[i].network == net);
            let silent = on_n.clone().all(|i| links[i].state != LinkState::Up)
                && on_n.any(|i| links[i].state == LinkState::Down);
            let other_up = (0..paths)
                .any(|i| self.spec.paths[i].network != net && links[i].state == LinkState::Up);
            let bit = 1u64 << n;
            let was = self.peers[idx].networks_down & bit != 0;
            let network = u8::try_from(n).expect("invariant: small");
            if silent && other_up && !was {
                self.peers[idx].networks_down |= bit;
                self.push_event(now, Event::NetworkDown { peer, network });
            } else if !silent && was {
                self.peers[idx].networks_down &= !bit;
                self.push_event(now, Event::NetworkUp { peer, network });
            }
        }
    }

    /// The outcome of a [`Action::Resource`] request. A completion that matches no
    /// request in flight is refused and changes nothing.
    pub fn resource_done(
        &mut self,
        now: Instant,
        req: ResourceRequest,
        ok: bool,
    ) -> Result<(), UnexpectedCompletion> {
        let Node {
            groups,
            events,
            overflows,
            ..
        } = self;
        groups.resource_done(now, req, ok, &mut |e| {
            push_event_to(events, overflows, now, e)
        })?;
        self.groups_dirty = true;
        self.membership_dirty = true;
        self.settle(now);
        Ok(())
    }

    /// The daemon's tie-breaker race for a view of `members` ended: `won`. A result for a
    /// view no longer raced for is ignored; a lost race applies `on_quorum_loss`.
    pub fn tie_breaker_result(&mut self, now: Instant, members: NodeSet, won: bool) {
        let Some(c) = self.authority.on_race(members, won) else {
            return;
        };
        self.race_ended(now, members, self.local, won, c);
        self.settle(now);
    }

    /// A member of a half view takes its racer's word on the race (review S3): the racer
    /// is the view's lowest member, and its state block names the members it raced for
    /// and the outcome. Only a word from the racer's current report, sent while it ran in
    /// the view this node runs in, counts.
    fn take_race_word(&mut self, now: Instant) {
        let Some((members, racer)) = self.authority.awaits_word() else {
            return;
        };
        let view = self.membership.view();
        let word = self
            .peers
            .iter()
            .find(|p| p.id == racer)
            .and_then(|p| p.report)
            .filter(|r| {
                view.members == members && r.installed == view.number && r.race == members.bits()
            });
        let won = match word.map(|r| r.race_outcome) {
            Some(state_block::RACE_WON) => true,
            Some(state_block::RACE_LOST) => false,
            _ => return,
        };
        if let Some(c) = self.authority.on_race(members, won) {
            self.race_ended(now, members, racer, won, c);
        }
    }

    /// The race for `members` ended (`racer` won or lost it): the tie-breaker is held or
    /// not, and `c` follows.
    fn race_ended(
        &mut self,
        now: Instant,
        members: NodeSet,
        racer: NodeId,
        won: bool,
        c: Consequence,
    ) {
        self.push_event(
            now,
            Event::TieBreaker {
                members: members.bits(),
                racer,
                won,
            },
        );
        self.apply(c);
        self.membership.set_tie_breaker(won);
        self.membership_dirty = true;
        self.groups_dirty = true;
    }

    /// Whether this node has had authority since it started (a race it loses before then
    /// changes nothing: see `authority`).
    pub fn had_authority(&self) -> bool {
        self.authority.had_authority()
    }

    /// Whether `on_quorum_loss` waits for a tie-breaker race before it applies.
    pub fn quorum_loss_waits_for_race(&self) -> bool {
        self.authority.waiting()
    }

    /// Whether this node is leaving because `on_quorum_loss = "stop"`.
    pub fn left_for_quorum_loss(&self) -> bool {
        self.left_for_quorum_loss
    }

    /// Carries out what `on_quorum_loss` says besides the release (the groups are
    /// released already: authority is gone).
    fn apply(&mut self, c: Consequence) {
        match c {
            Consequence::Nothing => {}
            Consequence::Leave => {
                self.left_for_quorum_loss = true;
                self.groups.leave();
                self.groups_dirty = true;
            }
            Consequence::Halt => self.halt = true,
        }
    }

    /// This node won (`true`) or lost the tie-breaker: a view of exactly half the
    /// configured nodes is quorate only while it is held, and its authority rests on the
    /// reservation rather than on a majority's lease (the caller must report a lost
    /// reservation at once). When the view grows back to a majority the authority carries
    /// over until its members vouch for it; then the core drops the tie-breaker itself.
    pub fn set_tie_breaker(&mut self, now: Instant, held: bool) {
        self.membership.set_tie_breaker(held);
        self.membership_dirty = true;
        self.groups_dirty = true;
        self.settle(now);
    }

    /// The config changed (a reload): heartbeats carry `hash` from now on, and each peer's
    /// hash is compared afresh (a `config_mismatch` when it differs).
    pub fn set_config_hash(&mut self, hash: u64) {
        self.spec.config_hash = hash;
        for p in &mut self.peers {
            p.config_hash = None;
        }
    }

    /// Holds `group` off this node or lets the view decide again (see
    /// [`Groups::hold_off`](super::groups::Groups::hold_off)).
    ///
    /// # Panics
    /// If `group` is not a group index.
    pub fn hold_off_group(&mut self, now: Instant, group: usize, on: bool) {
        self.groups.hold_off(group, on);
        self.groups_dirty = true;
        self.settle(now);
    }

    /// Replaces `group`'s resource list while it is offline here (see
    /// [`Groups::respec`](super::groups::Groups::respec)).
    ///
    /// # Panics
    /// If `group` is not a group index, or `spec` changes more than the resources.
    pub fn respec_group(
        &mut self,
        group: usize,
        spec: GroupSpec,
    ) -> Result<(), super::groups::NotOffline> {
        self.groups.respec(group, spec)?;
        self.spec.groups[group] = self.groups.specs()[group].clone();
        Ok(())
    }

    /// Group `group` failed here (its monitor gave up): release it so it runs elsewhere.
    ///
    /// # Panics
    /// If `group` is not a group index.
    pub fn fail_group(&mut self, now: Instant, group: usize) {
        self.groups.fail(now, group);
        self.groups_dirty = true;
        self.membership_dirty = true;
        self.settle(now);
    }

    /// When this node's lease ends: it needs a quorate view and, unless a lone node keeps
    /// quorum or the tie-breaker decides it (or carries over, below), the word of enough
    /// members of that view (a majority of the configured nodes with itself) that they
    /// agreed to this node's installed view — or to the view it installed before, of which
    /// both were members — each word valid for one lease from the arrival of the last
    /// frame that said so. A peer that agrees to another view says so no more: its word
    /// ends one lease after it acked that view. Every node the next view's majority shares
    /// with ours acked that view before it was committed, so this lease still ends within
    /// one lease plus transit of that commit (DESIGN §5). A view change that keeps this
    /// node does not interrupt its authority: the members' word for the view before
    /// carries it until their word for the new one arrives, and nothing that does not
    /// move is released.
    /// `None`: no quorum or too few vouching peers; `Instant::MAX`: no lease needed. The
    /// lease may already have ended (the caller compares with now).
    fn lease_end(&self) -> Option<Instant> {
        let view = self.membership.view();
        if !self.membership.is_quorate(view.members) {
            return None;
        }
        // The tie-breaker, while held, is one vote: a half that won it needs the word of
        // every other member of the half, as a majority needs its members' (a member
        // that agrees to a view without this node — a majority with the other half —
        // takes its word away within a lease, which the gainers there wait out). It
        // carries the authority into the majority view that follows, until that view's
        // members vouch for it (`drive_groups` then drops it).
        let tie = usize::from(self.membership.tie_breaker());
        let need = usize::try_from(self.membership.configured() / 2)
            .expect("invariant: small")
            .saturating_sub(tie);
        if self.membership.alone_is_quorate() || need == 0 {
            return Some(Instant::MAX);
        }
        self.vouched_until(view, Some(self.membership.previous()), need)
    }

    /// The views whose word `lease_end` counts: the installed and the previous one.
    fn vouches_kept(&self) -> [(u64, u64); 2] {
        let word = |v: View| (v.number, v.members.bits());
        [
            word(self.membership.view()),
            word(self.membership.previous()),
        ]
    }

    /// When the word of `need` members of `view` ends; `None` when fewer vouch for it. A
    /// member vouches with its word for `view` or, when given, for `previous` (the view
    /// this node installed before, of which it was a member too): whichever arrived last.
    fn vouched_until(&self, view: View, previous: Option<View>, need: usize) -> Option<Instant> {
        let lease = self.spec.lease();
        let mut expiries = [Instant::default(); crate::wire::MAX_NODES];
        let mut n = 0;
        let word = |p: &Peer, v: View| {
            v.members
                .contains(p.id)
                .then(|| p.vouched_at(v.number, v.members.bits()))
                .flatten()
        };
        for p in self.peers.iter().filter(|p| p.id != self.local) {
            let now = word(p, view);
            let before = previous.and_then(|v| word(p, v));
            let at = now
                .into_iter()
                .chain(before)
                .max()
                .filter(|_| view.members.contains(p.id));
            if let Some(t) = at {
                expiries[n] = t.saturating_add(lease);
                n += 1;
            }
        }
        if n < need {
            return None;
        }
        let expiries = &mut expiries[..n];
        expiries.sort_unstable_by(|a, b| b.cmp(a));
        Some(expiries[need - 1])
    }

    fn drive_groups(&mut self, now: Instant) {
        self.groups_dirty = false;
        let view = self.membership.view();
        if self.membership.tie_breaker() && !self.membership.tie_breaker_decides(view.members) {
            let need = usize::try_from(self.membership.configured() / 2).expect("invariant: small");
            if self.vouched_until(view, None, need).is_some() {
                self.membership.set_tie_breaker(false);
            }
        }
        let cx = Context {
            now,
            local: self.local,
            view: self.membership.view(),
            installed_at: self.installed_at,
            authority_until: self.lease_end(),
            leases_apply: !self.membership.alone_is_quorate(),
            settle: self.spec.lease() + self.spec.transit_margin(),
            peers: &self.peers,
            // A node stopping in maintenance that could not leave its resources to the
            // next daemon releases them like any stopping node.
            frozen: self.maintenance.on() && (self.keeps_resources || !self.groups.leaving()),
        };
        let Node {
            groups,
            events,
            overflows,
            ..
        } = self;
        let (had, members) = (groups.authority(), cx.view.members);
        groups.drive(&cx, &mut |e| push_event_to(events, overflows, now, e));
        // Not the start view: in `two_node` mode a lone node is quorate in it before it
        // has heard anyone, and holds nothing there.
        if self.groups.authority() && self.membership.view().number > 0 {
            self.authority.on_authority();
        }
        if had && !self.groups.authority() && !self.spec.groups.is_empty() {
            let c = self.authority.on_quorum_lost(members);
            self.apply(c);
        }
        if self.groups.take_changed() {
            // Holdings changed: the coordinator may need to re-place.
            self.membership_dirty = true;
            self.drive_membership(now);
        }
    }

    /// Bumps the generation and queues a group-state frame when the state block changed.
    fn publish(&mut self) {
        let now = StateRepr {
            view: 0,
            generation: 0,
            ..self.state_block()
        };
        if now == self.published {
            return;
        }
        self.published = now;
        self.generation += 1;
        if !self.state_queued {
            self.state_queued = true;
            push_out(&mut self.out, &mut self.overflows, Outgoing::State);
        }
    }

    /// This node's state block as sent now.
    fn state_block(&self) -> StateRepr {
        StateRepr {
            view: self.membership.highest_number(),
            installed: self.membership.view().number,
            agreed_number: self.membership.agreed().number,
            agreed: self.membership.agreed().members.bits(),
            holds: self.groups.holds(),
            failed: self.groups.failed(),
            online: self.groups.online(),
            generation: self.generation,
            lost: self.lost,
            maintenance: self.maintenance.epoch(),
            offline: self.membership.view().plan.offline(),
            placed: self.membership.view().plan.placed(),
            joining: self.joining_here.bits(),
            race: self.authority.race_word().0,
            race_outcome: match self.authority.race_word().1 {
                None => state_block::RACE_RUNNING,
                Some(true) => state_block::RACE_WON,
                Some(false) => state_block::RACE_LOST,
            },
        }
    }

    /// Nodes this node counts as alive for membership: itself, and every peer that is up
    /// and says it hears us on at least one path that is up (a one-way link does not
    /// make a member).
    pub fn alive(&self) -> NodeSet {
        let mut set = NodeSet::EMPTY;
        set.insert(self.local);
        for p in self.peers.iter().filter(|p| p.state == PeerState::Up) {
            let n = self.spec.paths.len();
            if p.links[..n]
                .iter()
                .any(|l| l.state == LinkState::Up && l.peer_hears_us != Some(false))
            {
                set.insert(p.id);
            }
        }
        set
    }

    /// The nodes membership holds off as joining (`Membership::set_joining`): the peers
    /// that came up here less than a lease ago, and those a member of the installed view
    /// (up here) says came up there less than a lease ago. Each member measured on its
    /// own, a mate that still counted a rejoining node as joining refused the proposal
    /// the others acked, became the coordinator's suspect and was left out for two
    /// leases: it lost quorum and released its group (sim `a_node_rejoining_…`, seed 1149
    /// of 3000; review P2). Now the members of a view hold off together until the last of them
    /// has seen the node up for a lease. Only this node's own count is published: a word
    /// passed on would never end.
    ///
    /// Also until when a node may still hold off one: a retry period (half a lease)
    /// after the last word of it, this node's own or a peer's (`Membership::set_joining`).
    fn joining(&mut self, now: Instant) -> (NodeSet, Instant) {
        let settle = self.spec.lease();
        let here: NodeSet = self
            .peers
            .iter()
            .filter(|p| p.state == PeerState::Up && now < p.since.saturating_add(settle))
            .map(|p| p.id)
            .collect();
        self.joining_here = here;
        if !here.is_empty() {
            self.joining_seen = self.joining_seen.max(now);
        }
        let members = self.membership.view().members;
        let theirs = self
            .peers
            .iter()
            .filter(|p| p.state == PeerState::Up && members.contains(p.id))
            .filter_map(|p| p.report)
            .fold(0, |a, r| a | r.joining);
        let held_until = self.joining_seen.saturating_add(settle / 2);
        (NodeSet::from_bits(here.bits() | theirs), held_until)
    }

    /// The nodes alive here that membership counts: those whose current incarnation ran
    /// this node's config at some time ([`Peer::config_matched`]).
    pub fn admitted(&self) -> NodeSet {
        let mut set = self.alive();
        for p in self
            .peers
            .iter()
            .filter(|p| !p.config_matched && p.id != self.local)
        {
            set.remove(p.id);
        }
        set
    }

    /// The nodes heartbeats say this node refuses: peers it heard run another config in
    /// their current incarnation (a peer whose config is not known yet, just restarted,
    /// is not refused: a restarted node's peers took it for connected to none of them
    /// for a moment, followed another leader, and lost quorum in 40 of 50 restarts of
    /// n1 in six).
    fn refused(&self) -> u64 {
        let ours = self.spec.config_hash;
        self.peers
            .iter()
            .filter(|p| !p.config_matched && p.config_hash.is_some_and(|h| h != ours))
            .fold(0, |a, p| a | p.id.bit())
    }

    /// Runs the membership protocol's coordinator step and reports a new view.
    ///
    /// Membership waits while a peer is still unknown (within the startup grace) or has
    /// just come up without mutual hearing yet (for up to one timeout): a node that has
    /// not had the chance to hear its peers, or to be heard by them, would otherwise
    /// commit a view of itself alone — quorate in `two_node` mode, so a restarted node
    /// would take the groups of a live peer.
    fn drive_membership(&mut self, now: Instant) {
        self.membership_dirty = false;
        let alive = self.admitted();
        let (joining, held_until) = self.joining(now);
        self.membership.set_joining(joining, held_until);
        // Another config known to run there, not one not known yet: a peer's group-state
        // frame can overtake its first heartbeat (which carries the config hash), and a
        // lone node of a `two_node` pair, resumed from maintenance, lost quorum and
        // released its group when its peer's first frame was one (lab
        // `maintenance_lets_a_daemon_restart_without_touching_the_service`, once the
        // state block changed as a node came up).
        let stranger = self.alive().bits() & self.refused() != 0;
        self.membership
            .set_stranger(stranger && !self.authority.had_authority());
        let settle = self.spec.timeout_max();
        let waiting = self.peers.iter().any(|p| {
            p.id != self.local
                && match p.state {
                    PeerState::Unknown => true,
                    PeerState::Up => !alive.contains(p.id) && now < p.since.saturating_add(settle),
                    PeerState::Down => false,
                }
        });
        if waiting {
            self.membership.abandon_proposal();
            return;
        }
        // Half a lease: a proposal stuck on a member that cannot ack is abandoned (and
        // the member left out) before the members' leases run out, since a member that
        // acked it no longer vouches for the installed view.
        let retry = self.spec.lease() / 2;
        let Node {
            membership,
            out,
            overflows,
            groups,
            peers,
            local,
            pins,
            ..
        } = self;
        membership.hear_agreements(now, |id| {
            peers
                .iter()
                .find(|p| p.id == id)
                .and_then(|p| p.report)
                .map(|r| (r.agreed_number, NodeSet::from_bits(r.agreed)))
        });
        let prev = membership.view();
        let stale = membership.agreed().number > prev.number
            || peers.iter().any(|p| {
                prev.members.contains(p.id)
                    && p.report.is_some_and(|r| r.agreed_number > prev.number)
            });
        let local = *local;
        let own = Standing {
            holds: groups.holds(),
            failed: groups.failed(),
            fresh: prev.number == 0,
            lost: self.lost,
            cut: self.carrier_lost,
            installed: prev.number,
            offline: prev.plan.offline(),
            placed: prev.plan.placed(),
        };
        let (configured, alone_ok, tie) = (
            membership.configured(),
            membership.alone_is_quorate(),
            membership.tie_breaker(),
        );
        let quorate = |m: NodeSet| super::membership::quorum(configured, alone_ok, tie, m);
        let standing = |id: NodeId| {
            if id == local {
                return own;
            }
            peers
                .iter()
                .find(|p| p.id == id)
                .and_then(|p| p.report)
                .map_or(Standing::default(), |r| Standing {
                    holds: r.holds,
                    failed: r.failed,
                    fresh: r.installed == 0,
                    lost: r.lost,
                    // Its carrier is not in its state block: only its `lost`.
                    cut: 0,
                    installed: r.installed,
                    offline: r.offline,
                    placed: r.placed,
                })
        };
        let frozen = self.maintenance.on();
        let plan = |members: NodeSet| {
            if frozen {
                return groups::frozen_plan(groups.specs().len(), &prev, members, standing);
            }
            let mut plan = groups::plan(groups.specs(), &prev, local, members, quorate, standing);
            if quorate(members) {
                let failed = |id: NodeId, g: usize| standing(id).failed & (1 << g) != 0;
                operator::apply_pins(&mut plan, groups.specs(), pins, now, members, failed);
            }
            plan
        };
        let neighbours = |x: NodeId| neighbours(peers, alive, x);
        let committed = membership.tick(now, (alive, neighbours), retry, plan, stale, &mut |m| {
            push_out(out, overflows, Outgoing::View(m))
        });
        if let Some(view) = committed {
            self.report_view(now, view);
        }
    }

    fn report_view(&mut self, now: Instant, view: View) {
        self.clear_pins(now, view);
        self.installed_at = now;
        self.churn.record(now);
        self.groups_dirty = true;
        if self.authority.on_view(view.members) {
            self.membership.set_tie_breaker(false);
        }
        let c = self.authority.after_view(view.members);
        self.apply(c);
        let quorate = self.membership.is_quorate(view.members);
        self.push_event(
            now,
            Event::ViewChange {
                number: view.number,
                members: view.members.bits(),
                quorate,
            },
        );
        if view.members.bits() & !self.prev_members.bits() & !self.local.bit() != 0 {
            self.reannounce |= self.groups.online();
        }
        self.prev_members = view.members;
    }

    /// A membership frame from peer `idx`.
    fn handle_view(&mut self, now: Instant, idx: usize, kind: ViewMsgKind, view: View) {
        let from = self.peers[idx].id;
        let p = &self.peers[idx];
        // Its config not known yet (a restarted node's state frame and proposal overtook
        // its first heartbeat): the proposal is kept, and acked only once the proposer is
        // admitted (`Membership::try_ack` wants every member alive, which is admitted
        // here). Dropped, it was not sent again until the proposer's deadline, and the
        // mates that had acked it stopped vouching for their view meanwhile: the winners
        // of a healed split lost quorum (sim `an_even_split_…`, seed 749 of 2000).
        let kept = kind == ViewMsgKind::Propose
            && p.config_hash.is_none_or(|h| h == self.spec.config_hash);
        if !(p.config_matched || kept) {
            // A node with another config is not admitted (see `admitted`): its proposals
            // and commits are not this node's views.
            self.membership.observe(view.number);
            return;
        }
        match kind {
            ViewMsgKind::Propose => {
                let alive = self.admitted();
                let (joining, held_until) = self.joining(now);
                self.membership.set_joining(joining, held_until);
                let Node {
                    membership,
                    out,
                    overflows,
                    peers,
                    ..
                } = self;
                let neighbours = |x: NodeId| neighbours(peers, alive, x);
                membership.on_propose(from, view, (alive, neighbours), &mut |m| {
                    push_out(out, overflows, Outgoing::View(m))
                });
            }
            ViewMsgKind::Ack => self.membership.on_ack(now, from, view),
            ViewMsgKind::Commit => {
                if let Some(v) = self.membership.on_commit(from, view) {
                    self.report_view(now, v);
                }
            }
        }
    }

    /// A heartbeat that should have gone out long ago means this loop did not run: a local
    /// pause. Extend every silence by it (DESIGN §4).
    fn check_pause(&mut self, now: Instant) {
        let Some(due) = self.tx.iter().map(|t| t.next_at).min() else {
            return;
        };
        let late = now.saturating_since(due);
        if late <= self.spec.pause_threshold {
            return;
        }
        self.pauses += 1;
        self.pause_total += late;
        for p in &mut self.peers {
            for link in p.links.iter_mut().filter(|l| l.state == LinkState::Up) {
                link.silence_from = link.silence_from.saturating_add(late).min(now);
            }
        }
        self.grace_from = self.grace_from.saturating_add(late).min(now);
        // A host paused whole (a VM the hypervisor stopped) received nothing meanwhile:
        // what its kernel took at the end may have waited the whole pause, sent before
        // the peers changed their minds. A word for a view taken in the pause counts from
        // the pause's start, or this node's lease would outlive the one a gainer waits
        // out (seed 3527: a holder paused 6 ms took its peer's stale word at the resume
        // and held beside the gainer). Only shortens a lease.
        let start = now.saturating_sub(late);
        for p in &mut self.peers {
            for v in &mut p.vouches {
                v.at = v.at.min(start);
            }
        }
        self.groups_dirty = true;
        self.push_event(now, Event::LocalPause { late });
    }

    /// Peer `idx`'s link on `path` goes down now (`path_down`).
    fn link_down(&mut self, now: Instant, idx: usize, path: usize) {
        let peer = self.peers[idx].id;
        let link = &mut self.peers[idx].links[path];
        link.state = LinkState::Down;
        link.down_at = Some(now);
        let last_heard = link.heard_at;
        self.push_event(
            now,
            Event::PathDown {
                peer,
                path: path_id(path),
                last_heard,
            },
        );
    }

    fn check_peer(&mut self, now: Instant, idx: usize) {
        let mut went_down = false;
        for path in 0..self.spec.paths.len() {
            let timeout = self.spec.paths[path].timeout;
            let link = &self.peers[idx].links[path];
            if link.state == LinkState::Up && now >= link.silence_from.saturating_add(timeout) {
                self.link_down(now, idx, path);
                went_down = true;
            }
        }
        if went_down {
            // Only a link that changed can change what the networks look like.
            self.check_networks(now, idx);
            self.lost_dirty = true;
        }
        let p = &self.peers[idx];
        let any_up = p.links.iter().any(|l| l.state == LinkState::Up);
        let grace_over = now >= self.grace_from.saturating_add(self.spec.timeout_max());
        let goes_down = match p.state {
            PeerState::Up => !any_up,
            PeerState::Unknown => grace_over,
            PeerState::Down => false,
        };
        if goes_down {
            let (peer, last_heard) = (p.id, p.last_heard());
            self.peers[idx].state = PeerState::Down;
            self.peers[idx].since = now;
            self.push_event(now, Event::NodeDown { peer, last_heard });
        }
    }

    /// The next request: a new promise first (before any frame that carries it), then
    /// fences and a halt (safety does not wait), heartbeats due next (they are
    /// time-critical), then resource operations, then membership and group-state frames,
    /// then events. `buf` must
    /// hold [`FRAME_MAX`] bytes; a `Transmit` means its first `len` bytes are the frame.
    ///
    /// # Panics
    /// If `buf` is shorter than [`FRAME_MAX`].
    pub fn poll_action(&mut self, now: Instant, buf: &mut [u8]) -> Option<Action> {
        assert!(
            buf.len() >= FRAME_MAX,
            "poll_action buffer {} < FRAME_MAX",
            buf.len()
        );
        let agreed = self.membership.agreed();
        if (agreed.number, agreed.members.bits()) != self.promised {
            self.promised = (agreed.number, agreed.members.bits());
            return Some(Action::Promise {
                number: agreed.number,
                members: agreed.members.bits(),
            });
        }
        if let Some(group) = self.groups.pop_fence() {
            return Some(Action::Fence { group });
        }
        if let Some(group) = self.groups.take_halt() {
            return Some(Action::Halt(Halt::ReleaseBound { group }));
        }
        if core::mem::take(&mut self.halt) {
            return Some(Action::Halt(Halt::QuorumLoss));
        }
        if let Some(step) = self.authority.take_step() {
            return Some(Action::TieBreaker(step));
        }
        if self.reannounce != 0 {
            let g = self.reannounce.trailing_zeros();
            self.reannounce &= self.reannounce - 1;
            let group = u8::try_from(g).expect("invariant: <= 64 groups");
            return Some(Action::Announce { group });
        }
        if let Some(a) = self.poll_heartbeat(now, buf) {
            return Some(self.checked(a));
        }
        if let Some(req) = self.groups.pop_request() {
            return Some(Action::Resource(req));
        }
        if let Some(a) = self.poll_outbox(now, buf) {
            return Some(self.checked(a));
        }
        if let Some(a) = self.poll_offer(now, buf) {
            return Some(self.checked(a));
        }
        self.events
            .pop_front()
            .map(|(at, event)| Action::Event { at, event })
    }

    /// A frame about to go out. Every unicast destination is a peer: the heartbeat and
    /// outbox rounds skip this node, and an offer cannot target it
    /// (`StartError::SelfTarget`).
    fn checked(&self, a: Action) -> Action {
        if let Action::Transmit { dest, .. } = a {
            assert_ne!(
                dest,
                Dest::Node(self.local),
                "invariant: no transmit to self"
            );
        }
        a
    }

    fn poll_heartbeat(&mut self, now: Instant, buf: &mut [u8]) -> Option<Action> {
        for path in 0..self.tx.len() {
            if self.tx[path].next_at > now {
                continue;
            }
            let dest = match self.spec.paths[path].kind {
                PathKind::Ether | PathKind::Serial | PathKind::Disk => Some((Dest::All, None)),
                PathKind::Udp => self
                    .next_unicast(path)
                    .map(|i| (Dest::Node(self.peers[i].id), Some(i))),
            };
            let Some((dest, to)) = dest else {
                self.finish_round(now, path);
                continue;
            };
            let len = self.emit_heartbeat(now, path, to, buf);
            if dest == Dest::All {
                self.finish_round(now, path);
            }
            return Some(Action::Transmit {
                path: path_id(path),
                dest,
                len,
            });
        }
        None
    }

    /// The next frame of the message at the head of the outbox: one per path (multicast
    /// on Ethernet, unicast to each recipient on UDP), for redundancy.
    fn poll_outbox(&mut self, now: Instant, buf: &mut [u8]) -> Option<Action> {
        loop {
            let msg = *self.out.front()?;
            let (path, from) = self.out_cursor;
            if path >= self.spec.paths.len() {
                self.out.pop_front();
                self.out_cursor = (0, 0);
                if matches!(msg, Outgoing::State) {
                    self.state_queued = false;
                }
                continue;
            }
            let to = match msg {
                Outgoing::View(m) => m.to,
                Outgoing::State | Outgoing::Command(_) => None,
            };
            let on_path = self.spec.paths[path].nodes.contains(self.local);
            let dest = match self.spec.paths[path].kind {
                _ if !on_path => None,
                PathKind::Ether | PathKind::Serial | PathKind::Disk => Some(Dest::All),
                PathKind::Udp => (from..self.peers.len())
                    .find(|&i| i != self.local_idx && to.is_none_or(|t| t == self.peers[i].id))
                    .map(|i| {
                        self.out_cursor.1 = i + 1;
                        Dest::Node(self.peers[i].id)
                    }),
            };
            let Some(dest) = dest else {
                self.tx[path].seq = self.tx[path].seq.wrapping_add(1);
                self.out_cursor = (path + 1, 0);
                continue;
            };
            let len = match msg {
                Outgoing::View(m) => self.emit_view(now, path, m, buf),
                Outgoing::State => self.emit_state(now, path, buf),
                Outgoing::Command(c) => self.emit_command(now, path, c, buf),
            };
            if dest == Dest::All {
                self.tx[path].seq = self.tx[path].seq.wrapping_add(1);
                self.out_cursor = (path + 1, 0);
            }
            return Some(Action::Transmit {
                path: path_id(path),
                dest,
                len,
            });
        }
    }

    /// The next configuration-offer frame (`core::offer`), after heartbeats and the
    /// outbox: an offer never delays a heartbeat or a membership message.
    fn poll_offer(&mut self, now: Instant, buf: &mut [u8]) -> Option<Action> {
        let mut payload = [0u8; crate::wire::frame::PAYLOAD_MAX];
        let send = self.offers.poll(now, &mut payload)?;
        let header = self.header(Kind::ConfigOffer, send.path, now);
        let len = header
            .emit(buf, send.len, self.key.as_ref(), |p| {
                p.copy_from_slice(&payload[..send.len]);
            })
            .expect("invariant: buf holds FRAME_MAX bytes");
        if send.bump {
            self.tx[send.path].seq = self.tx[send.path].seq.wrapping_add(1);
        }
        Some(Action::Transmit {
            path: path_id(send.path),
            dest: send.dest,
            len,
        })
    }

    /// Starts offering `config` (whose config hash is `hash`) to `targets` over the IP
    /// paths: `heartwire sync` (install) or the cluster-wide `verify`. Refused without a
    /// cluster key (offers would be unauthenticated). Progress comes out as
    /// [`Event::OfferCommit`] and [`Event::OfferSettled`]; read answers with
    /// [`Node::offers`].
    pub fn start_offer(
        &mut self,
        now: Instant,
        mode: OfferMode,
        config: &[u8],
        hash: u64,
        targets: NodeSet,
    ) -> Result<u32, OfferRefusal> {
        if self.key.is_none() {
            return Err(OfferRefusal::NoKey);
        }
        self.offers
            .start(now, mode, config, hash, targets)
            .map_err(OfferRefusal::Start)
    }

    /// The daemon's verdict on the offer handed over by [`Event::OfferReceived`].
    pub fn judge_offer(&mut self, now: Instant, offer: OfferId, verdict: Verdict) {
        self.offers.judge(now, offer, verdict);
    }

    /// The daemon's result of installing the offer of [`Event::OfferCommit`].
    pub fn offer_installed(&mut self, now: Instant, offer: OfferId, ok: bool, text: &str) {
        self.offers.installed(now, offer, ok, text);
    }

    /// Configuration offers, as origin and member.
    pub fn offers(&self) -> &Offers {
        &self.offers
    }

    /// The header of this node's next frame of `kind` on `path`.
    fn header(&self, kind: Kind, path: usize, now: Instant) -> HeaderRepr {
        HeaderRepr {
            kind,
            cluster: self.spec.cluster_id,
            node: self.local.get(),
            path: path_id(path),
            incarnation: self.incarnation,
            seq: self.tx[path].seq,
            timestamp_ns: now.as_nanos(),
        }
    }

    fn emit_view(&self, now: Instant, path: usize, msg: ViewMsg, buf: &mut [u8]) -> usize {
        let kind = match msg.kind {
            ViewMsgKind::Propose => Kind::ViewPropose,
            ViewMsgKind::Ack => Kind::ViewAck,
            ViewMsgKind::Commit => Kind::ViewCommit,
        };
        let header = self.header(kind, path, now);
        let mut plan = [0u8; state_block::MAX_GROUPS];
        let codes = msg.view.plan.codes();
        plan[..codes.len()].copy_from_slice(codes);
        let view = ViewRepr {
            number: msg.view.number,
            members: msg.view.members.bits(),
            groups: u8::try_from(codes.len()).expect("invariant: <= 64 groups"),
            plan,
        };
        header
            .emit(buf, view.buffer_len(), self.key.as_ref(), |p| view.emit(p))
            .expect("invariant: buf holds FRAME_MAX bytes")
    }

    fn emit_state(&self, now: Instant, path: usize, buf: &mut [u8]) -> usize {
        let header = self.header(Kind::GroupState, path, now);
        let state = self.state_block();
        header
            .emit(buf, state_block::LEN, self.key.as_ref(), |p| state.emit(p))
            .expect("invariant: buf holds FRAME_MAX bytes")
    }

    fn emit_command(&self, now: Instant, path: usize, c: CommandRepr, buf: &mut [u8]) -> usize {
        let header = self.header(Kind::Command, path, now);
        header
            .emit(buf, crate::wire::command::LEN, self.key.as_ref(), |p| {
                c.emit(p)
            })
            .expect("invariant: buf holds FRAME_MAX bytes")
    }

    /// Next peer to unicast to in this round of `path`, advancing the cursor.
    fn next_unicast(&mut self, path: usize) -> Option<usize> {
        let tx = &mut self.tx[path];
        let idx = (tx.cursor..self.peers.len()).find(|&i| i != self.local_idx)?;
        tx.cursor = idx + 1;
        Some(idx)
    }

    /// One heartbeat round on `path` is done: next sequence number, next slot on the
    /// interval grid (slots missed while paused are skipped, not sent in a burst).
    fn finish_round(&mut self, now: Instant, path: usize) {
        let interval = nanos(self.spec.paths[path].interval);
        let tx = &mut self.tx[path];
        let behind = now.as_nanos().saturating_sub(tx.next_at.as_nanos());
        let slots = behind / interval + 1;
        tx.next_at = Instant::from_nanos(
            tx.next_at
                .as_nanos()
                .saturating_add(slots.saturating_mul(interval)),
        );
        tx.seq = tx.seq.wrapping_add(1);
        tx.cursor = 0;
        tx.frames += 1;
    }

    fn emit_heartbeat(
        &mut self,
        now: Instant,
        path: usize,
        to: Option<usize>,
        buf: &mut [u8],
    ) -> usize {
        if self.spec.paths[path].kind == PathKind::Serial
            && self.tx[path].frames % u64::from(FULL_EVERY) != 0
        {
            return self.emit_compact(now, path, buf);
        }
        let echo = self.echo_for(now, path, to);
        let heartbeat = HeartbeatRepr {
            state: self.state_block(),
            config_hash: self.spec.config_hash,
            refused: self.refused(),
            echo,
            path_count: path_id(self.spec.paths.len()),
            heard: self.heard_bitmaps(),
        };
        let header = self.header(Kind::Heartbeat, path, now);
        header
            .emit(buf, heartbeat.buffer_len(), self.key.as_ref(), |p| {
                heartbeat.emit(p)
            })
            .expect("invariant: buf holds FRAME_MAX bytes")
    }

    /// A compact heartbeat (serial lines): state generation and whether we hear the other
    /// end of the line on each path.
    fn emit_compact(&self, now: Instant, path: usize, buf: &mut [u8]) -> usize {
        let other = self
            .peers
            .iter()
            .find(|p| p.id != self.local && self.spec.paths[path].nodes.contains(p.id));
        let mut hears_you = 0u8;
        if let Some(p) = other {
            for (i, link) in p.links[..self.spec.paths.len()].iter().enumerate() {
                if link.state == LinkState::Up {
                    hears_you |= 1 << i;
                }
            }
        }
        let compact = CompactRepr {
            generation: self.generation,
            path_count: path_id(self.spec.paths.len()),
            hears_you,
        };
        let header = self.header(Kind::Heartbeat, path, now);
        header
            .emit(
                buf,
                crate::wire::heartbeat::COMPACT_LEN,
                self.key.as_ref(),
                |p| compact.emit(p),
            )
            .expect("invariant: buf holds FRAME_MAX bytes")
    }

    /// The echo to carry: the unicast destination's own last timestamp, or on a shared
    /// medium the next peer in round-robin order that we have heard on this path.
    fn echo_for(&mut self, now: Instant, path: usize, to: Option<usize>) -> Option<Echo> {
        let n = self.peers.len();
        let idx = match to {
            Some(i) => i,
            None => {
                let start = self.tx[path].echo_rr;
                let found = (0..n).map(|k| (start + k) % n).find(|&i| {
                    i != self.local_idx && self.peers[i].links[path].echo_src.is_some()
                })?;
                self.tx[path].echo_rr = (found + 1) % n;
                found
            }
        };
        let (timestamp_ns, arrived) = self.peers[idx].links[path].echo_src?;
        let hold_ns = u32::try_from(now.saturating_since(arrived).as_nanos()).ok()?;
        Some(Echo {
            node: self.peers[idx].id.get(),
            timestamp_ns,
            hold_ns,
        })
    }

    fn heard_bitmaps(&self) -> [u64; MAX_PATHS] {
        let mut heard = [0u64; MAX_PATHS];
        for p in self.peers.iter() {
            for (bits, link) in heard.iter_mut().zip(p.links.iter()) {
                if link.state == LinkState::Up {
                    *bits |= p.id.bit();
                }
            }
        }
        heard
    }

    /// The earliest time something is due: a heartbeat, a link timeout, the startup grace.
    pub fn next_deadline(&self) -> Option<Instant> {
        let tx = self.tx.iter().map(|t| t.next_at);
        let links = self.peers.iter().flat_map(|p| {
            p.links
                .iter()
                .zip(self.spec.paths.iter())
                .filter(|(l, _)| l.state == LinkState::Up)
                .map(|(l, spec)| l.silence_from.saturating_add(spec.timeout))
        });
        let grace = self
            .peers
            .iter()
            .any(|p| p.state == PeerState::Unknown && p.id != self.local)
            .then(|| self.grace_from.saturating_add(self.spec.timeout_max()));
        // The lease runs out while holding (or able to hold) groups: release then.
        let lease = (!self.spec.groups.is_empty() && self.groups.authority())
            .then(|| self.lease_end())
            .flatten()
            .filter(|t| *t != Instant::MAX);
        tx.chain(links)
            .chain(grace)
            .chain(self.offers.next_deadline())
            .chain(self.membership.next_deadline())
            .chain(self.groups.next_deadline())
            .chain(self.command_deadline())
            .chain(lease)
            .min()
    }

    /// Queues an event. Every state change the core reports goes through here, so it also
    /// marks the membership and group decisions for a re-run.
    fn push_event(&mut self, at: Instant, event: Event) {
        self.membership_dirty = true;
        self.groups_dirty = true;
        push_event_to(&mut self.events, &mut self.overflows, at, event);
        if let Event::NodeDown { peer, .. } = event {
            let Node {
                offers,
                events,
                overflows,
                ..
            } = self;
            offers.node_down(at, peer, &mut |e| push_event_to(events, overflows, at, e));
        }
    }

    /// The cluster description.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }
    /// This node's id.
    pub fn local(&self) -> NodeId {
        self.local
    }
    /// The committed membership view.
    pub fn view(&self) -> View {
        self.membership.view()
    }
    /// Whether this node holds the tie-breaker (won its last race, not yet dropped).
    pub fn tie_breaker(&self) -> bool {
        self.membership.tie_breaker()
    }
    /// Whether the committed view holds quorum.
    pub fn quorate(&self) -> bool {
        self.membership.quorate()
    }
    /// This node's incarnation.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }
    /// Every configured node, this one included (its entry stays `Unknown`).
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }
    /// Drop counters of `path`.
    pub fn drops(&self, path: usize) -> &DropCounters {
        &self.drops[path]
    }
    /// Heartbeat rounds sent on `path`.
    pub fn tx_frames(&self, path: usize) -> u64 {
        self.tx[path].frames
    }
    /// View changes: the total and the recent rate ([`Churn`]).
    pub fn churn(&self) -> &Churn {
        &self.churn
    }
    /// Local pauses seen, and their total length.
    pub fn pauses(&self) -> (u64, Duration) {
        (self.pauses, self.pause_total)
    }
    /// Events or membership messages dropped because a bounded queue was full (never
    /// expected: the bounds are far above what one input can produce).
    pub fn queue_overflows(&self) -> u64 {
        self.overflows
    }
    /// Each group's local state, in config order.
    pub fn groups(&self) -> &[LocalGroup] {
        self.groups.local()
    }
    /// Whether this node had authority to hold groups at its last decision.
    pub fn authority(&self) -> bool {
        self.groups.authority()
    }

    /// While this node holds a group on a lease: when the lease ends, i.e. by when the
    /// node fences what it holds unless a frame renews it. A daemon that stops running
    /// cannot keep that promise, so its sentinel keeps it (DESIGN §4, The sentinel).
    pub fn fence_deadline(&self) -> Option<Instant> {
        let holds = self
            .groups
            .local()
            .iter()
            .any(|l| l.phase != super::Phase::Offline);
        (holds && self.groups.authority())
            .then(|| self.lease_end())
            .flatten()
            .filter(|t| *t != Instant::MAX)
    }
}

/// The nodes of `alive` that `x` and which hear each other on one path, by the heard
/// bitmaps of their last full heartbeats (the rule `Node::alive` applies to this node's
/// own peers), and do not refuse each other (another config). Bitmaps ORed over the
/// paths made a pair of two one-way faults in opposite directions on two paths (review
/// D2); two nodes that hear each other but run different configs were taken for a pair
/// by a third node, which proposed views both refused (review D1). A peer alive here
/// hears this node, so an empty bitmap is one not told yet (no full heartbeat so far):
/// taken as all.
fn neighbours(peers: &[Peer], alive: NodeSet, x: NodeId) -> NodeSet {
    let of = |id: NodeId| peers.iter().find(|p| p.id == id);
    let heard = |id: NodeId| match of(id) {
        Some(p) if p.heard.iter().any(|h| *h != 0) => p.heard,
        _ => [u64::MAX; MAX_PATHS],
    };
    let refuses = |id: NodeId| of(id).map_or(0, |p| p.refuses);
    let (hx, rx) = (heard(x), refuses(x));
    alive
        .iter()
        .filter(|y| {
            let hy = heard(*y);
            *y != x
                && rx & y.bit() == 0
                && refuses(*y) & x.bit() == 0
                && hx
                    .iter()
                    .zip(&hy)
                    .any(|(a, b)| a & y.bit() != 0 && b & x.bit() != 0)
        })
        .collect::<NodeSet>()
}

/// Queues an outgoing frame, counting it in `overflows` if the outbox is full.
fn push_out(out: &mut VecDeque<Outgoing>, overflows: &mut u64, m: Outgoing) {
    if out.len() < OUTBOX_MAX {
        out.push_back(m);
    } else {
        *overflows += 1;
    }
}

/// Queues an event, counting it in `overflows` if the queue is full.
fn push_event_to(
    events: &mut VecDeque<(Instant, Event)>,
    overflows: &mut u64,
    at: Instant,
    event: Event,
) {
    if events.len() < EVENT_QUEUE_MAX {
        events.push_back((at, event));
    } else {
        *overflows += 1;
    }
}

fn path_id(i: usize) -> u8 {
    u8::try_from(i).expect("invariant: path index < MAX_PATHS")
}

#[path = "node_commands.rs"]
mod commands;

#[path = "node_maintenance.rs"]
mod maintenance_mode;

#[path = "node_bounds.rs"]
mod bounds;

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
