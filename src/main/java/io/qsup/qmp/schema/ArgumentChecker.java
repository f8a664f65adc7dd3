package io.qsup.qmp.schema;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpFraming;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Checks a QMP message against the schema as QEMU's own argument parsing would, so that a typo is reported with the
 * argument's path before anything is sent: unknown commands (with "did you mean" from the schema's own list), unknown
 * and missing arguments, wrong JSON types, values outside an enum, alternates and arrays, nested to any depth.
 */
public final class ArgumentChecker {
    /** Enums with more values than this are summarised by their count in messages. */
    private static final int LISTED_VALUES = 12;
    /** The keys of a QMP command message (QEMU's docs/interop/qmp-spec). */
    private static final List<String> MESSAGE_KEYS = List.of("execute", "exec-oob", "arguments", "id");
    private static final BigInteger UINT64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    private final QmpSchema schema;

    public ArgumentChecker(QmpSchema schema) {
        this.schema = schema;
    }

    /** Everything wrong with the message; empty when QEMU's parsing of it should succeed. */
    public List<Problem> check(ObjectNode message) {
        String name = message.path("execute").asText(message.path("exec-oob").asText());
        List<Problem> problems = new ArrayList<>();
        SchemaCommand command = schema.command(name);
        if (command == null) {
            String guess = Similar.closest(name, schema.commands().keySet());
            problems.add(new Problem(name, "", "unknown command" + (guess != null ? "; did you mean '" + guess + "'?"
                    : "; --list shows the " + schema.commands().size() + " commands this QEMU offers")));
            return problems;
        }
        for (String key : (Iterable<String>) message::fieldNames) {
            if (!MESSAGE_KEYS.contains(key)) {
                problems.add(new Problem(name, "", "unknown key \"" + key + "\" in the message; QMP takes "
                        + String.join(", ", MESSAGE_KEYS)));
            }
        }
        JsonNode args = message.get("arguments");
        if (args == null) {
            args = JsonNodeFactory.instance.objectNode();
        } else if (!args.isObject()) {
            problems.add(new Problem(name, "", "\"arguments\" must be an object, got " + shown(args)));
            return problems;
        }
        new Run(name, problems).object(schema.arguments(command), (ObjectNode) args, "", true,
                schema.takesMoreArguments(command));
        return problems;
    }

    /** One check of one message: where problems go and which command they are about. */
    private final class Run {
        private final String command;
        private final List<Problem> problems;

        Run(String command, List<Problem> problems) {
            this.command = command;
            this.problems = problems;
        }

        private void problem(String path, String text) {
            problems.add(new Problem(command, path, text));
        }

        void value(String typeName, JsonNode v, String path) {
            SchemaType type = schema.type(typeName);
            switch (type) {
                case SchemaType.Builtin b -> {
                    if (!matches(b, v)) {
                        problem(path, "expected " + b.name() + ", got " + shown(v));
                    }
                }
                case SchemaType.EnumType e -> {
                    if (!v.isTextual()) {
                        problem(path, "expected " + enumText(e) + ", got " + shown(v));
                    } else if (!e.values().contains(v.asText())) {
                        String guess = Similar.closest(v.asText(), e.values());
                        problem(path, shown(v) + " is not " + enumText(e)
                                + (guess != null ? "; did you mean '" + guess + "'?" : ""));
                    }
                }
                case SchemaType.ArrayType a -> {
                    if (!v.isArray()) {
                        problem(path, "expected " + schema.display(typeName) + ", got " + shown(v));
                        return;
                    }
                    for (int i = 0; i < v.size(); i++) {
                        value(a.elementType(), v.get(i), path + "[" + i + "]");
                    }
                }
                case SchemaType.ObjectType o -> {
                    if (!(v instanceof ObjectNode obj)) {
                        problem(path, "expected an object, got " + shown(v));
                        return;
                    }
                    object(o, obj, path, false, false);
                }
                case SchemaType.AlternateType alt -> {
                    for (String branch : alt.types()) {
                        if (sameJsonType(schema.type(branch), v)) {
                            value(branch, v, path);
                            return;
                        }
                    }
                    problem(path, "expected " + schema.display(typeName) + ", got " + shown(v));
                }
            }
        }

        void object(SchemaType.ObjectType type, ObjectNode v, String path, boolean top, boolean open) {
            List<SchemaType.Member> members = new ArrayList<>(type.members());
            boolean variantKnown = true;
            if (type.tag() != null) {
                SchemaType.ObjectType variant = schema.variant(type, v);
                if (variant != null) {
                    members = schema.members(type, v);
                } else {
                    variantKnown = false; // the tag's own problem is reported; its variant's members are unknowable
                }
            }
            for (SchemaType.Member m : members) {
                JsonNode value = v.get(m.name());
                String at = path.isEmpty() ? m.name() : path + "." + m.name();
                if (value == null) {
                    if (!m.optional()) {
                        problem(at, "missing");
                    }
                } else {
                    value(m.type(), value, at);
                }
            }
            if (open || !variantKnown) {
                return;
            }
            List<String> accepted = members.stream().map(SchemaType.Member::name).toList();
            for (Map.Entry<String, JsonNode> field : v.properties()) {
                if (!accepted.contains(field.getKey())) {
                    String at = path.isEmpty() ? field.getKey() : path + "." + field.getKey();
                    String what = top ? "unknown argument" : "unknown member";
                    if (accepted.isEmpty()) {
                        problem(at, what + "; " + (top ? command + " takes no arguments" : "this object has no members"));
                        continue;
                    }
                    String guess = Similar.closest(field.getKey(), accepted);
                    problem(at, what + (guess != null ? "; did you mean '" + guess + "'? accepted: " : "; accepted: ")
                            + String.join(", ", accepted));
                }
            }
        }
    }

    private static String enumText(SchemaType.EnumType e) {
        if (e.values().size() > LISTED_VALUES) {
            return "one of its " + e.values().size() + " values (--describe lists them)";
        }
        return "one of: " + String.join(", ", e.values());
    }

    /** Whether a value has the built-in's JSON type, as QEMU's strict input visitor requires. */
    private static boolean matches(SchemaType.Builtin b, JsonNode v) {
        return switch (b.jsonType()) {
            case "string" -> v.isTextual();
            case "int" -> v.isIntegralNumber() && v.bigIntegerValue().compareTo(BigInteger.valueOf(Long.MIN_VALUE)) >= 0
                    && v.bigIntegerValue().compareTo(UINT64_MAX) <= 0;
            case "number" -> v.isNumber();
            case "boolean" -> v.isBoolean();
            case "null" -> v.isNull();
            default -> true;
        };
    }

    /** Whether the value's JSON type is the branch's, which is how QEMU picks an alternate's branch. */
    private static boolean sameJsonType(SchemaType t, JsonNode v) {
        return switch (t) {
            case SchemaType.Builtin b -> switch (b.jsonType()) {
                case "string" -> v.isTextual();
                case "int", "number" -> v.isNumber();
                case "boolean" -> v.isBoolean();
                case "null" -> v.isNull();
                default -> true;
            };
            case SchemaType.EnumType e -> v.isTextual();
            case SchemaType.ArrayType a -> v.isArray();
            case SchemaType.ObjectType o -> v.isObject();
            case SchemaType.AlternateType a -> false;
        };
    }

    /** A value as the user wrote or would write it, cut short when long. */
    static String shown(JsonNode v) {
        String s = QmpFraming.toJson(v);
        return s.length() > 60 ? s.substring(0, 57) + "..." : s;
    }
}
