package io.qsup.cli;

import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.schema.QmpSchema;
import io.qsup.qmp.schema.SchemaCache;
import io.qsup.qmp.schema.SchemaCompleter;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The bash completion's helper, {@code qsup qmp --complete LINE}: prints the candidates for the last word of a
 * {@code qsup qmp} command line, one per line, from the schema the target served when last used. It connects to
 * nothing, so it answers at once and also when the VM is down; it offers nothing for a target never used.
 */
final class QmpCompletion {
    /** Options of {@code qsup qmp} that take a value, so the word after them is not the VM or the command. */
    private static final Set<String> WITH_VALUE = Set.of("--socket", "--daemon-socket", "--cache-dir", "--file", "-f",
            "--repeat", "--wait-event", "--timeout", "--describe", "--history");

    private QmpCompletion() {}

    static int print(String line, SchemaCache defaultCache, Map<String, String> env, PrintWriter out) {
        List<String> words = new ArrayList<>(List.of(line.strip().split("\\s+")));
        if (line.isEmpty() || Character.isWhitespace(line.charAt(line.length() - 1))) {
            words.add("");
        }
        int qmp = words.indexOf("qmp");
        if (qmp < 0) {
            return ExitCodes.OK;
        }
        List<String> rest = words.subList(qmp + 1, words.size());
        String socket = null;
        String daemonSocket = null;
        String cacheDir = null;
        List<String> positional = new ArrayList<>();
        boolean describing = false;
        for (int i = 0; i < rest.size() - 1; i++) {
            String w = rest.get(i);
            if (WITH_VALUE.contains(w)) {
                String value = rest.get(i + 1);
                switch (w) {
                    case "--socket" -> socket = value;
                    case "--daemon-socket" -> daemonSocket = value;
                    case "--cache-dir" -> cacheDir = value;
                    default -> {
                        // values that do not say where the schema is
                    }
                }
                describing = w.equals("--describe") && i + 1 == rest.size() - 1;
                i++;
            } else if (!w.startsWith("-")) {
                positional.add(w);
            }
        }
        String partial = rest.get(rest.size() - 1);
        if (partial.startsWith("-")) {
            return ExitCodes.OK; // options are the shell function's business
        }
        String target;
        try {
            if (socket != null) {
                target = "socket " + QmpEndpoint.parse(socket);
            } else if (!positional.isEmpty()) {
                String vm = positional.remove(0);
                Path daemon = DaemonClient.resolveSocket(daemonSocket == null ? null : Path.of(daemonSocket), env);
                target = "vm " + vm + " at " + new QmpEndpoint.Unix(daemon);
            } else {
                return ExitCodes.OK; // the VM's name comes first: the shell function lists them
            }
        } catch (IllegalArgumentException e) {
            return ExitCodes.OK;
        }
        SchemaCache cache = cacheDir != null ? new SchemaCache(Path.of(cacheDir)) : defaultCache;
        Optional<QmpSchema> schema = cache.lastSeen(target);
        if (schema.isEmpty()) {
            return ExitCodes.OK;
        }
        List<String> candidates;
        if (describing) {
            TreeSet<String> names = new TreeSet<>(schema.get().commands().keySet());
            names.addAll(schema.get().events().keySet());
            names.removeIf(n -> !n.startsWith(partial));
            candidates = List.copyOf(names);
        } else {
            candidates = new SchemaCompleter(schema.get()).complete(positional, partial);
        }
        candidates.forEach(out::println);
        out.flush();
        return ExitCodes.OK;
    }
}
