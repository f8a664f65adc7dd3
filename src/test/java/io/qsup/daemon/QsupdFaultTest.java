package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.config.DaemonSettings;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpFraming;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.GuestConsole;
import io.qsup.testing.QemuCensus;
import io.qsup.testing.QsupdProcess;
import io.qsup.vm.ProcessInspector;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Faults that once broke qsup's promises, each against qsupd as a real child process with real QEMUs: a damaged
 * pidfile never gives a second QEMU, SIGTERM of qsupd in the middle of a stop ladder never kills the VM, a corrupt
 * state file never stops qsupd from starting nor autostarts on a guess, and queries during adoption never call a live
 * VM stopped. A {@link QemuCensus} reads {@code /proc} on its own throughout.
 */
class QsupdFaultTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private final ProcessInspector inspector = new ProcessInspector();
    private final List<QsupdProcess> daemons = new ArrayList<>();
    private SupervisorFixture fx;
    private QemuCensus census;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(4);
        census = new QemuCensus(fx.base).startSampling();
    }

    @AfterEach
    void tearDown() throws Exception {
        for (QsupdProcess d : daemons) {
            d.close();
        }
        census.close();
        census.killAll(); // found by the test's own folder in their argv, whatever their pidfiles say
        fx.close();
    }

    @ParameterizedTest(name = "pidfile {0}")
    @ValueSource(strings = {"lost", "empty", "garbage"})
    void aDamagedPidfileNeverGivesASecondQemu(String damage) throws Exception {
        fx.writeVm("a", "restart: always");
        QsupdProcess q1 = qsupd("q1.log");
        q1.awaitLog("VM a: starting -> running", WAIT);
        DaemonSettings s = fx.settings();
        Path pidFile = s.pathsFor("a").pidFile();
        long pid = ProcessInspector.readPidFile(pidFile).orElseThrow();
        q1.kill9();

        switch (damage) {
            case "lost" -> Files.delete(pidFile);
            case "empty" -> Files.writeString(pidFile, "");
            default -> Files.writeString(pidFile, "\u0000\u0007not a pid\n");
        }
        QsupdProcess q2 = qsupd("q2.log");
        q2.awaitLog("qsupd ready", WAIT);
        Thread.sleep(2000); // a second launch, or a restart loop, would be under way by now

        assertThat(census.duplicates()).as("never two QEMUs for one VM").isEmpty();
        assertThat(census.now()).containsEntry("a", List.of(pid));
        JsonNode vm = query(s, "query-vm", "a");
        assertThat(vm.path("state").asText()).isEqualTo("running");
        assertThat(vm.path("pid").asLong()).isEqualTo(pid);
        assertThat(q2.log()).contains("found pid " + pid + " in /proc");
        assertThat(ProcessInspector.readPidFile(pidFile)).as("the pidfile is repaired").hasValue(pid);
    }

    @Test
    void sigtermOfQsupdMidLadderLeavesTheQemuAliveAndTheNextQsupdFinishesTheStop() throws Exception {
        // no guest agent: its guest-shutdown would end the deaf guest inside the powerdown rung
        fx.writeVm("m1", "restart: always\nstop-timeout: 8s\nguest-agent: false");
        QsupdProcess q1 = qsupd("q1.log");
        q1.awaitLog("VM m1: starting -> running", WAIT);
        DaemonSettings s = fx.settings();
        long pid = ProcessInspector.readPidFile(s.pathsFor("m1").pidFile()).orElseThrow();
        try (GuestConsole deaf = fx.readyConsole("m1", WAIT)) {
            deaf.command("ignore-acpi", Duration.ofSeconds(30)); // the ladder stays on its powerdown rung
        }
        try (QmpClient c = control(s)) {
            c.execute("vm-stop", QmpFraming.mapper().createObjectNode().put("name", "m1").put("wait", false));
        }
        q1.awaitLog("VM m1: stop ladder at rung powerdown", WAIT);
        Thread.sleep(500);
        assertThat(q1.terminate(Duration.ofSeconds(30))).as("qsupd exits 0 on SIGTERM").isZero();
        for (int i = 0; i < 30; i++) {
            assertThat(inspector.isAlive(pid)).as("QEMU %d after qsupd's SIGTERM (sample %d)", pid, i).isTrue();
            Thread.sleep(100);
        }
        assertThat(q1.log()).doesNotContain("rung quit").doesNotContain("rung sigterm").doesNotContain("rung sigkill")
                .doesNotContain("survived SIGKILL");

        QsupdProcess q2 = qsupd("q2.log");
        q2.awaitLog("resuming it", WAIT);
        q2.awaitLog("VM m1: stopping -> stopped", WAIT);
        assertThat(inspector.isAlive(pid)).isFalse();
        JsonNode vm = query(s, "query-vm", "m1");
        assertThat(vm.path("state").asText()).isEqualTo("stopped");
        assertThat(vm.path("intent").asText()).isEqualTo("stopped");
        assertThat(census.duplicates()).isEmpty();
    }

    @Test
    void aRestartCutShortByQsupdsExitIsFinishedByTheNextQsupd() throws Exception {
        // no guest agent: its guest-shutdown would end the deaf guest inside the powerdown rung
        fx.writeVm("r", "restart: no\nstop-timeout: 8s\nguest-agent: false");
        QsupdProcess q1 = qsupd("q1.log");
        q1.awaitLog("VM r: starting -> running", WAIT);
        DaemonSettings s = fx.settings();
        long before = ProcessInspector.readPidFile(s.pathsFor("r").pidFile()).orElseThrow();
        try (GuestConsole deaf = fx.readyConsole("r", WAIT)) {
            deaf.command("ignore-acpi", Duration.ofSeconds(30));
        }
        try (QmpClient c = control(s)) {
            c.execute("vm-restart", QmpFraming.mapper().createObjectNode().put("name", "r").put("wait", false));
        }
        q1.awaitLog("VM r: stop ladder at rung powerdown", WAIT);
        assertThat(q1.terminate(Duration.ofSeconds(30))).isZero();
        assertThat(inspector.isAlive(before)).as("qsupd's exit left the VM alone").isTrue();

        QsupdProcess q2 = qsupd("q2.log");
        q2.awaitLog("resuming it", WAIT);
        long deadline = System.nanoTime() + WAIT.toNanos();
        JsonNode vm = query(s, "query-vm", "r");
        while (!(vm.path("state").asText().equals("running") && vm.path("pid").asLong() != before)
                && System.nanoTime() < deadline) {
            Thread.sleep(200);
            vm = query(s, "query-vm", "r");
        }
        assertThat(vm.path("state").asText()).as("the operator asked for a restart: it runs again").isEqualTo("running");
        assertThat(vm.path("pid").asLong()).as("a new QEMU").isNotEqualTo(before);
        assertThat(inspector.isAlive(before)).isFalse();
        assertThat(census.duplicates()).isEmpty();
    }

    @ParameterizedTest(name = "state file {0}")
    @ValueSource(strings = {"null", "{}{", "[1, 2]", "{\"intent\": 7}"})
    void aCorruptStateFileIsMovedAsideAndTheVmIsNotStartedOnAGuess(String content) throws Exception {
        fx.writeVm("a", "restart: always"); // autostart: true, but the operator may have stopped it
        Path records = fx.base.resolve("state/supervisor");
        Files.createDirectories(records);
        Files.writeString(records.resolve("a.json"), content);
        Files.writeString(records.resolve(".a.json.1234-torn.tmp"), "{\"inte");
        QsupdProcess q = qsupd("q.log");
        q.awaitLog("qsupd ready", WAIT);

        assertThat(q.log()).contains(records.resolve("a.json") + " is not a valid record").contains("moved to")
                .contains("assumes intent 'stopped'");
        try (Stream<Path> files = Files.list(records)) {
            List<String> names = files.map(p -> p.getFileName().toString()).toList();
            assertThat(names).anyMatch(n -> n.startsWith("a.json.corrupt-")).doesNotContain(".a.json.1234-torn.tmp");
        }
        JsonNode vm = query(fx.settings(), "query-vm", "a");
        assertThat(vm.path("state").asText()).isEqualTo("stopped");
        assertThat(vm.path("intent").asText()).isEqualTo("stopped");
        assertThat(census.now()).doesNotContainKey("a");
    }

    @Test
    void queriesDuringAdoptionNeverCallALiveVmStopped() throws Exception {
        for (String vm : List.of("a", "b", "c")) {
            fx.writeVm(vm, "restart: always");
        }
        QsupdProcess q1 = qsupd("q1.log");
        for (String vm : List.of("a", "b", "c")) {
            q1.awaitLog("VM " + vm + ": starting -> running", WAIT);
        }
        DaemonSettings s = fx.settings();
        long frozen = ProcessInspector.readPidFile(s.pathsFor("c").pidFile()).orElseThrow();
        q1.kill9();
        // a QEMU that does not answer QMP makes adoption take its full deadline: a wide window for the queries
        inspector.signal(frozen, ProcessInspector.Signal.STOP);
        try {
            QsupdProcess q2 = qsupd("q2.log");
            Map<String, List<String>> seen = new TreeMap<>();
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!q2.log().contains("qsupd ready") && System.nanoTime() < deadline) {
                if (!Files.exists(s.controlSocket())) {
                    Thread.sleep(5);
                    continue;
                }
                try (QmpClient c = control(s)) {
                    for (JsonNode vm : c.execute("query-vms", null)) {
                        seen.computeIfAbsent(vm.path("name").asText(), k -> new ArrayList<>())
                                .add(vm.path("state").asText());
                    }
                } catch (io.qsup.qmp.QmpException notYet) {
                    Thread.sleep(5);
                }
            }
            assertThat(seen.get("c")).as("the frozen VM was queried while its adoption ran").contains("adopting");
            seen.forEach((vm, states) -> assertThat(states).as("states of live VM %s during adoption", vm)
                    .doesNotContain("stopped"));
            assertThat(query(s, "query-vm", "c").path("state").asText()).isEqualTo("orphaned");
        } finally {
            inspector.signal(frozen, ProcessInspector.Signal.CONT);
        }
        assertThat(census.duplicates()).isEmpty();
    }

    private QsupdProcess qsupd(String log) throws IOException {
        QsupdProcess q = QsupdProcess.start(fx.settingsFile, fx.base.resolve(log));
        daemons.add(q);
        return q;
    }

    private static QmpClient control(DaemonSettings s) throws io.qsup.qmp.QmpException {
        return QmpClient.connect(new QmpEndpoint.Unix(s.controlSocket()));
    }

    private static JsonNode query(DaemonSettings s, String command, String vm) throws Exception {
        try (QmpClient c = control(s)) {
            return c.execute(command, QmpFraming.mapper().createObjectNode().put("name", vm));
        }
    }
}
