package io.qsup.supervisor;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * systemd's {@code StartLimitBurst=} within {@code StartLimitIntervalSec=}: at most {@code burst} automatic starts in
 * any window of {@code interval}; the next one is refused and the VM goes to {@code failed}.
 *
 * @param burst    start-limit-burst; 0 means no limit
 * @param interval start-limit-interval
 */
public record StartLimit(int burst, Duration interval) {

    public StartLimit {
        if (burst < 0 || interval.isNegative()) {
            throw new IllegalArgumentException("start limit needs burst >= 0 and interval >= 0: " + burst + ", " + interval);
        }
    }

    /**
     * Checks a start at {@code now} against the earlier starts.
     *
     * @param recentStarts the starts counted so far (any order; older ones are ignored)
     * @return the starts to keep, including {@code now}, or null if this start would exceed the limit
     */
    public List<Instant> admit(List<Instant> recentStarts, Instant now) {
        List<Instant> kept = new ArrayList<>();
        Instant horizon = now.minus(interval);
        for (Instant t : recentStarts) {
            if (t.isAfter(horizon)) {
                kept.add(t);
            }
        }
        if (burst > 0 && kept.size() >= burst) {
            return null;
        }
        kept.add(now);
        return kept;
    }
}
