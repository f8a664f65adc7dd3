package io.qsup.invariant;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The test's own record of what it did and saw, each line stamped with seconds since the run began; printed as it
 * goes (to the test's output file) and kept for the failure message and the artifacts.
 *
 * <p>Thread-safe: lines from the driver and from worker threads are appended under this object's monitor.
 */
final class ActionLog {
    private final long t0 = System.nanoTime();
    private final List<String> lines = new ArrayList<>();
    private final Path file;

    /** @param file where every line is also appended, or null */
    ActionLog(Path file) {
        this.file = file;
    }

    /** When the run began, as a {@link System#nanoTime()}. */
    long t0() {
        return t0;
    }

    /** {@code 12.345s}: a {@link System#nanoTime()} as seconds since the run began. */
    String label(long nanos) {
        return String.format("%7.3fs", (nanos - t0) / 1e9);
    }

    String now() {
        return label(System.nanoTime());
    }

    synchronized void add(String line) {
        String l = now() + " " + line;
        lines.add(l);
        System.out.println(l);
        if (file != null) {
            try {
                Files.writeString(file, l + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            } catch (IOException e) {
                System.out.println("(cannot append to " + file + ": " + e + ")");
            }
        }
    }

    synchronized List<String> lines() {
        return List.copyOf(lines);
    }

    synchronized String text() {
        return String.join("\n", lines);
    }
}
