package io.qsup.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;

/**
 * One cgroup of the v1 freezer, made for a test and removed by {@link #close}. A task frozen there sits in
 * uninterruptible sleep: it answers nothing, and a SIGKILL stays pending until the group is thawed. That is how a QEMU
 * stuck in the kernel on its storage looks to qsupd, and SIGSTOP cannot fake it (SIGKILL ends a stopped process).
 *
 * <p>{@link #close} thaws the group first, so a task killed while frozen dies then, and removes the group once it is
 * empty; a task still in it goes back to the root group.
 */
public final class Freezer implements AutoCloseable {
    private static final Path ROOT = Path.of("/sys/fs/cgroup/freezer");

    private final Path dir;

    private Freezer(Path dir) {
        this.dir = dir;
    }

    /** True if this host has a v1 freezer hierarchy this process may make groups in. */
    public static boolean available() {
        return Files.isWritable(ROOT.resolve("tasks")) && Files.isDirectory(ROOT);
    }

    /** A new, empty group, named after the test run so nothing else is touched. */
    public static Freezer create() throws IOException {
        Path d = ROOT.resolve("qsup-test-" + UUID.randomUUID());
        Files.createDirectory(d);
        return new Freezer(d);
    }

    /** Moves {@code pid} (one task of it; QEMU's threads follow with {@code cgroup.procs}) here and freezes the group. */
    public void freeze(long pid) throws IOException, InterruptedException {
        Files.writeString(dir.resolve("cgroup.procs"), Long.toString(pid));
        Files.writeString(dir.resolve("freezer.state"), "FROZEN");
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!state().equals("FROZEN")) {
            if (System.nanoTime() > deadline) {
                throw new IOException("freezer group " + dir + " still " + state() + " after 10 s");
            }
            Thread.sleep(20);
        }
    }

    /** FROZEN, FREEZING or THAWED. */
    public String state() throws IOException {
        return Files.readString(dir.resolve("freezer.state")).trim();
    }

    public void thaw() throws IOException {
        Files.writeString(dir.resolve("freezer.state"), "THAWED");
    }

    @Override
    public void close() throws IOException, InterruptedException {
        thaw();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        String left = Files.readString(dir.resolve("cgroup.procs")).trim();
        while (!left.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(50);
            left = Files.readString(dir.resolve("cgroup.procs")).trim();
        }
        for (String pid : left.isEmpty() ? new String[0] : left.split("\n")) {
            try {
                Files.writeString(ROOT.resolve("cgroup.procs"), pid);
            } catch (IOException gone) {
                // ended meanwhile
            }
        }
        Files.delete(dir);
    }
}
