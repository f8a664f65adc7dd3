package io.qsup.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Supplier;

/**
 * Collects the errors and warnings found in one file, so that one pass reports all of them. Only the first
 * {@link #LIMIT} of each by position are kept, then one entry that counts the rest: a file of thousands of mistakes
 * gives a report that still fits a screen, a log and a control-socket reply.
 */
final class Problems {
    /** How many errors (and, apart, warnings) of one file are reported in full. */
    static final int LIMIT = 50;
    private static final Comparator<ConfigError> BY_POSITION =
            Comparator.comparingInt(ConfigError::line).thenComparingInt(ConfigError::column);

    private final Path file;
    private final Capped errors = new Capped("errors");
    private final Capped warnings = new Capped("warnings");

    Problems(Path file) {
        this.file = file;
    }

    Path file() {
        return file;
    }

    void error(YamlNode.Location at, String keyPath, String message) {
        errors.add(new ConfigError(file, at.line(), at.column(), keyPath, message));
    }

    /** Like {@link #error(YamlNode.Location, String, String)}, making the message only if it will be reported. */
    void error(YamlNode.Location at, String keyPath, Supplier<String> message) {
        if (errors.leftOut(at.line(), at.column())) {
            errors.total++;
        } else {
            error(at, keyPath, message.get());
        }
    }

    /** Adds an error found outside this file's own parse, such as a name another file also uses. */
    void add(ConfigError e) {
        errors.add(e);
    }

    void warning(YamlNode.Location at, String keyPath, String message) {
        warnings.add(new ConfigError(file, at.line(), at.column(), keyPath, message));
    }

    /** The errors in file order: the first {@link #LIMIT}, then one that counts the others. */
    List<ConfigError> errors() {
        return errors.report();
    }

    /** The warnings in file order, capped like {@link #errors()}. */
    List<ConfigError> warnings() {
        return warnings.report();
    }

    boolean hasErrors() {
        return errors.total > 0;
    }

    /** The earliest problems by position, in memory bounded by {@link #LIMIT} whatever the count. */
    private final class Capped {
        private final String noun;
        private final List<ConfigError> kept = new ArrayList<>();
        private int total;
        /** Once LIMIT + 1 problems were kept, none after the last of them can be reported: it is the cut-off. */
        private ConfigError cutoff;

        Capped(String noun) {
            this.noun = noun;
        }

        boolean leftOut(int line, int column) {
            return cutoff != null && (line > cutoff.line() || line == cutoff.line() && column > cutoff.column());
        }

        void add(ConfigError e) {
            total++;
            if (leftOut(e.line(), e.column())) {
                return;
            }
            kept.add(e);
            if (kept.size() >= 4 * LIMIT) {
                // Keep one past the limit, so the count entry can point at the first problem left out.
                kept.sort(BY_POSITION);
                kept.subList(LIMIT + 1, kept.size()).clear();
                cutoff = kept.get(LIMIT);
            }
        }

        List<ConfigError> report() {
            List<ConfigError> sorted = new ArrayList<>(kept);
            sorted.sort(BY_POSITION);
            if (total <= LIMIT) {
                return List.copyOf(sorted);
            }
            List<ConfigError> out = new ArrayList<>(sorted.subList(0, LIMIT));
            ConfigError next = sorted.get(LIMIT);
            out.add(ConfigError.more(file, next.line(), next.column(), total - LIMIT, noun));
            return List.copyOf(out);
        }
    }
}
