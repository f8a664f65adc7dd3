package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.HangAction;
import io.qsup.config.VmDefinition;
import io.qsup.config.VmPaths;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.HostFacts;
import io.qsup.testing.GuestConsole;
import io.qsup.testing.TestGuest;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Live migration of the test guest between two QEMUs on this host over loopback TCP, each under its own
 * {@link VmController} with its own run-dir, as two hosts would have: the guest's uptime goes on, the source's QEMU
 * ends, a failed migration leaves the source running with QEMU's reason, and the two QEMUs never run at once.
 */
class LiveMigrationTest {
    private static final String VM = "mig";
    private static final Duration WAIT = Duration.ofSeconds(400);

    private final ProcessInspector inspector = new ProcessInspector();
    private final List<AutoCloseable> closers = new ArrayList<>();
    private Path base;
    private HostFacts facts;

    /** One "host": its own run, state and log dirs, so its QEMU's pidfile and sockets are its own. */
    private record Host(String name, DaemonSettings settings) {}

    @BeforeEach
    void setUp() throws IOException {
        base = Files.createTempDirectory(Path.of("/tmp"), "lm");
        facts = HostFacts.probe("qemu-system-x86_64");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : closers.reversed()) {
            c.close();
        }
        killQemusUnder(base);
        try (Stream<Path> all = Files.walk(base)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Test
    void runningGuestMovesWithItsUptimeTheSourceQemuEndsAndOnlyOneQemuEverRuns() throws Exception {
        Host a = host("a");
        Host b = host("b");
        VmDefinition def = definition("128M");
        VmController src = controller(def, a, Supervision.NONE);
        VmController dst = controller(def, b, Supervision.NONE);
        assertThat(src.start(Cause.OPERATOR_START, "test").get(WAIT.toSeconds(), TimeUnit.SECONDS))
                .isEqualTo(VmState.RUNNING);
        long srcPid = src.pid();
        double before;
        try (GuestConsole console = readyConsole(a)) {
            before = console.uptimeAtLeast(4.0);
        }

        AtMostOneRunning sampler = track(new AtMostOneRunning(src, dst, 20));
        LiveMigration.Outcome o = move(src, dst, incomingArgv(def, b), LiveMigration.Settings.defaults());
        Thread.sleep(300); // a few samples of the target alone
        sampler.close();

        assertThat(o).isInstanceOf(LiveMigration.Outcome.Completed.class);
        assertThat(dst.state()).isEqualTo(VmState.RUNNING);
        assertThat(dst.stateMachine().lastCause()).isEqualTo(Cause.MIGRATED);
        assertThat(dst.qmp("query-status", null, Duration.ofSeconds(5)).path("status").asText()).isEqualTo("running");
        assertThat(src.state()).isEqualTo(VmState.STOPPED);
        assertThat(src.stateMachine().lastCause()).isEqualTo(Cause.MIGRATED);
        assertThat(inspector.isAlive(srcPid)).as("the source QEMU ended").isFalse();
        assertThat(a.settings().pathsFor(VM).pidFile()).doesNotExist();
        assertThat(dst.pid()).isNotEqualTo(srcPid).isPositive();

        try (GuestConsole console = readyConsole(b)) {
            double after = console.uptime(Duration.ofSeconds(30));
            assertThat(after).as("the guest's uptime went on across the migration (a new boot starts near 0)")
                    .isGreaterThanOrEqualTo(before);
        }
        assertThat(sampler.overlaps()).as("both QEMUs running at once").isEmpty();
        assertThat(sampler.runningSamples(0)).as("the sampler saw the source run").isPositive();
        assertThat(sampler.runningSamples(1)).as("the sampler saw the target run").isPositive();
        assertThat(sampler.statuses(1)).as("the target's statuses").startsWith("no-monitor").contains("running");
    }

    @Test
    void migrationToAPortNobodyListensOnFailsWithQemusReasonAndTheSourceRunsOn() throws Exception {
        Host a = host("a");
        VmDefinition def = definition("128M");
        VmController src = controller(def, a, Supervision.NONE);
        src.start(Cause.OPERATOR_START, "test").get(WAIT.toSeconds(), TimeUnit.SECONDS);
        long pid = src.pid();
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }

        LiveMigration.Outcome o = src.migrateOut("tcp:127.0.0.1:" + closed, LiveMigration.Settings.defaults(),
                Cause.MIGRATE, "test").get(WAIT.toSeconds(), TimeUnit.SECONDS);

        assertThat(o).isInstanceOf(LiveMigration.Outcome.Failed.class);
        String reason = ((LiveMigration.Outcome.Failed) o).reason();
        assertThat(reason).contains("tcp:127.0.0.1:" + closed).containsIgnoringCase("refused");
        assertThat(src.state()).isEqualTo(VmState.RUNNING);
        assertThat(src.stateMachine().lastCause()).isEqualTo(Cause.MIGRATION_FAILED);
        assertThat(src.stateMachine().lastDetail()).isEqualTo(reason);
        assertThat(src.pid()).isEqualTo(pid);
        assertThat(src.qmp("query-status", null, Duration.ofSeconds(5)).path("status").asText()).isEqualTo("running");
        try (GuestConsole console = readyConsole(a)) {
            assertThat(console.uptime(Duration.ofSeconds(30))).as("the guest answers").isPositive();
        }
    }

    @Test
    void targetKilledMidwayLeavesTheSourceRunningAndTheTargetIsNotRestarted() throws Exception {
        Host a = host("a");
        Host b = host("b");
        VmDefinition def = definition("128M");
        VmController src = controller(def, a, Supervision.NONE);
        VmController dst = controller(def, b, ALWAYS_RESTART);
        src.start(Cause.OPERATOR_START, "test").get(WAIT.toSeconds(), TimeUnit.SECONDS);
        try (GuestConsole console = readyConsole(a)) {
            console.uptime(Duration.ofSeconds(30));
        }
        AtMostOneRunning sampler = track(new AtMostOneRunning(src, dst, 20));
        LiveMigration.Incoming in = dst.startIncoming(incomingArgv(def, b), "127.0.0.1", Cause.MIGRATE, "test")
                .get(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertThat(dst.state()).isEqualTo(VmState.INCOMING);
        // 256 KiB/s: the guest's 128 MiB take long enough to be caught in the middle
        LiveMigration.Settings slow = new LiveMigration.Settings(Duration.ofMinutes(2), 256 * 1024,
                Duration.ofMillis(300), Duration.ofSeconds(5));
        var outcome = src.migrateOut(in.uri(), slow, Cause.MIGRATE, "test");
        awaitTransferring(src);
        inspector.signal(in.pid(), ProcessInspector.Signal.KILL);

        LiveMigration.Outcome o = outcome.get(WAIT.toSeconds(), TimeUnit.SECONDS);
        sampler.close();
        assertThat(o).isInstanceOf(LiveMigration.Outcome.Failed.class);
        String reason = ((LiveMigration.Outcome.Failed) o).reason();
        assertThat(reason).startsWith("migration to " + in.uri() + " failed: ").doesNotEndWith("failed: ");
        assertThat(src.state()).isEqualTo(VmState.RUNNING);
        assertThat(src.stateMachine().lastCause()).isEqualTo(Cause.MIGRATION_FAILED);
        assertThat(src.qmp("query-status", null, Duration.ofSeconds(5)).path("running").asBoolean()).isTrue();
        try (GuestConsole console = readyConsole(a)) {
            assertThat(console.uptime(Duration.ofSeconds(30))).as("the guest answers at its source").isPositive();
        }

        // the target's end is no exit of the VM: stopped, never a restart that would boot it afresh
        assertThat(dst.await(s -> s == VmState.STOPPED, Duration.ofSeconds(30))).isEqualTo(VmState.STOPPED);
        assertThat(dst.stateMachine().lastCause()).isEqualTo(Cause.MIGRATION_FAILED);
        Thread.sleep(1500); // longer than ALWAYS_RESTART's delay
        assertThat(dst.state()).isEqualTo(VmState.STOPPED);
        assertThat(liveQemus(b)).as("no QEMU of the target host").isEmpty();
        assertThat(sampler.overlaps()).isEmpty();
    }

    @Test
    void aTargetThatWouldShareTheSourcesRunDirIsRefusedAndTheSourceLeftAlone() throws Exception {
        Host a = host("a");
        VmDefinition def = definition("128M");
        VmController src = controller(def, a, Supervision.NONE);
        src.start(Cause.OPERATOR_START, "test").get(WAIT.toSeconds(), TimeUnit.SECONDS);
        long pid = src.pid();
        VmController same = controller(def, a, Supervision.NONE);

        assertThatThrownBy(() -> same.startIncoming(incomingArgv(def, a), "127.0.0.1", Cause.MIGRATE, "test")
                .get(WAIT.toSeconds(), TimeUnit.SECONDS))
                .isInstanceOf(ExecutionException.class).cause().isInstanceOf(VmException.class)
                .hasMessageContaining("already runs as pid " + pid).hasMessageContaining("run-dir of its own");
        assertThat(same.state()).as("neither adopted nor launched").isEqualTo(VmState.STOPPED);
        assertThat(same.pid()).isEqualTo(-1);
        assertThat(liveQemus(a)).containsExactly(pid);
        assertThat(src.state()).isEqualTo(VmState.RUNNING);
        assertThat(src.qmp("query-status", null, Duration.ofSeconds(5)).path("running").asBoolean()).isTrue();
    }

    @Test
    void aTargetCommandLineThatIsNotTheVmsPlusIncomingDeferIsRefused() throws Exception {
        Host b = host("b");
        VmDefinition def = definition("128M");
        VmController dst = controller(def, b, Supervision.NONE);
        List<String> withoutIncoming = ArgvBuilder.build(def, b.settings(), facts);

        assertThatThrownBy(() -> dst.startIncoming(withoutIncoming, "127.0.0.1", Cause.MIGRATE, "test")
                .get(WAIT.toSeconds(), TimeUnit.SECONDS))
                .cause().isInstanceOf(VmException.class).hasMessageContaining("ArgvBuilder.buildIncoming");
        assertThat(dst.state()).isEqualTo(VmState.STOPPED);
        assertThat(liveQemus(b)).isEmpty();
    }

    /** Not a pass/fail figure: prints the median over a few moves of a 128 MiB guest, back and forth. */
    @Test
    @Timeout(value = 15, unit = TimeUnit.MINUTES)
    void migrationTimeOfA128MiBGuest() throws Exception {
        Host a = host("a");
        Host b = host("b");
        VmDefinition def = definition("128M");
        VmController ca = controller(def, a, Supervision.NONE);
        VmController cb = controller(def, b, Supervision.NONE);
        ca.start(Cause.OPERATOR_START, "test").get(WAIT.toSeconds(), TimeUnit.SECONDS);
        try (GuestConsole console = readyConsole(a)) {
            console.uptime(Duration.ofSeconds(30));
        }
        AtMostOneRunning sampler = track(new AtMostOneRunning(ca, cb, 20));
        List<Long> transfer = new ArrayList<>();
        List<Long> handOver = new ArrayList<>();
        List<Long> downtime = new ArrayList<>();
        VmController from = ca;
        VmController to = cb;
        Host toHost = b;
        for (int run = 0; run < 5; run++) {
            long t0 = System.nanoTime();
            LiveMigration.Outcome o = move(from, to, incomingArgv(def, toHost), LiveMigration.Settings.defaults());
            handOver.add((System.nanoTime() - t0) / 1_000_000);
            assertThat(o).isInstanceOf(LiveMigration.Outcome.Completed.class);
            LiveMigration.Outcome.Completed c = (LiveMigration.Outcome.Completed) o;
            transfer.add(c.took().toMillis());
            downtime.add(c.downtime() == null ? -1 : c.downtime().toMillis());
            assertThat(to.state()).isEqualTo(VmState.RUNNING);
            assertThat(from.state()).isEqualTo(VmState.STOPPED);
            VmController t = from;
            from = to;
            to = t;
            toHost = toHost == b ? a : b;
        }
        sampler.close();
        assertThat(sampler.overlaps()).isEmpty();
        System.out.printf("live migration of a 128 MiB TCG guest over loopback: transfer median %d ms %s,"
                        + " whole move (target launch to source gone) median %d ms %s, QEMU downtime median %d ms %s%n",
                median(transfer), transfer, median(handOver), handOver, median(downtime), downtime);
    }

    // ---- the one-host hand-over, in the order the cluster runs it across hosts ----

    /**
     * Target listens, source sends; on completion the target takes over and the source's QEMU is quit; on failure
     * the target is quit and the source runs on.
     */
    private static LiveMigration.Outcome move(VmController from, VmController to, List<String> toArgv,
            LiveMigration.Settings settings) throws Exception {
        LiveMigration.Incoming in = to.startIncoming(toArgv, "127.0.0.1", Cause.MIGRATE, "test")
                .get(WAIT.toSeconds(), TimeUnit.SECONDS);
        LiveMigration.Outcome o = from.migrateOut(in.uri(), settings, Cause.MIGRATE, "test")
                .get(settings.timeout().toSeconds() + 30, TimeUnit.SECONDS);
        if (o instanceof LiveMigration.Outcome.Failed f) {
            to.abortIncoming(f.reason()).get(WAIT.toSeconds(), TimeUnit.SECONDS);
            return o;
        }
        try {
            to.finishIncoming(Duration.ofSeconds(30)).get(WAIT.toSeconds(), TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            from.resumeAfterFailedHandOver(e.getCause().getMessage()).get(WAIT.toSeconds(), TimeUnit.SECONDS);
            return new LiveMigration.Outcome.Failed(e.getCause().getMessage());
        }
        from.finishMigrationOut().get(WAIT.toSeconds(), TimeUnit.SECONDS);
        return o;
    }

    // ---- helpers ----

    /** A supervision that restarts every exit after 200 ms: a target that ends must still not be restarted. */
    private static final Supervision ALWAYS_RESTART = new Supervision() {
        @Override
        public void onGoodStart(String vm) {}

        @Override
        public Decision onExit(String vm, ExitCause cause) {
            return new Decision.Restart(Duration.ofMillis(200), "restart: always (test)");
        }
    };

    private Host host(String name) throws IOException {
        Path h = base.resolve(name);
        Files.createDirectories(h);
        DaemonSettings s = new DaemonSettings(base.resolve("vms"), h.resolve("run/qsupd.sock"), "qsup", h.resolve("run"),
                h.resolve("state"), h.resolve("log"), "qemu-system-x86_64", io.qsup.config.Accel.TCG, 2, "info", null);
        return new Host(name, s);
    }

    private VmDefinition definition(String memory) throws Exception {
        TestGuest guest = TestGuest.get();
        Path vms = base.resolve("vms");
        Files.createDirectories(vms);
        Path f = vms.resolve(VM + ".yaml");
        Files.writeString(f, """
                memory: %s
                machine: q35
                accel: tcg
                kernel: %s
                initrd: %s
                append: "%s"
                """.formatted(memory, guest.kernel(), guest.initrd(), guest.append()), StandardCharsets.UTF_8);
        return ConfigLoader.loadFile(f, host("a").settings(), facts);
    }

    /** The spec a host's supervisor makes of the definition, with that host's paths. */
    private VmSpec spec(VmDefinition d, Host h) {
        VmPaths p = h.settings().pathsFor(d.name());
        return new VmSpec(d.name(), ArgvBuilder.build(d, h.settings(), facts), p.dir(), p.qmpSocket(), p.pidFile(),
                p.qemuLog(), Duration.ofSeconds(10), d.hangAction() == HangAction.RESTART, Duration.ofSeconds(2),
                Duration.ofSeconds(2), Duration.ofSeconds(60), d.guestAgent() ? p.agentSocket() : null,
                d.guestHangAfter(), false, null, d.readyTimeout());
    }

    private List<String> incomingArgv(VmDefinition d, Host h) {
        return ArgvBuilder.buildIncoming(d, h.settings(), facts);
    }

    private VmController controller(VmDefinition d, Host h, Supervision supervision) {
        return track(new VmController(spec(d, h), supervision, new QemuLauncher(), inspector));
    }

    private <T extends AutoCloseable> T track(T c) {
        closers.add(c);
        return c;
    }

    /** The host's guest console, once the guest's init answers on it. */
    private static GuestConsole readyConsole(Host h) {
        GuestConsole c = GuestConsole.connect(h.settings().pathsFor(VM).consoleSocket(), Duration.ofSeconds(30));
        if (c.awaitAnswering(WAIT)) {
            return c;
        }
        c.close();
        throw new IllegalStateException("the guest on host " + h.name() + " did not answer on its console within "
                + WAIT);
    }

    /** Waits until the source's migration is sending pages. */
    private static void awaitTransferring(VmController src) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            var info = src.qmp("query-migrate", null, Duration.ofSeconds(5));
            if (info.path("status").asText().equals("active") && info.path("ram").path("transferred").asLong() > 0) {
                return;
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException("the migration never became active");
    }

    /** Live QEMUs whose argv names this host's run-dir. */
    private List<Long> liveQemus(Host h) throws IOException {
        return qemusMentioning(h.settings().runDir().toString());
    }

    private List<Long> qemusMentioning(String marker) throws IOException {
        List<Long> out = new ArrayList<>();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path p : procs) {
                long pid = Long.parseLong(p.getFileName().toString());
                List<String> argv = inspector.cmdline(pid);
                if (!argv.isEmpty() && argv.getFirst().contains("qemu-system") && inspector.isAlive(pid)
                        && argv.stream().anyMatch(a -> a.contains(marker))) {
                    out.add(pid);
                }
            }
        }
        return out;
    }

    private void killQemusUnder(Path dir) throws Exception {
        for (long pid : qemusMentioning(dir.toString())) {
            inspector.signal(pid, ProcessInspector.Signal.KILL);
            inspector.awaitDeath(pid, Duration.ofSeconds(10), 20);
        }
    }

    private static long median(List<Long> xs) {
        List<Long> s = xs.stream().sorted().toList();
        return s.get(s.size() / 2);
    }
}
