package io.qsup.vm;

import java.time.Duration;

/**
 * One grid of probe times for the whole daemon: every VM's liveness probe and guest-agent ping with the same interval
 * fall due at the same instants. A hundred probes that wake together are handled by carrier threads that are already
 * awake; a hundred probes spread over the interval each wake a parked carrier, and on an idle daemon those wake-ups
 * are most of its CPU (BENCHMARKS.md, figure 6).
 */
final class ProbeClock {
    private static final long ORIGIN = System.nanoTime();

    private ProbeClock() {}

    /** The first grid instant of {@code interval} after {@code now} ({@link System#nanoTime} values). */
    static long next(long now, Duration interval) {
        long step = Math.max(1, interval.toNanos());
        return ORIGIN + (Math.floorDiv(now - ORIGIN, step) + 1) * step;
    }

    /** How long from {@code now} to {@link #next}. */
    static Duration untilNext(long now, Duration interval) {
        return Duration.ofNanos(next(now, interval) - now);
    }
}
