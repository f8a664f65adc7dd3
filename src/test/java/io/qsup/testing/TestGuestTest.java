package io.qsup.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Boots the test guest in real QEMU (TCG) and drives every console command and the ACPI power button. */
class TestGuestTest {

    private static final Duration BOOT = Duration.ofSeconds(90);
    private static final Duration STEP = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    private Process qemu;
    private GuestConsole console;
    private MiniQmp qmp;

    @BeforeEach
    void boot() throws IOException {
        TestGuest guest = TestGuest.get();
        Path consoleSocket = dir.resolve("console.sock");
        Path qmpSocket = dir.resolve("qmp.sock");
        List<String> argv = new ArrayList<>(List.of("qemu-system-x86_64",
                "-machine", "q35", "-accel", "tcg", "-m", "128M",
                "-nodefaults", "-no-user-config", "-display", "none",
                "-chardev", "socket,id=serial0,path=" + consoleSocket + ",server=on,wait=off",
                "-serial", "chardev:serial0",
                "-device", "pvpanic",
                "-qmp", "unix:" + qmpSocket + ",server=on,wait=off"));
        argv.addAll(guest.qemuBootArgs());
        try {
            qemu = new ProcessBuilder(argv)
                    .redirectErrorStream(true)
                    .redirectOutput(dir.resolve("qemu.log").toFile())
                    .start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start qemu-system-x86_64 (" + e.getMessage()
                    + "); install it with: apt-get install qemu-system-x86", e);
        }
        // Connect the console first: QEMU drops what the guest prints while no client is connected.
        console = GuestConsole.connect(consoleSocket, STEP);
        qmp = MiniQmp.connect(qmpSocket, STEP);
        console.awaitReady(BOOT);
    }

    @AfterEach
    void cleanUp() throws InterruptedException {
        if (console != null) {
            console.close();
        }
        if (qmp != null) {
            qmp.close();
        }
        if (qemu != null && qemu.isAlive()) {
            qemu.destroyForcibly(); // SIGKILL to this pid only
            qemu.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void poweroffCommandAnswersThenEndsQemuAsAGuestShutdown() throws Exception {
        console.command("poweroff", STEP);

        assertExits(0);
        assertThat(qmp.awaitEvent("SHUTDOWN", STEP).path("data").path("reason").asText()).isEqualTo("guest-shutdown");
    }

    @Test
    void acpiPowerButtonPowersTheGuestOff() throws Exception {
        qmp.execute("system_powerdown");

        assertExits(0);
        assertThat(qmp.awaitEvent("SHUTDOWN", STEP).path("data").path("reason").asText()).isEqualTo("guest-shutdown");
    }

    @Test
    void afterIgnoreAcpiThePowerButtonDoesNothingButTheConsoleStillAnswers() throws Exception {
        console.command("ignore-acpi", STEP);

        qmp.execute("system_powerdown");
        qmp.awaitEvent("POWERDOWN", STEP); // the press reached the guest
        assertThat(qemu.waitFor(5, TimeUnit.SECONDS)).as("QEMU exited although the guest ignores ACPI").isFalse();
        assertThat(qmp.execute("query-status").path("status").asText()).isEqualTo("running");

        console.command("poweroff", STEP);
        assertExits(0);
    }

    @Test
    void panicIsReportedToQemuThroughPvpanic() throws Exception {
        console.command("panic", STEP);

        JsonNode panicked = qmp.awaitEvent("GUEST_PANICKED", STEP);
        // QEMU's default panic action (-action panic=shutdown) powers the VM off; the SHUTDOWN names the panic.
        assertThat(panicked.path("data").path("action").asText()).isEqualTo("poweroff");
        assertThat(qmp.awaitEvent("SHUTDOWN", STEP).path("data").path("reason").asText()).isEqualTo("guest-panic");
        assertThat(qemu.waitFor(STEP.toSeconds(), TimeUnit.SECONDS)).as("QEMU exits after the panic").isTrue();
    }

    @Test
    void hangStopsConsoleAnswersWhileTheKernelLives() throws Exception {
        console.send("ping");
        assertThat(console.awaitLine(l -> l.contains(GuestConsole.PREFIX), STEP)).contains("ERR unknown ping");

        console.command("hang", STEP);
        console.send("ping");
        assertThat(console.pollLine(l -> l.contains(GuestConsole.PREFIX), Duration.ofSeconds(3)))
                .as("console answer after hang").isEmpty();

        // The kernel (and acpid) still run: the power button still works.
        qmp.execute("system_powerdown");
        assertExits(0);
    }

    @Test
    void rebootResetsTheMachineAndTheGuestComesBackReady() throws Exception {
        console.command("reboot", STEP);

        JsonNode reset = qmp.awaitEvent("RESET", STEP);
        assertThat(reset.path("data").path("reason").asText()).isEqualTo("guest-reset");
        console.awaitReady(BOOT);
        assertThat(qemu.isAlive()).isTrue();

        console.command("poweroff", STEP);
        assertExits(0);
    }

    private void assertExits(int expectedCode) throws Exception {
        assertThat(qemu.waitFor(STEP.toSeconds(), TimeUnit.SECONDS))
                .as("QEMU exits; its log:%n%s", Files.readString(dir.resolve("qemu.log"))).isTrue();
        assertThat(qemu.exitValue()).as("QEMU exit code").isEqualTo(expectedCode);
    }

    /**
     * Just enough QMP for this test (the project's client is tested on its own): negotiation, commands, and events
     * kept from connect on. Locking: the reader thread appends under the instance monitor; test threads wait on it.
     */
    private static final class MiniQmp implements AutoCloseable {
        private static final ObjectMapper JSON = new ObjectMapper();

        private final SocketChannel channel;
        private final Thread reader;
        private final List<JsonNode> replies = new ArrayList<>();
        private final List<JsonNode> events = new ArrayList<>();
        private int nextReply;
        private int nextEvent;
        private boolean eof;

        private MiniQmp(SocketChannel channel, Path socket) {
            this.channel = channel;
            this.reader = Thread.ofPlatform().daemon().name("test-qmp " + socket).start(this::readLoop);
        }

        static MiniQmp connect(Path socket, Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                try {
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    try {
                        ch.connect(UnixDomainSocketAddress.of(socket));
                    } catch (IOException e) {
                        ch.close();
                        throw e;
                    }
                    MiniQmp qmp = new MiniQmp(ch, socket);
                    qmp.execute("qmp_capabilities");
                    return qmp;
                } catch (IOException e) {
                    if (System.nanoTime() > deadline) {
                        throw new UncheckedIOException("cannot connect to QMP at " + socket, e);
                    }
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
            }
        }

        /** Sends a command and returns its "return"; fails on an error reply. */
        JsonNode execute(String command) {
            byte[] line = ("{\"execute\":\"" + command + "\"}\n").getBytes(StandardCharsets.UTF_8);
            try {
                ByteBuffer buf = ByteBuffer.wrap(line);
                while (buf.hasRemaining()) {
                    channel.write(buf);
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot send " + command + " to QMP", e);
            }
            JsonNode reply = await(replies, true, m -> true, Duration.ofSeconds(30))
                    .orElseThrow(() -> new IllegalStateException("no QMP reply to " + command));
            if (reply.has("error")) {
                throw new IllegalStateException("QMP " + command + " failed: " + reply.get("error"));
            }
            return reply.get("return");
        }

        /** Waits for the next event named {@code name} (events seen since connect count). */
        JsonNode awaitEvent(String name, Duration timeout) {
            return await(events, false, m -> name.equals(m.path("event").asText()), timeout)
                    .orElseThrow(() -> new IllegalStateException("no QMP event " + name + " within " + timeout
                            + "; events seen: " + eventNames()));
        }

        private synchronized List<String> eventNames() {
            return events.stream().map(e -> e.path("event").asText()).toList();
        }

        private synchronized Optional<JsonNode> await(List<JsonNode> from, boolean isReply,
                                                     Predicate<JsonNode> p, Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                while ((isReply ? nextReply : nextEvent) < from.size()) {
                    JsonNode m = from.get(isReply ? nextReply++ : nextEvent++);
                    if (p.test(m)) {
                        return Optional.of(m);
                    }
                }
                long left = deadline - System.nanoTime();
                if (eof || left <= 0) {
                    return Optional.empty();
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return Optional.empty();
                }
            }
        }

        private void readLoop() {
            ByteArrayOutputStream current = new ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(8192);
            try {
                while (channel.read(buf.clear()) > 0) {
                    buf.flip();
                    while (buf.hasRemaining()) {
                        byte b = buf.get();
                        if (b != '\n') {
                            current.write(b);
                            continue;
                        }
                        String line = current.toString(StandardCharsets.UTF_8).strip();
                        current.reset();
                        if (!line.isEmpty()) {
                            accept(JSON.readTree(line));
                        }
                    }
                }
            } catch (IOException e) {
                // QEMU exited or close(): the session is over.
            } finally {
                synchronized (this) {
                    eof = true;
                    notifyAll();
                }
            }
        }

        private synchronized void accept(JsonNode message) {
            if (message.has("event")) {
                events.add(message);
            } else if (message.has("return") || message.has("error")) {
                replies.add(message);
            } // the greeting needs no answer beyond qmp_capabilities
            notifyAll();
        }

        @Override
        public void close() throws InterruptedException {
            try {
                channel.close();
            } catch (IOException ignored) {
                // Nothing left to release.
            }
            reader.join(1000);
        }
    }
}
