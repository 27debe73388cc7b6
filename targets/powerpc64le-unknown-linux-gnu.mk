# powerpc64le-unknown-linux-gnu with +crt-static: a static binary for POWER8+ little-
# endian Linux (the "Power-class boxes"). The musl variant is not in this toolchain
# mirror (LAB-NOTES.md), so glibc is linked statically instead.
#
# Linker: Debian's gcc-powerpc64le-linux-gnu. Runner: qemu-ppc64le-static with the cross
# sysroot for anything the static binary still asks the loader for.
CROSS_APT := gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross qemu-user-static
CROSS_LINKER := powerpc64le-linux-gnu-gcc
CROSS_RUNNER := qemu-ppc64le-static -L /usr/powerpc64le-linux-gnu
CROSS_RUSTFLAGS := -C target-feature=+crt-static
CROSS_SKIP :=
