package io.qsup.bench;

import io.qsup.testing.TestGuest;
import io.qsup.vm.ProcessInspector;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The libvirt variant of {@code scripts/bench --with-libvirt}: Debian's libvirt, installed with apt-get when missing,
 * and a {@code libvirtd} this run starts itself, under a {@link Subreaper}, in a private mount namespace whose
 * {@code /etc/libvirt}, {@code /run/libvirt}, {@code /var/lib/libvirt}, {@code /var/cache/libvirt} and
 * {@code /var/log/libvirt} are bind mounts of this run's own folders: a root libvirtd has those paths built in, and this
 * way it sees no definition, network or cache but this run's, and leaves nothing behind. Its domains are the test
 * guest as qsup runs it: 128 MiB, 1 vCPU, TCG, no disks, serial to a file, QEMU running as root like qsupd's.
 *
 * <p>Not thread-safe, except {@link #virsh}, which only builds an argv.
 */
final class Libvirt implements AutoCloseable {
    private static final ProcessInspector PROC = new ProcessInspector();
    private static final List<String> BIND = List.of("etc", "run", "lib", "cache", "log");
    private static final List<String> TARGET = List.of("/etc/libvirt", "/run/libvirt", "/var/lib/libvirt",
            "/var/cache/libvirt", "/var/log/libvirt");

    private final Path dir;
    private final String uri;
    private final Set<String> domains = new LinkedHashSet<>();
    private final Map<Long, String> qemus = new LinkedHashMap<>();
    private Subreaper reaper;
    private long libvirtd = -1;
    private boolean madeRunDir;

    /** The file domain {@code name}'s serial port writes to (the run's own {@code log/qemu}, bound to libvirt's). */
    Path serialLog(String name) {
        return dir.resolve("log/qemu/" + name + ".serial");
    }

    Libvirt(Path dir) {
        this.dir = dir;
        this.uri = "qemu:///system?socket=" + dir.resolve("run/libvirt-sock");
    }

    /** Installs libvirt-daemon-system and libvirt-clients with apt-get unless libvirtd and virsh are there. */
    static void ensureInstalled() throws IOException, InterruptedException {
        if (Files.isExecutable(Path.of("/usr/sbin/libvirtd")) && Files.isExecutable(Path.of("/usr/bin/virsh"))) {
            return;
        }
        // With no policy-rc.d, the packages' maintainer scripts would start a libvirtd of their own through init.d.
        Path policy = Path.of("/usr/sbin/policy-rc.d");
        boolean madePolicy = false;
        if (!Files.exists(policy)) {
            Files.writeString(policy, "#!/bin/sh\nexit 101\n");
            policy.toFile().setExecutable(true);
            madePolicy = true;
        }
        try {
            List<String> install = List.of("apt-get", "install", "-y", "--no-install-recommends",
                    "libvirt-daemon-system", "libvirt-clients");
            if (run(install) != 0 && (run(List.of("apt-get", "update")) != 0 || run(install) != 0)) {
                throw new IOException("apt-get could not install libvirt-daemon-system libvirt-clients; "
                        + "install them by hand and run again");
            }
        } finally {
            if (madePolicy) {
                Files.deleteIfExists(policy);
            }
        }
    }

    private static int run(List<String> argv) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(argv).inheritIO();
        pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
        return pb.start().waitFor();
    }

    /** The folders, the configuration, the subreaper, libvirtd; returns once it answers. */
    void start() throws Exception {
        for (String d : List.of("etc/qemu", "run", "lib/qemu", "cache/qemu", "log/qemu")) {
            Files.createDirectories(dir.resolve(d));
        }
        Files.writeString(dir.resolve("etc/libvirtd.conf"), """
                unix_sock_dir = "/run/libvirt"
                auth_unix_ro = "none"
                auth_unix_rw = "none"
                log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
                """);
        // QEMU as root with no relabelling, cgroups or per-VM /dev namespace, its stdio to a file: as qsupd runs it.
        Files.writeString(dir.resolve("etc/qemu.conf"), """
                user = "root"
                group = "root"
                dynamic_ownership = 0
                security_driver = "none"
                cgroup_controllers = [ ]
                namespaces = [ ]
                stdio_handler = "file"
                """);
        Path run = Path.of("/run/libvirt");
        if (!Files.exists(run)) {
            Files.createDirectories(run); // a mount point only; nothing is written to it outside the namespace
            madeRunDir = true;
        }
        reaper = Subreaper.start(dir.resolve("reaper"));
        startDaemon();
        awaitDaemon();
    }

    private void startDaemon() throws IOException {
        StringBuilder mounts = new StringBuilder();
        for (int i = 0; i < BIND.size(); i++) {
            mounts.append("mount --bind ").append(dir.resolve(BIND.get(i))).append(' ').append(TARGET.get(i))
                    .append(" && ");
        }
        libvirtd = reaper.spawn("exec unshare --mount --propagation private sh -c '" + mounts
                + "exec libvirtd -p /run/libvirt/libvirtd.pid' >>" + dir.resolve("libvirtd.out") + " 2>&1");
    }

    private void awaitDaemon() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (virshQuiet("list") != 0) {
            if (!PROC.isAlive(libvirtd)) {
                throw new IllegalStateException("libvirtd exited: see " + dir.resolve("libvirtd.out") + " and "
                        + dir.resolve("log/libvirtd.log"));
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("libvirtd did not answer in 120 s: see " + dir.resolve("log"));
            }
            Thread.sleep(5);
        }
    }

    /** Defines domain {@code name}: the test guest, 128 MiB, 1 vCPU, TCG, no disks. */
    void define(String name) throws Exception {
        TestGuest g = TestGuest.get();
        Path xml = dir.resolve(name + ".xml");
        Files.writeString(xml, """
                <domain type='qemu'>
                  <name>%s</name>
                  <memory unit='MiB'>128</memory>
                  <vcpu>1</vcpu>
                  <os>
                    <type arch='x86_64' machine='q35'>hvm</type>
                    <kernel>%s</kernel>
                    <initrd>%s</initrd>
                    <cmdline>%s</cmdline>
                  </os>
                  <features><acpi/></features>
                  <cpu mode='maximum'/>
                  <on_poweroff>destroy</on_poweroff>
                  <on_reboot>restart</on_reboot>
                  <on_crash>destroy</on_crash>
                  <devices>
                    <emulator>/usr/bin/qemu-system-x86_64</emulator>
                    <serial type='file'><source path='/var/log/libvirt/qemu/%s.serial'/><target port='0'/></serial>
                    <controller type='usb' model='none'/>
                    <memballoon model='none'/>
                    <panic model='isa'/>
                  </devices>
                </domain>
                """.formatted(name, g.kernel(), g.initrd(), xmlEscape(g.append()), name));
        check(virshQuiet("define", xml.toString()), "virsh define " + name);
        domains.add(name);
    }

    private static String xmlEscape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }

    /** The argv of {@code virsh -c URI ARGS…} for this run's libvirtd. */
    List<String> virsh(String... args) {
        List<String> argv = new ArrayList<>(List.of("virsh", "-q", "-c", uri));
        argv.addAll(List.of(args));
        return argv;
    }

    int virshQuiet(String... args) throws IOException, InterruptedException {
        return new ProcessBuilder(virsh(args)).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
    }

    private String virshOutput(String... args) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(virsh(args)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        return out;
    }

    /** Remembers the QEMU of a running domain, so that teardown can make sure it is gone. */
    void noteRunning(String name) throws IOException {
        var pid = ProcessInspector.readPidFile(dir.resolve("run/qemu/" + name + ".pid"));
        if (pid.isPresent()) {
            qemus.put(pid.getAsLong(), name);
        }
    }

    /** The QEMU pid of a running domain, from libvirt's pidfile. */
    long qemuPid(String name) throws IOException {
        return ProcessInspector.readPidFile(dir.resolve("run/qemu/" + name + ".pid")).orElseThrow();
    }

    long daemonPid() {
        return libvirtd;
    }

    /**
     * SIGTERM libvirtd (its domains keep running), start it again, until every one of {@code names} answers
     * {@code qemu-monitor-command query-status} in one virsh run; returns the milliseconds from the new start.
     */
    double restart(List<String> names) throws Exception {
        stopDaemon();
        long t0 = System.nanoTime();
        startDaemon();
        StringBuilder cmds = new StringBuilder();
        for (String n : names) {
            cmds.append("qemu-monitor-command ").append(n).append(" '{\"execute\":\"query-status\"}'; ");
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            String out = virshOutput(cmds.toString());
            if (count(out, "\"return\"") == names.size()) {
                return (System.nanoTime() - t0) / 1e6;
            }
            if (!PROC.isAlive(libvirtd)) {
                throw new IllegalStateException("libvirtd exited on restart: see " + dir.resolve("log"));
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("libvirt's domains did not all answer in 120 s: " + out);
            }
            Thread.sleep(2);
        }
    }

    private static int count(String s, String what) {
        int n = 0;
        for (int at = s.indexOf(what); at >= 0; at = s.indexOf(what, at + 1)) {
            n++;
        }
        return n;
    }

    private void stopDaemon() throws Exception {
        if (libvirtd > 0 && PROC.isAlive(libvirtd)) {
            PROC.signal(libvirtd, ProcessInspector.Signal.TERM);
            if (!PROC.awaitDeath(libvirtd, Duration.ofSeconds(30), 5)) {
                PROC.signal(libvirtd, ProcessInspector.Signal.KILL);
                PROC.awaitDeath(libvirtd, Duration.ofSeconds(10), 5);
            }
        }
    }

    private static void check(int code, String what) {
        if (code != 0) {
            throw new IllegalStateException(what + " exited " + code);
        }
    }

    /**
     * Destroys and undefines this run's domains, stops libvirtd by its pid, kills any QEMU of this run still alive
     * (by the pids libvirt wrote, checked against {@code guest=NAME} in their argv), and ends the subreaper.
     */
    @Override
    public void close() throws Exception {
        try {
            if (libvirtd > 0 && PROC.isAlive(libvirtd)) {
                for (String d : domains) {
                    noteRunning(d);
                    virshQuiet("destroy", d);
                    virshQuiet("undefine", d);
                }
            }
            stopDaemon();
            for (var q : qemus.entrySet()) {
                long pid = q.getKey();
                if (PROC.isAlive(pid) && PROC.cmdline(pid).contains("guest=" + q.getValue() + ",debug-threads=on")) {
                    PROC.signal(pid, ProcessInspector.Signal.KILL);
                    PROC.awaitDeath(pid, Duration.ofSeconds(10), 10);
                }
            }
        } finally {
            if (reaper != null) {
                reaper.close();
            }
            if (madeRunDir) {
                try {
                    Files.deleteIfExists(Path.of("/run/libvirt"));
                } catch (IOException e) {
                    System.err.println("bench: left /run/libvirt, which is not empty: " + e.getMessage());
                }
            }
        }
    }
}
