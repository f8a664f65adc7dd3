package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.DatagramPacket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

class SdNotifyTest {

    @Test
    void readyReachesTheNotifySocketAsOneDatagram() throws Exception {
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "sdn");
        Path sock = dir.resolve("notify.sock");
        try (AFUNIXDatagramSocket server = AFUNIXDatagramSocket.newInstance()) {
            server.bind(AFUNIXSocketAddress.of(sock));
            server.setSoTimeout(5000);
            assertThat(SdNotify.notify(sock.toString(), "READY=1\nSTATUS=supervising 3 VMs")).isTrue();
            DatagramPacket p = new DatagramPacket(new byte[512], 512);
            server.receive(p);
            assertThat(new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8))
                    .isEqualTo("READY=1\nSTATUS=supervising 3 VMs");
        } finally {
            Files.deleteIfExists(sock);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void anAbstractNamespaceSocketNamedWithAnAtSignGetsTheDatagram() throws Exception {
        String name = "qsup-sdn-" + java.util.UUID.randomUUID();
        try (AFUNIXDatagramSocket server = AFUNIXDatagramSocket.newInstance()) {
            server.bind(AFUNIXSocketAddress.inAbstractNamespace(name));
            server.setSoTimeout(5000);
            assertThat(SdNotify.notify("@" + name, "WATCHDOG=1")).isTrue();
            DatagramPacket p = new DatagramPacket(new byte[512], 512);
            server.receive(p);
            assertThat(new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8)).isEqualTo("WATCHDOG=1");
        }
        assertThat(Files.exists(Path.of("@" + name))).as("no file named after the socket").isFalse();
    }

    @Test
    void withoutNotifySocketNothingIsSent() {
        assertThat(SdNotify.notify(null, "READY=1")).isFalse();
        assertThat(SdNotify.notify("", "READY=1")).isFalse();
    }

    @Test
    void versionIsPrinted() {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.PrintStream old = System.out;
        System.setOut(new java.io.PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            assertThat(QsupdMain.run("--version")).isZero();
        } finally {
            System.setOut(old);
        }
        assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("qsupd ");
    }
}
