package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.NotifySocket;
import io.qsup.testing.QsupdProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The exact sd_notify messages of a real qsupd through start, reload and stop, received as systemd does: datagrams
 * on a notify socket, here in the abstract namespace ({@code NOTIFY_SOCKET=@name}), with the watchdog on.
 */
class QsupdNotifyTest {
    private SupervisorFixture fx;
    private Process qsupd;
    private NotifySocket systemd;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
        systemd = new NotifySocket();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (qsupd != null) {
            qsupd.destroyForcibly();
            qsupd.waitFor(10, TimeUnit.SECONDS);
        }
        systemd.close();
        fx.close();
    }

    @Test
    void readyStatusReloadingWithMonotonicUsecAndStoppingInOrder() throws Exception {
        Files.writeString(fx.base.resolve("vms/one.yaml"), "memory: 32M\n");
        ProcessBuilder pb = new ProcessBuilder(QsupdProcess.withSighup(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), QsupdMain.class.getName(),
                "--config", fx.settingsFile.toString())))
                .redirectErrorStream(true).redirectOutput(fx.base.resolve("qsupd.log").toFile());
        pb.environment().put("NOTIFY_SOCKET", systemd.address());
        pb.environment().put("WATCHDOG_USEC", "20000000");
        qsupd = pb.start();

        await(m -> m.equals("READY=1\nMAINPID=" + qsupd.pid()));
        await(m -> m.equals("STATUS=1 running, 0 failed, 0 unresponsive"));
        await(m -> m.equals("WATCHDOG=1"));

        Files.writeString(fx.base.resolve("vms/two.yaml"), "memory: 32M\n");
        long before = System.nanoTime() / 1_000;
        assertThat(new ProcessBuilder("kill", "-HUP", Long.toString(qsupd.pid())).start().waitFor()).isZero();
        String reloading = await(m -> m.startsWith("RELOADING=1\n"));
        long after = System.nanoTime() / 1_000;
        assertThat(reloading).matches("RELOADING=1\nMONOTONIC_USEC=\\d+");
        long usec = Long.parseLong(reloading.substring(reloading.indexOf('=', 12) + 1));
        assertThat(usec).as("MONOTONIC_USEC is CLOCK_MONOTONIC at the reload").isBetween(before, after);
        await(m -> m.equals("STATUS=2 running, 0 failed, 0 unresponsive"));
        int afterReload = systemd.texts().size();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!systemd.texts().subList(afterReload, systemd.texts().size()).contains("WATCHDOG=1")) {
            assertThat(System.nanoTime()).as("a WATCHDOG=1 after the reload; got %s", systemd.texts())
                    .isLessThan(deadline);
            Thread.sleep(50);
        }

        qsupd.destroy(); // SIGTERM
        assertThat(qsupd.waitFor(30, TimeUnit.SECONDS)).isTrue();
        await(m -> m.equals("STOPPING=1"));
        Thread.sleep(300); // anything sent after STOPPING=1 would arrive by now
        List<String> messages = systemd.texts();

        assertThat(messages.stream().filter(m -> !m.startsWith("STATUS=") && !m.equals("WATCHDOG=1")).toList())
                .containsExactly("READY=1\nMAINPID=" + qsupd.pid(), reloading, "READY=1", "STOPPING=1");
        assertThat(messages.get(0)).as("READY=1 comes first: no STATUS or WATCHDOG before it")
                .isEqualTo("READY=1\nMAINPID=" + qsupd.pid());
        assertThat(messages.get(messages.size() - 1)).as("nothing after STOPPING=1").isEqualTo("STOPPING=1");
        assertThat(messages).filteredOn(m -> m.startsWith("STATUS=")).allMatch(
                m -> m.matches("STATUS=\\d+ running, \\d+ failed, \\d+ unresponsive"));
        List<String> beforeReload = messages.subList(0, messages.indexOf(reloading));
        assertThat(beforeReload).as("between READY=1 and RELOADING=1")
                .contains("STATUS=1 running, 0 failed, 0 unresponsive", "WATCHDOG=1");
        List<String> afterReady = messages.subList(messages.lastIndexOf("READY=1"), messages.size());
        assertThat(afterReady).as("after the reload's READY=1")
                .contains("STATUS=2 running, 0 failed, 0 unresponsive", "WATCHDOG=1");
    }

    private String await(Predicate<String> p) throws Exception {
        return systemd.await(p, Duration.ofSeconds(90), () -> Files.readString(fx.base.resolve("qsupd.log"))).text();
    }
}
