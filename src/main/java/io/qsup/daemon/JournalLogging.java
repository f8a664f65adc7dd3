package io.qsup.daemon;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.joran.JoranConfigurator;
import ch.qos.logback.core.joran.spi.JoranException;
import java.io.IOException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.LoggerFactory;

/**
 * Picks qsupd's log format at start: under systemd, with stderr connected to the journal, {@code logback-journal.xml}
 * (no timestamps, {@code <N>} priority prefixes); anywhere else the default {@code logback.xml} stays. Called once,
 * from the main thread, before the daemon logs anything that matters.
 */
final class JournalLogging {
    static final String CONFIG = "/logback-journal.xml";

    private JournalLogging() {}

    /** Switches to the journal format if stderr is the journal; returns whether it did. */
    static boolean configure() {
        if (!stderrIsJournal(System.getenv("JOURNAL_STREAM"), System.getenv("INVOCATION_ID"))) {
            return false;
        }
        if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx)) {
            return false;
        }
        URL url = JournalLogging.class.getResource(CONFIG);
        try {
            ctx.reset();
            JoranConfigurator c = new JoranConfigurator();
            c.setContext(ctx);
            c.doConfigure(url);
            return true;
        } catch (JoranException e) {
            System.err.println("qsupd: cannot read " + CONFIG + " from the jar (" + e.getMessage() + "); logging"
                    + " without priorities");
            return false;
        }
    }

    /**
     * True when {@code JOURNAL_STREAM} ("DEV:INODE") names the file behind our stderr, the check sd_journal_stream_fd
     * users make: a service whose stderr systemd pointed elsewhere, or a child that inherited the variable, keeps
     * timestamps. When stderr cannot be inspected, a set {@code INVOCATION_ID} (we run as a systemd unit) decides.
     */
    static boolean stderrIsJournal(String journalStream, String invocationId) {
        if (journalStream == null || journalStream.isEmpty()) {
            return false;
        }
        String[] parts = journalStream.split(":");
        if (parts.length != 2) {
            return false;
        }
        try {
            Path stderr = Path.of("/proc/self/fd/2");
            long dev = ((Number) Files.getAttribute(stderr, "unix:dev")).longValue();
            long ino = ((Number) Files.getAttribute(stderr, "unix:ino")).longValue();
            return Long.parseLong(parts[0]) == dev && Long.parseLong(parts[1]) == ino;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return invocationId != null && !invocationId.isEmpty();
        }
    }
}
