package io.qsup.vm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What one process costs the host, read from {@code /proc}: CPU time of all its threads ({@code /proc/PID/stat}
 * fields 14 and 15, utime and stime) and resident memory ({@code VmRSS} of {@code /proc/PID/status}). Reading never
 * touches the process itself, so a frozen (SIGSTOP) or busy QEMU answers as fast as any other.
 *
 * @param pid        the process
 * @param cpuSeconds user plus system CPU time of all its threads, in seconds
 * @param rssBytes   resident set size in bytes
 * @param at         when it was read, for rates
 */
public record ProcUsage(long pid, double cpuSeconds, long rssBytes, java.time.Instant at) {
    /** AT_CLKTCK of the auxiliary vector: the unit of utime and stime. */
    private static final int AT_CLKTCK = 17;
    /** Clock ticks per second; USER_HZ is 100 on every mainstream Linux, the auxiliary vector says for sure. */
    static final long CLOCK_TICKS = clockTicks();

    /** Reads the usage of {@code pid}; throws when the process is gone or {@code /proc} cannot be read. */
    public static ProcUsage read(long pid) throws IOException {
        return read(Path.of("/proc"), pid);
    }

    static ProcUsage read(Path proc, long pid) throws IOException {
        String stat = Files.readString(proc.resolve(pid + "/stat"), StandardCharsets.US_ASCII);
        String status = Files.readString(proc.resolve(pid + "/status"), StandardCharsets.UTF_8);
        return new ProcUsage(pid, cpuSeconds(stat), rssBytes(status), java.time.Instant.now());
    }

    /** utime + stime of a {@code /proc/PID/stat} line, in seconds; fields after the command name are counted from ')'. */
    static double cpuSeconds(String stat) {
        int close = stat.lastIndexOf(')');
        if (close < 0) {
            throw new IllegalArgumentException("not a /proc/PID/stat line");
        }
        String[] rest = stat.substring(close + 2).trim().split(" +");
        // rest[0] is field 3 (state): utime is field 14, stime field 15
        if (rest.length < 13) {
            throw new IllegalArgumentException("short /proc/PID/stat line");
        }
        long ticks = Long.parseLong(rest[11]) + Long.parseLong(rest[12]);
        return (double) ticks / CLOCK_TICKS;
    }

    /** {@code VmRSS:  1234 kB} of {@code /proc/PID/status}, in bytes; 0 for a process without memory (a zombie). */
    static long rssBytes(String status) {
        for (String line : status.split("\n")) {
            if (line.startsWith("VmRSS:")) {
                String[] f = line.substring(6).trim().split("\\s+");
                return Long.parseLong(f[0]) * 1024;
            }
        }
        return 0;
    }

    private static long clockTicks() {
        try {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(Path.of("/proc/self/auxv"))).order(ByteOrder.nativeOrder());
            while (b.remaining() >= 16) {
                long type = b.getLong();
                long value = b.getLong();
                if (type == AT_CLKTCK && value > 0) {
                    return value;
                }
                if (type == 0) {
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            // fall back to USER_HZ
        }
        return 100;
    }
}
