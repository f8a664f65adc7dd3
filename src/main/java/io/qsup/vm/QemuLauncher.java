package io.qsup.vm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.apache.commons.exec.CommandLine;
import org.apache.commons.exec.DefaultExecutor;
import org.apache.commons.exec.ExecuteWatchdog;
import org.apache.commons.exec.PumpStreamHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs {@code qemu-system-x86_64 ... -daemonize -pidfile P} through commons-exec with a watchdog and returns once the
 * launcher parent has exited, which QEMU does only after the daemon child finished its setup (or failed it).
 *
 * <p>How a daemonized QEMU holds its stdio, checked on QEMU 7.2 by reading {@code /proc/PID/fd} of the daemon: while it
 * initialises, the child still writes to the launcher's stderr (so its error messages reach us through the parent's
 * pipe); once setup succeeds it reopens fds 0, 1 and 2 onto {@code /dev/null} and only keeps a pipe of its own (its
 * daemonize handshake, whose other end died with the parent). The JVM closes every other descriptor in the child
 * ({@code jspawnhelper}), so nothing we hold leaks in. Hence the pipes commons-exec creates for stdout/stderr reach EOF
 * as soon as the daemon finished setup: no pipe ties a running QEMU to qsupd, and a {@code kill -9} of qsupd cannot
 * hurt it with SIGPIPE. {@code QemuLauncherTest} checks this on every run.
 *
 * <p>Stateless and thread-safe; each call uses its own executor and pump threads.
 */
public final class QemuLauncher {
    private static final Logger log = LoggerFactory.getLogger(QemuLauncher.class);
    /** QEMU's messages are short; cap what we keep so a runaway writer cannot fill the heap. */
    private static final int MAX_OUTPUT = 64 * 1024;

    /**
     * Outcome of the launcher process.
     *
     * @param exitCode the parent's exit code (0: the daemon is up)
     * @param output   what QEMU printed on stdout and stderr, word for word
     * @param timedOut true if the watchdog killed the launcher
     */
    public record Result(int exitCode, String output, boolean timedOut) {
        public boolean ok() {
            return exitCode == 0 && !timedOut;
        }
    }

    /**
     * Runs the argv and waits for the launcher parent to exit.
     *
     * @param vm      VM name, for thread names and log lines
     * @param argv    full argv, argv[0] the binary; passed as is, no shell, no quoting
     * @param qemuLog per-VM log file that gets a header line and QEMU's output appended; null for none
     * @param timeout how long the parent may take before the watchdog kills it
     * @throws IOException if the binary cannot be run at all (not found, not executable)
     */
    public Result run(String vm, List<String> argv, Path qemuLog, Duration timeout) throws IOException {
        CommandLine cl = new CommandLine(argv.getFirst());
        for (String a : argv.subList(1, argv.size())) {
            cl.addArgument(a, false);
        }
        BoundedBuffer out = new BoundedBuffer(MAX_OUTPUT);
        PumpStreamHandler pumps = new PumpStreamHandler(out, out);
        ExecuteWatchdog watchdog = ExecuteWatchdog.builder()
                .setTimeout(timeout)
                .setThreadFactory(Thread.ofVirtual().name("qemu-launch-watchdog " + vm).factory())
                .get();
        DefaultExecutor exec = DefaultExecutor.builder()
                .setThreadFactory(Thread.ofVirtual().name("qemu-launch " + vm).factory())
                .setExecuteStreamHandler(pumps)
                .get();
        exec.setWatchdog(watchdog);
        exec.setExitValues(null); // a failing QEMU is a result, not an exception
        log.debug("VM {}: exec {}", vm, argv);
        int rc;
        try {
            rc = exec.execute(cl);
        } catch (IOException e) {
            // exit codes are accepted above, so this is a failure to start the process itself
            throw new IOException("cannot run " + argv.getFirst() + ": " + rootMessage(e)
                    + "; check qemu-binary in the daemon settings", e);
        }
        String text = out.text();
        Result result = new Result(rc, text, watchdog.killedProcess());
        if (qemuLog != null) {
            appendLog(qemuLog, argv, result);
        }
        return result;
    }

    private static void appendLog(Path qemuLog, List<String> argv, Result r) {
        StringBuilder sb = new StringBuilder();
        sb.append(Instant.now()).append(" launch: ").append(String.join(" ", argv)).append('\n');
        if (!r.output().isEmpty()) {
            sb.append(r.output());
            if (!r.output().endsWith("\n")) {
                sb.append('\n');
            }
        }
        sb.append(Instant.now()).append(" launcher exit ").append(r.exitCode())
                .append(r.timedOut() ? " (killed by watchdog)" : "").append('\n');
        try {
            Files.createDirectories(qemuLog.getParent());
            Files.writeString(qemuLog, sb, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            log.warn("cannot append to {}: {}", qemuLog, e.toString());
        }
    }

    private static String rootMessage(Throwable t) {
        while (t.getCause() != null) {
            t = t.getCause();
        }
        return t.getMessage();
    }

    /** Collects output up to a cap; both pump threads write here, so writes are synchronized. */
    private static final class BoundedBuffer extends OutputStream {
        private final ByteArrayOutputStream buf = new ByteArrayOutputStream();
        private final int cap;
        private boolean truncated;

        BoundedBuffer(int cap) {
            this.cap = cap;
        }

        @Override
        public synchronized void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) {
            int room = cap - buf.size();
            if (len > room) {
                truncated = true;
                len = Math.max(room, 0);
            }
            buf.write(b, off, len);
        }

        synchronized String text() {
            String s = buf.toString(StandardCharsets.UTF_8);
            return truncated ? s + "\n[output truncated at " + cap + " bytes]\n" : s;
        }
    }
}
