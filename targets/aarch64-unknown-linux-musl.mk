# aarch64-unknown-linux-musl: a static binary for 64-bit ARM appliances.
#
# Linker: Debian's gcc-aarch64-linux-gnu (rustc's bundled musl CRT and libc do the rest,
# no musl-tools needed). Runner: qemu-aarch64-static (qemu-user), so `cargo test` runs the
# cross-built test binaries on this x86_64 machine.
#
# Skipped under qemu-user: nothing in the unit and simulator tests opens a serial line,
# but qemu-user 7.2 lacks the TCSETS2 ioctl, so any serial test would fail there (a qemu
# limit, not a bug: LAB-NOTES.md). qemu-user has no clone3 (ENOSYS), which the tests that
# start a child in a cgroup need (`clone3_…`; the daemon falls back to process groups
# there, and says so), nor robust futexes (the sentinel's death knell, `robust_futex_…`;
# the sentinel learns of a death from the pidfd alone there), nor sched_setscheduler on
# another process (`sched_setscheduler_…`; the fence's killed then exit at their own
# priority). The netns lab is not run under qemu (namespaces and raw sockets
# of a foreign-architecture process are not what it tests).
CROSS_APT := gcc-aarch64-linux-gnu qemu-user-static
CROSS_LINKER := aarch64-linux-gnu-gcc
CROSS_RUNNER := qemu-aarch64-static
CROSS_RUSTFLAGS :=
CROSS_SKIP := serial clone3_ robust_futex_ sched_setscheduler_
