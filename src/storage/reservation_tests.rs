//! The procedures against a model of SPC-4 §5.12 persistent reservations (one logical
//! unit, several I_T nexuses). The model is the specification's rules, not the target
//! under test: the SAN lab (tests/san) runs the same procedures against tgtd.

use std::cell::RefCell;
use std::rc::Rc;

use heartwire_hal::scsi::sense::key as sense_key;
use heartwire_hal::scsi::{CmdError, PrOut, PrType, ScsiError, Sense};

use super::*;

#[derive(Default)]
struct Lu {
    /// (nexus, key)
    regs: Vec<(u8, u64)>,
    /// (holder nexus, key, type)
    res: Option<(u8, u64, PrType)>,
    /// Nexuses with a pending UNIT ATTENTION 2A/03.
    ua: Vec<u8>,
    /// Every PR OUT service action executed, by nexus.
    done: Vec<(u8, PrOut)>,
}

struct Nexus {
    lu: Rc<RefCell<Lu>>,
    id: u8,
}

fn err(e: ScsiError) -> CmdError {
    CmdError::Scsi {
        op: "model",
        dev: "lu".into(),
        err: e,
    }
}

const CONFLICT: ScsiError = ScsiError::ReservationConflict;

impl Nexus {
    fn ua(&self) -> Result<(), CmdError> {
        let mut lu = self.lu.borrow_mut();
        if let Some(i) = lu.ua.iter().position(|n| *n == self.id) {
            lu.ua.swap_remove(i);
            return Err(err(ScsiError::Check(Sense {
                key: sense_key::UNIT_ATTENTION,
                asc: 0x2a,
                ascq: 0x03,
                descriptor: false,
            })));
        }
        Ok(())
    }
}

impl Pr for Nexus {
    fn keys(&mut self) -> Result<Vec<u64>, CmdError> {
        self.ua()?;
        Ok(self.lu.borrow().regs.iter().map(|r| r.1).collect())
    }

    fn reservation(&mut self) -> Result<Option<(u64, Option<PrType>)>, CmdError> {
        self.ua()?;
        Ok(self.lu.borrow().res.map(|(_, k, t)| (k, Some(t))))
    }

    fn out(
        &mut self,
        sa: PrOut,
        ty: Option<PrType>,
        key: u64,
        sa_key: u64,
    ) -> Result<(), CmdError> {
        self.ua()?;
        let me = self.id;
        let mut lu = self.lu.borrow_mut();
        let mine = lu.regs.iter().find(|r| r.0 == me).map(|r| r.1);
        let unregister = |lu: &mut Lu| {
            lu.regs.retain(|r| r.0 != me);
            if lu.res.is_some_and(|r| r.0 == me) {
                lu.res = None;
            }
        };
        match sa {
            PrOut::RegisterAndIgnoreExistingKey | PrOut::Register => {
                if sa == PrOut::Register && mine.unwrap_or(0) != key {
                    return Err(err(CONFLICT));
                }
                if sa_key == 0 {
                    unregister(&mut lu);
                } else if let Some(r) = lu.regs.iter_mut().find(|r| r.0 == me) {
                    r.1 = sa_key;
                } else {
                    lu.regs.push((me, sa_key));
                }
            }
            PrOut::Reserve => {
                if mine != Some(key) {
                    return Err(err(CONFLICT));
                }
                match lu.res {
                    None => lu.res = Some((me, key, ty.expect("type"))),
                    Some((h, ..)) if h == me => {}
                    Some(_) => return Err(err(CONFLICT)),
                }
            }
            PrOut::Release => {
                if mine != Some(key) {
                    return Err(err(CONFLICT));
                }
                if lu.res.is_some_and(|r| r.0 == me) {
                    lu.res = None;
                }
            }
            PrOut::Preempt | PrOut::PreemptAndAbort => {
                if mine != Some(key) || !lu.regs.iter().any(|r| r.1 == sa_key) {
                    return Err(err(CONFLICT));
                }
                let victims: Vec<u8> = lu
                    .regs
                    .iter()
                    .filter(|r| r.1 == sa_key && r.0 != me)
                    .map(|r| r.0)
                    .collect();
                lu.regs.retain(|r| !victims.contains(&r.0));
                lu.ua.extend(&victims);
                if lu.res.is_some_and(|r| r.1 == sa_key) {
                    lu.res = Some((me, key, ty.expect("type")));
                }
            }
            PrOut::Clear => {
                lu.regs.clear();
                lu.res = None;
            }
        }
        lu.done.push((me, sa));
        Ok(())
    }
}

fn san(n: u8) -> (Rc<RefCell<Lu>>, Vec<Nexus>) {
    let lu = Rc::new(RefCell::new(Lu::default()));
    let nexuses = (1..=n)
        .map(|id| Nexus {
            lu: Rc::clone(&lu),
            id,
        })
        .collect();
    (lu, nexuses)
}

const C: u16 = 7;
const WERO: PrType = PrType::WriteExclusiveRegistrantsOnly;

fn quiet() -> impl FnMut(String) {
    |_| {}
}

#[test]
fn keys_name_cluster_and_node() {
    assert_eq!(key(7, 2), 0x4857_0000_0007_0002);
    assert_eq!(key_node(key(7, 2), 7), Some(2));
    assert_eq!(key_node(key(7, 2), 8), None);
    assert_eq!(key_node(0x1234, 7), None);
    assert_eq!(key_node(key(7, 2) | 0x100, 7), None);
}

#[test]
fn acquire_registers_and_reserves_then_is_idempotent() {
    let (lu, mut n) = san(2);
    acquire(&mut n[0], C, key(C, 1), WERO, &mut quiet()).unwrap();
    assert_eq!(lu.borrow().res, Some((1, key(C, 1), WERO)));
    assert_eq!(lu.borrow().regs, vec![(1, key(C, 1))]);
    acquire(&mut n[0], C, key(C, 1), WERO, &mut quiet()).unwrap();
    assert_eq!(lu.borrow().res, Some((1, key(C, 1), WERO)));
}

#[test]
fn takeover_preempts_and_aborts_the_old_owner() {
    let (lu, mut n) = san(3);
    acquire(&mut n[0], C, key(C, 1), WERO, &mut quiet()).unwrap();
    // Node 3 registered and died before reserving: a stale registrant.
    n[2].out(PrOut::RegisterAndIgnoreExistingKey, None, 0, key(C, 3))
        .unwrap();
    let mut lines = Vec::new();
    acquire(&mut n[1], C, key(C, 2), WERO, &mut |l| lines.push(l)).unwrap();
    let lu = lu.borrow();
    assert_eq!(lu.res, Some((2, key(C, 2), WERO)));
    assert_eq!(
        lu.regs,
        vec![(2, key(C, 2))],
        "only the new owner is registered"
    );
    assert!(lu.done.contains(&(2, PrOut::PreemptAndAbort)));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("node 1") && l.contains("(PREEMPT AND ABORT)")),
        "{lines:?}"
    );
    drop(lu);
    // The old owner's release finds itself preempted: nothing to do, and no harm.
    release(&mut n[0], key(C, 1), WERO, &mut quiet()).unwrap();
    assert!(n[0].reservation().unwrap().is_some());
}

#[test]
fn a_target_without_preempt_and_abort_gets_a_preempt() {
    let (lu, mut n) = san(2);
    acquire(&mut n[0], C, key(C, 1), WERO, &mut quiet()).unwrap();
    let mut plain = Refusing(Nexus {
        lu: Rc::clone(&lu),
        id: 2,
    });
    let mut lines = Vec::new();
    acquire(&mut plain, C, key(C, 2), WERO, &mut |l| lines.push(l)).unwrap();
    assert_eq!(lu.borrow().res.map(|r| r.0), Some(2));
    assert!(lu.borrow().done.contains(&(2, PrOut::Preempt)));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("refuses PREEMPT AND ABORT")),
        "{lines:?}"
    );
}

/// A device server that does not implement PREEMPT AND ABORT (ILLEGAL REQUEST 24/00).
struct Refusing(Nexus);

impl Pr for Refusing {
    fn keys(&mut self) -> Result<Vec<u64>, CmdError> {
        self.0.keys()
    }
    fn reservation(&mut self) -> Result<Option<(u64, Option<PrType>)>, CmdError> {
        self.0.reservation()
    }
    fn out(
        &mut self,
        sa: PrOut,
        ty: Option<PrType>,
        key: u64,
        sa_key: u64,
    ) -> Result<(), CmdError> {
        if sa == PrOut::PreemptAndAbort {
            return Err(err(ScsiError::Check(Sense {
                key: sense_key::ILLEGAL_REQUEST,
                asc: 0x24,
                ascq: 0,
                descriptor: false,
            })));
        }
        self.0.out(sa, ty, key, sa_key)
    }
}

#[test]
fn a_foreign_reservation_is_never_preempted() {
    let (lu, mut n) = san(2);
    n[0].out(PrOut::RegisterAndIgnoreExistingKey, None, 0, 0xabcd)
        .unwrap();
    n[0].out(PrOut::Reserve, Some(WERO), 0xabcd, 0).unwrap();
    let e = acquire(&mut n[1], C, key(C, 2), WERO, &mut quiet()).unwrap_err();
    assert!(matches!(e, PrError::Foreign(0xabcd)), "{e}");
    assert_eq!(lu.borrow().res.map(|r| r.1), Some(0xabcd));
}

#[test]
fn release_gives_up_reservation_and_registration() {
    let (lu, mut n) = san(2);
    acquire(&mut n[0], C, key(C, 1), WERO, &mut quiet()).unwrap();
    release(&mut n[0], key(C, 1), WERO, &mut quiet()).unwrap();
    assert_eq!(lu.borrow().res, None);
    assert!(lu.borrow().regs.is_empty());
    // A standby is not registered, so under WE-RO it cannot write; acquiring again works.
    acquire(&mut n[1], C, key(C, 2), WERO, &mut quiet()).unwrap();
    assert_eq!(lu.borrow().res.map(|r| r.0), Some(2));
}

#[test]
fn unit_attention_is_retried() {
    let (lu, mut n) = san(2);
    lu.borrow_mut().ua.push(2);
    let mut lines = Vec::new();
    acquire(&mut n[1], C, key(C, 2), WERO, &mut |l| lines.push(l)).unwrap();
    assert!(lines[0].contains("retrying"), "{lines:?}");
    assert_eq!(lu.borrow().res.map(|r| r.0), Some(2));
}

#[test]
fn exactly_one_side_wins_the_tie_breaker_in_either_order() {
    for first in 0..2 {
        let (lu, mut n) = san(2);
        for (i, x) in n.iter_mut().enumerate() {
            tie_register(x, key(C, u8::try_from(i + 1).unwrap()), &mut quiet()).unwrap();
        }
        let second = 1 - first;
        let k = |i: usize| key(C, u8::try_from(i + 1).unwrap());
        let a = tie_break(&mut n[first], k(first), &[k(second)], &mut quiet()).unwrap();
        let b = tie_break(&mut n[second], k(second), &[k(first)], &mut quiet()).unwrap();
        assert_eq!((a, b), (Race::Won, Race::Lost), "first {first}");
        assert_eq!(
            lu.borrow().regs,
            vec![(u8::try_from(first + 1).unwrap(), k(first))]
        );
        // The winner asks again (a second tie): it still wins; the loser still loses.
        let a = tie_break(&mut n[first], k(first), &[k(second)], &mut quiet()).unwrap();
        let b = tie_break(&mut n[second], k(second), &[k(first)], &mut quiet()).unwrap();
        assert_eq!((a, b), (Race::Won, Race::Lost));
        // Healed: the loser registers again and both can race next time.
        tie_register(&mut n[second], k(second), &mut quiet()).unwrap();
        assert_eq!(lu.borrow().regs.len(), 2);
    }
}

#[test]
fn an_unregistered_node_loses_the_tie_breaker() {
    let (_lu, mut n) = san(2);
    tie_register(&mut n[1], key(C, 2), &mut quiet()).unwrap();
    let r = tie_break(&mut n[0], key(C, 1), &[key(C, 2)], &mut quiet()).unwrap();
    assert_eq!(r, Race::Lost);
    let r = tie_break(&mut n[1], key(C, 2), &[key(C, 1)], &mut quiet()).unwrap();
    assert_eq!(r, Race::Won);
}

#[test]
fn a_registration_the_target_dropped_is_found_and_made_again() {
    let (lu, mut n) = san(2);
    let k = key(C, 2);
    assert_eq!(
        tie_register(&mut n[1], k, &mut quiet()).unwrap(),
        Registration::Made
    );
    assert_eq!(
        tie_register(&mut n[1], k, &mut quiet()).unwrap(),
        Registration::Present
    );
    // The target drops it (an old session of this host torn down after the new one
    // registered): the next check registers again, and the node can race.
    lu.borrow_mut().regs.retain(|r| r.1 != k);
    assert_eq!(
        tie_register(&mut n[1], k, &mut quiet()).unwrap(),
        Registration::Made
    );
    tie_register(&mut n[0], key(C, 1), &mut quiet()).unwrap();
    let r = tie_break(&mut n[1], k, &[key(C, 1)], &mut quiet()).unwrap();
    assert_eq!(r, Race::Won);
}

/// Runs one race command of `key` on nexus `x` (a unit attention is retried, as
/// `tie_break` does): the reply the race takes.
fn run_cmd(x: &mut Nexus, key: u64, cmd: RaceCmd) -> RaceReply {
    let out = |x: &mut Nexus, sa, sa_key| match retry(&mut quiet(), || {
        x.out(sa, Some(WERO), key, sa_key)
    }) {
        Ok(()) => RaceReply::Done,
        Err(e) if conflict(&e) => RaceReply::Conflict,
        Err(e) => panic!("{e}"),
    };
    match cmd {
        RaceCmd::ReadKeys => RaceReply::Keys(retry(&mut quiet(), || x.keys()).unwrap()),
        RaceCmd::ReadReservation => {
            RaceReply::Reserved(retry(&mut quiet(), || x.reservation()).unwrap().is_some())
        }
        RaceCmd::Preempt(r) => out(x, PrOut::Preempt, r),
        RaceCmd::Reserve => out(x, PrOut::Reserve, 0),
    }
}

/// Four registered nodes split 2+2; `racers` (node ids) race, each against the nodes
/// outside its half (`half(id)`), their commands interleaved as `schedule` says (bit i:
/// which of two racers runs the i-th command, while both still run). Returns each
/// racer's outcome and the keys left registered.
fn interleaved(racers: [u8; 2], schedule: u32) -> ([Race; 2], Vec<u64>) {
    let (lu, mut n) = san(4);
    for id in 1..=4u8 {
        tie_register(&mut n[usize::from(id - 1)], key(C, id), &mut quiet()).unwrap();
    }
    let half = |id: u8| if id <= 2 { [1u8, 2] } else { [3, 4] };
    let mut races: Vec<(TieRace, RaceNext)> = racers
        .iter()
        .map(|&id| {
            let rivals: Vec<u64> = (1..=4u8)
                .filter(|r| !half(id).contains(r))
                .map(|r| key(C, r))
                .collect();
            let (race, cmd) = TieRace::new(key(C, id), &rivals);
            (race, RaceNext::Run(cmd))
        })
        .collect();
    let mut step = 0;
    loop {
        let running: Vec<usize> = (0..2)
            .filter(|&i| matches!(races[i].1, RaceNext::Run(_)))
            .collect();
        let i = match running[..] {
            [] => break,
            [only] => only,
            _ => usize::try_from(schedule >> step & 1).unwrap(),
        };
        step += 1;
        let id = racers[i];
        let RaceNext::Run(cmd) = races[i].1 else {
            unreachable!()
        };
        let reply = run_cmd(&mut n[usize::from(id - 1)], key(C, id), cmd);
        races[i].1 = races[i].0.next(reply);
    }
    let outcome = |i: usize| match races[i].1 {
        RaceNext::Over(r) => r,
        RaceNext::Run(_) => unreachable!(),
    };
    let keys = lu.borrow().regs.iter().map(|r| r.1).collect();
    ([outcome(0), outcome(1)], keys)
}

/// Review S3, against the SPC-4 model: when both members of a half race, some
/// interleaving has the second PREEMPT a key its mate already removed, meet RESERVATION
/// CONFLICT and lose, while its mate wins — the half disagrees with itself (with
/// `halt`, the loser halted and the winner was left a minority). With one racer per half
/// (the lowest member), every interleaving of the two racers' commands has exactly one
/// winner, whose half keeps its keys while the other half's are gone.
#[test]
fn with_one_racer_per_half_every_interleaving_has_exactly_one_winner() {
    let split = (0..1u32 << 10).any(|s| interleaved([1, 2], s).0 == [Race::Won, Race::Lost]);
    assert!(split, "two racers of one half can disagree");
    for schedule in 0..1u32 << 10 {
        let (outcome, keys) = interleaved([1, 3], schedule);
        let winner = match outcome {
            [Race::Won, Race::Lost] => [1u8, 2],
            [Race::Lost, Race::Won] => [3, 4],
            other => panic!("schedule {schedule:#b}: {other:?}"),
        };
        let mut want: Vec<u64> = winner.iter().map(|&id| key(C, id)).collect();
        let mut keys = keys;
        want.sort_unstable();
        keys.sort_unstable();
        assert_eq!(
            keys, want,
            "schedule {schedule:#b}: only the winning half is registered"
        );
    }
}
