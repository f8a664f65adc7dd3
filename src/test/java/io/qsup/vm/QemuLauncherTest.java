package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Launches a real daemonized QEMU (no guest needed) and checks what ties it to us. */
class QemuLauncherTest {
    private final ProcessInspector inspector = new ProcessInspector();
    private Path dir;
    private Path pidFile;

    @BeforeEach
    void setUp() throws IOException {
        // short path: the QMP socket must fit in 108 bytes
        dir = Files.createTempDirectory(Path.of("/tmp"), "ql");
        pidFile = dir.resolve("qemu.pid");
    }

    @AfterEach
    void killQemu() throws Exception {
        OptionalLong pid = ProcessInspector.readPidFile(pidFile);
        if (pid.isPresent() && inspector.belongsTo(pid.getAsLong(), "lt", pidFile, null)) {
            inspector.signal(pid.getAsLong(), ProcessInspector.Signal.KILL);
            inspector.awaitDeath(pid.getAsLong(), Duration.ofSeconds(10), 20);
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private List<String> argv(String... extra) {
        List<String> a = new ArrayList<>(List.of("qemu-system-x86_64", "-name", "guest=lt", "-accel", "tcg",
                "-nodefaults", "-display", "none", "-m", "32",
                "-qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off",
                "-daemonize", "-pidfile", pidFile.toString()));
        a.addAll(List.of(extra));
        return a;
    }

    @Test
    void daemonizedQemuHoldsNoPipeOfOurs() throws Exception {
        QemuLauncher.Result r = new QemuLauncher().run("lt", argv(), dir.resolve("qemu.log"), Duration.ofSeconds(30));
        assertThat(r.ok()).as("launch output: %s", r.output()).isTrue();
        long pid = ProcessInspector.readPidFile(pidFile).orElseThrow();
        assertThat(inspector.belongsTo(pid, "lt", pidFile, dir.resolve("qmp.sock"))).isTrue();
        assertThat(inspector.stat(pid).orElseThrow().ppid()).as("re-parented away from the JVM")
                .isNotEqualTo(ProcessHandle.current().pid());

        for (String fd : List.of("0", "1", "2")) {
            assertThat(Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "fd", fd)))
                    .as("QEMU fd %s", fd).isEqualTo(Path.of("/dev/null"));
        }
        Set<String> ours = pipes(ProcessHandle.current().pid());
        Set<String> theirs = pipes(pid);
        theirs.retainAll(ours);
        assertThat(theirs).as("pipes shared between QEMU and the JVM").isEmpty();
        assertThat(Files.readString(dir.resolve("qemu.log"))).contains("launch: qemu-system-x86_64").contains("exit 0");
    }

    @Test
    void failedLaunchKeepsQemusOwnWords() throws Exception {
        QemuLauncher.Result r = new QemuLauncher().run("lt",
                argv("-drive", "file=" + dir.resolve("missing.qcow2") + ",if=virtio"),
                dir.resolve("qemu.log"), Duration.ofSeconds(30));
        assertThat(r.ok()).isFalse();
        assertThat(r.exitCode()).isNotZero();
        assertThat(r.output()).startsWith("qemu-system-x86_64: -drive file=" + dir.resolve("missing.qcow2"))
                .contains("No such file or directory");
        assertThat(Files.readString(dir.resolve("qemu.log"))).contains(r.output().strip());
    }

    @Test
    void badExtraOptionIsReportedByQemu() throws Exception {
        QemuLauncher.Result r = new QemuLauncher().run("lt", argv("-no-such-option"), null, Duration.ofSeconds(30));
        assertThat(r.ok()).isFalse();
        assertThat(r.output()).contains("-no-such-option: invalid option");
    }

    @Test
    void missingBinaryIsAnIoErrorNamingIt() {
        List<String> a = argv();
        a.set(0, "/nonexistent/qemu-system-x86_64");
        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> new QemuLauncher().run("lt", a, null, Duration.ofSeconds(30)))
                .isInstanceOf(IOException.class).hasMessageContaining("/nonexistent/qemu-system-x86_64")
                .hasMessageContaining("qemu-binary");
    }

    private static Set<String> pipes(long pid) throws IOException {
        Set<String> out = new HashSet<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.startsWith("pipe:")) {
                        out.add(target);
                    }
                } catch (IOException gone) {
                    // fd closed while listing
                }
            }
        }
        return out;
    }
}
