package io.qsup.cli;

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;

/**
 * Times as {@code qsup} prints them for people: in the host's local time zone, and relative where that reads better
 * ({@code 3m ago}). {@code --json} keeps the daemon's own seconds instead.
 */
final class TimeText {
    private static final DateTimeFormatter EVENT = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS");
    private static final DateTimeFormatter SINCE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

    private TimeText() {}

    /** An event's time, to the millisecond: {@code 2026-12-01 09:23:28.128}. */
    static String event(Instant t, ZoneId zone) {
        return EVENT.format(t.atZone(zone));
    }

    /** A moment some time back: {@code 2026-12-01 09:23:28 (3m ago)}. */
    static String since(Instant t, Instant now, ZoneId zone) {
        return SINCE.format(t.atZone(zone)) + " (" + ago(Duration.between(t, now)) + ")";
    }

    /** {@code 3m ago}, {@code 2h5m ago}; {@code just now} under a second. */
    static String ago(Duration d) {
        return d.toSeconds() < 1 ? "just now" : VmText.duration(d) + " ago";
    }
}
