package io.qsup.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The witness with real test-guest QEMUs of one VM name, each started in its own host folder as qsupd would start
 * it: it tells a QEMU paused by {@code stop} on the main monitor from a running one, a paused QEMU beside a running
 * one counts 1, and two running ones count 2 and fail the assertion with a timeline.
 */
class QemuWitnessTest {
    private static final Duration BOOT = Duration.ofSeconds(30);
    private Path base;
    private final List<Process> qemus = new ArrayList<>();
    private QemuWitness witness;

    @BeforeEach
    void setUp() throws IOException {
        base = Files.createTempDirectory(Path.of("/tmp"), "qswit");
        Files.createDirectories(base.resolve("h1"));
        Files.createDirectories(base.resolve("h2"));
    }

    @AfterEach
    void tearDown() throws Exception {
        if (witness != null) {
            witness.close();
        }
        for (Process p : qemus) {
            p.destroyForcibly();
            p.waitFor();
        }
        QemuProcesses.killAll(base, Duration.ofSeconds(10));
        Command.run("rm", "-rf", base.toString());
    }

    @Test
    void tellsAPausedQemuFromARunningOneAndCountsTwoRunningQemusOfOneVmAsTwo() throws Exception {
        witness = QemuWitness.start(base, Map.of("h1", base.resolve("h1"), "h2", base.resolve("h2")));
        startQemu("h1");
        Predicate<QemuWitness.Moment> aRunning = m -> m.qemus().size() == 1
                && m.qemus().getFirst().status().equals("running") && "h1".equals(m.qemus().getFirst().host());
        awaitMoment(aRunning);

        try (QmpClient a = QmpClient.connect(new QmpEndpoint.Unix(base.resolve("h1/qmp.sock")))) {
            a.stop(); // through the main monitor, as qsupd or a migration would
            awaitMoment(m -> m.qemus().size() == 1 && m.qemus().getFirst().status().equals("paused"));
            assertThat(witness.now("w1").orElseThrow().unpaused()).isZero();

            startQemu("h2");
            awaitMoment(m -> m.qemus().size() == 2 && m.qemus().stream().anyMatch(s -> s.host().equals("h2")
                    && s.status().equals("running")));
            QemuWitness.Moment both = witness.now("w1").orElseThrow();
            assertThat(both.unpaused()).as("a paused QEMU beside a running one: %s", both).isEqualTo(1);
            assertThat(witness.maxUnpaused("w1")).isEqualTo(1);
            witness.assertNeverTwoUnpaused();

            a.cont();
            awaitMoment(m -> m.unpaused() == 2);
        }
        assertThat(witness.maxUnpaused("w1")).isEqualTo(2);
        assertThat(witness.worst("w1").orElseThrow().qemus()).extracting(QemuWitness.Seen::host)
                .containsExactlyInAnyOrder("h1", "h2");
        assertThat(witness.doubleRuns()).containsOnlyKeys("w1");
        assertThatThrownBy(witness::assertNeverTwoUnpaused).isInstanceOf(AssertionError.class)
                .hasMessageContaining("two unpaused QEMUs for one VM").hasMessageContaining("timeline")
                .hasMessageContaining("paused");
        assertThat(witness.samples()).isPositive();
    }

    /** A test-guest QEMU of VM w1 run from {@code base/HOST}, with its main monitor and the witness's own. */
    private void startQemu(String host) throws IOException {
        Path dir = base.resolve(host);
        TestGuest guest = TestGuest.get();
        List<String> argv = new ArrayList<>(List.of(TestQemu.BINARY, "-name", "guest=w1", "-machine", "q35",
                "-accel", "tcg", "-m", "128M", "-nodefaults", "-display", "none",
                "-pidfile", dir.resolve("qemu.pid").toString(),
                "-qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off"));
        argv.addAll(guest.qemuBootArgs());
        argv.addAll(QemuWitness.monitorArgs("w1"));
        qemus.add(new ProcessBuilder(argv).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("qemu.log").toFile()).start());
        long deadline = System.nanoTime() + BOOT.toNanos();
        while (!UnixSockets.isListening(dir.resolve("qmp.sock"))) {
            if (System.nanoTime() > deadline || !qemus.getLast().isAlive()) {
                throw new AssertionError("QEMU in " + host + " did not come up: "
                        + Files.readString(dir.resolve("qemu.log")));
            }
            sleep(20);
        }
        assertThat(dir.resolve(QemuWitness.socketName("w1"))).as("the relative witness socket, bound in the"
                + " folder QEMU started in").exists();
    }

    private void awaitMoment(Predicate<QemuWitness.Moment> p) throws InterruptedException {
        long deadline = System.nanoTime() + BOOT.toNanos();
        while (true) {
            witness.awaitNextSample();
            var now = witness.now("w1");
            if (now.isPresent() && p.test(now.get())) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the witness never saw the expected moment; timeline:\n"
                        + witness.timelineText());
            }
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
