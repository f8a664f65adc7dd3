package io.qsup.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The test guest: its build script, and the guest booted in real QEMU (TCG) driven through every console command. */
class TestGuestTest {

    private static final Duration BOOT = Duration.ofSeconds(90);
    private static final Duration STEP = Duration.ofSeconds(30);

    /** The build script as a user runs it. */
    @Nested
    class BuildScript {

        @TempDir
        Path tmp;

        @Test
        void secondRunWithUpToDateOutputsChangesNothing() throws Exception {
            TestGuest guest = TestGuest.get();
            FileTime before = Files.getLastModifiedTime(guest.initrd());
            String stamp = Files.readString(guest.dir().resolve("stamp"));

            Result run = runScript(Map.of(), guest.dir().toString());

            assertThat(run.exit()).as("exit code; output: %s", run.output()).isZero();
            assertThat(Files.getLastModifiedTime(guest.initrd())).isEqualTo(before);
            assertThat(stamp).containsPattern("(?m)^kernel-release=\\S+-cloud-amd64$");
        }

        @Test
        void missingToolIsNamedWithHowToInstallIt() throws Exception {
            // A PATH with every host tool except cpio.
            Path bin = Files.createDirectory(tmp.resolve("bin"));
            for (String dirName : List.of("/usr/bin", "/usr/sbin", "/bin", "/sbin")) {
                Path d = Path.of(dirName);
                if (!Files.isDirectory(d)) {
                    continue;
                }
                try (Stream<Path> tools = Files.list(d)) {
                    for (Path tool : tools.toList()) {
                        String name = tool.getFileName().toString();
                        Path link = bin.resolve(name);
                        if (!name.equals("cpio") && !Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
                            Files.createSymbolicLink(link, tool);
                        }
                    }
                }
            }

            Result run;
            try {
                run = runScript(Map.of("PATH", bin.toString()), "--force", tmp.resolve("out").toString());
            } finally {
                // Removed here so the temp-dir cleanup has no links to outside to warn about.
                try (Stream<Path> links = Files.list(bin)) {
                    for (Path link : links.toList()) {
                        Files.delete(link);
                    }
                }
            }

            assertThat(run.exit()).isEqualTo(1);
            assertThat(run.output()).contains("'cpio' not found").contains("apt-get install cpio");
            assertThat(tmp.resolve("out/initramfs.cpio.gz")).doesNotExist();
        }

        private Result runScript(Map<String, String> env, String... args) throws Exception {
            Path script = Path.of(System.getProperty("qsup.projectDir", System.getProperty("user.dir")))
                    .resolve("guest/build-test-guest.sh");
            List<String> argv = new ArrayList<>(List.of("/bin/bash", script.toString()));
            argv.addAll(List.of(args));
            ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
            pb.environment().putAll(env);
            Process p = pb.start();
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(2, TimeUnit.MINUTES)).as("script finished").isTrue();
            return new Result(p.exitValue(), output);
        }
    }

    private record Result(int exit, String output) {}

    /** Each test boots the guest in a fresh QEMU. */
    @Nested
    class Booted {

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
                    "-chardev", "socket,id=serial0,path=" + consoleSocket + ",server=on,wait=off,logfile="
                            + dir.resolve("serial.log"),
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
        void poweroffCommandAnswersThenEndsQemuAsAGuestShutdownAndTheSerialLogShowsIt() throws Exception {
            console.command("poweroff", STEP);

            assertExits(0);
            assertThat(qmp.awaitEvent("SHUTDOWN", STEP).path("data").path("reason").asText()).isEqualTo("guest-shutdown");
            try (GuestConsole log = GuestConsole.followLog(dir.resolve("serial.log"))) {
                log.awaitReady(STEP);
                assertThat(log.awaitLine(l -> l.startsWith(GuestConsole.PREFIX), STEP)).isEqualTo("QSUP-GUEST OK poweroff");
                assertThatThrownBy(() -> log.send("reboot"))
                        .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("read-only");
            }
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
            assertExits(0); // the exit code alone does not tell a panic from a power-off
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
                    .as("QEMU exits; its log:%n%s%nthe console:%n%s", Files.readString(dir.resolve("qemu.log")),
                            String.join("\n", console.transcript())).isTrue();
            assertThat(qemu.exitValue()).as("QEMU exit code").isEqualTo(expectedCode);
        }

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
