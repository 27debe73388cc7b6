//! Real-time mode (DESIGN §2): memory locked, SCHED_FIFO, optional CPU affinity. Applied
//! once, before the loop starts.

use std::io;
use std::mem;
use std::sync::OnceLock;

use crate::sys::{HalError, cvt};

/// Locks all current and future pages in memory (mlockall), so a page fault never
/// stalls a heartbeat.
pub fn lock_memory() -> Result<(), HalError> {
    // SAFETY: mlockall takes only flags; the result is checked.
    cvt(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) })
        .map_err(|e| HalError::new("mlockall", "process", e))?;
    Ok(())
}

/// Switches this process to SCHED_FIFO at `priority` (1..=99), with
/// SCHED_RESET_ON_FORK: what it forks starts at the normal policy, so an application (or
/// a command) that spins never runs at the daemon's priority, beside it or above the
/// programs a takeover needs (the client-facing server).
pub fn set_fifo(priority: u8) -> Result<(), HalError> {
    // SAFETY: sched_param is plain integers (musl adds sporadic-server fields that
    // SCHED_FIFO ignores); all-zero is a valid value.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = i32::from(priority);
    // SAFETY: pid 0 means this process; `param` is a live sched_param; checked.
    cvt(unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    })
    .map_err(|e| HalError::new("sched_setscheduler", format!("SCHED_FIFO {priority}"), e))?;
    Ok(())
}

/// Puts process `pid` back to the normal policy (SCHED_OTHER, nice unchanged). The
/// sentinel does it to a daemon that is dying: the teardown of its memory then no longer
/// runs at real-time priority ahead of the fence and the peer's takeover.
pub fn set_normal(pid: i32) -> Result<(), HalError> {
    // SAFETY: sched_param is plain integers; all-zero is the value SCHED_OTHER needs.
    let param: libc::sched_param = unsafe { mem::zeroed() };
    // SAFETY: `param` is a live sched_param the kernel only reads; checked.
    cvt(unsafe { libc::sched_setscheduler(pid, libc::SCHED_OTHER, &param) })
        .map_err(|e| HalError::new("sched_setscheduler", format!("pid {pid} SCHED_OTHER"), e))?;
    Ok(())
}

/// Puts process `pid`, killed and not yet gone, at the lowest real-time priority
/// (SCHED_FIFO 1): its exit then runs ahead of every ordinary process, and still behind
/// the sentinel and the daemons. The sentinel's fence waits for what it killed to be
/// gone before it sends the death notice.
pub fn hasten_exit(pid: i32) -> Result<(), HalError> {
    // SAFETY: sched_param is plain integers; all-zero is a valid value.
    let mut param: libc::sched_param = unsafe { mem::zeroed() };
    param.sched_priority = 1;
    // SAFETY: `param` is a live sched_param the kernel only reads; checked.
    cvt(unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) })
        .map_err(|e| HalError::new("sched_setscheduler", format!("pid {pid} SCHED_FIFO 1"), e))?;
    Ok(())
}

/// The CPUs this process could run on before [`set_affinity`] first pinned it (kept
/// across a fork: the daemon a pinned sentinel forks has the sentinel's). What its
/// children get back before their exec ([`restore_affinity`]).
static UNPINNED: OnceLock<libc::cpu_set_t> = OnceLock::new();

/// Pins this process to one CPU. The CPUs it had before are what its children start
/// with: an application the daemon starts is not confined to the daemon's CPU.
pub fn set_affinity(cpu: u16) -> Result<(), HalError> {
    if UNPINNED.get().is_none() {
        // SAFETY: cpu_set_t is a plain bit array valid when zeroed.
        let mut was: libc::cpu_set_t = unsafe { mem::zeroed() };
        // SAFETY: pid 0 means this thread; pointer and size describe `was`; checked.
        if unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &raw mut was) }
            == 0
        {
            let _ = UNPINNED.set(was);
        }
    }
    // SAFETY: cpu_set_t is a plain bit array valid when zeroed.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    if usize::from(cpu) >= libc::CPU_SETSIZE as usize {
        return Err(HalError::new(
            "sched_setaffinity",
            format!("cpu {cpu}"),
            io::ErrorKind::InvalidInput.into(),
        ));
    }
    // SAFETY: `cpu` was checked to be below CPU_SETSIZE, so the bit lies inside `set`.
    unsafe { libc::CPU_SET(usize::from(cpu), &mut set) };
    // SAFETY: pid 0 means this process; pointer and size describe `set`; checked.
    cvt(unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) })
        .map_err(|e| HalError::new("sched_setaffinity", format!("cpu {cpu}"), e))?;
    Ok(())
}

/// In a forked child before its exec: back to the CPUs the process had before
/// [`set_affinity`] pinned it; nothing when it never did. Async-signal-safe: a load of
/// a value set before the fork and one system call, on memory of the child's own.
pub(crate) fn restore_affinity() -> io::Result<()> {
    restore_affinity_of(0)
}

/// [`restore_affinity`] for process `pid` (0: this thread): the parent does it for a
/// child it just cloned, which may not run before the parent's turn ends. The mask is
/// the one read at the pin: CPUs brought online since are not in it.
pub(crate) fn restore_affinity_of(pid: i32) -> io::Result<()> {
    if let Some(set) = UNPINNED.get() {
        // SAFETY: pointer and size describe a live cpu_set_t; checked.
        cvt(unsafe { libc::sched_setaffinity(pid, mem::size_of::<libc::cpu_set_t>(), set) })?;
    }
    Ok(())
}

/// A held PM QoS CPU latency request (`/dev/cpu_dma_latency`): while it is open, the
/// cpuidle governor keeps every CPU out of idle states slower to leave than the request.
/// With 0 µs idle CPUs poll instead of halting. On a VM guest this is what keeps a
/// sleeping vCPU from being descheduled by the host, which otherwise delays a
/// heartbeat's wake-up by milliseconds (measured in LAB-NOTES/README). Dropped = released.
#[derive(Debug)]
pub struct CpuLatencyRequest {
    _file: std::fs::File,
}

/// Requests a CPU wake-up latency of at most `us` microseconds for as long as the returned
/// guard lives.
pub fn hold_cpu_latency(us: u32) -> Result<CpuLatencyRequest, HalError> {
    use std::io::Write;
    const DEV: &str = "/dev/cpu_dma_latency";
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(DEV)
        .map_err(|e| HalError::new("open", DEV, e))?;
    // The ABI takes a binary s32 in native byte order (Documentation/power/pm_qos_interface).
    let value = i32::try_from(us)
        .map_err(|_| HalError::new("write", DEV, io::ErrorKind::InvalidInput.into()))?;
    file.write_all(&value.to_ne_bytes())
        .map_err(|e| HalError::new("write", DEV, e))?;
    Ok(CpuLatencyRequest { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As root (not under qemu-user, which lacks sched_setscheduler: CROSS_SKIP): a process
    /// put to the lowest real-time priority shows SCHED_FIFO 1 in
    /// /proc (fields 40 and 41 of `stat`: rt_priority and policy).
    #[test]
    fn sched_setscheduler_hasten_exit_puts_a_process_at_fifo_1() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = i32::try_from(child.id()).unwrap();
        hasten_exit(pid).expect("sched_setscheduler");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_comm.split(' ').collect();
        // Field k of stat(5) is fields[k - 3] here (pid and comm are cut off).
        assert_eq!((fields[40 - 3], fields[41 - 3]), ("1", "1"), "{stat}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
