package io.qsup.daemon;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;
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
 * loops for proof, judges them and sends the pings; it owns the loops' {@code reportedStale} flags. {@link #close()}
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
                List<String> stale = judge(now, p);
                LoopHealth.setStuck(stale);
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

    /**
     * Asks quiet loops for proof (a loop in a declared quiet step too: the request runs once the step is over, and ends
     * the allowance) and returns the names of those silent longer than a period; logs changes.
     */
    private List<String> judge(long now, long p) {
        List<String> stale = new ArrayList<>();
        for (LoopHealth.Loop l : LoopHealth.loops()) {
            long silent = l.silentNanos(now);
            if (silent > p / 2) {
                l.kick(now, p / 4);
            }
            silent = Math.min(silent, now - startedAt);
            if (silent > p && !l.quietAt(now)) {
                stale.add(l.name());
                if (!l.reportedStale) {
                    l.reportedStale = true;
                    log.warn("watchdog: {} made no progress for {} ms (allowed {} ms); no WATCHDOG=1 until it does, so"
                            + " systemd restarts qsupd (VMs keep running){}", l.name(), silent / 1_000_000,
                            p / 1_000_000, where(l.thread()));
                }
            } else if (l.reportedStale) {
                l.reportedStale = false;
                log.info("watchdog: {} makes progress again", l.name());
            }
        }
        return stale;
    }

    /** "; thread X at a.b(c), ..." for the log, or empty. */
    private static String where(Thread t) {
        if (t == null) {
            return "";
        }
        String frames = Arrays.stream(t.getStackTrace()).limit(8).map(StackTraceElement::toString)
                .collect(Collectors.joining(" < "));
        return "; thread '" + t.getName() + "' is " + t.getState() + (frames.isEmpty() ? "" : " at " + frames);
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
