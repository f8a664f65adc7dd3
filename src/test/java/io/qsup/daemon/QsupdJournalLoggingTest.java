package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.SupervisorFixture;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A real qsupd whose stderr is the file named by {@code JOURNAL_STREAM}, as under systemd with the journal: every
 * line carries a {@code <N>} priority and no timestamp, errors are {@code <3>}, VM lines name the VM. With
 * {@code JOURNAL_STREAM} naming some other file (a child that inherited it), today's format stays.
 */
class QsupdJournalLoggingTest {
    private SupervisorFixture fx;
    private Process qsupd;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
        Files.writeString(fx.base.resolve("vms/one.yaml"), "memory: 32M\n");
        Files.writeString(fx.base.resolve("vms/bad.yaml"), "memory: 32M\ncpus: many\n");
    }

    @AfterEach
    void tearDown() throws Exception {
        stop();
        fx.close();
    }

    @Test
    void underTheJournalLinesCarryPrioritiesAndNoTimestamps() throws Exception {
        Path log = fx.base.resolve("journal.log");
        Files.createFile(log);
        List<String> lines = runUntilRunning(log, dev(log) + ":" + ino(log));
        assertThat(lines).allSatisfy(l -> assertThat(l).matches("<[3467]>\\S.*"));
        assertThat(lines).noneMatch(l -> l.matches(".*\\d\\d:\\d\\d:\\d\\d\\.\\d\\d\\d.*"));
        assertThat(lines).anyMatch(l -> l.startsWith("<6>") && l.contains("VM one: stopped -> starting"));
        assertThat(lines).anyMatch(l -> l.startsWith("<3>") && l.contains("bad.yaml") && l.contains("cpus"));
    }

    @Test
    void withJournalStreamNamingAnotherFileTodaysFormatStays() throws Exception {
        Path log = fx.base.resolve("plain.log");
        Files.createFile(log);
        List<String> lines = runUntilRunning(log, dev(log) + ":" + (ino(log) + 1));
        assertThat(lines).anyMatch(l -> l.matches("\\d\\d:\\d\\d:\\d\\d\\.\\d\\d\\d INFO .*VM one: stopped -> starting.*"));
        assertThat(lines).noneMatch(l -> l.startsWith("<"));
    }

    private List<String> runUntilRunning(Path log, String journalStream) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                QsupdMain.class.getName(), "--config", fx.settingsFile.toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("JOURNAL_STREAM", journalStream);
        pb.environment().put("INVOCATION_ID", "0123456789abcdef0123456789abcdef");
        qsupd = pb.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.readString(log).contains("qsupd ready")) {
            assertThat(System.nanoTime()).as("qsupd never got ready; log:%n%s", Files.readString(log))
                    .isLessThan(deadline);
            Thread.sleep(100);
        }
        stop();
        return Files.readAllLines(log).stream().filter(l -> !l.isBlank() && !l.startsWith("WARNING: ")).toList();
    }

    private void stop() throws InterruptedException {
        if (qsupd != null) {
            qsupd.destroy();
            if (!qsupd.waitFor(30, TimeUnit.SECONDS)) {
                qsupd.destroyForcibly();
                qsupd.waitFor(10, TimeUnit.SECONDS);
            }
            qsupd = null;
        }
    }

    private static long dev(Path p) throws Exception {
        return ((Number) Files.getAttribute(p, "unix:dev")).longValue();
    }

    private static long ino(Path p) throws Exception {
        return ((Number) Files.getAttribute(p, "unix:ino")).longValue();
    }
}
