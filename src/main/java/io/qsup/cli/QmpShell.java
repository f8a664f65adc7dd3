package io.qsup.cli;

import io.qsup.qmp.QmpFraming;
import io.qsup.qmp.QmpShellSyntax;
import io.qsup.qmp.schema.QmpSchema;
import io.qsup.qmp.schema.SchemaCompleter;
import io.qsup.qmp.schema.SchemaDescription;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.jline.reader.Candidate;
import org.jline.reader.EndOfFileException;
import org.jline.reader.LineReader;
import org.jline.reader.LineReaderBuilder;
import org.jline.reader.UserInterruptException;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;

/**
 * The interactive {@code qsup qmp} shell: line editing, history kept across sessions, Tab completion of commands,
 * argument keys and enum values from the live schema, and QEMU's events printed above the prompt as they arrive.
 * Lines have the syntax of batch files and are checked and typed the same way.
 *
 * <p>Threads: the main thread reads lines and runs commands; events arrive on the session's event thread and are
 * printed through JLine's {@code printAbove}, which may be called from any thread.
 */
final class QmpShell {
    private static final String HELP = """
            COMMAND key=value ...  or one JSON object: sent to QEMU after the schema's checks.
            ? NAME                 describes a command or event; ?? lists the commands.
            Tab completes commands, argument keys and values; Up and Down walk the history; Ctrl-D leaves.""";

    private final QmpTarget target;
    private final QmpSchema schema;
    private final boolean noCheck;
    private final QmpRunner runner;
    private final QmpOutput output;
    private final Path history;
    private final String prompt;

    QmpShell(QmpTarget target, QmpSchema schema, boolean noCheck, QmpRunner runner, QmpOutput output, Path history,
            String prompt) {
        this.target = target;
        this.schema = schema;
        this.noCheck = noCheck;
        this.runner = runner;
        this.output = output;
        this.history = history;
        this.prompt = prompt;
    }

    int run() {
        try (Terminal terminal = TerminalBuilder.builder().system(true).build()) {
            LineReaderBuilder b = LineReaderBuilder.builder().terminal(terminal).appName("qsup-qmp")
                    .option(LineReader.Option.DISABLE_EVENT_EXPANSION, true);
            if (schema != null) {
                SchemaCompleter completer = new SchemaCompleter(schema);
                b.completer((reader, line, candidates) -> {
                    String partial = line.word().substring(0, line.wordCursor());
                    List<String> before = line.words().subList(0, line.wordIndex());
                    for (String c : completer.complete(before, partial)) {
                        boolean more = c.endsWith("=") || c.endsWith(".");
                        // a value is listed as itself, not with its key in front
                        String shown = partial.contains("=") ? c.substring(c.indexOf('=') + 1) : c;
                        candidates.add(new Candidate(c, shown, null, null, null, null, !more));
                    }
                });
            }
            if (history != null) {
                try {
                    Files.createDirectories(history.getParent());
                    b.variable(LineReader.HISTORY_FILE, history);
                } catch (IOException e) {
                    output.error("history is not kept: cannot create " + history.getParent() + ": " + e.getMessage());
                }
            }
            LineReader reader = b.build();
            output.error("QMP shell on " + target.id() + (schema != null ? ", " + schema.commands().size()
                    + " commands" : ", no schema: values are typed by qmp-shell's rules and nothing is checked")
                    + ". Type ? for help, Ctrl-D to leave.");
            try (AutoCloseable events = target.onEvent(e -> reader.printAbove(QmpFraming.toJson(e)))) {
                return loop(reader);
            } finally {
                try {
                    reader.getHistory().save();
                } catch (IOException e) {
                    output.error("cannot save the history to " + history + ": " + e.getMessage());
                }
            }
        } catch (Exception e) {
            output.error("the shell failed: " + e.getMessage());
            return ExitCodes.ERROR;
        }
    }

    private int loop(LineReader reader) {
        while (true) {
            String line;
            try {
                line = reader.readLine(prompt);
            } catch (UserInterruptException e) {
                continue; // Ctrl-C drops the line being typed
            } catch (EndOfFileException e) {
                return ExitCodes.OK;
            }
            String trimmed = line.strip();
            if (trimmed.isEmpty() || trimmed.startsWith("#")) {
                continue;
            }
            if (trimmed.startsWith("?")) {
                help(trimmed.substring(1).strip());
                continue;
            }
            QmpShellSyntax.Parsed parsed;
            try {
                parsed = QmpShellSyntax.parse(line);
            } catch (QmpShellSyntax.ParseException e) {
                output.error(e.reason() + " at column " + e.column() + "\n" + e.caret());
                continue;
            }
            QmpScript script = new QmpScript(List.of(new QmpScript.Step("", parsed)));
            if (schema != null) {
                script = script.typed(schema);
                List<String> problems = noCheck ? List.of() : script.check(schema);
                if (!problems.isEmpty()) {
                    problems.forEach(output::error);
                    output.error(QmpCommand.NOTHING_SENT);
                    continue;
                }
            }
            if (runner.runStep(target, script.steps().get(0)) == QmpRunner.Outcome.GONE) {
                return ExitCodes.ERROR;
            }
        }
    }

    private void help(String what) {
        if (what.isEmpty()) {
            output.error(HELP);
        } else if (schema == null) {
            output.error("the server offers no QMP schema to describe " + what);
        } else if (what.equals("?")) {
            output.error(String.join(" ", schema.commands().keySet()));
        } else {
            String d = SchemaDescription.describe(schema, what);
            output.error(d != null ? d.stripTrailing() : "no command or event named '" + what + "'");
        }
    }
}
