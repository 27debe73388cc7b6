//! `heartwire-web`: the operator's window on one node, as its own process (the daemon's
//! loop has no HTTP code): Prometheus metrics at `/metrics`, a live page of the cluster
//! at `/`, the status as JSON at `/status.json` and the event stream as server-sent events
//! at `/events`. It talks to the daemon over the control socket like `heartwire status`
//! and `heartwire events` do, listens on 127.0.0.1 unless told otherwise, and is
//! read-only unless started with `--actions`, when a group dragged onto another node on
//! the page asks `move`, carrying the token of its token file.

pub mod http;
pub mod metrics;
pub mod page;
pub mod server;
pub mod stats;
