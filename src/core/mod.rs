//! The cluster state machine, sans-IO (DESIGN §4, STYLE §3).
//!
//! Contract: no syscalls, no clock, no randomness, no allocation after [`Node::new`]. Time
//! is an argument ([`Instant`]); received bytes come in through `handle_*`; what the node
//! wants done comes out of [`Node::poll_action`] as [`Action`] values; the daemon (or the
//! simulator) carries them out. Called by `daemon` and by the simulator in `tests/`.

pub mod authority;
pub mod churn;
pub mod event;
pub mod groups;
pub mod link;
pub mod maintenance;
pub mod membership;
pub mod node;
pub mod offer;
pub mod operator;
pub mod placement;
pub mod sentinel;
pub mod spec;
pub mod time;

pub use authority::{QuorumLoss, TieStep};
pub use event::{DropReason, Event};
pub use groups::{Phase, ResourceOp, ResourceRequest};
pub use node::{Action, Dest, Node};
pub use operator::{Command, CommandState, Op, Refusal};
pub use spec::{ClusterSpec, GroupSpec, NodeId, NodeSpec, PathKind, PathSpec};
pub use time::Instant;
