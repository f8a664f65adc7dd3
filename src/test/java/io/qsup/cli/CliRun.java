package io.qsup.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Runs {@code qsup} in-process with captured output, against a given control socket. */
record CliRun(int code, String out, String err) {
    static CliRun qsup(Path socket, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        if (socket != null) {
            all.add("--socket");
            all.add(socket.toString());
        }
        return qsupRaw(all.toArray(String[]::new));
    }

    static CliRun qsupRaw(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = QsupMain.commandLineFor(args); // the tree main() builds: only the verb named
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new CliRun(code, out.toString(), err.toString());
    }

    @Override
    public String toString() {
        return "exit " + code + "\n--- out\n" + out + "--- err\n" + err;
    }
}
