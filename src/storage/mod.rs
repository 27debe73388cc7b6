//! Shared-storage operations that wait for a device: SCSI reservations (the
//! `reservation` resource and the tie-breaker) and mounts (the `filesystem` resource).
//! None of this runs in the event loop: the daemon starts `heartwire reservation …` and
//! `heartwire filesystem …` as children (see `daemon::resources`), bounded by the
//! resource's timeout, and reads their exit status.

pub mod filesystem;
pub mod reservation;
