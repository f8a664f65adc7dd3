package io.qsup.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A JVM's threads, counted two ways. {@code /proc/PID/task} counts OS threads: every platform thread, carriers of
 * virtual threads included, plus the JVM's own (GC, JIT, VM thread). {@code jcmd PID Thread.dump_to_file -format=json}
 * names the Java threads: platform ones, the virtual-thread scheduler's carriers among them, and virtual ones. The OS
 * count is read first and leaves out the "Attach Listener" thread that jcmd's attach adds.
 */
record Threads(int os, int javaPlatform, int carriers, int virtual) {
    /** JVM-internal threads: OS threads that are not Java threads. */
    int jvmInternal() {
        return os - javaPlatform;
    }

    private static String comm(Path task) {
        try {
            return Files.readString(task.resolve("comm")).trim();
        } catch (IOException e) {
            return "";
        }
    }

    static Threads of(long pid, Path scratch) throws IOException, InterruptedException {
        int os;
        try (Stream<Path> s = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            // an Attach Listener left by an earlier jcmd is not qsupd's: leave it out of both counts
            os = (int) s.filter(t -> !comm(t).equals("Attach Listener")).count();
        }
        Path dump = scratch.resolve("threads-" + pid + "-" + System.nanoTime() + ".json");
        String jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd").toString();
        Process p = new ProcessBuilder(jcmd, Long.toString(pid), "Thread.dump_to_file", "-format=json", dump.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0 || !Files.exists(dump)) {
            throw new IOException("jcmd " + pid + " Thread.dump_to_file failed: " + out);
        }
        JsonNode containers = new ObjectMapper().readTree(dump.toFile()).path("threadDump").path("threadContainers");
        Files.deleteIfExists(dump);
        int platform = 0;
        int carriers = 0;
        int virtual = 0;
        for (JsonNode c : containers) {
            // The default scheduler of virtual threads is a ForkJoinPool whose workers sit in a shared container.
            boolean scheduler = c.path("container").asText().startsWith("ForkJoinPool-")
                    && c.path("container").asText().contains("SharedThreadContainer");
            for (JsonNode t : c.path("threads")) {
                if (t.path("virtual").asBoolean(false)) {
                    virtual++;
                } else if (!t.path("name").asText().equals("Attach Listener")) {
                    platform++;
                    if (scheduler) {
                        carriers++;
                    }
                }
            }
        }
        return new Threads(os, platform, carriers, virtual);
    }
}
