package io.qsup.vm;

/**
 * The fields qsupd needs from {@code /proc/PID/stat}.
 *
 * @param pid        the process id
 * @param comm       the command name (at most 15 characters, as the kernel keeps it)
 * @param state      the one-letter state: R, S, D, T, t, Z, X, ...
 * @param ppid       the parent process id
 * @param startTicks start time in clock ticks after boot; with the pid it names one process for good
 */
public record ProcStat(long pid, String comm, char state, long ppid, long startTicks) {

    /** Z (zombie) and X (dead) are processes that have ended; a late-reaping PID 1 may keep them listed. */
    public boolean isDead() {
        return state == 'Z' || state == 'X' || state == 'x';
    }

    /** T means stopped by a signal (SIGSTOP), t stopped by a tracer. */
    public boolean isStopped() {
        return state == 'T' || state == 't';
    }

    /**
     * Parses the text of {@code /proc/PID/stat}. The command name sits in parentheses and may itself hold spaces and
     * parentheses, so the fields after it are found from the last ')'.
     */
    public static ProcStat parse(String text) {
        int open = text.indexOf('(');
        int close = text.lastIndexOf(')');
        if (open < 0 || close < open || close + 2 >= text.length()) {
            throw new IllegalArgumentException("not a /proc/PID/stat line: " + abbreviate(text));
        }
        long pid = Long.parseLong(text.substring(0, open).trim());
        String comm = text.substring(open + 1, close);
        String[] rest = text.substring(close + 2).trim().split(" +");
        // rest[0] is field 3 (state), rest[1] field 4 (ppid), rest[19] field 22 (starttime)
        if (rest.length < 20) {
            throw new IllegalArgumentException("short /proc/PID/stat line: " + abbreviate(text));
        }
        return new ProcStat(pid, comm, rest[0].charAt(0), Long.parseLong(rest[1]), Long.parseLong(rest[19]));
    }

    private static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }
}
