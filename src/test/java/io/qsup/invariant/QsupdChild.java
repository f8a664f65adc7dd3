package io.qsup.invariant;

import io.qsup.daemon.QsupdMain;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One qsupd as a real child JVM on the test classpath, its output going to a file (never a pipe, so nothing ties the
 * daemon or its QEMUs to the test JVM). Tests end it with {@link #kill9()} or {@link #term()}, by its own pid.
 *
 * <p>Not thread-safe: one owner thread starts and ends it.
 */
public final class QsupdChild {
    private final Process process;
    private final Path log;
    private final int number;

    private QsupdChild(Process process, Path log, int number) {
        this.process = process;
        this.log = log;
        this.number = number;
    }

    /** Starts {@code qsupd --config settings}, logging at INFO to {@code log}. */
    public static QsupdChild start(Path settings, Path log, int number) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                // a small, quick JVM: the host has two cores and the daemon is restarted many times
                "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m",
                "-Dqsup.logLevel=INFO", "-cp", System.getProperty("java.class.path"), QsupdMain.class.getName(),
                "--config", settings.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        return new QsupdChild(p, log, number);
    }

    public long pid() {
        return process.pid();
    }

    public int number() {
        return number;
    }

    public Path log() {
        return log;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** The exit code; only once it has exited. */
    public int exitValue() {
        return process.exitValue();
    }

    /** {@code kill -9}. */
    public void kill9() {
        process.destroyForcibly();
    }

    /** SIGTERM, the way systemd stops it. */
    public void term() {
        process.destroy();
    }

    /** Waits for the exit; true if it exited within the timeout. */
    public boolean awaitExit(Duration timeout) throws InterruptedException {
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public String toString() {
        return "qsupd#" + number + " (pid " + process.pid() + ")";
    }
}
