package io.qsup.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.management.HotSpotDiagnosticMXBean;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The names of this JVM's live threads, virtual ones included ({@link Thread#getAllStackTraces} lists platform threads
 * only), from the JDK's JSON thread dump.
 */
public final class ThreadNames {
    /** A thread's name and whether it is virtual. */
    public record Named(String name, boolean virtual) {}

    private ThreadNames() {}

    public static List<Named> all() {
        Path dir = null;
        try {
            dir = Files.createTempDirectory("qsup-threads");
            Path file = dir.resolve("threads.json");
            ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class)
                    .dumpThreads(file.toString(), HotSpotDiagnosticMXBean.ThreadDumpFormat.JSON);
            JsonNode root = new ObjectMapper().readTree(file.toFile());
            List<Named> out = new ArrayList<>();
            for (JsonNode container : root.path("threadDump").path("threadContainers")) {
                for (JsonNode t : container.path("threads")) {
                    out.add(new Named(t.path("name").asText(""), t.path("virtual").asBoolean(false)));
                }
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (dir != null) {
                dir.resolve("threads.json").toFile().delete();
                dir.toFile().delete();
            }
        }
    }
}
