#!/bin/sh
# The SAN lab's parts (LAB-NOTES "the SAN lab", issue 7), fetched and built into one
# ignored folder; nothing is installed system-wide. Idempotent: a part already built is
# kept. Usage: tests/san/build.sh [DIR]   (default: target/san)
#
# DIR/root    Debian's qemu-system-x86 7.2 (+ its modules and firmware), qemu-block-extra
#             (iSCSI), tgt (tgtd, tgtadm) and the libraries they need, unpacked
# DIR/kernel  Debian's kernel (vmlinuz) and its modules
# DIR/initrd.cpio.gz  busybox-static plus the modules a guest needs: virtio-scsi, sd, sg
#             (the LUNs as /dev/sda, /dev/sdb, /dev/sg*), i6300esb (/dev/watchdog),
#             virtio-net, ext4 (mounts ext2); its /init configures eth0 and starts
#             heartwire from the kernel command line (see tests/san/guest-init); the
#             test appends a second archive with the binary and the configs
set -eu
DIR=${1:-target/san}
mkdir -p "$DIR/debs"
DIR=$(cd "$DIR" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)

PKGS="qemu-system-x86 qemu-system-common qemu-system-data qemu-block-extra seabios
  busybox-static tgt libiscsi7 libcapstone4 libfdt1 libpmem1 librdmacm1 libibverbs1
  libslirp0 libvdeplug2 libndctl6 libdaxctl1 libnl-route-3-200 libnl-3-200"

if [ ! -x "$DIR/root/usr/bin/qemu-system-x86_64" ]; then
    command -v apt-get >/dev/null || { echo "san: needs apt-get (Debian) to fetch packages" >&2; exit 2; }
    [ -n "$(find /var/lib/apt/lists -name '*Packages*' 2>/dev/null | head -1)" ] || apt-get update -q
    (cd "$DIR/debs" && apt-get download $PKGS)
    for d in "$DIR"/debs/*.deb; do dpkg -x "$d" "$DIR/root"; done
fi

if [ ! -f "$DIR/kernel/vmlinuz" ]; then
    KPKG=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
    (cd "$DIR/debs" && apt-get download "$KPKG")
    rm -rf "$DIR/kroot" && dpkg -x "$DIR"/debs/"$KPKG"_*.deb "$DIR/kroot"
    K=$(ls "$DIR/kroot/lib/modules")
    "$DIR/root/bin/busybox" depmod -b "$DIR/kroot" "$K"
    mkdir -p "$DIR/kernel"
    cp "$DIR/kroot/boot/vmlinuz-$K" "$DIR/kernel/vmlinuz"
    rm -rf "$DIR/kernel/modules" && mkdir -p "$DIR/kernel/modules"
    mv "$DIR/kroot/lib/modules/$K" "$DIR/kernel/modules/$K"
    rm -rf "$DIR/kroot"
fi

K=$(ls "$DIR/kernel/modules")
INIT="$DIR/initrd"
if [ ! -f "$DIR/initrd.cpio.gz" ] || [ "$HERE/guest-init" -nt "$DIR/initrd.cpio.gz" ]; then
    rm -rf "$INIT" && mkdir -p "$INIT/bin" "$INIT/proc" "$INIT/sys" "$INIT/dev" "$INIT/mnt" "$INIT/lib/modules/$K"
    cp "$DIR/root/bin/busybox" "$INIT/bin/busybox"
    M="$DIR/kernel/modules/$K"
    WANT="kernel/drivers/virtio/virtio_pci.ko kernel/drivers/scsi/virtio_scsi.ko
      kernel/drivers/scsi/sd_mod.ko kernel/drivers/scsi/sg.ko kernel/drivers/watchdog/i6300esb.ko
      kernel/drivers/net/virtio_net.ko kernel/crypto/crct10dif_generic.ko
      kernel/crypto/crc32c_generic.ko kernel/fs/ext4/ext4.ko"
    for m in $WANT; do
        for f in $m $(sed -n "s|^$m: *||p" "$M/modules.dep"); do
            mkdir -p "$INIT/lib/modules/$K/$(dirname "$f")"
            cp "$M/$f" "$INIT/lib/modules/$K/$f"
        done
    done
    "$DIR/root/bin/busybox" depmod -b "$INIT" "$K"
    cp "$HERE/guest-init" "$INIT/init" && chmod 755 "$INIT/init"
    (cd "$INIT" && find . | "$DIR/root/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$DIR/initrd.cpio.gz"
fi
echo "san: parts ready in $DIR"
