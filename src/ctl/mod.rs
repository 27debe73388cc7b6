//! The control socket protocol and the CLI client (DESIGN §7).
//!
//! Protocol: the client connects to the daemon's Unix socket (mode 0600; the daemon checks
//! SO_PEERCRED and serves only root or its own user), writes one request line, and reads
//! one JSON document until EOF. Requests (see [`request`]): `status`, `reload`, `events`
//! (a stream of JSON lines, see [`events`]), and the operator commands `move`, `online`,
//! `offline`, `stop`, answered when they are done, expired or refused, and the
//! configuration offers `sync` and `verify-cluster` (see [`offer`]), answered when every
//! member answered or the offer's deadline passed. A refused or
//! unknown request gets `{"error": "..."}`. The daemon side lives in
//! `daemon::ctl_server`; the report type and its text rendering live here so
//! `status --json` and the table show the same data. The operator's offline tools live
//! here too: [`init`], [`verify`], [`snapshot`], and the storage steps ([`storage`]).

pub mod client;
pub mod debug;
pub mod events;
mod host;
pub mod init;
pub mod offer;
pub mod request;
pub mod snapshot;
pub mod status;
pub mod storage;
pub mod verify;

/// Longest request line accepted.
pub const REQUEST_MAX: usize = 1024;
