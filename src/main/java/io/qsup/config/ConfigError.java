package io.qsup.config;

import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One problem in a configuration file, located by line and column (1-based; 0 when the problem concerns the
 * whole file) and by key path such as {@code disks[1].format}. Past a per-file limit, one such problem stands for
 * all the others of its file ({@link #more}); it sits where the first of them is.
 */
public record ConfigError(Path file, int line, int column, String keyPath, String message) {
    private static final Pattern MORE = Pattern.compile("and (\\d+) more (errors|warnings) in this file, from here on; .*");

    /** The entry that stands for {@code count} further problems of {@code file}, the first at line:column. */
    static ConfigError more(Path file, int line, int column, int count, String noun) {
        return new ConfigError(file, line, column, "", "and " + count + " more " + noun + " in this file, from here on;"
                + " fix the ones above and check again");
    }

    /** How many further problems this entry stands for (see {@link #more}); 0 for an ordinary problem. */
    public int moreCount() {
        Matcher m = keyPath == null || keyPath.isEmpty() ? MORE.matcher(message) : null;
        return m != null && m.matches() ? Integer.parseInt(m.group(1)) : 0;
    }

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
