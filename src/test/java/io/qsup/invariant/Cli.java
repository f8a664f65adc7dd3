package io.qsup.invariant;

import io.qsup.cli.QsupMain;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs the real {@code qsup} command line in-process against a control socket, capturing its output and exit code.
 * Each run builds its own picocli command line and its own connection, so runs may overlap on different threads.
 *
 * @param exit      the exit code {@code qsup} returned
 * @param out       what it printed on stdout
 * @param err       what it printed on stderr
 * @param sentNanos {@link System#nanoTime()} just before the run
 * @param endNanos  {@link System#nanoTime()} just after it returned
 */
public record Cli(int exit, String out, String err, long sentNanos, long endNanos) {

    public static Cli run(Path socket, List<String> args) {
        List<String> all = new ArrayList<>(args);
        all.add("--socket");
        all.add(socket.toString());
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = QsupMain.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        long sent = System.nanoTime();
        int code = cl.execute(all.toArray(String[]::new));
        return new Cli(code, out.toString(), err.toString(), sent, System.nanoTime());
    }

    /** True if qsup never got its request to the daemon: it could not connect or negotiate (exit 4 at connect). */
    public boolean neverConnected() {
        return exit == 4 && ((err + out).contains("cannot reach qsupd") || (err + out).contains("did not answer:"));
    }

    /** True if the connection dropped after the request may have been sent (qsupd went away mid-command). */
    public boolean lostMidCommand() {
        String said = out + err; // with --json a VM's error is in its result object on stdout
        return (exit == 4 && said.contains("closed the connection"))
                || (exit == 1 && (said.contains("qsupd did not answer vm-") || said.matches("(?s).*: vm-[a-z-]+ failed: .*")));
    }

    /** One line for the action log: exit code and the output, squeezed. */
    public String brief() {
        String text = (out.strip() + " " + err.strip()).strip().replaceAll("\\s+", " ");
        return "exit " + exit + (text.isEmpty() ? "" : ": " + (text.length() > 220 ? text.substring(0, 220) + "..." : text));
    }
}
