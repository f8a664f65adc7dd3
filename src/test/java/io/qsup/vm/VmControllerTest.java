package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpFraming;
import io.qsup.testing.FakeQmpServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Adoption and liveness of one VM: orphans, stale pidfiles, a monitor that goes silent. */
class VmControllerTest {
    private final ProcessInspector inspector = new ProcessInspector();
    private final List<AutoCloseable> closers = new ArrayList<>();
    private final List<Process> children = new ArrayList<>();
    private Path dir;

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory(Path.of("/tmp"), "vc");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : closers.reversed()) {
            c.close();
        }
        for (Process p : children) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        OptionalLong qemu = ProcessInspector.readPidFile(dir.resolve("qemu.pid"));
        if (qemu.isPresent() && inspector.cmdline(qemu.getAsLong()).contains(dir.resolve("qemu.pid").toString())) {
            inspector.signal(qemu.getAsLong(), ProcessInspector.Signal.KILL);
            inspector.awaitDeath(qemu.getAsLong(), Duration.ofSeconds(10), 20);
        }
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private VmSpec spec(String name, Path qmpSocket) {
        List<String> argv = List.of("qemu-system-x86_64", "-name", "guest=" + name, "-accel", "tcg", "-nodefaults",
                "-display", "none", "-m", "32", "-qmp", "unix:" + qmpSocket + ",server=on,wait=off",
                "-daemonize", "-pidfile", dir.resolve("qemu.pid").toString());
        return new VmSpec(name, argv, dir, qmpSocket, dir.resolve("qemu.pid"), dir.resolve("qemu.log"),
                Duration.ofSeconds(5), false, Duration.ofMillis(300), Duration.ofMillis(500), Duration.ofSeconds(30),
                null, Duration.ofSeconds(30), false, null, Duration.ofMinutes(5));
    }

    private VmController controller(VmSpec spec) {
        return controller(spec, Supervision.NONE);
    }

    private VmController controller(VmSpec spec, Supervision supervision) {
        VmController c = new VmController(spec, supervision, new QemuLauncher(), inspector);
        closers.add(c);
        return c;
    }

    /** A supervision for a VM that should be running (operator intent started), which never restarts it. */
    private static final Supervision MEANT_TO_RUN = new Supervision() {
        @Override
        public boolean expectedRunning(String vm) {
            return true;
        }

        @Override
        public void onGoodStart(String vm) {}

        @Override
        public Decision onExit(String vm, ExitCause cause) {
            return new Decision.Stop("not restarted in this test");
        }
    };

    @Test
    void monitorHeldBySomeoneElseMakesAnOrphanThatIsNeverKilledAndComesBack() throws Exception {
        VmSpec spec = spec("orph", dir.resolve("qmp.sock"));
        QemuLauncher.Result r = new QemuLauncher().run("orph", spec.argv(), null, Duration.ofSeconds(30));
        assertThat(r.ok()).as(r.output()).isTrue();
        long pid = ProcessInspector.readPidFile(spec.pidFile()).orElseThrow();
        // QEMU serves one monitor client at a time: while we hold it, qsupd cannot get in
        QmpClient holder = QmpClient.connect(new QmpEndpoint.Unix(spec.qmpSocket()));

        VmController c = controller(spec);
        assertThat(c.adopt().get(30, TimeUnit.SECONDS)).isEqualTo(VmController.AdoptOutcome.ORPHANED);
        assertThat(c.state()).isEqualTo(VmState.ORPHANED);
        assertThat(c.stateMachine().lastCause()).isEqualTo(Cause.MONITOR_LOST);
        assertThat(c.stateMachine().lastDetail()).contains("pid " + pid).contains("QMP");
        Thread.sleep(1000);
        assertThat(inspector.isAlive(pid)).as("an orphan is never killed").isTrue();

        holder.close();
        assertThat(c.await(s -> s == VmState.RUNNING, Duration.ofSeconds(30))).isEqualTo(VmState.RUNNING);
        assertThat(c.stateMachine().lastCause()).isEqualTo(Cause.MONITOR_REGAINED);
        assertThat(c.pid()).isEqualTo(pid);
        assertThat(c.qmp("query-name", null, Duration.ofSeconds(5)).path("name").asText())
                .as("operator QMP passthrough on the regained session").isEqualTo("orph");

        StopResult stop = c.stop(true, Duration.ofSeconds(5), Cause.OPERATOR_STOP, "test").get(30, TimeUnit.SECONDS);
        assertThat(stop.rung()).isEqualTo(StopRung.QUIT);
        assertThat(inspector.isAlive(pid)).isFalse();
        assertThat(spec.pidFile()).doesNotExist();
    }

    @Test
    void pausedQemuIsAdoptedAsPausedAndResumes() throws Exception {
        VmSpec spec = spec("held", dir.resolve("qmp.sock"));
        List<String> argv = new ArrayList<>(spec.argv());
        argv.add("-S"); // vCPUs stopped from the start
        QemuLauncher.Result r = new QemuLauncher().run("held", argv, null, Duration.ofSeconds(30));
        assertThat(r.ok()).as(r.output()).isTrue();
        long pid = ProcessInspector.readPidFile(spec.pidFile()).orElseThrow();

        VmController c = controller(spec);
        assertThat(c.adopt().get(30, TimeUnit.SECONDS)).isEqualTo(VmController.AdoptOutcome.ADOPTED);
        assertThat(c.state()).isEqualTo(VmState.PAUSED);
        assertThat(c.stateMachine().lastCause()).isEqualTo(Cause.ADOPTED);
        assertThat(c.stateMachine().lastDetail()).isEqualTo("pid " + pid);
        assertThat(c.resume().get(10, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
        assertThat(c.pause().get(10, TimeUnit.SECONDS)).isEqualTo(VmState.PAUSED);
        assertThat(c.pid()).isEqualTo(pid);
    }

    @Test
    void launchThatNeverReachesQmpIsUndoneAndTheSpawnedQemuKilled() throws Exception {
        VmSpec good = spec("lost", dir.resolve("qmp.sock"));
        // QEMU listens on one path, qsupd waits on another: the wait-qmp step fails after QEMU was spawned
        VmSpec spec = new VmSpec("lost", good.argv(), dir, dir.resolve("elsewhere.sock"), good.pidFile(),
                good.qemuLog(), good.stopTimeout(), false, good.probeInterval(), good.probeTimeout(),
                good.launchTimeout(), null, Duration.ofSeconds(30), false, null,
                Duration.ofMinutes(5));
        VmController c = controller(spec);
        assertThat(c.start(Cause.OPERATOR_START, "test").get(60, TimeUnit.SECONDS)).as("a launch failure is a failure")
                .isEqualTo(VmState.FAILED);
        assertThat(c.launchError()).contains("wait-qmp").contains("elsewhere.sock");
        assertThat(c.stateMachine().lastExitCause().kind()).isEqualTo(ExitCause.Kind.LAUNCH_FAILED);
        assertThat(spec.pidFile()).as("the spawn step was undone").doesNotExist();
        assertThat(c.pid()).isEqualTo(-1);
        assertThat(Files.readString(spec.qemuLog())).contains("launcher exit 0");
        // the QEMU that did start was killed: its own QMP socket refuses connections
        org.assertj.core.api.Assertions.assertThatThrownBy(
                () -> QmpClient.connect(new QmpEndpoint.Unix(dir.resolve("qmp.sock"))).close())
                .isInstanceOf(io.qsup.qmp.QmpException.class);
    }

    @Test
    void stalePidfileOfAVmNotMeantToRunIsCleanedUpWithoutACrash() throws Exception {
        VmSpec spec = spec("idle", dir.resolve("qmp.sock"));
        Files.writeString(spec.pidFile(), "999999\n"); // no such process
        VmController c = controller(spec); // never started, autostart false: not meant to run
        List<VmEvent> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        c.stateMachine().addListener(events::add);
        assertThat(c.adopt().get(30, TimeUnit.SECONDS)).isEqualTo(VmController.AdoptOutcome.NOT_RUNNING);
        assertThat(spec.pidFile()).doesNotExist();
        assertThat(c.state()).isEqualTo(VmState.STOPPED);
        assertThat(c.stateMachine().lastExitCause()).as("no crash while qsupd was down is made up").isNull();
        assertThat(events).noneMatch(e -> e instanceof VmEvent.StateChange sc && sc.to() == VmState.BACKOFF);
    }

    @Test
    void pidfileNamingAnotherProgramIsStaleAndThatProgramIsLeftAlone() throws Exception {
        Process other = new ProcessBuilder("sleep", "600").start();
        children.add(other);
        VmSpec spec = spec("stale", dir.resolve("qmp.sock"));
        Files.writeString(spec.pidFile(), other.pid() + "\n");
        Files.writeString(spec.qmpSocket(), ""); // a leftover socket file

        VmController c = controller(spec, MEANT_TO_RUN);
        assertThat(c.adopt().get(30, TimeUnit.SECONDS)).isEqualTo(VmController.AdoptOutcome.STALE);
        assertThat(inspector.isAlive(other.pid())).as("a reused pid is never signalled").isTrue();
        assertThat(spec.pidFile()).doesNotExist();
        assertThat(spec.qmpSocket()).doesNotExist();
        assertThat(c.state()).isEqualTo(VmState.STOPPED);
        assertThat(c.stateMachine().lastExitCause().kind()).isEqualTo(ExitCause.Kind.CRASHED);
        assertThat(c.stateMachine().lastExitCause().detail()).contains("while qsupd was down");
    }

    private static final ObjectNode RUNNING = QmpFraming.mapper().createObjectNode().put("status", "running")
            .put("running", true).put("singlestep", false);

    /**
     * A stand-in for the QEMU of {@code spec}: a shell running {@code script} whose argv names the VM and its pidfile,
     * as a QEMU's would, written to the pidfile and killed at the end. Its loop sleeps a second at a time, so nothing
     * of it outlives a SIGKILL by more than that second.
     */
    private Process standIn(VmSpec spec, String script) throws java.io.IOException {
        Process stand = new ProcessBuilder("sh", "-c", script, "qemu-system-x86_64", "-name", "guest=" + spec.name(),
                "-pidfile", spec.pidFile().toString()).start();
        children.add(stand);
        Files.writeString(spec.pidFile(), stand.pid() + "\n");
        return stand;
    }

    @Test
    void monitorThatStopsAnsweringIsFlaggedUnresponsiveAndTheProcessIsLeftAlone() throws Exception {
        FakeQmpServer fake = FakeQmpServer.start(FakeQmpServer.script().handshake().expect("query-status")
                .reply(RUNNING).thenSilence());
        closers.add(fake);
        VmSpec spec = spec("mute", fake.socket());
        // a stand-in process whose argv names this VM and its pidfile, as a QEMU's would
        Process stand = standIn(spec, "while :; do sleep 1; done");

        VmController c = controller(spec);
        List<VmEvent> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        c.stateMachine().addListener(events::add);
        assertThat(c.adopt().get(30, TimeUnit.SECONDS)).isEqualTo(VmController.AdoptOutcome.ADOPTED);
        assertThat(c.state()).isEqualTo(VmState.RUNNING);

        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!c.stateMachine().unresponsive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertThat(c.stateMachine().unresponsive()).isTrue();
        assertThat(events).anyMatch(e -> e instanceof VmEvent.ResponsivenessChange rc && rc.unresponsive()
                && rc.detail().contains("500 ms"));
        assertThat(c.state()).as("hang-action report keeps the state").isEqualTo(VmState.RUNNING);
        assertThat(stand.isAlive()).isTrue();
        assertThat(fake.receivedCommands()).contains("query-status");
    }

    @Test
    void qemuThatEndsWhileItsMonitorStaysOpenAndSilentIsAnExitNotARunningVm() throws Exception {
        // the connection stays open after the stand-in dies: the EOF qsupd waits for never comes
        FakeQmpServer fake = FakeQmpServer.start(FakeQmpServer.script().handshake().expect("query-status")
                .reply(RUNNING).thenSilence());
        closers.add(fake);
        VmSpec spec = spec("gone", fake.socket());
        Process stand = standIn(spec, "while :; do sleep 1; done");

        VmController c = controller(spec, MEANT_TO_RUN);
        assertThat(c.adopt().get(30, TimeUnit.SECONDS)).isEqualTo(VmController.AdoptOutcome.ADOPTED);
        assertThat(c.state()).isEqualTo(VmState.RUNNING);
        stand.destroyForcibly();
        assertThat(stand.waitFor(10, TimeUnit.SECONDS)).isTrue();

        assertThat(c.await(st -> st == VmState.STOPPED, Duration.ofSeconds(20))).isEqualTo(VmState.STOPPED);
        assertThat(c.stateMachine().lastExitCause().describe()).startsWith("crashed: ")
                .contains("pid " + stand.pid() + " ended while its QMP connection stayed open and silent");
        assertThat(fake.receivedCommands()).contains("query-status");
    }

    @Test
    void qemuThatClosesItsMonitorAfterShutdownButNeverExitsIsEndedAsTheGuestsShutdown() throws Exception {
        ObjectNode shutdown = QmpFraming.mapper().createObjectNode().put("guest", true).put("reason", "guest-shutdown");
        FakeQmpServer fake = FakeQmpServer.start(FakeQmpServer.script().handshake().expect("query-status")
                .reply(RUNNING).sleep(Duration.ofMillis(300)).event("SHUTDOWN", shutdown).disconnect());
        closers.add(fake);
        VmSpec spec = spec("wedged", fake.socket());
        // a stand-in that, like a QEMU hung in its exit, ignores SIGTERM; only SIGKILL ends it
        Process stand = standIn(spec, "trap '' TERM; while :; do sleep 1; done");

        VmController c = controller(spec, MEANT_TO_RUN);
        assertThat(c.adopt().get(30, TimeUnit.SECONDS)).isEqualTo(VmController.AdoptOutcome.ADOPTED);

        assertThat(c.await(st -> st == VmState.STOPPED, Duration.ofSeconds(30))).isEqualTo(VmState.STOPPED);
        assertThat(stand.waitFor(5, TimeUnit.SECONDS)).as("qsupd ended it").isTrue();
        assertThat(c.stateMachine().lastExitCause().describe()).startsWith("guest-shutdown: ")
                .contains("closed its monitor, but had not exited 5 s later; qsupd ended it");
        assertThat(c.stateMachine().lastExitCause().kind()).isEqualTo(ExitCause.Kind.GUEST_SHUTDOWN);
    }
}
