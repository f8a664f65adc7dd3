package io.qsup.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.QemuProcesses.Instance;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The /proc scanner the invariant test trusts: a QEMU that daemonizes (parent, setsid child, daemon) is one instance
 * even while its launcher parent still lives, and two QEMUs of one VM are two. Real {@code qemu-system-x86_64}
 * processes with {@code -daemonize}, paused and without a guest.
 */
class QemuProcessesTest {
    /**
     * Launches scanned without pause. A scan reads /proc one process at a time, so a launcher parent read alive could
     * exit before the scan reached its setsid child: one launch in about 150 showed as two instances before {@link
     * QemuProcesses#scan} read each QEMU again at its end.
     */
    private static final int LAUNCHES = 100;
    private Path dir;

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsp");
    }

    @AfterEach
    void tearDown() throws Exception {
        QemuProcesses.killAll(dir, Duration.ofSeconds(10));
        assertThat(new QemuProcesses(dir).scan().qemus()).isEmpty();
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Test
    void aDaemonizingLaunchIsOneInstanceWhileItsParentStillLives() throws Exception {
        QemuProcesses procs = new QemuProcesses(dir);
        List<Instance> overlaps = new ArrayList<>();
        List<List<Instance>> split = new ArrayList<>();
        for (int n = 0; n < LAUNCHES; n++) {
            Process parent = launch("vm", n);
            // scan as fast as we can while the launcher parent waits for its daemon to be ready
            while (parent.isAlive()) {
                for (List<Instance> is : procs.scan().instances().values()) {
                    if (is.size() > 1) {
                        split.add(is);
                    }
                    for (Instance i : is) {
                        if (i.members().size() > 1 && i.root().pid() == parent.pid()) {
                            overlaps.add(i);
                        }
                    }
                }
            }
            assertThat(parent.waitFor(10, TimeUnit.SECONDS)).isTrue();
            assertThat(parent.exitValue()).as("qemu -daemonize exit status").isZero();
            List<Instance> after = procs.scan().instances("vm");
            assertThat(after).hasSize(1);
            assertThat(after.get(0).members()).hasSize(1);
            assertThat(after.get(0).leaf().pid()).isEqualTo(Long.parseLong(
                    Files.readString(dir.resolve("qemu" + n + ".pid")).trim()));
            QemuProcesses.killAll(dir, Duration.ofSeconds(10));
        }
        assertThat(split).as("one launch seen as two instances").isEmpty();
        assertThat(overlaps).as("launcher parent and daemon seen alive together, grouped as one instance")
                .isNotEmpty();
        assertThat(overlaps).as("the daemon joined to its launcher parent through the setsid child, not its ppid")
                .anyMatch(i -> i.leaf().stat().ppid() != i.root().pid() && i.leaf().stat().ppid() != i.members().get(1).pid());
    }

    @Test
    void twoQemusOfOneVmAreTwoInstances() throws Exception {
        assertThat(launch("vm", 0).waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(launch("vm", 1).waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(launch("other", 2).waitFor(10, TimeUnit.SECONDS)).isTrue();
        Map<String, List<Instance>> byVm = new QemuProcesses(dir).scan().instances();
        assertThat(byVm.get("vm")).hasSize(2);
        assertThat(byVm.get("other")).hasSize(1);
        assertThat(new QemuProcesses(Path.of("/tmp/qs-nothing-of-ours")).scan().qemus()).isEmpty();

        List<QemuProcesses.Qemu> killed = QemuProcesses.killAll(dir, Duration.ofSeconds(10));
        assertThat(killed).hasSize(3);
    }

    /** {@code qemu-system-x86_64 -name guest=NAME -daemonize}, paused, its pidfile and QMP socket under the dir. */
    private Process launch(String name, int n) throws IOException {
        List<String> argv = List.of(TestQemu.BINARY, "-name", "guest=" + name, "-daemonize", "-pidfile",
                dir.resolve("qemu" + n + ".pid").toString(), "-machine", "q35", "-accel", "tcg", "-m", "64",
                "-nodefaults", "-display", "none", "-S", "-qmp", "unix:" + dir.resolve("q" + n + ".sock")
                        + ",server=on,wait=off");
        return new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(dir.resolve("q" + n + ".log").toFile())
                .start();
    }
}
