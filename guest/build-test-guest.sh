#!/usr/bin/env bash
# Builds qsup's tiny test guest: a Debian cloud kernel plus a busybox initramfs whose init answers commands on ttyS0.
#
# Usage: guest/build-test-guest.sh [--force] [OUTDIR]      (OUTDIR defaults to <repo>/build/test-guest)
#
# Outputs in OUTDIR:  vmlinuz   initramfs.cpio.gz   append (kernel command line)   stamp (what was built from what)
# Downloads (.deb files) are kept in ${XDG_CACHE_HOME:-$HOME/.cache}/qsup/test-guest.
#
# The kernel comes from Debian's linux-image-*-cloud-amd64: the concrete package that the meta package
# $QSUP_GUEST_KERNEL_META (default linux-image-cloud-amd64, i.e. the newest 6.1 cloud kernel; linux-image-6.12-cloud-amd64
# picks 6.12 on bookworm) depends on. It is fetched with `apt-get download` and unpacked with `dpkg-deb -x`; nothing is
# installed on the host. busybox comes from /bin/busybox when that is static, else from a downloaded busybox-static.
# The guest agent is qemu-ga from Debian's qemu-guest-agent, fetched and unpacked the same way; the shared libraries
# it needs are copied from the host (ldd), so the host must have them (Debian: libglib2.0-0 libnuma1 libudev1 liburing2).
#
# The script does not run `apt-get update` unless apt has no package lists at all (CI runs it before). If apt says a
# package is unknown, run `apt-get update` yourself.
#
# A run that finds outputs built from the same script, init and kernel choice does nothing. --force rebuilds (and picks
# up a newer kernel from apt's lists).
set -euo pipefail

die() {
    echo "build-test-guest: $*" >&2
    exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
force=0
outdir=
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$arg' (usage: build-test-guest.sh [--force] [OUTDIR])" ;;
        *) [ -z "$outdir" ] || die "only one OUTDIR may be given, got '$outdir' and '$arg'"; outdir=$arg ;;
    esac
done
outdir=${outdir:-$repo/build/test-guest}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/qsup/test-guest
meta=${QSUP_GUEST_KERNEL_META:-linux-image-cloud-amd64}
init_src=$here/init
# Kernel command line. panic=0: stay in the panic so QEMU (via pvpanic) decides what happens, never a silent reboot.
append="console=ttyS0 quiet panic=0 tsc=reliable no_timer_check i8042.noaux i8042.nokbd"

[ -f "$init_src" ] || die "guest init not found at $init_src"

# Up to date? The stamp's first line names every input; the outputs must all exist.
inputs="script=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1) init=$(sha256sum "$init_src" | cut -d' ' -f1) meta=$meta"
up_to_date() {
    [ "$force" = 0 ] && [ -f "$outdir/stamp" ] && [ -s "$outdir/vmlinuz" ] && [ -s "$outdir/initramfs.cpio.gz" ] \
        && [ -f "$outdir/append" ] && [ "$(head -n1 "$outdir/stamp")" = "$inputs" ]
}
up_to_date && exit 0

# What the host must provide.
if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null || ! command -v apt-cache >/dev/null \
        || ! command -v dpkg-deb >/dev/null; then
    die "the test guest is built from Debian packages and needs a Debian-like host with apt-get, apt-cache and dpkg-deb;" \
        "this host lacks them (no /etc/debian_version or no apt tools). Build it on Debian 12 or newer, or copy a built" \
        "$outdir from such a host."
fi
for tool in cpio gzip find sort; do
    command -v "$tool" >/dev/null || die "'$tool' not found: install it (apt-get install $tool) and run again"
done

# apt-get download needs package lists; fetch them only when there are none at all (a fresh container).
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "build-test-guest: apt has no package lists; running apt-get update" >&2
        apt-get update -q >&2 || die "apt-get update failed: no network or no usable apt sources? (see the apt output above)"
    else
        die "apt has no package lists: run 'sudo apt-get update' once, then run this again"
    fi
fi

# meta package -> concrete kernel package (the candidate version's Depends).
kpkg=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || die "apt does not know '$meta' (or it has no linux-image dependency): is this Debian 12+ with main" \
    "enabled? Run 'apt-get update' and try again, or set QSUP_GUEST_KERNEL_META to another linux-image-*-cloud-amd64 meta package"
kver=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
[ -n "$kver" ] && [ "$kver" != "(none)" ] || die "'$kpkg' has no installable version in apt's lists; run 'apt-get update'"

mkdir -p "$cache" "$outdir" || die "cannot create the download cache $cache or the output folder $outdir"
# Several builds (test JVMs, checkouts) may run at once and share the download cache: one at a time.
if command -v flock >/dev/null; then
    exec 9>"$cache/.lock"
    flock 9
    up_to_date && exit 0
fi

# Downloads PKG=VER into the cache unless it is there already; prints the .deb's path.
fetch() {
    local pkg=$1 ver=$2 pattern deb log
    # apt-get download names files PKG_VERSION_ARCH.deb, with an epoch's ':' written as %3a.
    pattern="${pkg}_${ver//:/%3a}_*.deb"
    deb=$(find "$cache" -maxdepth 1 -name "$pattern" | head -n1)
    if [ -z "$deb" ]; then
        echo "build-test-guest: downloading $pkg $ver" >&2
        # apt drops privileges to _apt for the download, and _apt cannot write into a private cache folder; the
        # package is verified against apt's signed lists either way.
        if ! log=$(cd "$cache" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg=$ver" 2>&1); then
            die "could not download $pkg $ver with apt-get download (no network? apt sources unreachable?):" \
                "$(echo "$log" | grep -E '^(E|W):' | head -n3 || true)"
        fi
        deb=$(find "$cache" -maxdepth 1 -name "$pattern" | head -n1)
        [ -n "$deb" ] || die "apt-get download reported success but no $pattern appeared in $cache"
    fi
    echo "$deb"
}

kdeb=$(fetch "$kpkg" "$kver")

work=$(mktemp -d "${TMPDIR:-/tmp}/qsup-test-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$kdeb" "$work/kernel" || die "could not unpack $kdeb (corrupt download? delete it and run again)"

vmlinuz=$(find "$work/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
[ -n "$vmlinuz" ] || die "$kdeb holds no boot/vmlinuz-*"
uname_r=${vmlinuz##*/vmlinuz-}
moddir=$(find "$work/kernel" -maxdepth 4 -type d -path "*/lib/modules/$uname_r" | head -n1)
[ -n "$moddir" ] || die "$kdeb holds no lib/modules/$uname_r"

# Makes a module available uncompressed as $work/ko/NAME.ko; prints the path.
plain_module() {
    local name=$1 file
    if [ -f "$work/ko/$name.ko" ]; then echo "$work/ko/$name.ko"; return; fi
    # Module names use '_' where file names may use '-'.
    file=$(find "$moddir/kernel" \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) \
        | awk -v n="$name" '{ b=$0; sub(/.*\//, "", b); sub(/\.ko(\.(xz|zst|gz))?$/, "", b); gsub(/-/, "_", b); if (b == n) print }' \
        | head -n1)
    [ -n "$file" ] || die "kernel $uname_r has no module '$name' (needed by the test guest)"
    mkdir -p "$work/ko"
    case "$file" in
        *.ko) cp "$file" "$work/ko/$name.ko" ;;
        *.ko.xz) command -v xz >/dev/null || die "'xz' not found: needed to unpack $file (apt-get install xz-utils)"
                 xz -dc "$file" > "$work/ko/$name.ko" ;;
        *.ko.zst) command -v zstd >/dev/null || die "'zstd' not found: needed to unpack $file (apt-get install zstd)"
                  zstd -qdc "$file" > "$work/ko/$name.ko" ;;
        *.ko.gz) gzip -dc "$file" > "$work/ko/$name.ko" ;;
    esac
    echo "$work/ko/$name.ko"
}

# Appends NAME and its dependencies (first) to the load order, reading "depends=" from the module's .modinfo.
declare -A seen=()
order=()
add_module() {
    local name=${1//-/_} ko deps dep
    [ -z "${seen[$name]:-}" ] || return 0
    seen[$name]=1
    # Explicit: set -e does not reach into a function called from an && / || list.
    ko=$(plain_module "$name") || exit 1
    deps=$(tr '\0' '\n' < "$ko" | sed -n 's/^depends=//p' | head -n1)
    for dep in ${deps//,/ }; do
        add_module "$dep"
    done
    order+=("$name")
}

# A module that is built in (=y) needs no loading.
builtin_list=$moddir/modules.builtin
is_builtin() {
    [ -f "$builtin_list" ] && sed 's/.*\///; s/\.ko$//; s/-/_/g' "$builtin_list" | grep -qx "${1//-/_}"
}

# button: ACPI power button; evdev: its /dev/input/event* for acpid (the cloud kernel builds both as modules).
# pvpanic-mmio: the ISA "-device pvpanic" (ACPI QEMU0001); pvpanic-pci: "-device pvpanic-pci".
# virtio_pci + virtio_console: the guest agent's virtio-serial port; virtio_net: the user-mode NIC (DHCP by udhcpc).
for m in button evdev pvpanic_mmio pvpanic_pci virtio_pci virtio_console virtio_net; do
    is_builtin "$m" || add_module "$m"
done

# busybox must be static: the initramfs has no libc.
# ldd (libc-bin, always on Debian) fails with "not a dynamic executable" for a static binary.
is_static() {
    [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1
}
busybox=/bin/busybox
if ! is_static "$busybox"; then
    bbver=$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')
    [ -n "$bbver" ] && [ "$bbver" != "(none)" ] || die "/bin/busybox is not static and apt knows no busybox-static;" \
        "install busybox-static (apt-get install busybox-static)"
    bbdeb=$(fetch busybox-static "$bbver")
    dpkg-deb -x "$bbdeb" "$work/busybox" || die "could not unpack $bbdeb"
    busybox=$work/busybox/bin/busybox
    is_static "$busybox" || die "$bbdeb did not provide a static bin/busybox"
fi

# The guest agent and the shared libraries it links (from the host, by ldd: the initramfs has no libc of its own).
gaver=$(apt-cache policy qemu-guest-agent | sed -n 's/^ *Candidate: //p')
[ -n "$gaver" ] && [ "$gaver" != "(none)" ] || die "apt knows no qemu-guest-agent; run 'apt-get update' and try again"
gadeb=$(fetch qemu-guest-agent "$gaver")
dpkg-deb -x "$gadeb" "$work/ga" || die "could not unpack $gadeb (corrupt download? delete it and run again)"
qemu_ga=$work/ga/usr/sbin/qemu-ga
[ -x "$qemu_ga" ] || die "$gadeb holds no usr/sbin/qemu-ga"
missing=$(ldd "$qemu_ga" | sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p' | tr '\n' ' ')
[ -z "$missing" ] || die "qemu-ga needs shared libraries this host lacks: $missing(install them, e.g. apt-get install" \
    "libglib2.0-0 libnuma1 libudev1 liburing2, and run again)"

# The initramfs tree.
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,var/run,etc/acpi/PWRF,lib/modules,usr/share/udhcpc}
cp "$qemu_ga" "$root/sbin/qemu-ga"
# Every library ldd names (and the dynamic loader) at the same path inside the guest.
for lib in $(ldd "$qemu_ga" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# qemu-ga's guest-shutdown runs /sbin/shutdown; busybox has none, so power off as the power button does.
printf '#!/bin/sh\ncase " $* " in *" -r "*) reboot -f ;; *) poweroff -f ;; esac\n' > "$root/sbin/shutdown"
chmod 0755 "$root/sbin/shutdown"
# qemu-ga's guest-set-time writes the hardware clock with /sbin/hwclock.
ln -s ../bin/busybox "$root/sbin/hwclock"
# udhcpc's hook: configure the lease it got (busybox ships none).
cat > "$root/usr/share/udhcpc/default.script" <<'UDHCPC'
#!/bin/sh
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
        ;;
esac
exit 0
UDHCPC
chmod 0755 "$root/usr/share/udhcpc/default.script"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$init_src" "$root/init"
printf '#!/bin/sh\npoweroff -f\n' > "$root/etc/acpi/PWRF/00000080"
chmod 0755 "$root/etc/acpi/PWRF/00000080"
: > "$root/etc/modules"
for m in "${order[@]}"; do
    cp "$work/ko/$m.ko" "$root/lib/modules/$m.ko"
    echo "$m" >> "$root/etc/modules"
done
rm -f "$outdir/stamp"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$work/root.cpio" \
    || die "cpio failed to pack the initramfs"
gzip -9n < "$work/root.cpio" > "$outdir/initramfs.cpio.gz.tmp"
cp "$vmlinuz" "$outdir/vmlinuz.tmp"
echo "$append" > "$outdir/append.tmp"
mv "$outdir/initramfs.cpio.gz.tmp" "$outdir/initramfs.cpio.gz"
mv "$outdir/vmlinuz.tmp" "$outdir/vmlinuz"
mv "$outdir/append.tmp" "$outdir/append"
{
    echo "$inputs"
    echo "kernel-package=$kpkg"
    echo "kernel-version=$kver"
    echo "kernel-release=$uname_r"
    echo "modules=${order[*]}"
    echo "busybox=$("$busybox" | head -n1)"
    echo "qemu-guest-agent=$gaver"
} > "$outdir/stamp"
echo "build-test-guest: built $outdir (kernel $uname_r, modules: ${order[*]:-none})" >&2
