//! SCSI-3 persistent reservations for the `reservation` resource and the tie-breaker
//! (DESIGN §5–6). These run in a child process (`heartwire reservation …`): every
//! command waits for the device.
//!
//! Keys: `HW` ‖ 0000 ‖ cluster id ‖ 00 ‖ node id, so `heartwire reservation show` and
//! sg_persist name the node, and a key of another cluster (or another product) is never
//! preempted by mistake.
//!
//! A failover group's disk is registered only by the node that holds the group. Under
//! the default type, Write Exclusive – Registrants Only, every *registrant* may write, so
//! a standby that stayed registered could write to its owner's disk; registering at
//! acquisition keeps the owner the only writer.
//! - acquire: REGISTER AND IGNORE EXISTING KEY (a reconnect loses the registration, so
//!   always register afresh); read the reservation; held by this node: done; held by
//!   another node of this cluster: PREEMPT AND ABORT its key (the dead or departed
//!   owner's in-flight commands are aborted and its later ones fail with RESERVATION
//!   CONFLICT; a target without PREEMPT AND ABORT gets a PREEMPT); held by a key of no node of this cluster: refuse; not held: RESERVE.
//!   Then every other key of this cluster still registered is preempted too (a node
//!   that died between registering and reserving would otherwise keep write access).
//! - release: RELEASE, then unregister. A node that finds itself no longer registered
//!   has nothing to release (it was preempted): that is success.
//! - tie-breaker: every node registers while it is in a majority view; on a tie each
//!   side PREEMPTs the others' keys *without registering again*. The first PREEMPT
//!   removes the rival's registration, so the rival's own PREEMPT then fails with
//!   RESERVATION CONFLICT: exactly one side wins.
//!
//! UNIT ATTENTION (a reset, a reconnect, "registrations preempted") ends a command
//! without executing it; each command is retried a few times past one.

use heartwire_hal::scsi::{CmdError, Device, PrIoctl, PrOut, PrType, ScsiError};
use std::time::Duration;

/// Tag in a key's top 16 bits: "HW".
const KEY_TAG: u64 = 0x4857;

/// This node's reservation key.
pub fn key(cluster: u16, node: u8) -> u64 {
    KEY_TAG << 48 | u64::from(cluster) << 16 | u64::from(node)
}

/// The node id of `key` when it is a key of cluster `cluster`.
pub fn key_node(key: u64, cluster: u16) -> Option<u8> {
    (key >> 16 == KEY_TAG << 32 | u64::from(cluster) && key & 0xff00 == 0)
        .then(|| u8::try_from(key & 0xff).expect("invariant: masked"))
}

/// How the disk is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SCSI-3 persistent reservation of this type.
    Persistent(PrType),
    /// SCSI-2 RESERVE(6)/RELEASE(6) (old disks).
    Scsi2,
}

/// The kinds `type = "…"` may name (the all-registrants types have no single holder to
/// preempt, so they are not offered).
pub const KINDS: &[Kind] = &[
    Kind::Persistent(PrType::WriteExclusiveRegistrantsOnly),
    Kind::Persistent(PrType::WriteExclusive),
    Kind::Persistent(PrType::ExclusiveAccess),
    Kind::Persistent(PrType::ExclusiveAccessRegistrantsOnly),
    Kind::Scsi2,
];

/// The name of `kind` (in config, on the command line, in `reservation show`).
pub fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Scsi2 => "scsi2",
        Kind::Persistent(PrType::WriteExclusive) => "write-exclusive",
        Kind::Persistent(PrType::ExclusiveAccess) => "exclusive-access",
        Kind::Persistent(PrType::WriteExclusiveRegistrantsOnly) => {
            "write-exclusive-registrants-only"
        }
        Kind::Persistent(PrType::ExclusiveAccessRegistrantsOnly) => {
            "exclusive-access-registrants-only"
        }
        Kind::Persistent(PrType::WriteExclusiveAllRegistrants) => "write-exclusive-all-registrants",
        Kind::Persistent(PrType::ExclusiveAccessAllRegistrants) => {
            "exclusive-access-all-registrants"
        }
    }
}

/// The kind of [`KINDS`] named `name`.
pub fn kind_named(name: &str) -> Option<Kind> {
    KINDS.iter().copied().find(|k| type_name(*k) == name)
}

/// The names of [`KINDS`], comma-separated (for error messages).
pub fn kind_names() -> String {
    KINDS
        .iter()
        .map(|k| type_name(*k))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The persistent-reservation commands the procedures below need; [`Device`] over SG_IO
/// is the implementation, a model of SPC-4 the unit tests'.
pub trait Pr {
    /// Registered keys.
    fn keys(&mut self) -> Result<Vec<u64>, CmdError>;
    /// The holder's key and type, if reserved.
    fn reservation(&mut self) -> Result<Option<(u64, Option<PrType>)>, CmdError>;
    /// PERSISTENT RESERVE OUT.
    fn out(&mut self, sa: PrOut, ty: Option<PrType>, key: u64, sa_key: u64)
    -> Result<(), CmdError>;
}

/// Per-command limit of the SG layer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

impl Pr for Device {
    fn keys(&mut self) -> Result<Vec<u64>, CmdError> {
        self.read_keys(COMMAND_TIMEOUT).map(|k| k.keys)
    }
    fn reservation(&mut self) -> Result<Option<(u64, Option<PrType>)>, CmdError> {
        self.read_reservation(COMMAND_TIMEOUT)
            .map(|r| r.map(|r| (r.key, r.ty)))
    }
    fn out(
        &mut self,
        sa: PrOut,
        ty: Option<PrType>,
        key: u64,
        sa_key: u64,
    ) -> Result<(), CmdError> {
        self.pr_out(sa, ty, key, sa_key, COMMAND_TIMEOUT)
    }
}

/// Attempts per command while the device answers UNIT ATTENTION.
const UA_ATTEMPTS: usize = 4;

/// Runs `f` again while it fails with UNIT ATTENTION (the command was not executed).
fn retry<T>(
    log: &mut dyn FnMut(String),
    mut f: impl FnMut() -> Result<T, CmdError>,
) -> Result<T, CmdError> {
    let mut n = 0;
    loop {
        match f() {
            Err(e) if n + 1 < UA_ATTEMPTS && unit_attention(&e) => {
                log(format!("{e} (retrying)"));
                n += 1;
            }
            r => return r,
        }
    }
}

fn unit_attention(e: &CmdError) -> bool {
    e.scsi()
        .and_then(ScsiError::sense)
        .is_some_and(|s| s.is_unit_attention())
}

/// RESERVATION CONFLICT.
pub fn conflict(e: &CmdError) -> bool {
    matches!(e.scsi(), Some(ScsiError::ReservationConflict))
}

/// What went wrong, for the log and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum PrError {
    /// A command failed.
    #[error(transparent)]
    Cmd(#[from] CmdError),
    /// The disk is reserved by a key of no node of this cluster.
    #[error(
        "reserved by key {0:#018x}, which is not a key of this cluster: refusing to preempt \
         it (another cluster or host uses this disk?)"
    )]
    Foreign(u64),
    /// The reservation is not ours after the acquisition.
    #[error("after acquiring, the reservation is {0}")]
    NotHeld(String),
    /// The target accepted a registration that READ KEYS does not list.
    #[error("the target accepted the registration of {0:#018x} but READ KEYS does not list it")]
    NotListed(u64),
}

fn holder_text(r: Option<(u64, Option<PrType>)>) -> String {
    r.map_or("not held".into(), |(k, _)| format!("held by {k:#018x}"))
}

/// Acquires the disk for this node (`key`, cluster `cluster`) with `ty`. `log` receives
/// what was done, a line at a time.
pub fn acquire(
    dev: &mut dyn Pr,
    cluster: u16,
    key: u64,
    ty: PrType,
    log: &mut dyn FnMut(String),
) -> Result<(), PrError> {
    retry(log, || {
        dev.out(PrOut::RegisterAndIgnoreExistingKey, None, 0, key)
    })?;
    let held = retry(log, || dev.reservation())?;
    match held {
        Some((k, _)) if k == key => log(format!("already reserved with key {key:#018x}")),
        Some((k, _)) if key_node(k, cluster).is_some() => {
            let how = preempt(dev, key, k, ty, log)?;
            log(format!(
                "preempted node {}'s key {k:#018x} ({how})",
                key_node(k, cluster).expect("invariant: matched")
            ));
        }
        Some((k, _)) => return Err(PrError::Foreign(k)),
        None => {
            retry(log, || dev.out(PrOut::Reserve, Some(ty), key, 0))?;
            log(format!("reserved with key {key:#018x}"));
        }
    }
    for k in retry(log, || dev.keys())? {
        if k == key || key_node(k, cluster).is_none() {
            continue;
        }
        let how = preempt(dev, key, k, ty, log)?;
        log(format!("removed stale registration {k:#018x} ({how})"));
    }
    let now = retry(log, || dev.reservation())?;
    if now.map(|(k, _)| k) != Some(key) {
        return Err(PrError::NotHeld(holder_text(now)));
    }
    Ok(())
}

/// PREEMPT AND ABORT of `victim`; a target that refuses the service action (ILLEGAL
/// REQUEST: tgtd does) gets a plain PREEMPT, which removes the registration and moves the
/// reservation just the same but leaves commands the victim already queued to finish.
/// Says which one it was.
fn preempt(
    dev: &mut dyn Pr,
    key: u64,
    victim: u64,
    ty: PrType,
    log: &mut dyn FnMut(String),
) -> Result<&'static str, PrError> {
    match retry(log, || {
        dev.out(PrOut::PreemptAndAbort, Some(ty), key, victim)
    }) {
        Ok(()) => Ok("PREEMPT AND ABORT"),
        Err(e) if illegal_request(&e) => {
            retry(log, || dev.out(PrOut::Preempt, Some(ty), key, victim))?;
            Ok("PREEMPT: the target refuses PREEMPT AND ABORT")
        }
        Err(e) => Err(e.into()),
    }
}

fn illegal_request(e: &CmdError) -> bool {
    e.scsi()
        .and_then(ScsiError::sense)
        .is_some_and(|s| s.key == heartwire_hal::scsi::sense::key::ILLEGAL_REQUEST)
}

/// Releases the disk: RELEASE, then unregister. Not being registered any more (this node
/// was preempted) is success: it holds nothing.
pub fn release(
    dev: &mut dyn Pr,
    key: u64,
    ty: PrType,
    log: &mut dyn FnMut(String),
) -> Result<(), PrError> {
    match retry(log, || dev.out(PrOut::Release, Some(ty), key, 0)) {
        Ok(()) => {}
        Err(e) if conflict(&e) => {
            log("not registered any more (preempted): nothing to release".into());
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    match retry(log, || dev.out(PrOut::Register, None, key, 0)) {
        Ok(()) => log(format!("released and unregistered key {key:#018x}")),
        Err(e) if conflict(&e) => log("released; the registration was already gone".into()),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// What [`tie_register`] found on the tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The key was registered already: nothing was sent.
    Present,
    /// The key was missing (first registration, or lost: a transport reconnect, a new
    /// I_T nexus, a target restart) and is registered now.
    Made,
}

/// Makes sure this node is registered on the tie-breaker disk (while in a majority
/// view): reads the keys, registers when its key is missing, and reads them again — a
/// registration the target accepted and then dropped (an old session of this host torn
/// down after the new one registered) would otherwise only be found at the next tie,
/// which this node then loses.
pub fn tie_register(
    dev: &mut dyn Pr,
    key: u64,
    log: &mut dyn FnMut(String),
) -> Result<Registration, PrError> {
    if retry(log, || dev.keys())?.contains(&key) {
        return Ok(Registration::Present);
    }
    retry(log, || {
        dev.out(PrOut::RegisterAndIgnoreExistingKey, None, 0, key)
    })?;
    if !retry(log, || dev.keys())?.contains(&key) {
        return Err(PrError::NotListed(key));
    }
    Ok(Registration::Made)
}

/// The tie-breaker race's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Race {
    /// This node holds the tie-breaker.
    Won,
    /// A rival preempted this node first (or it was never registered).
    Lost,
}

/// A command of the tie-breaker race ([`TieRace`]) for its caller to run on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaceCmd {
    /// READ KEYS.
    ReadKeys,
    /// PREEMPT this rival's key (type Write Exclusive – Registrants Only).
    Preempt(u64),
    /// READ RESERVATION.
    ReadReservation,
    /// RESERVE (Write Exclusive – Registrants Only).
    Reserve,
}

/// What a [`RaceCmd`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaceReply {
    /// READ KEYS: the registered keys.
    Keys(Vec<u64>),
    /// READ RESERVATION: whether the disk is reserved.
    Reserved(bool),
    /// PREEMPT or RESERVE done.
    Done,
    /// PREEMPT or RESERVE met RESERVATION CONFLICT: this node's key is gone.
    Conflict,
}

/// The next step of a race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaceNext {
    /// Run this command and hand its reply to [`TieRace::next`].
    Run(RaceCmd),
    /// The race is over.
    Over(Race),
}

/// The tie-breaker race as a step machine, without I/O: [`tie_break`] runs it on a disk;
/// the simulator runs it on its model of one, a command at a time, interleaved with the
/// other half's racer. It preempts every registered key of the rivals (the configured
/// nodes outside this node's half view) and reserves the disk. It does not register
/// again: its registration is its ticket, and a rival that won has already taken it away.
/// Only one node per half races (review S3: a half-mate that raced too met the conflict
/// of a key its mate had already removed, and counted it as a lost race).
#[derive(Debug, Clone)]
pub struct TieRace {
    key: u64,
    rivals: Vec<u64>,
    /// Rivals still to preempt (those registered when the keys were read), in order.
    left: Vec<u64>,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Keys,
    Preempting,
    Reservation,
    Reserving,
}

impl TieRace {
    /// A race of `key` against `rivals`; its first command.
    pub fn new(key: u64, rivals: &[u64]) -> (TieRace, RaceCmd) {
        let race = TieRace {
            key,
            rivals: rivals.to_vec(),
            left: vec![],
            phase: Phase::Keys,
        };
        (race, RaceCmd::ReadKeys)
    }

    /// The reply to the last command: what comes next.
    ///
    /// # Panics
    /// If the reply does not answer the last command (a caller bug).
    pub fn next(&mut self, reply: RaceReply) -> RaceNext {
        match (self.phase, reply) {
            (Phase::Keys, RaceReply::Keys(keys)) => {
                if !keys.contains(&self.key) {
                    return RaceNext::Over(Race::Lost);
                }
                self.left = self
                    .rivals
                    .iter()
                    .rev()
                    .filter(|r| keys.contains(r))
                    .copied()
                    .collect();
                self.phase = Phase::Preempting;
                self.preempt_next()
            }
            (Phase::Preempting, RaceReply::Done) => self.preempt_next(),
            (Phase::Preempting | Phase::Reserving, RaceReply::Conflict) => {
                RaceNext::Over(Race::Lost)
            }
            (Phase::Reservation, RaceReply::Reserved(true))
            | (Phase::Reserving, RaceReply::Done) => RaceNext::Over(Race::Won),
            (Phase::Reservation, RaceReply::Reserved(false)) => {
                self.phase = Phase::Reserving;
                RaceNext::Run(RaceCmd::Reserve)
            }
            (phase, reply) => panic!("tie-breaker race: {reply:?} does not answer {phase:?}"),
        }
    }

    fn preempt_next(&mut self) -> RaceNext {
        match self.left.pop() {
            Some(r) => RaceNext::Run(RaceCmd::Preempt(r)),
            None => {
                self.phase = Phase::Reservation;
                RaceNext::Run(RaceCmd::ReadReservation)
            }
        }
    }
}

/// Races for the tie-breaker on `dev` ([`TieRace`]).
pub fn tie_break(
    dev: &mut dyn Pr,
    key: u64,
    rivals: &[u64],
    log: &mut dyn FnMut(String),
) -> Result<Race, PrError> {
    let ty = PrType::WriteExclusiveRegistrantsOnly;
    let (mut race, mut cmd) = TieRace::new(key, rivals);
    loop {
        let reply = match cmd {
            RaceCmd::ReadKeys => RaceReply::Keys(retry(log, || dev.keys())?),
            RaceCmd::ReadReservation => {
                RaceReply::Reserved(retry(log, || dev.reservation())?.is_some())
            }
            RaceCmd::Preempt(r) => match retry(log, || dev.out(PrOut::Preempt, Some(ty), key, r)) {
                Ok(()) => {
                    log(format!("preempted rival key {r:#018x}"));
                    RaceReply::Done
                }
                Err(e) if conflict(&e) => {
                    log(format!(
                        "preempting {r:#018x}: RESERVATION CONFLICT: a rival won"
                    ));
                    RaceReply::Conflict
                }
                Err(e) => return Err(e.into()),
            },
            RaceCmd::Reserve => match retry(log, || dev.out(PrOut::Reserve, Some(ty), key, 0)) {
                Ok(()) => RaceReply::Done,
                Err(e) if conflict(&e) => {
                    log("reserving: RESERVATION CONFLICT: a rival won".into());
                    RaceReply::Conflict
                }
                Err(e) => return Err(e.into()),
            },
        };
        match race.next(reply) {
            RaceNext::Run(next) => cmd = next,
            RaceNext::Over(r) => {
                if r == Race::Lost && cmd == RaceCmd::ReadKeys {
                    log(format!("key {key:#018x} is not registered: a rival won"));
                }
                return Ok(r);
            }
        }
    }
}

/// SCSI-2 acquisition: RESERVE(6); when another initiator holds it, a LUN reset breaks
/// its reservation (as HACMP's disk takeover does) and RESERVE(6) is tried once more.
pub fn acquire_scsi2(dev: &Device, log: &mut dyn FnMut(String)) -> Result<(), PrError> {
    match retry(log, || dev.reserve6(COMMAND_TIMEOUT)) {
        Ok(()) => {}
        Err(e) if conflict(&e) => {
            log("RESERVE(6): held by another initiator: resetting the LUN".into());
            dev.reset_device()?;
            retry(log, || dev.reserve6(COMMAND_TIMEOUT))?;
        }
        Err(e) => return Err(e.into()),
    }
    log("reserved (SCSI-2 RESERVE(6))".into());
    Ok(())
}

/// The same procedures over the block layer's `IOC_PR_*` ioctls, for devices without
/// SG_IO (NVMe, dm-multipath). They cannot read keys, so acquisition preempts the keys
/// of the cluster's other nodes (`others`) one by one; a PREEMPT of a key that is not
/// registered fails with RESERVATION CONFLICT, which is expected.
pub fn acquire_ioctl(
    dev: &Device,
    key: u64,
    others: &[u64],
    ty: PrType,
    log: &mut dyn FnMut(String),
) -> Result<(), PrError> {
    dev.pr_ioctl(PrIoctl::Register {
        old: 0,
        new: key,
        ignore: true,
    })?;
    match dev.pr_ioctl(PrIoctl::Reserve { key, ty }) {
        Ok(()) => {
            log(format!("reserved with key {key:#018x} (IOC_PR)"));
            return Ok(());
        }
        Err(e) if conflict(&e) => {}
        Err(e) => return Err(e.into()),
    }
    for &victim in others {
        match dev.pr_ioctl(PrIoctl::Preempt {
            key,
            victim,
            ty,
            abort: true,
        }) {
            Ok(()) => log(format!("preempted and aborted {victim:#018x} (IOC_PR)")),
            Err(e) if conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    dev.pr_ioctl(PrIoctl::Reserve { key, ty })?;
    log(format!("reserved with key {key:#018x} (IOC_PR)"));
    Ok(())
}

/// [`release`] over the `IOC_PR_*` ioctls.
pub fn release_ioctl(
    dev: &Device,
    key: u64,
    ty: PrType,
    log: &mut dyn FnMut(String),
) -> Result<(), PrError> {
    match dev.pr_ioctl(PrIoctl::Release { key, ty }) {
        Ok(()) => {}
        Err(e) if conflict(&e) => {
            log("not registered any more (preempted): nothing to release (IOC_PR)".into());
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    let unregister = PrIoctl::Register {
        old: key,
        new: 0,
        ignore: false,
    };
    match dev.pr_ioctl(unregister) {
        Ok(()) => log(format!(
            "released and unregistered key {key:#018x} (IOC_PR)"
        )),
        Err(e) if conflict(&e) => log("released; the registration was already gone".into()),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
#[path = "reservation_tests.rs"]
mod tests;
