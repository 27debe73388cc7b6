//! Wire formats: checked views over `&[u8]` and emitters into caller buffers.
//!
//! Contract: nothing here does I/O, reads a clock or allocates. Untrusted bytes enter only
//! through `new_checked`, after which no accessor panics. One frame format serves every path
//! (DESIGN §3): [`frame`] is that frame, [`heartbeat`] its heartbeat payload, [`state`] the
//! node-state block (heartbeats and group-state frames), [`view`] membership payloads, [`command`] operator commands, [`offer`] configuration offers, [`notice`] a sentinel's death notice, [`auth`] the
//! HMAC tag, [`cobs`] serial framing, [`disk`] the shared-disk layout, [`ethernet`] the link-layer constants for raw Ethernet paths.
//! Called by `core` (parse and build) and by tests; depends on nothing of ours.

pub mod announce;
pub mod auth;
pub mod cobs;
pub mod command;
pub mod disk;
pub mod ethernet;
pub mod frame;
pub mod heartbeat;
pub mod notice;
pub mod offer;
pub mod state;
pub mod view;

/// Highest node id (ids are 1..=64, DESIGN §3) and so the most nodes in a cluster.
pub const MAX_NODES: usize = 64;
/// Most heartbeat paths a cluster may configure (path id is an index below this).
pub const MAX_PATHS: usize = 8;
