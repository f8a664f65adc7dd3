package io.qsup.daemon;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.CoreConstants;
import ch.qos.logback.core.pattern.DynamicConverter;
import ch.qos.logback.core.spi.ContextAwareBase;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Logging of qsupd (and of the CLI when {@code -Dqsup.logLevel} asks for it), set up in code when logback starts,
 * found by logback through {@code META-INF/services}: one console appender on stderr, the root at
 * {@code qsup.logLevel} or WARN until the settings' {@code log-level} applies. Under systemd, with stderr connected to
 * the journal ({@link #stderrIsJournal}), each line starts with its {@code <N>} priority, stack trace
 * lines included, and has no timestamp (the journal adds its own); anywhere else it starts with the time.
 *
 * <p>Not a logback.xml: parsing one (Joran, SAX) took about 20 ms of each daemon start. A
 * {@code -Dlogback.configurationFile} still wins: then this steps aside for logback's own configurator.
 */
public final class LogSetup extends ContextAwareBase implements Configurator {
    static final String PLAIN = "%d{HH:mm:ss.SSS} %-5level [%thread] %logger{0}: %msg%n";
    static final String JOURNAL = "%priority%logger{0}: %msg%n%replace(%ex){'(?m)^(.)', '%priority$1'}%nopex";

    @Override
    public ExecutionStatus configure(LoggerContext ctx) {
        if (System.getProperty("logback.configurationFile") != null) {
            return ExecutionStatus.INVOKE_NEXT_IF_ANY;
        }
        boolean journal = stderrIsJournal(System.getenv("JOURNAL_STREAM"),
                System.getenv("INVOCATION_ID"));
        if (journal) {
            @SuppressWarnings("rawtypes") // logback's registry holds raw converter suppliers
            Map<String, Supplier<DynamicConverter>> rules = new HashMap<>();
            rules.put("priority", JournalPriorityConverter::new);
            ctx.putObject(CoreConstants.PATTERN_RULE_REGISTRY_FOR_SUPPLIERS, rules);
        }
        PatternLayoutEncoder encoder = new PatternLayoutEncoder();
        encoder.setContext(ctx);
        encoder.setPattern(journal ? JOURNAL : PLAIN);
        encoder.start();
        ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
        stderr.setContext(ctx);
        stderr.setName(journal ? "JOURNAL" : "STDERR");
        stderr.setTarget("System.err");
        stderr.setEncoder(encoder);
        stderr.start();
        Logger root = ctx.getLogger(Logger.ROOT_LOGGER_NAME);
        root.setLevel(Level.toLevel(System.getProperty("qsup.logLevel"), Level.WARN));
        root.addAppender(stderr);
        return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
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
