#!/bin/sh
# Runs inside the Debian system that DebianSystemIT boots; qsup-it.service starts it once multi-user.target is up, from
# the test's second disk (mounted read-only at /mnt/it, next to the .deb and the VM definitions). It drives qsup through
# systemd step by step and reports facts as "QSUP-IT ..." lines on stdout, which journald forwards to the serial
# console (systemd.journald.forward_to_console=1); the test judges them. Every step prints its time in ms. It ends
# with "systemctl poweroff", whose qsup-shutdown.service output reaches the console the same way.
set -u
it=/mnt/it
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "QSUP-IT $*"; }
now() { date +%s%3N; }
begin() { t0=$(now); }
took() { say "step $1 ms=$(( $(now) - t0 ))"; }
finish() { say "poweroff"; systemctl --no-block poweroff; exit 0; }

qemu_pid() { cat "/run/qsup/vms/$1/qemu.pid" 2>/dev/null || echo none; }
main_pid() { systemctl show -p MainPID --value qsupd; }
# NAME's state as qsupd reports it, asked over the control socket with socat (it speaks QMP): a JVM start per poll
# would take ten seconds and more here.
state() {
    printf '{"execute":"qmp_capabilities"}\n{"execute":"query-vms"}\n' \
        | socat -t 30 - UNIX-CONNECT:/run/qsup/qsupd.sock 2>/dev/null \
        | grep -o "\"name\" *: *\"$1\" *, *\"state\" *: *\"[a-z-]*\"" | sed 's/.*"\([a-z-]*\)"$/\1/' | head -n1
}
# wait_running NAME SECONDS: polls until NAME is running; prints its state and the states seen on the way.
wait_running() {
    end=$(( $(date +%s) + $2 ))
    seen=
    while [ "$(date +%s)" -lt "$end" ]; do
        s=$(state "$1")
        case "$seen" in *" ${s:-absent}") ;; *) seen="$seen ${s:-absent}" ;; esac
        [ "$s" = running ] && break
        sleep 1
    done
    say "polled $1:$seen"
    say "state $1 ${s:-absent}"
}
# list STEP: what "qsup list" shows, one line per VM (tried three times: the CLI's own deadlines are short for a
# JVM starting under nested emulation).
list() {
    for try in 1 2 3; do
        if qsup list >/root/list.out 2>/root/list.err; then
            sed "1d; s/^/QSUP-IT list $1 /" /root/list.out
            return 0
        fi
        say "qsup-list $1 try $try failed: $(head -c 300 /root/list.err | tr '\n' ' ')"
    done
}
# wait_guest NAME SECONDS: until the test guest in VM NAME says it is ready on its serial console.
wait_guest() {
    end=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        grep -q "QSUP-GUEST READY" "/var/log/qsup/$1/serial.log" 2>/dev/null && { say "guest $1 ready"; return 0; }
        sleep 1
    done
    say "guest $1 not ready after $2 s"
}
status_lines() {
    systemctl status qsupd --no-pager 2>&1 | sed -n 's/^ *\(Active\|Status\): /\1: /p' | while IFS= read -r l; do
        say "status $1 $l"
    done
}

say "driver up uptime=$(cut -d' ' -f1 /proc/uptime)s"
say "boot $(systemd-analyze time 2>/dev/null | head -n1)"
say "java $(readlink -f "$(command -v java)")"

begin
cp "$it"/qsup_*_all.deb /root/
apt-get install -y -q /root/qsup_*_all.deb >/root/apt.log 2>&1
rc=$?
took install
say "install exit=$rc dpkg=$(dpkg-query -W -f='${db:Status-Abbrev}' qsup 2>/dev/null | tr -d ' ')"
[ "$rc" = 0 ] || { sed 's/^/QSUP-IT apt: /' /root/apt.log | tail -n 20; finish; }
say "after-install active=$(systemctl is-active qsupd) enabled=$(systemctl is-enabled qsupd) shutdown-enabled=$(systemctl is-enabled qsup-shutdown)"

cp "$it/a.yaml" /etc/qsup/vms/a.yaml
begin
systemctl start qsupd
say "start exit=$?"
took start
wait_running a 180
took start-vm
list start
say "pid a $(qemu_pid a)"
status_lines start

begin
old_main=$(main_pid)
systemctl restart qsupd
say "restart exit=$?"
took restart
wait_running a 60
took restart-vm
say "main-pid restart $old_main $(main_pid)"
say "pid a $(qemu_pid a)"

mkdir -p /var/lib/qsup-guest
cp "$it"/guest/* /var/lib/qsup-guest/
cp "$it/b.yaml" /etc/qsup/vms/b.yaml
begin
systemctl reload qsupd
say "reload exit=$?"
took reload
# systemctl reload returned: the definitions are applied already, so qsupd knows b at once
s_b=$(state b)
say "after-reload b ${s_b:-absent}"
wait_running b 180
took reload-vm
list reload
wait_guest b 120
took reload-guest-ready
say "pid a $(qemu_pid a)"
say "pid b $(qemu_pid b)"
status_lines reload

# a broken definition: the reload fails and says where, and qsupd and its VMs run on
printf 'name: bad\nmemroy: 64M\n' >/etc/qsup/vms/bad.yaml
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl reload qsupd 2>/dev/null
say "bad-reload exit=$? active=$(systemctl is-active qsupd)"
journalctl -u qsupd --since "$since" --no-pager -o cat 2>/dev/null | grep -m1 'bad.yaml' | sed 's/^/QSUP-IT bad-reload journal /'
say "after-bad-reload a $(state a) b $(state b)"
say "pid a $(qemu_pid a)"
say "bad-reload pid b $(qemu_pid b)"
rm /etc/qsup/vms/bad.yaml
systemctl reload qsupd
say "fixed-reload exit=$?"

wd=$(systemctl show -p WatchdogUSec --value qsupd)
say "watchdog-usec ${wd:-none}"
case "$wd" in
    ''|0|infinity) say "watchdog none" ;;
    *)
        old_main=$(main_pid)
        begin
        kill -STOP "$old_main"
        say "sigstop $old_main"
        # WatchdogSec= must fire, then RestartSec=, then a new qsupd adopts: allow several watchdog periods.
        end=$(( $(date +%s) + 600 ))
        while [ "$(date +%s)" -lt "$end" ]; do
            m=$(main_pid)
            [ "$m" != "$old_main" ] && [ "$m" != 0 ] && [ "$(systemctl is-active qsupd)" = active ] && break
            sleep 1
        done
        took watchdog
        kill -CONT "$old_main" 2>/dev/null
        say "main-pid watchdog $old_main $(main_pid)"
        say "watchdog-restarts $(systemctl show -p NRestarts --value qsupd)"
        wait_running a 60
        wait_running b 60
        took watchdog-vm
        say "pid a $(qemu_pid a)"
        say "pid b $(qemu_pid b)"
        ;;
esac

# An upgrade: the same package under a higher version. Its postinst restarts qsupd (try-restart), and the VMs go on
# under the new qsupd with the same QEMU pids.
up=$(ls "$it"/upgrade/qsup_*_all.deb 2>/dev/null | head -n1)
if [ -n "$up" ]; then
    old_main=$(main_pid)
    cp "$up" /root/
    begin
    apt-get install -y -q "/root/$(basename "$up")" >/root/apt-upgrade.log 2>&1
    rc=$?
    took upgrade
    say "upgrade exit=$rc version=$(dpkg-query -W -f='${Version}' qsup 2>/dev/null)"
    [ "$rc" = 0 ] || sed 's/^/QSUP-IT apt-upgrade: /' /root/apt-upgrade.log | tail -n 20
    end=$(( $(date +%s) + 300 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        m=$(main_pid)
        [ "$m" != "$old_main" ] && [ "$m" != 0 ] && [ "$(systemctl is-active qsupd)" = active ] && break
        sleep 1
    done
    say "main-pid upgrade $old_main $(main_pid)"
    wait_running a 120
    wait_running b 120
    took upgrade-vm
    say "pid a $(qemu_pid a)"
    say "pid b $(qemu_pid b)"
fi

say "qsup-shutdown $(systemctl is-active qsup-shutdown)"
finish
