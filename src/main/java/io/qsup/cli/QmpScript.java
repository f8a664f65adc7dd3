package io.qsup.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpShellSyntax;
import io.qsup.qmp.schema.ArgumentChecker;
import io.qsup.qmp.schema.ArgumentTyper;
import io.qsup.qmp.schema.Problem;
import io.qsup.qmp.schema.QmpSchema;
import java.util.ArrayList;
import java.util.List;

/**
 * The commands a {@code qsup qmp} run sends, parsed up front so a typo on line 9 is reported before line 1 is sent.
 *
 * @param steps the commands in order
 */
record QmpScript(List<Step> steps) {

    /**
     * One command and where it came from.
     *
     * @param where   {@code FILE:LINE} in batch mode, empty for a command given as arguments
     * @param message what is sent: typed by qmp-shell's rules, or by the schema after {@link #typed}
     * @param parsed  the line as parsed, with its unquoted values as written
     */
    record Step(String where, String command, ObjectNode message, QmpShellSyntax.Parsed parsed) {
        Step(String where, QmpShellSyntax.Parsed parsed) {
            this(where, parsed.command(), parsed.message(), parsed);
        }
    }

    /** Bad input, with every bad line in compiler style ({@code FILE:LINE:COLUMN: reason} and a caret). */
    static final class ScriptException extends Exception {
        ScriptException(String message) {
            super(message);
        }
    }

    QmpScript {
        steps = List.copyOf(steps);
    }

    boolean isEmpty() {
        return steps.isEmpty();
    }

    /** One command from command-line words, already split by the shell. */
    static QmpScript fromWords(List<String> words) throws ScriptException {
        try {
            return new QmpScript(List.of(new Step("", QmpShellSyntax.parseWordsKeepingBare(words))));
        } catch (QmpShellSyntax.ParseException e) {
            throw new ScriptException("bad command: " + e.reason() + " at column " + e.column() + "\n" + e.caret());
        }
    }

    /** A batch: one command per line; blank lines and lines starting with {@code #} are skipped. */
    static QmpScript fromLines(String source, List<String> lines) throws ScriptException {
        List<Step> steps = new ArrayList<>();
        StringBuilder errors = new StringBuilder();
        int bad = 0;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            String trimmed = line.strip();
            if (trimmed.isEmpty() || trimmed.startsWith("#")) {
                continue;
            }
            String where = source + ":" + (i + 1);
            try {
                steps.add(new Step(where, QmpShellSyntax.parse(line)));
            } catch (QmpShellSyntax.ParseException e) {
                bad++;
                errors.append(where).append(':').append(e.column()).append(": ").append(e.reason()).append('\n')
                        .append(e.caret()).append('\n');
            }
        }
        if (bad > 0) {
            throw new ScriptException(errors + (bad == 1 ? "1 bad line" : bad + " bad lines") + " in " + source
                    + "; nothing was sent. Lines are COMMAND key=value ... or one JSON object; see 'qsup qmp --help'");
        }
        return new QmpScript(steps);
    }

    /** The same commands with their unquoted values typed by the schema instead of guessed. */
    QmpScript typed(QmpSchema schema) {
        ArgumentTyper typer = new ArgumentTyper(schema);
        return new QmpScript(steps.stream()
                .map(s -> new Step(s.where(), s.command(), typer.type(s.parsed()), s.parsed())).toList());
    }

    /**
     * Every problem of every command against the schema, each line prefixed with its {@code FILE:LINE} in a batch;
     * empty when all is well.
     */
    List<String> check(QmpSchema schema) {
        ArgumentChecker checker = new ArgumentChecker(schema);
        List<String> out = new ArrayList<>();
        for (Step s : steps) {
            for (Problem p : checker.check(s.message())) {
                out.add((s.where().isEmpty() ? "" : s.where() + ": ") + p);
            }
        }
        return out;
    }
}
