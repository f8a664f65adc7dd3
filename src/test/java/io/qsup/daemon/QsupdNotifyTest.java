package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.SupervisorFixture;
import java.net.DatagramPacket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * The exact sd_notify messages of a real qsupd through start, reload and stop, received as systemd does: datagrams
 * on a notify socket, here in the abstract namespace ({@code NOTIFY_SOCKET=@name}).
 */
class QsupdNotifyTest {
    private SupervisorFixture fx;
    private Process qsupd;
    private AFUNIXDatagramSocket systemd;
    private final List<String> messages = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (qsupd != null) {
            qsupd.destroyForcibly();
            qsupd.waitFor(10, TimeUnit.SECONDS);
        }
        if (systemd != null) {
            systemd.close();
        }
        fx.close();
    }

    @Test
    void readyStatusReloadingWithMonotonicUsecAndStoppingInOrder() throws Exception {
        Files.writeString(fx.base.resolve("vms/one.yaml"), "memory: 32M\n");
        String name = "qsup-notify-" + UUID.randomUUID();
        systemd = AFUNIXDatagramSocket.newInstance();
        systemd.bind(AFUNIXSocketAddress.inAbstractNamespace(name));
        systemd.setSoTimeout(200);
        Thread receiver = Thread.ofPlatform().daemon().name("test-notify-receiver").start(() -> {
            DatagramPacket p = new DatagramPacket(new byte[4096], 4096);
            while (!systemd.isClosed()) {
                try {
                    p.setLength(4096); // receive() shrinks it to the last datagram's length
                    systemd.receive(p);
                    messages.add(new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8));
                } catch (SocketTimeoutException e) {
                    // poll again
                } catch (java.io.IOException e) {
                    return;
                }
            }
        });

        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), QsupdMain.class.getName(),
                "--config", fx.settingsFile.toString())
                .redirectErrorStream(true).redirectOutput(fx.base.resolve("qsupd.log").toFile());
        pb.environment().put("NOTIFY_SOCKET", "@" + name);
        qsupd = pb.start();

        await(m -> m.equals("READY=1\nMAINPID=" + qsupd.pid()));
        await(m -> m.equals("STATUS=1 running, 0 failed, 0 unresponsive"));

        Files.writeString(fx.base.resolve("vms/two.yaml"), "memory: 32M\n");
        long before = System.nanoTime() / 1_000;
        assertThat(new ProcessBuilder("kill", "-HUP", Long.toString(qsupd.pid())).start().waitFor()).isZero();
        String reloading = await(m -> m.startsWith("RELOADING=1\n"));
        long after = System.nanoTime() / 1_000;
        assertThat(reloading).matches("RELOADING=1\nMONOTONIC_USEC=\\d+");
        long usec = Long.parseLong(reloading.substring(reloading.indexOf('=', 12) + 1));
        assertThat(usec).as("MONOTONIC_USEC is CLOCK_MONOTONIC at the reload").isBetween(before, after);
        await(m -> m.equals("STATUS=2 running, 0 failed, 0 unresponsive"));

        qsupd.destroy(); // SIGTERM
        assertThat(qsupd.waitFor(30, TimeUnit.SECONDS)).isTrue();
        await(m -> m.equals("STOPPING=1"));
        systemd.close();
        receiver.join(5_000);

        assertThat(messages.stream().filter(m -> !m.startsWith("STATUS=")).toList()).containsExactly(
                "READY=1\nMAINPID=" + qsupd.pid(), reloading, "READY=1", "STOPPING=1");
        assertThat(messages.get(messages.size() - 1)).as("nothing after STOPPING=1").isEqualTo("STOPPING=1");
        assertThat(messages).filteredOn(m -> m.startsWith("STATUS=")).allMatch(
                m -> m.matches("STATUS=\\d+ running, \\d+ failed, \\d+ unresponsive"));
    }

    private String await(Predicate<String> p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (System.nanoTime() < deadline) {
            for (String m : messages) {
                if (p.test(m)) {
                    return m;
                }
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no such notify message; got " + messages + "; qsupd log:\n"
                + Files.readString(fx.base.resolve("qsupd.log")));
    }
}
