//! One mio token per event source.

use mio::Token;

/// The absolute CLOCK_MONOTONIC timerfd.
pub(crate) const TIMER: Token = Token(0);
/// The signalfd.
pub(crate) const SIGNAL: Token = Token(1);
/// The control socket listener.
pub(crate) const CTL_LISTENER: Token = Token(2);
/// The rtnetlink link-event socket (carrier changes).
pub(crate) const LINKS: Token = Token(3);
/// Path `i` is `PATH_BASE + i`.
pub(crate) const PATH_BASE: usize = 16;
/// Control connection in slot `i` is `CTL_CONN_BASE + i`.
pub(crate) const CTL_CONN_BASE: usize = 256;
/// Child in slot `i`: its pidfd is `CHILD_BASE + 2i`, its output pipe `CHILD_BASE + 2i + 1`.
pub(crate) const CHILD_BASE: usize = 1024;
/// The check of a configuration offer (one child): pidfd and output pipe.
pub(crate) const OFFER_CHILD_BASE: usize = CHILD_BASE + 2 * super::children::CHILDREN_MAX;
/// The tie-breaker's children (two slots): pidfd and output pipe each.
pub(crate) const TIE_CHILD_BASE: usize = OFFER_CHILD_BASE + 2;
/// Application `r` of group `g` (its cgroup's `cgroup.events`) is
/// `APP_CGROUP_BASE + g * APP_CGROUP_STRIDE + r`: above every other token.
pub(crate) const APP_CGROUP_BASE: usize = 1 << 20;
/// Tokens per group (more than a group's resources).
pub(crate) const APP_CGROUP_STRIDE: usize = 256;
