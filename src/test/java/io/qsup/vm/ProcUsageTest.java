package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** CPU time and resident memory of a process from /proc, as the metrics and qsup top show them. */
class ProcUsageTest {
    @TempDir Path proc;

    @Test
    void readsThisJvmsCpuTimeAndMemory() throws Exception {
        long pid = ProcessHandle.current().pid();
        ProcUsage first = ProcUsage.read(pid);
        long spin = System.nanoTime() + 300_000_000L;
        double x = 0;
        while (System.nanoTime() < spin) {
            x += Math.sqrt(x + 1);
        }
        ProcUsage second = ProcUsage.read(pid);
        assertThat(x).isPositive();
        assertThat(second.cpuSeconds()).as("CPU time grows while this thread spins")
                .isGreaterThan(first.cpuSeconds());
        assertThat(second.rssBytes()).isGreaterThan(10L << 20);
        assertThat(second.at()).isAfter(first.at());
    }

    @Test
    void addsUserAndSystemTicksAndFindsTheFieldsAfterACommandNameWithParentheses() throws Exception {
        Files.createDirectories(proc.resolve("42"));
        // comm "qemu) (x" holds a blank and a parenthesis; utime 250 and stime 50 ticks are fields 14 and 15
        Files.writeString(proc.resolve("42/stat"),
                "42 (qemu) (x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 12345 1000000 500 18446744073709551615\n");
        Files.writeString(proc.resolve("42/status"), "Name:\tqemu\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\n");
        ProcUsage u = ProcUsage.read(proc, 42);
        assertThat(u.cpuSeconds()).isEqualTo(300.0 / ProcUsage.CLOCK_TICKS);
        assertThat(u.rssBytes()).isEqualTo(2048L * 1024);
    }
}
