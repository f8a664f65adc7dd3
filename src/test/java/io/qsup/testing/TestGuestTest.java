package io.qsup.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpEvent;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
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
        private QmpClient qmp;
        private final EventLog events = new EventLog();

        @BeforeEach
        void boot() throws Exception {
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
            qmp = connectQmp(qmpSocket);
            qmp.addEventListener(events::add);
            console.awaitReady(BOOT);
        }

        private QmpClient connectQmp(Path socket) throws Exception {
            long deadline = System.nanoTime() + STEP.toNanos();
            while (!UnixSockets.isListening(socket)) {
                if (System.nanoTime() > deadline || !qemu.isAlive()) {
                    throw new IllegalStateException("QEMU's QMP socket " + socket + " is not listening; its log:\n"
                            + Files.readString(dir.resolve("qemu.log")));
                }
                Thread.sleep(20);
            }
            return QmpClient.connect(new QmpEndpoint.Unix(socket));
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
            assertThat(events.await("SHUTDOWN", STEP).path("data").path("reason").asText()).isEqualTo("guest-shutdown");
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
            assertThat(events.await("SHUTDOWN", STEP).path("data").path("reason").asText()).isEqualTo("guest-shutdown");
        }

        @Test
        void afterIgnoreAcpiThePowerButtonDoesNothingButTheConsoleStillAnswers() throws Exception {
            console.command("ignore-acpi", STEP);

            qmp.execute("system_powerdown");
            events.await("POWERDOWN", STEP); // the press reached the guest
            assertThat(qemu.waitFor(5, TimeUnit.SECONDS)).as("QEMU exited although the guest ignores ACPI").isFalse();
            assertThat(qmp.execute("query-status").path("status").asText()).isEqualTo("running");

            console.command("poweroff", STEP);
            assertExits(0);
        }

        @Test
        void panicIsReportedToQemuThroughPvpanic() throws Exception {
            console.command("panic", STEP);

            JsonNode panicked = events.await("GUEST_PANICKED", STEP);
            // QEMU's default panic action (-action panic=shutdown) powers the VM off; the SHUTDOWN names the panic.
            assertThat(panicked.path("data").path("action").asText()).isEqualTo("poweroff");
            assertThat(events.await("SHUTDOWN", STEP).path("data").path("reason").asText()).isEqualTo("guest-panic");
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

            JsonNode reset = events.await("RESET", STEP);
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
     * QEMU's events from connect on, so a test may look for one after it happened (QEMU may already have exited).
     * Locking: the instance monitor guards the list; the client's event thread adds, test threads wait.
     */
    private static final class EventLog {
        private final List<QmpEvent> seen = new ArrayList<>();
        private int next;

        synchronized void add(QmpEvent e) {
            seen.add(e);
            notifyAll();
        }

        /** The next event named {@code name}, as QEMU sent it. */
        synchronized JsonNode await(String name, Duration timeout) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                while (next < seen.size()) {
                    QmpEvent e = seen.get(next++);
                    if (e.name().equals(name)) {
                        return e.raw();
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("no QMP event " + name + " within " + timeout + "; events seen: "
                            + seen.stream().map(QmpEvent::name).toList());
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
        }
    }
}
