# powerpc64le-unknown-linux-gnu with +crt-static: a static binary for POWER8+ little-
# endian Linux (the "Power-class boxes"). The musl variant is not in this toolchain
# mirror (LAB-NOTES.md), so glibc is linked statically instead.
#
# Linker: Debian's gcc-powerpc64le-linux-gnu. Runner: qemu-ppc64le-static with the cross
# sysroot for anything the static binary still asks the loader for.
CROSS_APT := gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross qemu-user-static
CROSS_LINKER := powerpc64le-linux-gnu-gcc
CROSS_RUNNER := qemu-ppc64le-static -L /usr/powerpc64le-linux-gnu
# libc 0.2.18x links the termios speed functions by versioned name (`cfsetspeed@GLIBC_2.17`,
# rust-lang/libc#4882), which a static glibc does not export: alias them to the plain
# symbols at link time (targets/glibc-static-speed.ld; ld's --defsym cannot name them).
CROSS_SPEED := cfgetispeed cfgetospeed cfsetispeed cfsetospeed cfsetspeed
CROSS_RUSTFLAGS := -C target-feature=+crt-static $(foreach f,$(CROSS_SPEED),-C link-arg=-Wl,-u,$(f)) \
	-C link-arg=$(CURDIR)/targets/glibc-static-speed.ld
# qemu-user has no clone3 and no robust futexes (ENOSYS): the tests that start a child
# in a cgroup and those of the sentinel's death knell.
CROSS_SKIP := clone3_ robust_futex_ sched_setscheduler_
