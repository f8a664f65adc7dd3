package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.QsupdProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * qsupd's start, from reading its VMs' records to a running VM launched and answering, builds no databind
 * {@code ObjectMapper}: the first one sets up databind's date formats and with them the JDK's calendar and locale data,
 * which cost every start about 80 ms of CPU (BENCHMARKS.md, daemon restart). State records, argv and QMP are read and
 * written with jackson-core alone.
 */
class QsupdClassesTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private SupervisorFixture fx;
    private QsupdProcess qsupd;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
        fx.writeVm("up", "autostart: true");
        fx.writeVm("down", "autostart: false");
        // a record from an earlier run, as every VM has after its first start
        Path records = fx.base.resolve("state/supervisor");
        Files.createDirectories(records);
        Files.writeString(records.resolve("down.json"), "{\"intent\": \"STOPPED\", \"restarts\": 2}");
    }

    @AfterEach
    void tearDown() throws Exception {
        if (qsupd != null) {
            qsupd.close();
        }
        fx.close();
    }

    @Test
    void aStartWithARecordAndARunningVmBuildsNoObjectMapper() throws Exception {
        Path classes = fx.base.resolve("classes.log");
        qsupd = QsupdProcess.start(fx.settingsFile, fx.base.resolve("qsupd.log"), Map.of(),
                List.of("-Xlog:class+load=info:file=" + classes));
        qsupd.awaitLog("VM up: starting -> running", WAIT);
        qsupd.awaitLog("qsupd ready", WAIT);
        assertThat(qsupd.log()).as("the record was read, not moved aside").doesNotContain("not a valid record");

        List<String> loaded = Files.readAllLines(classes);
        // the log is the one asked for and lists what the start used
        assertThat(loaded).anyMatch(l -> l.contains(" io.qsup.supervisor.StateStore "))
                .anyMatch(l -> l.contains(" com.fasterxml.jackson.core.JsonFactory "))
                .anyMatch(l -> l.contains(" io.qsup.qemu.ArgvBuilder "));
        assertThat(loaded).as("databind's ObjectMapper loaded by qsupd's start")
                .noneMatch(l -> l.contains(" com.fasterxml.jackson.databind.ObjectMapper "));
    }
}
