//! Real-time mode (DESIGN §2): memory locked, SCHED_FIFO, optional CPU affinity. Applied
//! once, before the loop starts.

use std::io;
use std::mem;

use crate::sys::{HalError, cvt};

/// Locks all current and future pages in memory (mlockall), so a page fault never
/// stalls a heartbeat.
pub fn lock_memory() -> Result<(), HalError> {
    // SAFETY: mlockall takes only flags; the result is checked.
    cvt(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) })
        .map_err(|e| HalError::new("mlockall", "process", e))?;
    Ok(())
}

/// Switches this process to SCHED_FIFO at `priority` (1..=99).
pub fn set_fifo(priority: u8) -> Result<(), HalError> {
    let param = libc::sched_param { sched_priority: i32::from(priority) };
    // SAFETY: pid 0 means this process; `param` is a live sched_param; checked.
    cvt(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) })
        .map_err(|e| HalError::new("sched_setscheduler", format!("SCHED_FIFO {priority}"), e))?;
    Ok(())
}

/// Pins this process to one CPU.
pub fn set_affinity(cpu: u16) -> Result<(), HalError> {
    // SAFETY: cpu_set_t is a plain bit array valid when zeroed.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    if usize::from(cpu) >= libc::CPU_SETSIZE as usize {
        return Err(HalError::new("sched_setaffinity", format!("cpu {cpu}"), io::ErrorKind::InvalidInput.into()));
    }
    // SAFETY: `cpu` was checked to be below CPU_SETSIZE, so the bit lies inside `set`.
    unsafe { libc::CPU_SET(usize::from(cpu), &mut set) };
    // SAFETY: pid 0 means this process; pointer and size describe `set`; checked.
    cvt(unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) })
        .map_err(|e| HalError::new("sched_setaffinity", format!("cpu {cpu}"), e))?;
    Ok(())
}
