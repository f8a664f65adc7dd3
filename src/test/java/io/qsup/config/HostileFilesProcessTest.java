package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.cli.ExitCodes;
import io.qsup.cli.QsupMain;
import io.qsup.daemon.QsupdMain;
import io.qsup.testing.UnixSockets;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The hostile files of the issue against the real entry points in child JVMs with a 64 MiB heap: {@code qsup
 * validate} and {@code qsupd} with its {@code reload}. Each child gets a deadline and is killed by its pid if it
 * passes it, so a read stuck on a FIFO fails the test rather than hanging the build.
 */
class HostileFilesProcessTest {
    private final List<Process> children = new ArrayList<>();
    private Path dir;

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : children) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        if (dir != null) {
            try (var s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void validateInA64MiBHeapReportsEachBadFileWithinTwoSecondsAndKeepsTheGoodOnes() throws Exception {
        dir = Files.createTempDirectory(Path.of("/tmp"), "hf");
        Path settings = HostileFiles.settings(dir);
        Path vms = dir.resolve("vms");
        Files.writeString(vms.resolve("good.yaml"), "memory: 64M\n");
        Files.writeString(vms.resolve("good-too.yaml"), "memory: 64M\ncpus: 2\n");
        HostileFiles.linkToDevZero(vms.resolve("zero.yaml"));
        HostileFiles.fifo(vms.resolve("fifo.yaml"));
        HostileFiles.sparse(vms.resolve("big.yaml"), 200L << 20);
        HostileFiles.unknownKeysOfSize(vms.resolve("huge-keys.yaml"), (1 << 20) + 4096);
        Path out = dir.resolve("validate.out");

        long t0 = System.nanoTime();
        Process p = start(out, QsupMain.class.getName(), "validate", "--config", settings.toString());
        boolean exited = p.waitFor(30, TimeUnit.SECONDS);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        String text = Files.readString(out);
        assertThat(exited).as("qsup validate exits; its output so far:\n%s", text).isTrue();

        assertThat(text).doesNotContain("OutOfMemoryError").doesNotContain("Exception");
        assertThat(text).contains(
                vms.resolve("zero.yaml") + ": is a symbolic link to /dev/zero, a character device, not a regular file",
                vms.resolve("fifo.yaml") + ": is a FIFO (named pipe), not a regular file",
                vms.resolve("big.yaml") + ": file is 209715200 bytes, over the 1 MiB limit for a VM definition",
                vms.resolve("huge-keys.yaml") + ": file is " + Files.size(vms.resolve("huge-keys.yaml"))
                        + " bytes, over the 1 MiB limit for a VM definition");
        assertThat(text).endsWith("4 errors in 4 files; 2 VMs are valid\n");
        assertThat(p.exitValue()).isEqualTo(ExitCodes.ERROR);
        assertThat(millis).as("wall time of the whole qsup validate process, JVM start included").isLessThan(2000);
    }

    /** Besides the link and the FIFO, 1 MiB of unknown keys just under the size limit: parsed, and its errors capped. */
    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void qsupdInA64MiBHeapOpensItsSocketAndReloadsWithHostileFilesInItsFolder() throws Exception {
        dir = Files.createTempDirectory(Path.of("/tmp"), "hf");
        Path settings = HostileFiles.settings(dir);
        Path vms = dir.resolve("vms");
        Path socket = dir.resolve("run/qsupd.sock");
        Files.writeString(vms.resolve("good.yaml"), "memory: 64M\nautostart: false\n");
        HostileFiles.linkToDevZero(vms.resolve("zero.yaml"));
        HostileFiles.fifo(vms.resolve("fifo.yaml"));
        Path log = dir.resolve("qsupd.log");

        Process qsupd = start(log, QsupdMain.class.getName(), "--config", settings.toString());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!UnixSockets.isListening(socket)) {
            assertThat(qsupd.isAlive()).as("qsupd runs; its log:\n%s", Files.readString(log)).isTrue();
            assertThat(System.nanoTime()).as("qsupd opens its control socket; its log:\n%s", Files.readString(log))
                    .isLessThan(deadline);
            Thread.sleep(50);
        }

        int keys = HostileFiles.unknownKeysOfSize(vms.resolve("keys.yaml"), (1 << 20) - 64);
        CliRun r = CliRun.of("reload", "--socket", socket.toString(), "--json");
        assertThat(r.exit()).as("reload: %s", r.err()).isEqualTo(ExitCodes.ERROR);
        assertThat(r.out().getBytes(StandardCharsets.UTF_8).length).as("reply size").isLessThan(64 * 1024);
        JsonNode reply = new ObjectMapper().readTree(r.out());
        List<String> errors = new ArrayList<>();
        reply.path("errors").forEach(e -> errors.add(e.asText()));
        assertThat(errors).filteredOn(e -> e.startsWith(vms.resolve("keys.yaml").toString())).hasSize(51)
                .last().asString().startsWith(vms.resolve("keys.yaml") + ":51:1: and " + (keys - 50) + " more errors");
        assertThat(errors).anyMatch(e -> e.startsWith(vms.resolve("zero.yaml") + ": is a symbolic link to /dev/zero"))
                .anyMatch(e -> e.startsWith(vms.resolve("fifo.yaml") + ": is a FIFO (named pipe)"));

        qsupd.destroy(); // SIGTERM
        assertThat(qsupd.waitFor(30, TimeUnit.SECONDS)).isTrue();
        String text = Files.readString(log);
        assertThat(text).doesNotContain("OutOfMemoryError");
        assertThat(text.lines().filter(l -> l.contains(vms.resolve("keys.yaml").toString())))
                .as("log lines about keys.yaml for one reload").hasSize(51);
    }

    private Process start(Path output, String mainClass, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx64m", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), mainClass));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(output.toFile()).start();
        children.add(p);
        return p;
    }
}
