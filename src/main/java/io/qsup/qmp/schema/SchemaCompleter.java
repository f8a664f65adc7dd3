package io.qsup.qmp.schema;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpShellSyntax;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * Completion of a qmp-shell line from the schema: command names, argument keys (dotted into nested objects, and
 * including the members of the variant a union's tag already picked), and enum and bool values after {@code key=}.
 * Used by the interactive shell and by the bash completion alike.
 */
public final class SchemaCompleter {
    private final QmpSchema schema;

    public SchemaCompleter(QmpSchema schema) {
        this.schema = schema;
    }

    /**
     * Candidates for the word being typed, each the whole word: {@code query-status}, {@code node-name=},
     * {@code file.} (a key that nests), {@code driver=qcow2}.
     *
     * @param before  the complete words before it: the command, then its {@code key=value} arguments
     * @param partial the word typed so far, possibly empty
     */
    public List<String> complete(List<String> before, String partial) {
        TreeSet<String> out = new TreeSet<>();
        if (before.isEmpty()) {
            for (String c : schema.commands().keySet()) {
                if (c.startsWith(partial)) {
                    out.add(c);
                }
            }
            return List.copyOf(out);
        }
        SchemaCommand command = schema.command(before.get(0));
        if (command == null || partial.startsWith("{")) {
            return List.of();
        }
        ObjectNode args = argumentsSoFar(before);
        int eq = partial.indexOf('=');
        if (eq >= 0) {
            String key = partial.substring(0, eq);
            String typed = partial.substring(eq + 1);
            SchemaType.Member m = memberAt(schema.arguments(command), args, key.split("\\.", -1));
            if (m != null) {
                for (String v : values(m.type())) {
                    if (v.startsWith(typed)) {
                        out.add(key + "=" + v);
                    }
                }
            }
            return List.copyOf(out);
        }
        int dot = partial.lastIndexOf('.');
        String prefix = dot < 0 ? "" : partial.substring(0, dot + 1);
        SchemaType.ObjectType object = schema.arguments(command);
        JsonNode node = args;
        if (dot >= 0) {
            String[] path = partial.substring(0, dot).split("\\.", -1);
            SchemaType.Member m = memberAt(object, args, path);
            object = m == null ? null : objectBranch(schema.type(m.type()));
            for (String p : path) {
                node = node.path(p);
            }
        }
        if (object == null) {
            return List.of();
        }
        for (SchemaType.Member m : schema.members(object, node)) {
            if (node.has(m.name())) {
                continue;
            }
            SchemaType t = schema.type(m.type());
            if (objectBranch(t) != null) {
                out.add(prefix + m.name() + ".");
            }
            if (!(t instanceof SchemaType.ObjectType)) {
                out.add(prefix + m.name() + "=");
            }
        }
        out.removeIf(c -> !c.startsWith(partial));
        return List.copyOf(out);
    }

    /** The arguments given so far, typed, ignoring words that do not parse (the line is still being written). */
    private ObjectNode argumentsSoFar(List<String> before) {
        List<String> good = new ArrayList<>(List.of(before.get(0)));
        for (String w : before.subList(1, before.size())) {
            List<String> trial = new ArrayList<>(good);
            trial.add(w);
            try {
                QmpShellSyntax.parseWordsKeepingBare(trial);
                good = trial;
            } catch (QmpShellSyntax.ParseException ignored) {
                // a word being edited, or a key given twice: completion goes on without it
            }
        }
        try {
            ObjectNode m = new ArgumentTyper(schema).type(QmpShellSyntax.parseWordsKeepingBare(good));
            return m.get("arguments") instanceof ObjectNode o ? o : JsonNodeFactory.instance.objectNode();
        } catch (QmpShellSyntax.ParseException e) {
            return JsonNodeFactory.instance.objectNode();
        }
    }

    /** The member a dotted key names, following nested objects and the variants their tags pick; null if none. */
    private SchemaType.Member memberAt(SchemaType.ObjectType object, JsonNode node, String[] path) {
        SchemaType.Member found = null;
        for (int i = 0; i < path.length; i++) {
            if (object == null) {
                return null;
            }
            found = null;
            for (SchemaType.Member m : schema.members(object, node)) {
                if (m.name().equals(path[i])) {
                    found = m;
                }
            }
            if (found == null) {
                return null;
            }
            object = objectBranch(schema.type(found.type()));
            node = node.path(path[i]);
        }
        return found;
    }

    private SchemaType.ObjectType objectBranch(SchemaType t) {
        if (t instanceof SchemaType.ObjectType o) {
            return o;
        }
        if (t instanceof SchemaType.AlternateType alt) {
            for (String b : alt.types()) {
                if (schema.type(b) instanceof SchemaType.ObjectType o) {
                    return o;
                }
            }
        }
        return null;
    }

    /** The values worth offering for a type: an enum's, true and false, null. */
    private List<String> values(String typeName) {
        SchemaType t = schema.type(typeName);
        List<String> out = new ArrayList<>();
        switch (t) {
            case SchemaType.EnumType e -> out.addAll(e.values());
            case SchemaType.Builtin b when b.jsonType().equals("boolean") -> out.addAll(List.of("true", "false"));
            case SchemaType.Builtin b when b.jsonType().equals("null") -> out.add("null");
            case SchemaType.AlternateType alt -> alt.types().forEach(branch -> out.addAll(values(branch)));
            default -> {
                // free text or a number: nothing to offer
            }
        }
        return out;
    }
}
