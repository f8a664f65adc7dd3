package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A request's arguments, checked against the command's declaration: the handler reads only declared arguments, each
 * present (or defaulted) and of its declared type.
 *
 * <p>{@link #check} interprets the declaration as QEMU's QAPI input visitor does, with its words: the declared
 * arguments in order ("Parameter 'name' is missing", "Invalid parameter type for 'name', expected: string", "Parameter
 * 'timeout' expects a positive number of seconds"), then anything undeclared ("Parameter 'bogus' is unexpected"). JSON
 * {@code null} is a value of the wrong type, not a missing argument, as in QEMU.
 */
public final class Arguments {
    private final CommandSpec spec;
    private final ObjectNode values;

    private Arguments(CommandSpec spec, ObjectNode values) {
        this.spec = spec;
        this.values = values;
    }

    /**
     * Checks {@code given} (the request's {@code arguments}, or null when it had none) against {@code spec}.
     *
     * @throws ControlException a {@code GenericError} naming the first argument that is missing, of the wrong type,
     *     out of range, or unexpected
     */
    public static Arguments check(CommandSpec spec, ObjectNode given) throws ControlException {
        ObjectNode in = given == null ? JsonNodeFactory.instance.objectNode() : given;
        ObjectNode out = JsonNodeFactory.instance.objectNode();
        for (ArgumentSpec a : spec.arguments()) {
            JsonNode v = in.get(a.name());
            if (v == null) {
                if (a.required()) {
                    throw ControlException.generic("Parameter '" + a.name() + "' is missing");
                }
                if (a.defaultValue() != null) {
                    out.set(a.name(), a.defaultValue());
                }
                continue;
            }
            checkValue(a, v);
            out.set(a.name(), v);
        }
        for (Map.Entry<String, JsonNode> member : in.properties()) {
            String key = member.getKey();
            if (spec.argument(key).isEmpty()) {
                throw ControlException.generic("Parameter '" + key + "' is unexpected");
            }
        }
        return new Arguments(spec, out);
    }

    private static void checkValue(ArgumentSpec a, JsonNode v) throws ControlException {
        if (!a.type().hasShape(v)) {
            throw wrongType(a.name(), a.type().jsonType());
        }
        switch (a.type()) {
            case SECONDS -> {
                double d = v.asDouble();
                if (!(d > 0) || Double.isInfinite(d)) {
                    throw ControlException.generic("Parameter '" + a.name() + "' expects a positive number of seconds");
                }
            }
            case POSITIVE_NUMBER -> {
                double d = v.asDouble();
                if (!(d > 0) || Double.isInfinite(d)) {
                    throw ControlException.generic("Parameter '" + a.name() + "' expects a positive number");
                }
            }
            case STRING_ARRAY -> {
                for (int i = 0; i < v.size(); i++) {
                    JsonNode e = v.get(i);
                    String element = a.name() + "[" + i + "]";
                    if (!e.isTextual()) {
                        throw wrongType(element, "string");
                    }
                    if (!a.values().isEmpty() && !a.values().contains(e.asText())) {
                        throw ControlException.generic("Parameter '" + element + "' does not accept value '"
                                + e.asText() + "'");
                    }
                }
            }
            case OBJECT_ARRAY -> {
                for (int i = 0; i < v.size(); i++) {
                    if (!v.get(i).isObject()) {
                        throw wrongType(a.name() + "[" + i + "]", "object");
                    }
                }
            }
            case STRING -> {
                if (!a.values().isEmpty() && !a.values().contains(v.asText())) {
                    throw ControlException.generic("Parameter '" + a.name() + "' does not accept value '" + v.asText()
                            + "'");
                }
            }
            default -> {
                // the shape is all there is to check
            }
        }
    }

    private static ControlException wrongType(String name, String expected) {
        return ControlException.generic("Invalid parameter type for '" + name + "', expected: " + expected);
    }

    /** A string argument, or null when it was not given. */
    public String string(String name) {
        JsonNode v = values.get(declared(name, ArgumentType.STRING).name());
        return v == null ? null : v.asText();
    }

    /** A boolean argument, which must have a default or be required. */
    public boolean bool(String name) {
        ArgumentSpec a = declared(name, ArgumentType.BOOLEAN);
        JsonNode v = values.get(a.name());
        if (v == null) {
            throw new IllegalStateException("boolean argument '" + name + "' of " + spec.name()
                    + " has no default; declare one in CommandTable");
        }
        return v.asBoolean();
    }

    /** A duration argument, or null when it was not given and has no default. */
    public Duration seconds(String name) {
        JsonNode v = values.get(declared(name, ArgumentType.SECONDS).name());
        if (v == null) {
            return null;
        }
        double s = v.asDouble();
        return s >= Long.MAX_VALUE / 1e9 ? Duration.ofNanos(Long.MAX_VALUE) : Duration.ofNanos((long) (s * 1e9));
    }

    /** A positive number argument, or null when it was not given and has no default. */
    public Double number(String name) {
        JsonNode v = values.get(declared(name, ArgumentType.POSITIVE_NUMBER).name());
        return v == null ? null : v.asDouble();
    }

    /** An object argument, or null when it was not given. */
    public ObjectNode object(String name) {
        return (ObjectNode) values.get(declared(name, ArgumentType.OBJECT).name());
    }

    /** A string array argument as a list, empty when it was not given. */
    public List<String> strings(String name) {
        JsonNode v = values.get(declared(name, ArgumentType.STRING_ARRAY).name());
        List<String> out = new ArrayList<>();
        if (v != null) {
            v.forEach(e -> out.add(e.asText()));
        }
        return out;
    }

    /** An object array argument, empty when it was not given. */
    public List<ObjectNode> objects(String name) {
        JsonNode v = values.get(declared(name, ArgumentType.OBJECT_ARRAY).name());
        List<ObjectNode> out = new ArrayList<>();
        if (v != null) {
            v.forEach(e -> out.add((ObjectNode) e));
        }
        return out;
    }

    /** A string array argument as a set, empty when it was not given. */
    public Set<String> stringSet(String name) {
        return new LinkedHashSet<>(strings(name));
    }

    /** Reading an argument the command does not declare is a bug in qsupd, not a bad request. */
    private ArgumentSpec declared(String name, ArgumentType type) {
        ArgumentSpec a = spec.argument(name).orElseThrow(() -> new IllegalStateException(
                spec.name() + " reads argument '" + name + "', which CommandTable does not declare for it"));
        if (a.type() != type) {
            throw new IllegalStateException(spec.name() + " reads argument '" + name + "' as " + type + ", but it is"
                    + " declared as " + a.type());
        }
        return a;
    }
}
