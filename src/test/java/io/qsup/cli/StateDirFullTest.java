package io.qsup.cli;

import static io.qsup.cli.CliRun.qsup;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.config.DaemonSettings;
import io.qsup.control.DaemonControl;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.VmState;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A full {@code state-dir} (a small tmpfs, filled up) must not make the CLI lie: the stop acts, but {@code qsup stop}
 * warns and exits nonzero unless {@code --allow-unpersisted}, {@code qsup status} and {@code query-daemon} say the
 * state-dir is not writable, and once space frees up qsupd persists the intent by itself, so a daemon restart keeps
 * the VM stopped. Mounting needs root; elsewhere the test is reported as skipped, with the reason.
 */
class StateDirFullTest {
    private SupervisorFixture fx;
    private Path stateDir;
    private boolean mounted;
    private DaemonControl control;

    @BeforeEach
    void setUp() throws Exception {
        Assumptions.assumeTrue(isRoot(), "needs root to mount a small tmpfs as state-dir; not run as this user");
        fx = new SupervisorFixture(2);
        stateDir = fx.base.resolve("state");
        Files.createDirectories(stateDir);
        run("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "qsup-test-state", stateDir.toString());
        mounted = true;
    }

    @AfterEach
    void tearDown() throws Exception {
        if (control != null) {
            control.close();
        }
        if (fx != null) {
            fx.close(); // lets go of the supervisors and kills their QEMUs first
        }
        if (mounted) {
            run("umount", stateDir.toString());
            // the fixture could not remove the mount point while the tmpfs was on it
            Files.deleteIfExists(stateDir);
            Files.deleteIfExists(fx.base);
        }
    }

    @Test
    void aStopWhoseIntentCannotBePersistedSaysSoAndIsPersistedOnceSpaceIsBack() throws Exception {
        Files.writeString(fx.base.resolve("vms/a.yaml"), "memory: 32M\nrestart: always\n"); // autostart: true
        DaemonSettings settings = fx.settings();
        Supervisor sup = fx.supervisor(Supervisor.Options.defaults());
        sup.loadInitial();
        control = DaemonControl.start(settings, sup);
        Path socket = settings.controlSocket();
        sup.startup();
        sup.controller("a").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));

        Path filler = stateDir.resolve("filler");
        fill(filler);

        CliRun stop = qsup(socket, "stop", "a", "--force");
        assertThat(stop.code()).as(stop.toString()).isEqualTo(ExitCodes.ERROR);
        assertThat(stop.out()).startsWith("a: stopped");
        assertThat(stop.err()).contains("warning: intent not persisted").contains("state-dir");
        assertThat(sup.get("a").orElseThrow().state()).as("the stop itself acted").isEqualTo(VmState.STOPPED);

        CliRun allowed = qsup(socket, "stop", "a", "--allow-unpersisted");
        assertThat(allowed.code()).as(allowed.toString()).isZero();
        assertThat(allowed.err()).contains("warning: intent not persisted");

        CliRun status = qsup(socket, "status", "a");
        assertThat(status.out()).contains("state-dir: not writable")
                .containsPattern("last-exit-cause: +operator-stop \\(ended at rung quit\\), \\d{4}-\\d\\d-\\d\\d [0-9:]+ \\(");
        JsonNode info = queryDaemon(settings);
        assertThat(info.path("state-dir-writable").asBoolean(true)).isFalse();
        assertThat(info.path("state-dir-problem").asText()).contains("cannot write state file");

        Files.delete(filler);
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (sup.stateProblem() != null && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertThat(sup.stateProblem()).as("qsupd retried the write by itself").isNull();
        assertThat(qsup(socket, "status", "a").out()).doesNotContain("state-dir: not writable");
        assertThat(Files.readString(stateDir.resolve("supervisor/a.json"))).contains("STOPPED");

        // a daemon restart keeps the operator's stop, though a.yaml says autostart
        control.close();
        control = null;
        sup.close();
        Supervisor next = fx.supervisor(Supervisor.Options.defaults());
        next.loadInitial();
        next.startup();
        assertThat(next.get("a").orElseThrow().state()).isEqualTo(VmState.STOPPED);
    }

    private static JsonNode queryDaemon(DaemonSettings settings) throws Exception {
        try (io.qsup.qmp.QmpClient c = io.qsup.qmp.QmpClient.connect(
                new io.qsup.qmp.QmpEndpoint.Unix(settings.controlSocket()))) {
            return c.execute("query-daemon");
        }
    }

    /** Writes until the file system is full. */
    private static void fill(Path filler) throws IOException {
        byte[] block = new byte[4096];
        try (OutputStream out = Files.newOutputStream(filler)) {
            for (int i = 0; i < 1024; i++) {
                out.write(block);
                out.flush();
            }
        } catch (IOException full) {
            return; // ENOSPC: full, as wanted
        }
        throw new IllegalStateException("a 64k tmpfs took 4 MiB: " + filler + " is not on the small tmpfs");
    }

    private static boolean isRoot() {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).intValue() == 0;
        } catch (IOException e) {
            return false;
        }
    }

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(List.of(cmd)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
        }
    }
}
