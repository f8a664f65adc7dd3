package io.qsup.cli;

import static io.qsup.cli.CliRun.qsup;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Every {@code qsup} verb against a real supervisor and control socket with real test-guest VMs under TCG, checking
 * both the human table and the JSON. The tests share one daemon and run in order, as an operator's session would.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CliEndToEndTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private SupervisorFixture fixture;
    private InProcessDaemon daemon;
    private Supervisor sup;
    private Path socket;

    @BeforeAll
    void startDaemon() throws Exception {
        fixture = new SupervisorFixture(2);
        fixture.writeVm("alpha", "restart: on-failure\nstop-timeout: 20s");
        fixture.writeVm("beta", "autostart: false\nrestart: no\nstop-timeout: 20s");
        daemon = InProcessDaemon.start(fixture);
        sup = daemon.supervisor();
        socket = daemon.socket();
        sup.controller("alpha").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));
    }

    @AfterAll
    void stopDaemon() throws Exception {
        if (daemon != null) {
            daemon.close();
        }
    }

    private static JsonNode json(CliRun r) throws Exception {
        assertThat(r.code()).as(r.toString()).isZero();
        return JSON.readTree(r.out());
    }

    @Test
    @Order(1)
    void listShowsATableAndJson() throws Exception {
        CliRun table = qsup(socket, "list");
        assertThat(table.code()).as(table.toString()).isZero();
        String[] lines = table.out().split("\n");
        assertThat(lines[0]).startsWith("NAME").contains("STATE").contains("PID").contains("LAST EXIT");
        assertThat(lines[1]).startsWith("alpha").contains("running");
        assertThat(lines[2]).startsWith("beta").contains("stopped");
        assertThat(table.out()).doesNotContain("\u001b[").as("no colour when not a terminal");

        JsonNode vms = json(qsup(socket, "list", "--json"));
        assertThat(vms).hasSize(2);
        assertThat(vms.get(0).path("name").asText()).isEqualTo("alpha");
        assertThat(vms.get(0).path("state").asText()).isEqualTo("running");
        assertThat(vms.get(0).path("pid").asLong()).isPositive();
        assertThat(vms.get(1).path("pid").isNull()).isTrue();

        assertThat(qsup(socket, "list", "--names").out()).isEqualTo("alpha\nbeta\n");
    }

    @Test
    @Order(0)
    void globalOptionsWorkBeforeAndAfterTheVerb() throws Exception {
        CliRun before = CliRun.qsupRaw("--socket", socket.toString(), "list");
        CliRun after = CliRun.qsupRaw("list", "--socket", socket.toString());
        assertThat(before.code()).as(before.toString()).isZero();
        assertThat(before.out()).startsWith("NAME").contains("alpha").isEqualTo(after.out());

        JsonNode vm = json(CliRun.qsupRaw("--json", "--socket", socket.toString(), "status", "alpha"));
        assertThat(vm.path("name").asText()).isEqualTo("alpha");
        assertThat(json(CliRun.qsupRaw("--socket", socket.toString(), "list", "--json"))).hasSize(2);

        // the verb's own --socket wins over the global one
        CliRun both = CliRun.qsupRaw("--socket", "/tmp/qsup-nothing-here.sock", "list", "--socket", socket.toString());
        assertThat(both.code()).as(both.toString()).isZero();

        // before 'qmp', --socket is the daemon's; after it, a QEMU monitor's
        JsonNode status = json(CliRun.qsupRaw("--socket", socket.toString(), "qmp", "alpha", "query-status"));
        assertThat(status.path("status").asText()).isEqualTo("running");
        CliRun direct = CliRun.qsupRaw("--socket", socket.toString(), "qmp", "--socket", "/tmp/qsup-no-qemu-here.sock",
                "query-status");
        assertThat(direct.code()).as(direct.toString()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(direct.err()).contains("/tmp/qsup-no-qemu-here.sock");
    }

    @Test
    @Order(2)
    void statusNamesOneVm() throws Exception {
        CliRun human = qsup(socket, "status", "alpha");
        assertThat(human.out()).startsWith("alpha: running").contains("pid:").contains("restart-count:");
        JsonNode vm = json(qsup(socket, "status", "alpha", "--json"));
        assertThat(vm.path("state").asText()).isEqualTo("running");
        assertThat(vm.path("console-socket").asText()).endsWith("vms/alpha/console.sock");
        assertThat(Files.exists(Path.of(vm.path("serial-log").asText()))).isTrue();

        CliRun missing = qsup(socket, "status", "nosuch");
        assertThat(missing.code()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(missing.err()).contains("no VM named 'nosuch'");
    }

    @Test
    @Order(3)
    void startPauseResumeResetStop() throws Exception {
        CliRun start = qsup(socket, "start", "beta");
        assertThat(start.out()).as(start.toString()).isEqualTo("beta: running\n");

        assertThat(qsup(socket, "pause", "beta").out()).isEqualTo("beta: paused\n");
        JsonNode status = json(CliRun.qsupRaw("qmp", "beta", "query-status", "--daemon-socket", socket.toString()));
        assertThat(status.path("status").asText()).isEqualTo("paused");
        assertThat(qsup(socket, "resume", "beta").out()).isEqualTo("beta: running\n");
        assertThat(qsup(socket, "reset", "beta").out()).isEqualTo("beta: running\n");

        CliRun stop = qsup(socket, "stop", "beta", "--force", "--json");
        JsonNode r = json(stop).get(0);
        assertThat(r.path("state").asText()).isEqualTo("stopped");
        assertThat(r.path("rung").asText()).isEqualTo("quit");
        assertThat(json(qsup(socket, "status", "beta", "--json")).path("intent").asText()).isEqualTo("stopped");
    }

    @Test
    @Order(4)
    void gracefulStopReportsThePowerdownRung() throws Exception {
        CliRun start = qsup(socket, "start", "beta");
        assertThat(start.code()).as(start.toString()).isZero();
        // Wait for the guest's init, which handles the ACPI button; input sent before it is ready is lost.
        fixture.readyConsole("beta", Duration.ofSeconds(90)).close();
        CliRun stop = qsup(socket, "stop", "beta");
        assertThat(stop.code()).as(stop.toString()).isZero();
        assertThat(stop.out()).startsWith("beta: stopped by powerdown after ");
    }

    @Test
    @Order(5)
    void killAndRestartWithNewPid() throws Exception {
        long before = json(qsup(socket, "status", "alpha", "--json")).path("pid").asLong();
        CliRun restart = qsup(socket, "restart", "alpha");
        assertThat(restart.out()).as(restart.toString()).isEqualTo("alpha: running\n");
        long after = json(qsup(socket, "status", "alpha", "--json")).path("pid").asLong();
        assertThat(after).isPositive().isNotEqualTo(before);

        CliRun kill = qsup(socket, "kill", "alpha");
        assertThat(kill.out()).as(kill.toString()).startsWith("alpha: stopped");
        // an operator kill is an operator stop: no restart follows
        Thread.sleep(2000);
        assertThat(json(qsup(socket, "status", "alpha", "--json")).path("state").asText()).isEqualTo("stopped");
        assertThat(qsup(socket, "start", "alpha").out()).isEqualTo("alpha: running\n");
    }

    @Test
    @Order(6)
    void allFlagAndUsageErrors() throws Exception {
        CliRun both = qsup(socket, "start", "alpha", "--all");
        assertThat(both.code()).isEqualTo(ExitCodes.USAGE);
        CliRun none = qsup(socket, "stop");
        assertThat(none.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(none.err()).contains("name at least one VM");

        JsonNode results = json(qsup(socket, "reset-failed", "--all", "--json"));
        assertThat(results).hasSize(2);
    }

    @Test
    @Order(7)
    void eventsShowTheHistory() throws Exception {
        CliRun events = qsup(socket, "events", "alpha");
        assertThat(events.code()).as(events.toString()).isZero();
        assertThat(events.out()).contains("alpha VM_STATE_CHANGED starting -> running")
                .contains("VM_STATE_CHANGED running -> stopping");
        assertThat(events.out()).doesNotContain(" beta ");

        // Human times are the host's local time; JSON keeps the daemon's seconds and microseconds.
        java.util.TimeZone utc = java.util.TimeZone.getDefault();
        try {
            java.util.TimeZone.setDefault(java.util.TimeZone.getTimeZone("Pacific/Chatham")); // +12:45, or +13:45
            String first = qsup(socket, "events", "alpha").out().lines().findFirst().orElseThrow();
            JsonNode wire = JSON.readTree(qsup(socket, "events", "alpha", "--json").out().lines().findFirst()
                    .orElseThrow());
            java.time.ZonedDateTime local = java.time.Instant.ofEpochSecond(
                    wire.path("timestamp").path("seconds").asLong(),
                    wire.path("timestamp").path("microseconds").asLong() * 1000)
                    .atZone(java.time.ZoneId.of("Pacific/Chatham"));
            assertThat(first).startsWith(java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS")
                    .format(local) + " alpha VM_STATE_CHANGED");
            assertThat(qsup(socket, "status", "alpha").out().lines().findFirst().orElseThrow())
                    .matches("alpha: running since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d "
                            + "\\((just now|\\d+[smhd]\\S* ago)\\)");
        } finally {
            java.util.TimeZone.setDefault(utc);
        }

        CliRun jsonEvents = qsup(socket, "events", "beta", "--json", "--type", "VM_STATE_CHANGED");
        for (String line : jsonEvents.out().split("\n")) {
            JsonNode e = JSON.readTree(line);
            assertThat(e.path("event").asText()).isEqualTo("VM_STATE_CHANGED");
            assertThat(e.path("data").path("vm").asText()).isEqualTo("beta");
        }
    }

    @Test
    @Order(8)
    void logsShowTheSerialConsole() throws Exception {
        io.qsup.testing.GuestConsole.connect(fixture.settings().pathsFor("alpha").consoleSocket(),
                Duration.ofSeconds(10)).close();
        CliRun serial = qsupAwait(() -> qsup(socket, "logs", "alpha", "--serial"),
                r -> r.out().contains("QSUP-GUEST READY"));
        assertThat(serial.out()).contains("QSUP-GUEST READY");
        CliRun qemuLog = qsup(socket, "logs", "alpha");
        assertThat(qemuLog.code()).as(qemuLog.toString()).isZero();
    }

    @Test
    @Order(9)
    void reloadReportsTheDifference() throws Exception {
        fixture.writeVm("gamma", "autostart: false");
        CliRun reload = qsup(socket, "reload");
        assertThat(reload.out()).as(reload.toString()).contains("added:   gamma");
        Files.writeString(fixture.base.resolve("vms/broken.yaml"), "memory: [oops\n");
        CliRun broken = qsup(socket, "reload", "--json");
        assertThat(broken.code()).isEqualTo(ExitCodes.ERROR);
        assertThat(JSON.readTree(broken.out()).path("errors").get(0).asText()).contains("broken.yaml:");
        Files.delete(fixture.base.resolve("vms/broken.yaml"));
    }

    @Test
    @Order(10)
    void anUnreachableDaemonSaysHowToStartIt() {
        CliRun r = qsup(Path.of("/tmp/qsup-nothing-here.sock"), "list");
        assertThat(r.code()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(r.err()).contains("cannot reach qsupd at /tmp/qsup-nothing-here.sock")
                .contains("qsupd --config");
    }

    @Test
    @Order(11)
    void eventsFollowPrintsNewEventsUntilTheDaemonGoesAway() throws Exception {
        java.io.StringWriter out = new java.io.StringWriter();
        var cl = QsupMain.commandLine();
        cl.setOut(new java.io.PrintWriter(out, true));
        cl.setErr(new java.io.PrintWriter(new java.io.StringWriter(), true));
        java.util.concurrent.CompletableFuture<Integer> exit = new java.util.concurrent.CompletableFuture<>();
        Thread follower = Thread.ofPlatform().start(() -> exit.complete(
                cl.execute("events", "--follow", "beta", "--type", "VM_STATE_CHANGED", "--socket", socket.toString())));
        try {
            Thread.sleep(1000); // let it subscribe and print the history
            int historyEnd = out.toString().length();
            assertThat(qsup(socket, "start", "beta").code()).isZero();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!out.toString().substring(historyEnd).contains("starting -> running")
                    && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertThat(out.toString().substring(historyEnd))
                    .contains("beta VM_STATE_CHANGED stopped -> starting (operator-start)")
                    .contains("beta VM_STATE_CHANGED starting -> running");
            daemon.closeControlSocket(); // the daemon's socket goes away: the follower says so and exits
            assertThat(exit.get(30, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(ExitCodes.UNREACHABLE);
        } finally {
            follower.join(5000);
        }
    }

    private static CliRun qsupAwait(java.util.function.Supplier<CliRun> run, java.util.function.Predicate<CliRun> ok)
            throws InterruptedException {
        CliRun r = run.get();
        for (int i = 0; i < 60 && !ok.test(r); i++) {
            Thread.sleep(500);
            r = run.get();
        }
        return r;
    }
}
