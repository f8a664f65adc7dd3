package io.qsup.config;

import java.nio.file.Path;

/**
 * One problem in a configuration file, located by line and column (1-based; 0 when the problem concerns the
 * whole file) and by key path such as {@code disks[1].format}.
 */
public record ConfigError(Path file, int line, int column, String keyPath, String message) {

    /** The problem as users see it: {@code file:line:col: key: message}. */
    public String format() {
        StringBuilder sb = new StringBuilder();
        sb.append(file == null ? "<settings>" : file.toString());
        if (line > 0) {
            sb.append(':').append(line).append(':').append(column);
        }
        sb.append(": ");
        if (keyPath != null && !keyPath.isEmpty()) {
            sb.append(keyPath).append(": ");
        }
        sb.append(message);
        return sb.toString();
    }

    @Override
    public String toString() {
        return format();
    }
}
