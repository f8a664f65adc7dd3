package io.qsup.cli;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.JsonTrees;
import io.qsup.qmp.QmpFraming;
import java.io.PrintWriter;

/**
 * Prints QMP results and events for {@code qsup qmp}: results pretty or compact, events always as one compact line
 * exactly as the server sent them, so they can be told apart by their {@code "event"} key.
 *
 * <p>Thread-safe: events are printed from the session's event thread while results come from the main thread; each
 * print holds this object's monitor so lines never interleave.
 */
final class QmpOutput {
    private static final DefaultPrettyPrinter PRETTY;

    static {
        DefaultIndenter indenter = new DefaultIndenter("  ", "\n");
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter()
                .withSeparators(Separators.createDefaultInstance()
                        .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                        .withObjectEmptySeparator("")
                        .withArrayEmptySeparator(""));
        pp.indentObjectsWith(indenter);
        pp.indentArraysWith(indenter);
        PRETTY = pp;
    }

    private final PrintWriter out;
    private final PrintWriter err;
    private final boolean compact;

    QmpOutput(PrintWriter out, PrintWriter err, boolean compact) {
        this.out = out;
        this.err = err;
        this.compact = compact;
    }

    synchronized void result(JsonNode value) {
        out.println(compact ? QmpFraming.toJson(value) : pretty(value));
        out.flush();
    }

    synchronized void event(JsonNode raw) {
        out.println(QmpFraming.toJson(raw));
        out.flush();
    }

    /** A message as sent, for {@code --verbose}: {@code --> {...}} on stderr, as QMP traffic is logged. */
    synchronized void sent(JsonNode message) {
        err.println("--> " + QmpFraming.toJson(message));
        err.flush();
    }

    synchronized void error(String message) {
        err.println(message);
        err.flush();
    }

    static String pretty(JsonNode value) {
        return JsonTrees.write(value, PRETTY);
    }
}
