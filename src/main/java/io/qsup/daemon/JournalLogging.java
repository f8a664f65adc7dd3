package io.qsup.daemon;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Whether qsupd's stderr is the journal, which decides its log format ({@link LogSetup}): under systemd, with stderr
 * connected to the journal, no timestamps and {@code <N>} priority prefixes; anywhere else, timestamps.
 */
final class JournalLogging {
    private JournalLogging() {}

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
