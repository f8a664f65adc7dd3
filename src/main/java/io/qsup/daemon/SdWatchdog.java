package io.qsup.daemon;

import io.qsup.vm.LoopHealth;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * systemd's watchdog ({@code WatchdogSec=}): {@code WATCHDOG=1} every half of {@code WATCHDOG_USEC}, sent only while
 * every loop registered in {@link LoopHealth} has proved progress within that half. A loop that falls silent is named
 * once at WARN (with where its thread stands) and the pings stop, so systemd restarts a stuck qsupd; the VMs keep
 * running and the next qsupd adopts them. Enabled as {@code sd_watchdog_enabled(3)} says: {@code WATCHDOG_USEC} set,
 * and {@code WATCHDOG_PID} unset or ours.
 *
 * <p>Threading: one platform thread ({@code sd-watchdog}; junixsocket I/O never runs on a virtual thread) asks idle
 * loops for proof, has {@link LoopHealth#judge} judge them, and sends the pings. {@link #close()}
 * may be called from any thread.
 */
final class SdWatchdog implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SdWatchdog.class);

    private final String socket;
    private final Duration period;
    private final Thread thread;
    /** Watchdog thread only: silence before this does not count (start-up of a loaded host). */
    private long startedAt;

    private SdWatchdog(String socket, Duration period) {
        this.socket = socket;
        this.period = period;
        this.thread = Thread.ofPlatform().daemon().name("sd-watchdog").unstarted(this::loop);
    }

    /** The watchdog systemd asked for in the environment, or empty (then qsupd sends no WATCHDOG=1). */
    static Optional<SdWatchdog> fromEnvironment() {
        String socket = System.getenv("NOTIFY_SOCKET");
        return interval(System.getenv("WATCHDOG_USEC"), System.getenv("WATCHDOG_PID"), ProcessHandle.current().pid())
                .filter(d -> socket != null && !socket.isEmpty())
                .map(d -> new SdWatchdog(socket, d.dividedBy(2)));
    }

    /**
     * {@code sd_watchdog_enabled(3)}: the watchdog interval if {@code usec} is a positive number and {@code pid} is
     * unset or {@code ourPid}; else empty, logged.
     */
    static Optional<Duration> interval(String usec, String pid, long ourPid) {
        if (usec == null || usec.isEmpty()) {
            return Optional.empty();
        }
        long micros;
        try {
            micros = Long.parseLong(usec.strip());
        } catch (NumberFormatException e) {
            micros = 0;
        }
        if (micros <= 0) {
            log.warn("watchdog: WATCHDOG_USEC={} is not a positive number of microseconds; sending no WATCHDOG=1"
                    + " (check WatchdogSec= in the unit)", usec);
            return Optional.empty();
        }
        if (pid != null && !pid.isEmpty() && !pid.strip().equals(Long.toString(ourPid))) {
            log.info("watchdog: WATCHDOG_PID={} is not qsupd's pid {}; the watchdog is another process's, sending no"
                    + " WATCHDOG=1", pid, ourPid);
            return Optional.empty();
        }
        return Optional.of(Duration.ofNanos(micros * 1_000));
    }

    /** How often qsupd judges its loops and pings: half of {@code WatchdogSec}. */
    Duration period() {
        return period;
    }

    void start() {
        log.info("watchdog: WATCHDOG=1 every {} ms while every supervisor loop makes progress", period.toMillis());
        thread.start();
    }

    private void loop() {
        startedAt = System.nanoTime();
        long p = period.toNanos();
        long tick = Math.clamp(p / 4, 50_000_000L, 1_000_000_000L);
        long nextPing = System.nanoTime() + tick; // after one round of asking idle loops for proof
        try {
            while (!Thread.currentThread().isInterrupted()) {
                long now = System.nanoTime();
                List<String> stale = LoopHealth.judge(now, p, startedAt);
                if (now - nextPing >= 0) {
                    if (stale.isEmpty()) {
                        SdNotify.notify(socket, "WATCHDOG=1");
                    }
                    nextPing = now + p;
                }
                Thread.sleep(Duration.ofNanos(Math.min(tick, Math.max(1, nextPing - System.nanoTime()))));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        thread.interrupt();
        try {
            thread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
