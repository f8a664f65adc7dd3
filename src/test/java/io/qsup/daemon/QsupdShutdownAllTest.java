package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.supervisor.VmSnapshot;
import io.qsup.vm.VmState;
import java.net.DatagramPacket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * {@code qsupd --shutdown-all} as qsup-shutdown.service runs it: while a VM that ignores the power button works down
 * its ladder, systemd's stop timeout is extended with EXTEND_TIMEOUT_USEC=, and the rung that ended it is reported.
 */
class QsupdShutdownAllTest {
    private SupervisorFixture fx;
    private AFUNIXDatagramSocket systemd;
    private final List<String> messages = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (systemd != null) {
            systemd.close();
        }
        fx.close();
    }

    @Test
    void aLongLadderExtendsTheStopTimeoutAndReportsItsRung() throws Exception {
        // No guest OS: nothing answers the ACPI power button, so the ladder spends its stop-timeout on it, then quits.
        Files.writeString(fx.base.resolve("vms/slow.yaml"), "memory: 32M\nstop-timeout: 20s\n");
        Supervisor first = fx.supervisor(SupervisorFixture.fastProbe());
        first.loadInitial();
        first.startup();
        assertThat(first.list()).extracting(VmSnapshot::state).containsExactly(VmState.RUNNING);
        first.close(); // qsupd exits: the VM keeps running

        String name = "qsup-extend-" + UUID.randomUUID();
        systemd = AFUNIXDatagramSocket.newInstance();
        systemd.bind(AFUNIXSocketAddress.inAbstractNamespace(name));
        systemd.setSoTimeout(200);
        Thread.ofPlatform().daemon().name("test-notify-receiver").start(() -> {
            DatagramPacket p = new DatagramPacket(new byte[4096], 4096);
            while (!systemd.isClosed()) {
                try {
                    p.setLength(4096);
                    systemd.receive(p);
                    messages.add(new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8));
                } catch (SocketTimeoutException e) {
                    // poll again
                } catch (java.io.IOException e) {
                    return;
                }
            }
        });
        Path out = fx.base.resolve("shutdown.out");
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), QsupdMain.class.getName(),
                "--config", fx.settingsFile.toString(), "--shutdown-all")
                .redirectErrorStream(true).redirectOutput(out.toFile());
        pb.environment().put("NOTIFY_SOCKET", "@" + name);
        Process p = pb.start();
        try {
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("shutdown-all finished").isTrue();
        } finally {
            p.destroyForcibly();
        }
        String text = Files.readString(out);
        assertThat(p.exitValue()).as(text).isZero();
        assertThat(text).containsPattern("(?m)^slow: stopped at rung quit after \\d+ ms$");
        assertThat(messages).as("one extension every %d s of a ladder whose powerdown rung lasts about 11 s", StopExtender.PERIOD_SECONDS)
                .filteredOn(m -> m.equals("EXTEND_TIMEOUT_USEC=" + StopExtender.EXTEND_SECONDS * 1_000_000))
                .hasSizeGreaterThanOrEqualTo(2);
        assertThat(messages).allMatch(m -> m.startsWith("EXTEND_TIMEOUT_USEC="));
    }
}
