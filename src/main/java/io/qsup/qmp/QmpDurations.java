package io.qsup.qmp;

import java.time.Duration;

/** Formats durations the way qsup writes them in messages and config: {@code 500ms}, {@code 5s}, {@code 1.5s}. */
public final class QmpDurations {
    private QmpDurations() {}

    public static String format(Duration d) {
        long ms = d.toMillis();
        if (ms < 1000) {
            return ms + "ms";
        }
        if (ms % 1000 == 0) {
            return ms / 1000 + "s";
        }
        return String.format(java.util.Locale.ROOT, "%.3fs", ms / 1000.0).replaceAll("0+s$", "s");
    }
}
