//! heartwire-hal: the one place where heartwire talks to the kernel.
//!
//! Contract: every `unsafe` block of the project lives in this crate, one system call per
//! block, each with a `// SAFETY:` comment. The public API is safe and typed; file
//! descriptors are `OwnedFd`, never stored `i32`s. Nothing here knows about cluster logic:
//! the daemon owns these handles and feeds what they read into the sans-IO core.
//!
//! Modules, one per device kind: [`clock`], [`packet`] (AF_PACKET raw Ethernet), [`udp`],
//! [`timerfd`], [`signalfd`], [`sched`] (real-time mode), [`cred`] (peer credentials),
//! [`random`], [`netlink`] (rtnetlink address changes), [`linkmon`] (carrier events), [`inventory`] (interfaces and addresses, for the tools), [`serial`] (RS232 lines),
//! [`disk`] (O_DIRECT shared disks), [`scsi`] (SG_IO pass-through and the block layer's
//! persistent-reservation ioctls; blocking, for a child process), [`mount`]
//! (mount/umount for the filesystem resource; blocking, for a child), [`watchdog`]
//! (`/dev/watchdog` and the halt of a self-fencing node), [`sentinel`] (fork, the shared
//! progress page and reaping, for the process that watches the daemon), [`cgroup`] (cgroup v2
//! directories for the processes the daemon starts).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc_count;
pub mod cgroup;
pub mod clock;
pub mod cred;
pub mod disk;
pub mod inventory;
pub mod linkmon;
pub mod mount;
pub mod netlink;
pub mod packet;
pub mod process;
pub mod random;
pub mod sched;
pub mod scsi;
pub mod sentinel;
pub mod serial;
pub mod signalfd;
mod sys;
pub mod timerfd;
pub mod udp;
pub mod watchdog;

pub use sys::{HalError, RxMeta, wait_readable};
