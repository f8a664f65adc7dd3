package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.qemu.HostFacts;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.Command;
import io.qsup.testing.QsupdProcess;
import io.qsup.vm.ProcessInspector;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
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
 * written with jackson-core alone. And a start with the QEMU binary of the start before takes what its {@code -help}
 * said from the run-dir's cache instead of running QEMU for it.
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

    @Test
    void aSecondStartWithTheSameQemuDoesNotAskItsHelpAgain() throws Exception {
        // QEMU behind a wrapper that writes down each run's arguments
        Path runs = fx.base.resolve("qemu-runs");
        Path qemu = fx.base.resolve("qemu-system-x86_64");
        Path real = HostFacts.probe("qemu-system-x86_64").qemuPath();
        Files.writeString(qemu, "#!/bin/sh\necho \"$*\" >> '" + runs + "'\nexec '" + real + "' \"$@\"\n");
        Files.setPosixFilePermissions(qemu, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(fx.settingsFile, Files.readString(fx.settingsFile) + "qemu-binary: " + qemu + "\n");
        Files.delete(fx.base.resolve("vms/up.yaml")); // only "down": nothing to launch

        qsupd = QsupdProcess.start(fx.settingsFile, fx.base.resolve("qsupd.log"), Map.of(), List.of());
        qsupd.awaitLog("qsupd ready", WAIT);
        qsupd.close();
        qsupd = null;
        assertThat(Files.readAllLines(runs)).containsExactly("-help");
        assertThat(Files.readString(fx.base.resolve("run/host-facts"))).startsWith("qsup host facts 1\n" + qemu + " dev=")
                .endsWith("\nsandbox true\n");

        qsupd = QsupdProcess.start(fx.settingsFile, fx.base.resolve("qsupd-2.log"), Map.of(), List.of());
        qsupd.awaitLog("qsupd ready", WAIT);
        assertThat(Files.readAllLines(runs)).as("QEMU's runs after the second start").containsExactly("-help");

        // the cached answer is QEMU's: the VM launched now runs sandboxed, as after a start that asked QEMU
        Command.Result start = Command.run(Duration.ofSeconds(90), List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), io.qsup.cli.QsupMain.class.getName(), "--socket",
                fx.base.resolve("run/qsupd.sock").toString(), "start", "down"));
        assertThat(start.exit()).as(start.output()).isZero();
        assertThat(Files.readAllLines(runs)).hasSize(2).last(org.assertj.core.api.InstanceOfAssertFactories.STRING)
                .contains("-name guest=down").contains("-sandbox on");
        long pid = ProcessInspector.readPidFile(fx.pidFile("down")).orElseThrow();
        assertThat(String.join(" ", new ProcessInspector().cmdline(pid))).contains("-sandbox on");
    }
}
