package io.qsup.supervisor;

import io.qsup.vm.VmEvent;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.apache.commons.exec.CommandLine;
import org.apache.commons.exec.DefaultExecutor;
import org.apache.commons.exec.ExecuteWatchdog;
import org.apache.commons.exec.LogOutputStream;
import org.apache.commons.exec.PumpStreamHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the optional hook executable on every state change, with {@code QSUP_VM}, {@code QSUP_OLD_STATE},
 * {@code QSUP_NEW_STATE}, {@code QSUP_CAUSE} and {@code QSUP_TIME} in its environment, through commons-exec with a
 * timeout. Its output goes to the log line by line.
 *
 * <p>Threading: {@link #accept} only queues and returns at once, so it may be called from a state-machine listener.
 * Each VM has its own virtual thread ({@code hook NAME}) that runs its hooks one after another in event order; a slow
 * hook delays only later hooks of the same VM, never supervision.
 */
public final class HookRunner implements java.util.function.Consumer<VmEvent>, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(HookRunner.class);

    private final Path executable;
    private final Duration timeout;
    private final Map<String, ExecutorService> perVm = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.AtomicLong runs = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong failures = new java.util.concurrent.atomic.AtomicLong();

    /**
     * @param executable the hook program; run directly, no shell
     * @param timeout    how long one run may take before it is killed
     */
    public HookRunner(Path executable, Duration timeout) {
        this.executable = executable;
        this.timeout = timeout;
    }

    @Override
    public void accept(VmEvent event) {
        if (!(event instanceof VmEvent.StateChange sc)) {
            return;
        }
        ExecutorService ex = perVm.computeIfAbsent(sc.vm(),
                vm -> Executors.newSingleThreadExecutor(Thread.ofVirtual().name("hook " + vm).factory()));
        try {
            ex.execute(() -> run(sc));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            log.debug("VM {}: hook runner closed, not running hook for {} -> {}", sc.vm(), sc.from(), sc.to());
        }
    }

    private void run(VmEvent.StateChange sc) {
        Map<String, String> env = new HashMap<>(System.getenv());
        env.remove("NOTIFY_SOCKET"); // only qsupd itself talks to systemd
        env.put("QSUP_VM", sc.vm());
        env.put("QSUP_OLD_STATE", sc.from().label());
        env.put("QSUP_NEW_STATE", sc.to().label());
        env.put("QSUP_CAUSE", sc.cause().label());
        env.put("QSUP_DETAIL", sc.detail());
        env.put("QSUP_TIME", sc.time().toString());
        LogOutputStream out = new LogOutputStream() {
            @Override
            protected void processLine(String line, int level) {
                log.info("VM {}: hook: {}", sc.vm(), line);
            }
        };
        ExecuteWatchdog watchdog = ExecuteWatchdog.builder().setTimeout(timeout)
                .setThreadFactory(Thread.ofVirtual().name("hook-watchdog " + sc.vm()).factory()).get();
        DefaultExecutor exec = DefaultExecutor.builder()
                .setThreadFactory(Thread.ofVirtual().name("hook-io " + sc.vm()).factory())
                .setExecuteStreamHandler(new PumpStreamHandler(out, out))
                .get();
        exec.setWatchdog(watchdog);
        exec.setExitValues(null);
        runs.incrementAndGet();
        try {
            int rc = exec.execute(new CommandLine(executable.toString()), env);
            out.close();
            if (watchdog.killedProcess() || rc != 0) {
                failures.incrementAndGet();
            }
            if (watchdog.killedProcess()) {
                log.warn("VM {}: hook {} killed after {} ms ({} -> {})", sc.vm(), executable, timeout.toMillis(),
                        sc.from(), sc.to());
            } else if (rc != 0) {
                log.warn("VM {}: hook {} exited {} ({} -> {})", sc.vm(), executable, rc, sc.from(), sc.to());
            }
        } catch (IOException e) {
            failures.incrementAndGet();
            log.warn("VM {}: cannot run hook {}: {}; check that it exists and is executable", sc.vm(), executable,
                    e.getMessage());
        }
    }

    /** Hook runs started so far. */
    public long runs() {
        return runs.get();
    }

    /** Hook runs that exited non-zero, were killed at the timeout or could not be started. */
    public long failures() {
        return failures.get();
    }

    /** Stops accepting hooks and waits a little for running ones. */
    @Override
    public void close() {
        for (ExecutorService ex : perVm.values()) {
            ex.shutdown();
        }
        for (ExecutorService ex : perVm.values()) {
            try {
                ex.awaitTermination(timeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
