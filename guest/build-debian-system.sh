#!/usr/bin/env bash
# Builds the Debian system that DebianSystemIT boots under QEMU to check the .deb under a real systemd: a debootstrapped
# Debian 13 (trixie) with systemd as PID 1, qemu-system-x86, and Java 21, in one ext4 image (no partition table), plus
# the system's own kernel and initrd for -kernel/-initrd.
#
# Usage: guest/build-debian-system.sh [--force] [OUTDIR]      (OUTDIR defaults to <repo>/build/debian-system)
#
# Outputs in OUTDIR:  root.img (raw ext4, root=/dev/vda)   vmlinuz   initrd.img   stamp (the recipe's hash)
#
# Why trixie: the package depends on openjdk-21-jre-headless | java21-runtime-headless, and Debian 12 (bookworm) has no
# Java 21 at all (its newest is openjdk-17); Debian 13 has openjdk-21-jre-headless in main.
#
# The system has no network: everything the .deb needs (its Depends and Recommends) is installed here, so that
# "apt-get install ./qsup_*.deb" inside it resolves offline. At boot, qsup-it.service mounts the second disk
# (/dev/vdb, ext4) and runs its driver.sh, which the test writes; the image itself holds no test logic.
#
# Needs root (debootstrap, chroot), debootstrap, and e2fsprogs' mkfs.ext4 -d. Every mount (debootstrap's /proc and
# /sys, the chroot's /proc) lives in a private mount namespace, so none outlives the build, also when it is killed.
# A run that finds outputs built from this same script does nothing; --force rebuilds (and takes newer packages).
set -euo pipefail

die() {
    echo "build-debian-system: $*" >&2
    exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
force=0
outdir=
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$arg' (usage: build-debian-system.sh [--force] [OUTDIR])" ;;
        *) [ -z "$outdir" ] || die "only one OUTDIR may be given, got '$outdir' and '$arg'"; outdir=$arg ;;
    esac
done
outdir=${outdir:-$repo/build/debian-system}

suite=trixie
mirror=${QSUP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the .deb depends on and recommends, plus a kernel, systemd as init and udev.
packages=(linux-image-cloud-amd64 systemd-sysv udev kmod procps init-system-helpers
    qemu-system-x86 ipxe-qemu qemu-utils socat openjdk-21-jre-headless)

# The recipe is this script: a change to it (suite, packages, units) rebuilds.
inputs="script=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
if [ "$force" = 0 ] && [ -f "$outdir/stamp" ] && [ -s "$outdir/root.img" ] && [ -s "$outdir/vmlinuz" ] \
        && [ -s "$outdir/initrd.img" ] && [ "$(head -n1 "$outdir/stamp")" = "$inputs" ]; then
    exit 0
fi

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot); run it as root"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap (scripts/setup does)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found: apt-get install e2fsprogs"
command -v unshare >/dev/null || die "unshare not found: apt-get install util-linux"

mkdir -p "$outdir"
work=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
start=$(date +%s)

echo "build-debian-system: debootstrap $suite from $mirror into $root" >&2
unshare --mount --propagation private -- debootstrap --variant=minbase --include=ca-certificates \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above; is $mirror reachable?)"; }
echo "build-debian-system: debootstrap took $(( $(date +%s) - start )) s" >&2

# Nothing starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
in_root() {
    unshare --mount --propagation private --fork --pid --mount-proc="$root/proc" -- \
        chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"
}
in_root apt-get update -q >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get update failed in the chroot"; }
in_root apt-get install -y -q --no-install-recommends "${packages[@]}" >>"$work/apt.log" 2>&1 \
    || { tail -n 40 "$work/apt.log" >&2; die "apt-get install failed in the chroot (log above)"; }
in_root apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"
echo "build-debian-system: packages installed after $(( $(date +%s) - start )) s" >&2

# A set machine id: no first-boot setup (no prompts on the console).
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
echo debian-qsup >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,noatime 0 1\n' >"$root/etc/fstab"
# No logins: the console belongs to the test's driver and the forwarded journal.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@.service"
ln -sf /dev/null "$root/etc/systemd/system/getty@.service"

cat >"$root/etc/systemd/system/qsup-it.service" <<'EOF'
[Unit]
Description=qsup test driver from the second disk
After=multi-user.target
ConditionPathExists=/dev/vdb

[Service]
Type=exec
ExecStart=/bin/sh -c 'mkdir -p /mnt/it && mount -o ro /dev/vdb /mnt/it && exec /bin/sh /mnt/it/driver.sh'

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/qsup-it.service "$root/etc/systemd/system/multi-user.target.wants/qsup-it.service"

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n1)
[ -n "$kernel" ] && [ -n "$initrd" ] || die "no kernel or initrd under $root/boot after installing linux-image-cloud-amd64"

# Room for the package, the VMs' logs and the journal.
size_mb=$(( $(du -sm "$root" | cut -f1) + 768 ))
rm -f "$work/root.img"
mkfs.ext4 -q -F -L debian-qsup -d "$root" "$work/root.img" "${size_mb}M" || die "mkfs.ext4 -d failed"
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
{
    echo "$inputs"
    echo "suite=$suite kernel=$(basename "$kernel") built=$(date -u +%FT%TZ) took=$(( $(date +%s) - start ))s"
    in_root dpkg-query -W -f='${Package}=${Version}\n' systemd qemu-system-x86 openjdk-21-jre-headless
} >"$work/stamp"
mv -f "$work/root.img" "$work/vmlinuz" "$work/initrd.img" "$outdir/"
mv -f "$work/stamp" "$outdir/stamp"
echo "build-debian-system: $outdir ready after $(( $(date +%s) - start )) s" >&2
