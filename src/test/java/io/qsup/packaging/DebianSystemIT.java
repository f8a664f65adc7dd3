package io.qsup.packaging;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.TestGuest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The .deb under a real systemd: boots a debootstrapped Debian 13 with systemd as PID 1 under QEMU (TCG), installs the
 * package in it, and drives qsupd there through systemctl: start with its STATUS= line, a VM from /etc/qsup/vms, a
 * restart and a reload that leave the VM's QEMU alone, the watchdog, and a poweroff whose qsup-shutdown.service stops
 * the VM along its ladder. The steps run inside the system (debian-system-driver.sh, started by a unit from a second
 * disk) and report on the serial console; this test judges what the console shows, and prints each step's time.
 *
 * <p>The system is built by guest/build-debian-system.sh and cached in build/debian-system, keyed by the script's
 * hash; each run boots a throwaway qcow2 overlay on it, so the cached image never changes.
 */
class DebianSystemIT {
    static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", ".")).toAbsolutePath();
    static final Path SYSTEM = PROJECT.resolve("build/debian-system");
    static final Path OUT = PROJECT.resolve("target/debian-system");
    /** The whole boot, from QEMU's start to its exit after the poweroff. */
    static final Duration RUN_LIMIT = Duration.ofMinutes(20);
    static final Pattern MARK = Pattern.compile("QSUP-IT (.*)$");
    static final Pattern RUNG = Pattern.compile("\\b(a|b): stopped at rung (\\S+) after (\\d+) ms");

    /**
     * SeaBIOS with no boot device: no disk, no kernel, so it reaches running at once even in nested TCG. Nothing in it
     * answers the power button, so at poweroff its ladder ends at rung quit.
     */
    static final String VM_A = """
            memory: 32M
            cpus: 1
            accel: tcg
            display: none
            autostart: true
            restart: on-failure
            stop-timeout: 8s
            """;
    /** The project's test guest, copied in by the driver; once booted, it powers off on the ACPI power button. */
    static final String VM_B = """
            memory: 128M
            machine: q35
            accel: tcg
            display: none
            autostart: true
            kernel: /var/lib/qsup-guest/vmlinuz
            initrd: /var/lib/qsup-guest/initramfs.cpio.gz
            append: "%s"
            stop-timeout: 60s
            """;

    private Path tmp;
    private Process qemu;
    /** Kills the QEMU also when the test JVM is told to exit mid-run (an interrupted build). */
    private Thread qemuReaper;

    @AfterEach
    void tearDown() throws Exception {
        if (qemuReaper != null) {
            Runtime.getRuntime().removeShutdownHook(qemuReaper);
        }
        if (qemu != null && qemu.isAlive()) {
            qemu.destroyForcibly(); // by its pid: the one QEMU this test started
            qemu.waitFor(30, TimeUnit.SECONDS);
        }
        if (tmp != null) {
            run(Duration.ofMinutes(1), "rm", "-rf", tmp.toString());
        }
    }

    @Test
    void packageRunsUnderSystemdThroughStartRestartReloadWatchdogAndPoweroff() throws Exception {
        boolean root = "root".equals(System.getProperty("user.name"));
        if (System.getenv("CI") != null) {
            assertThat(root).as("CI runs as root, and building the Debian system needs debootstrap and chroot").isTrue();
        }
        Assumptions.assumeTrue(root, "building the Debian system (debootstrap, chroot) needs root");
        Files.createDirectories(OUT);
        Map<String, Long> times = new LinkedHashMap<>();

        long t = System.nanoTime();
        Result build = run(Duration.ofMinutes(30), "bash", PROJECT.resolve("guest/build-debian-system.sh").toString(),
                SYSTEM.toString());
        times.put("image build (0 when cached)", ms(t));
        Files.writeString(OUT.resolve("build.log"), build.out + build.err);
        assertThat(build.exit).as("guest/build-debian-system.sh: %s", build.err).isZero();

        tmp = Files.createTempDirectory("qsup-debian-system");
        Path overlay = tmp.resolve("root.qcow2");
        Result img = run(Duration.ofMinutes(1), "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                SYSTEM.resolve("root.img").toString(), overlay.toString());
        assertThat(img.exit).as("qemu-img create: %s", img.err).isZero();
        Path itDisk = secondDisk();

        Path console = OUT.resolve("console.log");
        Files.deleteIfExists(console);
        List<String> cmd = List.of("qemu-system-x86_64", "-nodefaults", "-no-user-config", "-no-reboot",
                "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "2048", "-display", "none",
                "-kernel", SYSTEM.resolve("vmlinuz").toString(), "-initrd", SYSTEM.resolve("initrd.img").toString(),
                "-append", "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=1"
                        + " systemd.journald.forward_to_console=1 panic=-1",
                "-drive", "file=" + overlay + ",if=virtio,format=qcow2",
                "-drive", "file=" + itDisk + ",if=virtio,format=raw,readonly=on",
                "-serial", "file:" + console);
        t = System.nanoTime();
        qemu = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(OUT.resolve("qemu.log").toFile())
                .start();
        qemuReaper = new Thread(qemu::destroyForcibly, "debian-system-qemu-reaper");
        Runtime.getRuntime().addShutdownHook(qemuReaper);

        // Follow the console: each QSUP-IT line, with the time it appeared, until QEMU exits (the poweroff).
        List<String> marks = new ArrayList<>();
        long deadline = System.nanoTime() + RUN_LIMIT.toNanos();
        int seen = 0;
        while (qemu.isAlive() && System.nanoTime() < deadline) {
            qemu.waitFor(1, TimeUnit.SECONDS);
            List<String> lines = consoleLines(console);
            for (; seen < lines.size(); seen++) {
                Matcher m = MARK.matcher(lines.get(seen));
                if (m.find()) {
                    marks.add(m.group(1).strip());
                    if (m.group(1).startsWith("driver up")) {
                        times.put("boot to driver", ms(t));
                    }
                    if (m.group(1).equals("poweroff")) {
                        times.put("boot to poweroff", ms(t));
                    }
                }
            }
        }
        boolean exited = !qemu.isAlive();
        times.put("QEMU run, boot to exit", ms(t));
        if (exited && times.containsKey("boot to poweroff")) {
            times.put("poweroff to exit", times.get("QEMU run, boot to exit") - times.get("boot to poweroff"));
        }
        String text = String.join("\n", consoleLines(console));

        SoftAssertions soft = new SoftAssertions();
        soft.assertThat(exited).as("the Debian system powered off within %s (console: %s)", RUN_LIMIT, console)
                .isTrue();
        for (String mark : marks) {
            Matcher m = Pattern.compile("^step (\\S+) ms=(\\d+)$").matcher(mark);
            if (m.matches()) {
                times.put("in guest: " + m.group(1), Long.parseLong(m.group(2)));
            }
        }
        System.out.println("DebianSystemIT step times (ms): " + times);
        Files.writeString(OUT.resolve("times.txt"), times.entrySet().stream()
                .map(e -> e.getKey() + "\t" + e.getValue() + "\n").reduce("", String::concat));

        soft.assertThat(marks).as("the driver ran (console: %s)", console).anyMatch(s -> s.startsWith("driver up"));
        soft.assertThat(marks).as("install").contains("install exit=0 dpkg=ii");
        soft.assertThat(marks).as("install enables both units and starts nothing")
                .contains("after-install active=inactive enabled=enabled shutdown-enabled=enabled");
        soft.assertThat(marks).as("systemctl start").contains("start exit=0")
                .anyMatch(s -> s.startsWith("status start Active: active (running)"));
        soft.assertThat(marks).as("the STATUS= line in systemctl status")
                .contains("status start Status: \"1 running, 0 failed, 0 unresponsive\"");

        List<String> pidsA = values(marks, "pid a ");
        soft.assertThat(pidsA).as("VM a from /etc/qsup/vms started").isNotEmpty();
        soft.assertThat(marks).as("VM a reached running").contains("state a running")
                .anyMatch(s -> s.matches("list start a\\s+running\\s.*"));
        soft.assertThat(marks).as("systemctl restart").contains("restart exit=0");
        soft.assertThat(restartedMain(marks, "restart")).as("systemctl restart ran a new qsupd").isTrue();
        soft.assertThat(pidsA).as("VM a's QEMU pid through restart, reload, watchdog and upgrade").hasSizeGreaterThan(2)
                .allMatch(p -> p.matches("\\d+")).containsOnly(pidsA.isEmpty() ? "?" : pidsA.get(0));

        soft.assertThat(marks).as("systemctl reload").contains("reload exit=0", "state b running",
                "status reload Status: \"2 running, 0 failed, 0 unresponsive\"")
                .anyMatch(s -> s.matches("list reload b\\s+running\\s.*"));
        soft.assertThat(marks).as("systemctl reload returns once applied: qsupd knows b at once")
                .anyMatch(s -> s.matches("after-reload b (starting|running)"));
        List<String> pidsB = values(marks, "pid b ");
        soft.assertThat(pidsB).as("VM b, added by the reload, started").isNotEmpty().allMatch(p -> p.matches("\\d+"));
        soft.assertThat(marks).as("a reload with a broken file fails, and qsupd runs on")
                .anyMatch(s -> s.matches("bad-reload exit=[1-9]\\d* active=active"))
                .contains("after-bad-reload a running b running", "fixed-reload exit=0");
        soft.assertThat(marks).as("the journal names the broken file, line and key")
                .anyMatch(s -> s.startsWith("bad-reload journal ") && s.contains("bad.yaml:2") && s.contains("memroy"));
        soft.assertThat(values(marks, "bad-reload pid b ")).as("VM b's QEMU through the broken reload")
                .containsExactly(pidsB.isEmpty() ? "?" : pidsB.get(0));

        if (values(marks, "watchdog-usec ").isEmpty()) {
            soft.fail("the driver did not reach the watchdog step (console: %s)", console);
        } else if (marks.contains("watchdog none")) {
            soft.fail("systemd/qsupd.service sets no WatchdogSec= (systemctl show says WatchdogUSec=%s), so a frozen"
                    + " qsupd is never restarted: the watchdog step cannot pass", values(marks, "watchdog-usec "));
        } else {
            soft.assertThat(restartedMain(marks, "watchdog")).as("the watchdog restarted the SIGSTOPped qsupd: %s",
                    marks.stream().filter(s -> s.startsWith("main-pid watchdog")).toList()).isTrue();
            soft.assertThat(text.contains("qsupd.service: Watchdog timeout"))
                    .as("systemd logged qsupd.service: Watchdog timeout (console: %s)", console).isTrue();
            soft.assertThat(pidsB).as("VM b adopted after the watchdog restart, not restarted").hasSizeGreaterThan(1)
                    .containsOnly(pidsB.isEmpty() ? "?" : pidsB.get(0));
        }

        soft.assertThat(marks).as("an upgrade to a higher version installs").anyMatch(s -> s.matches(
                "upgrade exit=0 version=.*\\+upgrade1"));
        soft.assertThat(restartedMain(marks, "upgrade")).as("the upgrade restarted qsupd: %s",
                marks.stream().filter(s -> s.startsWith("main-pid upgrade")).toList()).isTrue();
        soft.assertThat(pidsB).as("VM b's QEMU pid through the watchdog and the upgrade")
                .containsOnly(pidsB.isEmpty() ? "?" : pidsB.get(0));

        soft.assertThat(marks).as("qsup-shutdown.service is active before the poweroff")
                .contains("qsup-shutdown active");
        Matcher rung = RUNG.matcher(text);
        List<String> rungs = new ArrayList<>();
        while (rung.find()) {
            rungs.add(rung.group(1) + ":" + rung.group(2));
        }
        System.out.println("DebianSystemIT poweroff rungs: " + rungs);
        soft.assertThat(rungs).as("the console shows the rung that ended each VM at poweroff")
                .anyMatch(r -> r.startsWith("a:")).anyMatch(r -> r.startsWith("b:"));
        if (marks.contains("guest b ready")) {
            // The ladder's first rung is the guest agent's guest-shutdown when the agent answers, else ACPI powerdown.
            soft.assertThat(rungs).as("the booted test guest shuts itself down at a graceful rung (agent or powerdown)")
                    .anyMatch(r -> r.equals("b:agent") || r.equals("b:powerdown"));
        }
        soft.assertAll();
    }

    /** The second disk: the .deb, the driver and the VM definitions, in an ext4 image the driver mounts. */
    private Path secondDisk() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("it"));
        Path deb = PackageIT.deb();
        Files.copy(deb, dir.resolve(deb.getFileName()));
        try (var in = DebianSystemIT.class.getResourceAsStream("debian-system-driver.sh")) {
            assertThat(in).as("debian-system-driver.sh on the test class path").isNotNull();
            Files.copy(in, dir.resolve("driver.sh"));
        }
        Files.writeString(dir.resolve("a.yaml"), VM_A);
        TestGuest guest = TestGuest.get();
        Path guestDir = Files.createDirectories(dir.resolve("guest"));
        Files.copy(guest.kernel(), guestDir.resolve("vmlinuz"));
        Files.copy(guest.initrd(), guestDir.resolve("initramfs.cpio.gz"));
        Files.writeString(dir.resolve("b.yaml"), VM_B.formatted(guest.append()));
        Path upgrade = upgradeDeb(deb, Files.createDirectories(dir.resolve("upgrade")));
        Path disk = tmp.resolve("it.img");
        long mb = (Files.size(deb) + Files.size(upgrade) + Files.size(guest.kernel()) + Files.size(guest.initrd()))
                / (1024 * 1024) + 32;
        Result r = run(Duration.ofMinutes(1), "mkfs.ext4", "-q", "-F", "-d", dir.toString(), disk.toString(), mb + "M");
        assertThat(r.exit).as("mkfs.ext4 -d: %s", r.err).isZero();
        return disk;
    }

    /** The same package under a higher version ({@code VERSION+upgrade1}), for the upgrade step; built with dpkg-deb. */
    private Path upgradeDeb(Path deb, Path into) throws Exception {
        Path tree = tmp.resolve("upgrade-tree");
        Result r = run(Duration.ofMinutes(1), "dpkg-deb", "-R", deb.toString(), tree.toString());
        assertThat(r.exit).as("dpkg-deb -R: %s", r.err).isZero();
        Path control = tree.resolve("DEBIAN/control");
        String text = Files.readString(control);
        Matcher v = Pattern.compile("(?m)^Version: (\\S+)$").matcher(text);
        assertThat(v.find()).as("Version in %s", control).isTrue();
        String next = v.group(1) + "+upgrade1";
        Files.writeString(control, v.replaceFirst("Version: " + Matcher.quoteReplacement(next)));
        Path out = into.resolve("qsup_" + next + "_all.deb");
        r = run(Duration.ofMinutes(2), "dpkg-deb", "--root-owner-group", "-b", tree.toString(), out.toString());
        assertThat(r.exit).as("dpkg-deb -b: %s", r.err).isZero();
        return out;
    }

    /** A "main-pid STEP OLD NEW" line whose pids differ, both real. */
    private static boolean restartedMain(List<String> marks, String step) {
        return values(marks, "main-pid " + step + " ").stream().map(v -> v.split(" "))
                .anyMatch(p -> p.length == 2 && !p[0].equals(p[1]) && !p[0].equals("0") && !p[1].equals("0"));
    }

    private static List<String> values(List<String> marks, String prefix) {
        return marks.stream().filter(s -> s.startsWith(prefix)).map(s -> s.substring(prefix.length())).toList();
    }

    /** The console so far; QEMU writes it raw, with CRLF line ends and bytes from the boot that are not UTF-8. */
    private static List<String> consoleLines(Path console) {
        try {
            if (!Files.exists(console)) {
                return List.of();
            }
            String s = new String(Files.readAllBytes(console), StandardCharsets.ISO_8859_1).replace("\r", "");
            int end = s.lastIndexOf('\n');
            return end < 0 ? List.of() : List.of(s.substring(0, end).split("\n", -1));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static long ms(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000;
    }

    record Result(int exit, String out, String err) {}

    private static Result run(Duration limit, String... cmd) throws Exception {
        Path out = Files.createTempFile("qsup-debian", ".out");
        Path err = Files.createTempFile("qsup-debian", ".err");
        try {
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            if (!p.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor(30, TimeUnit.SECONDS);
                throw new AssertionError(String.join(" ", cmd) + " did not finish within " + limit);
            }
            return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
