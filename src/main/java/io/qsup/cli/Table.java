package io.qsup.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/** A plain-text table with aligned columns; cells may carry ANSI colour, which does not count toward width. */
final class Table {
    private final List<String> headers;
    private final List<List<String>> rows = new ArrayList<>();

    Table(String... headers) {
        this.headers = List.of(headers);
    }

    void add(String... cells) {
        if (cells.length != headers.size()) {
            throw new IllegalArgumentException("expected " + headers.size() + " cells, got " + cells.length);
        }
        rows.add(List.of(cells));
    }

    String render() {
        int[] widths = new int[headers.size()];
        for (int i = 0; i < widths.length; i++) {
            widths[i] = visibleLength(headers.get(i));
        }
        for (List<String> row : rows) {
            for (int i = 0; i < widths.length; i++) {
                widths[i] = Math.max(widths[i], visibleLength(row.get(i)));
            }
        }
        StringBuilder sb = new StringBuilder();
        appendRow(sb, headers, widths);
        for (List<String> row : rows) {
            appendRow(sb, row, widths);
        }
        return sb.toString();
    }

    private static void appendRow(StringBuilder sb, List<String> cells, int[] widths) {
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < cells.size(); i++) {
            String c = cells.get(i);
            line.append(c);
            if (i < cells.size() - 1) {
                line.append(" ".repeat(widths[i] - visibleLength(c) + 2));
            }
        }
        sb.append(line.toString().stripTrailing()).append('\n');
    }

    static int visibleLength(String s) {
        String plain = s.replaceAll("\u001b\\[[0-9;]*m", "");
        return plain.codePointCount(0, plain.length());
    }

    /** Colours a VM state the way {@code qsup list} shows it on a terminal. */
    static Function<String, String> stateColours(boolean enabled) {
        return state -> {
            if (!enabled) {
                return state;
            }
            String code = switch (state) {
                case "running" -> "32";
                case "failed", "orphaned" -> "31";
                case "adopting", "backoff", "starting", "stopping", "incoming", "migrating" -> "33";
                case "paused" -> "36";
                default -> null;
            };
            return code == null ? state : "\u001b[" + code + "m" + state + "\u001b[0m";
        };
    }

    /** Colour only for a real terminal, and never when NO_COLOR is set or TERM is dumb. */
    static boolean colourWanted() {
        return isTerminal() && System.getenv("NO_COLOR") == null && !"dumb".equals(System.getenv("TERM"));
    }

    /**
     * Whether standard input and output are a terminal. Java 22 and later return a console even when output is
     * redirected and answer through {@code Console.isTerminal()}, which Java 21 lacks, hence the reflection.
     */
    static boolean isTerminal() {
        java.io.Console console = System.console();
        if (console == null) {
            return false;
        }
        try {
            return (Boolean) java.io.Console.class.getMethod("isTerminal").invoke(console);
        } catch (ReflectiveOperationException e) {
            return true;
        }
    }
}
