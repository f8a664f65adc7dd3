package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.QsupdProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * qsupd's platform threads do not grow with its VMs: a defined VM, stopped or running, waits on virtual threads only, so
 * a daemon with many VMs stays within a fixed number of OS threads (the JVM's own, the control socket's, a few
 * short-lived helpers).
 */
class QsupdThreadsTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final int DEFINED = 12;
    private static final int RUNNING = 3;
    /** The JVM's own threads (GC, compiler, signal, reference handling, carriers) plus qsupd's fixed ones. */
    private static final int PLATFORM_THREAD_BOUND = 40;
    private SupervisorFixture fx;
    private QsupdProcess qsupd;

    @BeforeEach
    void setUp() throws IOException {
        fx = new SupervisorFixture(RUNNING);
        for (int i = 0; i < DEFINED; i++) {
            fx.writeVm("t" + i, "autostart: " + (i < RUNNING));
        }
    }

    @AfterEach
    void tearDown() throws Exception {
        if (qsupd != null) {
            qsupd.close();
        }
        fx.close();
    }

    @Test
    void noPlatformThreadBelongsToAVmDefinedOrRunning() throws Exception {
        qsupd = QsupdProcess.start(fx.settingsFile, fx.base.resolve("qsupd.log"));
        for (int i = 0; i < RUNNING; i++) {
            qsupd.awaitLog("VM t" + i + ": starting -> running", WAIT);
        }
        qsupd.awaitLog("qsupd ready", WAIT);

        List<String> threads = osThreads(qsupd.pid());
        // thread names say role and VM ("vm-monitor t3", "qmp-reader t0"); the kernel keeps their first 15 bytes
        assertThat(threads).as("OS threads of qsupd named after one of its VMs")
                .noneMatch(n -> n.matches(".* t\\d+$"));
        assertThat(threads).as("OS threads of qsupd with %d VMs defined and %d running", DEFINED, RUNNING)
                .hasSizeLessThanOrEqualTo(PLATFORM_THREAD_BOUND);
    }

    /** The names of a process's OS threads (platform threads; virtual threads have none of their own). */
    private static List<String> osThreads(long pid) throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path t : tasks.toList()) {
                try {
                    out.add(Files.readString(t.resolve("comm")).strip());
                } catch (IOException ended) {
                    // the thread ended while we looked
                }
            }
        }
        return out;
    }
}
