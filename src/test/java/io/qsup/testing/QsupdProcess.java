package io.qsup.testing;

import io.qsup.daemon.QsupdMain;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * qsupd as a real child JVM on the test classpath, with its output in a log file (never a pipe: nothing may tie the
 * daemon or its QEMUs to the test JVM). {@link #close()} kills it by pid if it is still alive.
 */
public final class QsupdProcess implements AutoCloseable {
    private final Process process;
    private final Path log;

    private QsupdProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /** Starts {@code qsupd --config SETTINGS EXTRA...}, logging at INFO to {@code log}. */
    public static QsupdProcess start(Path settings, Path log, String... extra) throws IOException {
        return start(List.of(), null, settings, log, Map.of(), List.of(), extra);
    }

    /**
     * Starts {@code qsupd --config SETTINGS EXTRA...} with {@code env} added to the environment and {@code jvmArgs}
     * (such as {@code -Dkey=value}) given to its JVM.
     */
    public static QsupdProcess start(Path settings, Path log, Map<String, String> env, List<String> jvmArgs,
            String... extra) throws IOException {
        return start(List.of(), null, settings, log, env, jvmArgs, extra);
    }

    /**
     * Starts qsupd through {@code wrapper} (such as {@code ip netns exec NS}, which execs qsupd in the same process,
     * so {@link #pid()} stays qsupd's) in {@code workDir} (null: the test's own), which is also where the QEMUs it
     * launches start, so relative paths in their argv resolve there.
     */
    public static QsupdProcess start(List<String> wrapper, Path workDir, Path settings, Path log, String... extra)
            throws IOException {
        return start(wrapper, workDir, settings, log, Map.of(), List.of(), extra);
    }

    /** True when this host's env(1) can reset a signal to its default disposition (coreutils 8.31 and later). */
    private static final boolean ENV_RESETS_HUP = envResetsHup();

    private static boolean envResetsHup() {
        try {
            Process p = new ProcessBuilder("env", "--default-signal=HUP", "true")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * {@code cmd} run with SIGHUP at its default disposition, as bin/qsupd runs qsupd: a test run under nohup (or under
     * any parent that ignores SIGHUP) would otherwise hand the ignored signal down to qsupd, which can then install no
     * handler for it. {@code env} execs the command, so its pid is the command's; a wrapper in {@code cmd} (nohup)
     * may still ignore it again.
     */
    public static List<String> withSighup(List<String> cmd) {
        List<String> out = new ArrayList<>();
        if (ENV_RESETS_HUP) {
            out.addAll(List.of("env", "--default-signal=HUP"));
        }
        out.addAll(cmd);
        return out;
    }

    /** The general form of the starters above. */
    public static QsupdProcess start(List<String> wrapper, Path workDir, Path settings, Path log,
            Map<String, String> env, List<String> jvmArgs, String... extra) throws IOException {
        List<String> cmd = new ArrayList<>(withSighup(wrapper));
        cmd.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Dqsup.logLevel=INFO"));
        cmd.addAll(jvmArgs);
        // absolute entries: the child may run in another working directory (a lab host's folder), and a harness
        // started from a checkout (scripts/bench) names target/classes relative to it
        String cp = java.util.Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .map(e -> e.isEmpty() ? e : Path.of(e).toAbsolutePath().toString())
                .collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator));
        cmd.addAll(List.of("-cp", cp, QsupdMain.class.getName(),
                "--config", settings.toString()));
        cmd.addAll(List.of(extra));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        if (workDir != null) {
            pb.directory(workDir.toFile());
        }
        pb.environment().putAll(env);
        return new QsupdProcess(pb.start(), log);
    }

    public long pid() {
        return process.pid();
    }

    public Process process() {
        return process;
    }

    public String log() throws IOException {
        return Files.exists(log) ? Files.readString(log) : "";
    }

    /** Waits until the log holds {@code text}; fails with the log if it does not within {@code timeout}. */
    public void awaitLog(String text, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!log().contains(text)) {
            if (!process.isAlive()) {
                throw new AssertionError("qsupd exited with " + process.exitValue() + " before logging '" + text
                        + "':\n" + log());
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("'" + text + "' not in the qsupd log within " + timeout + ":\n" + log());
            }
            Thread.sleep(50);
        }
    }

    /** SIGKILL, and waits for the exit. */
    public void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    /** SIGTERM; returns the exit code, or -1 if qsupd did not exit within {@code timeout}. */
    public int terminate(Duration timeout) throws InterruptedException {
        process.destroy();
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            kill9();
        }
    }
}
