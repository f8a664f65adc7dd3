package io.qsup.cli;

import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A block of lines at the bottom of a terminal, redrawn in place with ANSI cursor movement: one line per VM while a
 * lifecycle verb waits for qsupd. Each line is cut to the terminal's width, since a wrapped line would throw the
 * cursor arithmetic off.
 *
 * <p>Not thread-safe: one thread draws.
 */
final class LiveLines {
    private final PrintWriter out;
    private final int width;
    private int drawn;
    private List<String> last = List.of();

    private LiveLines(PrintWriter out, int width) {
        this.out = out;
        this.width = width;
    }

    /**
     * A block for {@code lines} lines on the terminal behind standard output, or null when there is none that can
     * show it: not a terminal, {@code TERM} unset or dumb, or fewer rows than lines.
     */
    static LiveLines onTerminal(PrintWriter out, int lines) {
        String term = System.getenv("TERM");
        if (!Table.isTerminal() || term == null || term.isEmpty() || term.equals("dumb")) {
            return null;
        }
        int[] size = size();
        if (lines > size[0] - 1) {
            return null;
        }
        return new LiveLines(out, size[1]);
    }

    void draw(List<String> lines) {
        if (lines.equals(last)) {
            return;
        }
        StringBuilder s = new StringBuilder();
        if (drawn > 0) {
            s.append("\r\u001b[").append(drawn).append('A');
        }
        for (String line : lines) {
            s.append("\r\u001b[K").append(fit(line)).append('\n');
        }
        out.print(s);
        out.flush();
        drawn = lines.size();
        last = List.copyOf(lines);
    }

    /** Erases the block, leaving the cursor where it began. */
    void clear() {
        if (drawn > 0) {
            out.print("\r\u001b[" + drawn + "A\u001b[J");
            out.flush();
        }
        drawn = 0;
        last = List.of();
    }

    private String fit(String line) {
        int max = Math.max(width - 1, 10);
        return line.codePointCount(0, line.length()) <= max ? line
                : line.substring(0, line.offsetByCodePoints(0, max - 1)) + "…";
    }

    /** Rows and columns of the terminal, from {@code stty size}; 24 x 80 when it cannot tell. */
    private static int[] size() {
        try {
            Process p = new ProcessBuilder("stty", "size").redirectInput(new File("/dev/tty"))
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            String answer = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (p.waitFor(2, TimeUnit.SECONDS) && p.exitValue() == 0) {
                String[] rc = answer.split("\\s+");
                int rows = Integer.parseInt(rc[0]);
                int cols = Integer.parseInt(rc[1]);
                if (rows > 0 && cols > 0) {
                    return new int[] {rows, cols};
                }
            }
        } catch (IOException | RuntimeException e) {
            // no usable answer: assume the classic size
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return new int[] {24, 80};
    }
}
