package io.qsup.daemon;

import io.qsup.vm.LoopHealth;
import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.cli.QsupMain;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.GuestConsole;
import io.qsup.testing.NotifySocket;
import io.qsup.testing.QsupdProcess;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The systemd watchdog of a real qsupd, received on a test-owned {@code NOTIFY_SOCKET}: {@code WATCHDOG=1} at half of
 * {@code WATCHDOG_USEC} while its loops are healthy, none once one VM's event thread is frozen (through the test-only
 * hook of {@link LoopHealth}), none when {@code WATCHDOG_PID} names another process.
 */
class QsupdWatchdogTest {
    private static final Duration BOOT = Duration.ofSeconds(90);
    /** WATCHDOG_USEC of most of these tests: pings every 8 s, and a loop may be silent that long (a loaded host). */
    private static final Duration INTERVAL = Duration.ofSeconds(16);
    private static final Duration HALF = INTERVAL.dividedBy(2);

    private SupervisorFixture fx;
    private NotifySocket systemd;
    private final List<AutoCloseable> started = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
        systemd = new NotifySocket();
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : started) {
            c.close();
        }
        systemd.close();
        fx.close();
    }

    @Test
    void pingsAtHalfTheIntervalWhileTwoRunningVmsAndTheControlSocketAreHealthy() throws Exception {
        fx.writeVm("a", "guest-agent: false");
        fx.writeVm("b", "guest-agent: false");
        QsupdProcess qsupd = start(Map.of(), List.of());
        systemd.await(m -> m.equals("STATUS=2 running, 0 failed, 0 unresponsive"), BOOT, qsupd::log);
        long since = System.nanoTime();

        List<Long> pings = awaitPings(since, 4, INTERVAL.multipliedBy(3), qsupd);
        for (int i = 1; i < pings.size(); i++) {
            Duration gap = Duration.ofNanos(pings.get(i) - pings.get(i - 1));
            assertThat(gap).as("gap between WATCHDOG=1 %d and %d; all: %s", i - 1, i, systemd.texts())
                    .isBetween(HALF.minusMillis(500), HALF.multipliedBy(3).dividedBy(2));
        }
        List<String> texts = systemd.texts();
        assertThat(texts.indexOf("WATCHDOG=1")).as("no ping before READY=1").isGreaterThan(
                texts.indexOf("READY=1\nMAINPID=" + qsupd.pid()));
        assertThat(qsupd.log()).contains("watchdog: WATCHDOG=1 every 8000 ms").doesNotContain("made no progress");
    }

    @Test
    void freezingOneVmsEventThreadStopsThePingsWithinAnIntervalAndTheLogNamesIt() throws Exception {
        fx.writeVm("a", "guest-agent: false");
        fx.writeVm("b", "guest-agent: false");
        Path freeze = fx.base.resolve("freeze");
        QsupdProcess qsupd = start(Map.of(), List.of("-D" + LoopHealth.TEST_FREEZE_PROPERTY + "=" + freeze));
        systemd.await(m -> m.equals("STATUS=2 running, 0 failed, 0 unresponsive"), BOOT, qsupd::log);
        awaitPings(System.nanoTime(), 2, INTERVAL.multipliedBy(2), qsupd);

        Files.writeString(freeze, "vm-ops a\n");
        long frozenAt = System.nanoTime();
        qsupd.awaitLog("watchdog: vm-ops a made no progress", INTERVAL.multipliedBy(2));
        systemd.await(m -> m.equals("STATUS=2 running, 0 failed, 0 unresponsive; stuck: vm-ops a"), INTERVAL,
                qsupd::log);
        Thread.sleep(Duration.ofNanos(Math.max(0,
                frozenAt + INTERVAL.multipliedBy(2).plusSeconds(1).toNanos() - System.nanoTime())));
        long cutoff = frozenAt + INTERVAL.plusSeconds(1).toNanos();
        assertThat(pingsAfter(cutoff)).as("WATCHDOG=1 more than an interval after the freeze; log:%n%s", qsupd.log())
                .isEmpty();
        String log = qsupd.log();
        assertThat(log).doesNotContain("vm-ops b made no progress").doesNotContain("vm-monitor a made no progress")
                .doesNotContain("control-accept made no progress");
        assertThat(log.lines().filter(l -> l.contains("vm-ops a made no progress")).count())
                .as("the stuck loop is named once").isEqualTo(1);

        Files.delete(freeze);
        long thawedAt = System.nanoTime();
        qsupd.awaitLog("watchdog: vm-ops a makes progress again", INTERVAL);
        awaitPings(thawedAt, 1, INTERVAL, qsupd);
    }

    @Test
    void watchdogPidOfAnotherProcessMeansNoPingsAndOurOwnPidMeansPings() throws Exception {
        Duration fast = Duration.ofSeconds(1);
        String other = Long.toString(ProcessHandle.current().pid()); // the test JVM: alive, and not qsupd
        QsupdProcess qsupd = start(Map.of("WATCHDOG_USEC", Long.toString(fast.toNanos() / 1_000),
                "WATCHDOG_PID", other), List.of());
        systemd.await(m -> m.startsWith("READY=1"), BOOT, qsupd::log);
        Thread.sleep(fast.multipliedBy(4).toMillis());
        assertThat(systemd.texts()).doesNotContain("WATCHDOG=1");
        assertThat(qsupd.log()).contains("WATCHDOG_PID=" + other + " is not qsupd's pid " + qsupd.pid());
        qsupd.terminate(Duration.ofSeconds(30));

        // control: the same qsupd told WATCHDOG_PID=its own pid (sh sets it to $$, then execs the JVM in its place)
        Path log = fx.base.resolve("qsupd-own-pid.log");
        List<String> cmd = new ArrayList<>(List.of("/bin/sh", "-c", "WATCHDOG_PID=$$ exec \"$@\"", "sh",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), QsupdMain.class.getName(), "--config",
                fx.settingsFile.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("NOTIFY_SOCKET", systemd.address());
        pb.environment().put("WATCHDOG_USEC", Long.toString(fast.toNanos() / 1_000));
        Process own = pb.start();
        started.add(() -> {
            own.destroyForcibly();
            own.waitFor(10, TimeUnit.SECONDS);
        });
        int before = systemd.texts().size();
        long deadline = System.nanoTime() + BOOT.toNanos();
        while (since(before).stream().filter("WATCHDOG=1"::equals).count() < 3 && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertThat(since(before)).as("log:%n%s", Files.readString(log))
                .contains("READY=1\nMAINPID=" + own.pid()).filteredOn("WATCHDOG=1"::equals)
                .hasSizeGreaterThanOrEqualTo(3);
    }

    @Test
    void aLongStopLadderOnAnEventThreadIsBusyNotStuck() throws Exception {
        // the guest ignores the power button, so the ladder presses it for most of its 30 s: longer than the 8 s a
        // loop may stay silent, yet the ops thread is making progress all along
        fx.writeVm("deaf", "guest-agent: false\nstop-timeout: 30s");
        QsupdProcess qsupd = start(Map.of(), List.of());
        systemd.await(m -> m.equals("STATUS=1 running, 0 failed, 0 unresponsive"), BOOT, qsupd::log);
        try (GuestConsole c = fx.readyConsole("deaf", BOOT)) {
            c.command("ignore-acpi", Duration.ofSeconds(30));
        }
        Path socket = fx.base.resolve("run/qsupd.sock");
        assertThat(qsup(socket, "list")).startsWith("exit 0:");
        long stopAt = System.nanoTime();
        CompletableFuture<String> stop = CompletableFuture.supplyAsync(() -> qsup(socket, "stop", "deaf"));
        String out = stop.get(60, TimeUnit.SECONDS);
        long stoppedAt = System.nanoTime();
        assertThat(out).startsWith("exit 0:");
        assertThat(Duration.ofNanos(stoppedAt - stopAt)).as("the ladder ran long: %s", out)
                .isGreaterThan(INTERVAL);
        assertThat(qsupd.log()).as("the stop went past powerdown; qsup said %s", out).contains("rung quit");
        List<Long> pings = systemd.messages().stream().filter(m -> m.text().equals("WATCHDOG=1"))
                .map(NotifySocket.Message::nanos).filter(t -> t > stopAt && t < stoppedAt).toList();
        assertThat(pings.size()).as("pings during a %d ms ladder; log:%n%s", (stoppedAt - stopAt) / 1_000_000,
                qsupd.log()).isGreaterThanOrEqualTo((int) ((stoppedAt - stopAt) / HALF.toNanos()) - 1);
        assertThat(qsupd.log()).doesNotContain("made no progress");
    }

    /** qsupd with the test's notify socket and WATCHDOG_USEC of {@link #INTERVAL}, unless {@code env} overrides. */
    private QsupdProcess start(Map<String, String> env, List<String> jvmArgs) throws Exception {
        Map<String, String> all = new java.util.HashMap<>(Map.of("NOTIFY_SOCKET", systemd.address(),
                "WATCHDOG_USEC", Long.toString(INTERVAL.toNanos() / 1_000)));
        all.putAll(env);
        QsupdProcess p = QsupdProcess.start(fx.settingsFile, fx.base.resolve("qsupd.log"), all, jvmArgs);
        started.add(p);
        return p;
    }

    /** Arrival times of the first {@code n} pings after {@code since}, waiting up to {@code timeout}. */
    private List<Long> awaitPings(long since, int n, Duration timeout, QsupdProcess qsupd) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (pingsAfter(since).size() < n) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(n + " WATCHDOG=1 not received within " + timeout + "; got "
                        + systemd.texts() + "; qsupd log:\n" + qsupd.log());
            }
            Thread.sleep(50);
        }
        return pingsAfter(since).subList(0, n);
    }

    private List<Long> pingsAfter(long since) {
        return systemd.messages().stream().filter(m -> m.text().equals("WATCHDOG=1") && m.nanos() > since)
                .map(NotifySocket.Message::nanos).toList();
    }

    private static String qsup(Path socket, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--socket", socket.toString()));
        StringWriter out = new StringWriter();
        var cl = QsupMain.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(out, true));
        int exit = cl.execute(all.toArray(String[]::new));
        return "exit " + exit + ": " + out;
    }

    /**
     * The notify messages from the {@code first}-th on, from one snapshot: sizing a sublist by a second call raced with
     * a message arriving between the two (IndexOutOfBoundsException in CI).
     */
    private List<String> since(int first) {
        List<String> all = systemd.texts();
        return all.subList(first, all.size());
    }
}
