package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.config.DaemonSettings;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.ProcessInspector;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * qsupd as a real child process: {@code kill -9} of the daemon leaves the VMs healthy, and the next qsupd adopts them
 * with the same pids and no restart; a VM the operator stopped stays stopped; SIGTERM leaves VMs running;
 * {@code --shutdown-all} stops them all.
 */
class QsupdAdoptionTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private final ProcessInspector inspector = new ProcessInspector();
    private final List<Process> daemons = new ArrayList<>();
    private SupervisorFixture fx;
    private Path hookLog;
    private Path hook;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(4);
        hookLog = fx.base.resolve("hook.log");
        hook = fx.base.resolve("hook.sh");
        Files.writeString(hook, "#!/bin/sh\necho \"$QSUP_VM $QSUP_OLD_STATE $QSUP_NEW_STATE $QSUP_CAUSE $QSUP_DETAIL\" >> " + hookLog
                + "\n");
        Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : daemons) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        fx.close();
    }

    @Test
    void killedDaemonIsReplacedAndTheNewOneAdoptsEveryVmUntouched() throws Exception {
        for (String vm : List.of("a", "b", "c", "d")) {
            fx.writeVm(vm, "restart: always");
        }
        // the operator started and stopped d earlier (in process: the control socket is not part of this test)
        Supervisor operator = fx.supervisor(SupervisorFixture.fastProbe());
        operator.loadInitial();
        operator.start("d").get(60, TimeUnit.SECONDS);
        operator.stop("d", true, Duration.ofSeconds(5)).get(30, TimeUnit.SECONDS);
        operator.close();

        // first qsupd launches a, b and c itself; d stays stopped
        Process q1 = startQsupd("qsupd1.log");
        awaitHookLines(l -> l.matches("[abc] starting running launched pid \\d+"), 3);
        Map<String, Long> pids = new TreeMap<>();
        DaemonSettings settings = fx.settings();
        for (String vm : List.of("a", "b", "c")) {
            pids.put(vm, ProcessInspector.readPidFile(settings.pathsFor(vm).pidFile()).orElseThrow());
        }
        q1.destroyForcibly(); // kill -9
        assertThat(q1.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(q1.exitValue()).isEqualTo(137);
        Thread.sleep(500);
        pids.values().forEach(p -> assertThat(inspector.isAlive(p)).as("QEMU %d after kill -9 of qsupd", p).isTrue());
        assertThat(Files.readAllLines(hookLog)).as("d only had its adoption look for a QEMU")
                .allMatch(l -> !l.startsWith("d ") || l.equals("d adopting stopped not-running no QEMU of this VM is running"));

        Files.delete(hookLog);
        Process q2 = startQsupd("qsupd2.log");
        List<String> lines = awaitHookLines(l -> l.contains("running adopted pid"), 3);
        for (Map.Entry<String, Long> e : pids.entrySet()) {
            assertThat(lines).contains(e.getKey() + " adopting running adopted pid " + e.getValue());
        }
        // SIGTERM: qsupd exits 0 and leaves the VMs alone
        q2.destroy();
        assertThat(q2.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(q2.exitValue()).isZero();
        List<String> all = Files.readAllLines(hookLog);
        assertThat(all).as("no start, no stop, no restart by the new qsupd").noneMatch(l -> l.contains("starting")
                || l.contains("stopping") || l.contains("backoff"));
        assertThat(all).as("d was stopped by the operator and stays stopped")
                .allMatch(l -> !l.startsWith("d ") || l.equals("d adopting stopped not-running no QEMU of this VM is running"));

        for (Map.Entry<String, Long> e : pids.entrySet()) {
            assertThat(inspector.isAlive(e.getValue())).isTrue();
            try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(settings.pathsFor(e.getKey()).qmpSocket()))) {
                assertThat(c.queryStatus().status()).as("VM %s answers QMP", e.getKey()).isEqualTo("running");
            }
        }
        assertThat(Files.exists(settings.pathsFor("d").pidFile())).isFalse();

        // host shutdown: every VM stopped in parallel with its ladder
        Process down = new ProcessBuilder(javaCommand("--shutdown-all"))
                .redirectErrorStream(true).redirectOutput(fx.base.resolve("shutdown-all.log").toFile()).start();
        daemons.add(down);
        assertThat(down.waitFor(120, TimeUnit.SECONDS)).isTrue();
        String out = Files.readString(fx.base.resolve("shutdown-all.log"));
        assertThat(down.exitValue()).as(out).isZero();
        assertThat(out).contains("a: stopped at rung powerdown", "b: stopped at rung powerdown",
                "c: stopped at rung powerdown");
        pids.values().forEach(p -> assertThat(inspector.isAlive(p)).isFalse());
    }

    @Test
    void secondDaemonOnTheSameRunDirIsRefused() throws Exception {
        Process q1 = startQsupd("qsupd1.log");
        awaitLog("qsupd1.log", "qsupd ready");
        Process q2 = new ProcessBuilder(javaCommand()).redirectErrorStream(true)
                .redirectOutput(fx.base.resolve("qsupd2.log").toFile()).start();
        daemons.add(q2);
        assertThat(q2.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(q2.exitValue()).isEqualTo(1);
        assertThat(Files.readString(fx.base.resolve("qsupd2.log")))
                .contains("another qsupd (pid " + q1.pid() + ")");
    }

    @Test
    void brokenSettingsFileExitsWithConfigErrorNamingTheLine() throws Exception {
        Files.writeString(fx.settingsFile, "vms-dir: vms\nmax-parallel-starts: lots\n");
        Process q = new ProcessBuilder(javaCommand()).redirectErrorStream(true)
                .redirectOutput(fx.base.resolve("bad.log").toFile()).start();
        daemons.add(q);
        assertThat(q.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(q.exitValue()).isEqualTo(QsupdMain.EXIT_CONFIG);
        assertThat(Files.readString(fx.base.resolve("bad.log"))).contains("qsupd.yaml:2").contains("max-parallel-starts");
    }

    private Process startQsupd(String logName) throws IOException {
        // output to a file, never a pipe: nothing may tie the daemon (or QEMU) to the test JVM
        Process p = new ProcessBuilder(javaCommand()).redirectErrorStream(true)
                .redirectOutput(fx.base.resolve(logName).toFile()).start();
        daemons.add(p);
        return p;
    }

    private List<String> javaCommand(String... extra) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dqsup.logLevel=INFO", "-cp", System.getProperty("java.class.path"), QsupdMain.class.getName(),
                "--config", fx.settingsFile.toString(), "--hook", hook.toString()));
        cmd.addAll(List.of(extra));
        return cmd;
    }

    private List<String> awaitHookLines(Predicate<String> p, int count) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (true) {
            List<String> lines = Files.exists(hookLog) ? Files.readAllLines(hookLog) : List.of();
            if (lines.stream().filter(p).count() >= count) {
                return lines;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("hook saw only " + lines + " within " + WAIT);
            }
            Thread.sleep(100);
        }
    }

    private void awaitLog(String logName, String text) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        Path f = fx.base.resolve(logName);
        while (!(Files.exists(f) && Files.readString(f).contains(text))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("'" + text + "' not in " + f + ":\n" + Files.readString(f));
            }
            Thread.sleep(100);
        }
    }
}
