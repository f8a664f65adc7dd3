package io.qsup.supervisor;

import java.time.Duration;

/**
 * The restart delay curve, as systemd's {@code RestartSec=}, {@code RestartSteps=} and {@code RestartMaxDelaySec=}
 * define it: the first restart waits {@code restart-delay}, and the delay grows geometrically so that it reaches
 * {@code restart-max-delay} after {@code restart-steps} restarts and stays there. With {@code restart-steps: 0}, or a
 * max not above the delay, every restart waits {@code restart-delay}.
 *
 * @param delay    restart-delay, the first wait
 * @param maxDelay restart-max-delay, the cap
 * @param steps    restart-steps, restarts needed to reach the cap
 */
public record Backoff(Duration delay, Duration maxDelay, int steps) {

    public Backoff {
        if (delay.isNegative() || maxDelay.isNegative() || steps < 0) {
            throw new IllegalArgumentException("backoff needs non-negative delay, max-delay and steps: " + delay + ", "
                    + maxDelay + ", " + steps);
        }
    }

    /**
     * The wait before restart number {@code attempt}, counting from 0 for the first restart after a good run.
     */
    public Duration delayFor(int attempt) {
        if (attempt <= 0 || steps == 0 || maxDelay.compareTo(delay) <= 0) {
            return delay;
        }
        if (attempt >= steps) {
            return maxDelay;
        }
        double lo = Math.max(delay.toNanos(), 1_000_000L); // from 0 a geometric curve cannot grow; start at 1 ms
        double hi = maxDelay.toNanos();
        double nanos = lo * Math.pow(hi / lo, (double) attempt / steps);
        // whole milliseconds: 7999.99 ms reads as 8 s in logs and timers care for nothing finer
        return Duration.ofMillis(Math.min(Math.round(nanos / 1e6), maxDelay.toMillis()));
    }
}
