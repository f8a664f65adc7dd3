package io.qsup.daemon;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.pattern.ClassicConverter;
import ch.qos.logback.classic.spi.ILoggingEvent;

/**
 * The {@code <N>} syslog-priority prefix that journald reads from a line on a service's stderr (sd-daemon(3)), so
 * {@code journalctl -p err} finds qsupd's errors: error 3, warn 4, info 6, debug and trace 7.
 */
public final class JournalPriorityConverter extends ClassicConverter {
    @Override
    public String convert(ILoggingEvent event) {
        return prefix(event.getLevel());
    }

    static String prefix(Level level) {
        return switch (level.toInt()) {
            case Level.ERROR_INT -> "<3>";
            case Level.WARN_INT -> "<4>";
            case Level.INFO_INT -> "<6>";
            default -> "<7>";
        };
    }
}
