package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Objects;

/**
 * One argument a control command accepts: a row of the command table that the checker ({@link Arguments}),
 * {@code query-command-arguments}, the docs and the CLI all read.
 *
 * @param name the JSON member name
 * @param type its type
 * @param required whether a request without it is refused ("Parameter 'name' is missing")
 * @param defaultValue the value used when it is not given, or null when there is none (the handler decides)
 * @param values the only values accepted (for a string array: for each element), or empty for any
 * @param description what it means, for people; Markdown, one sentence, no final period
 */
public record ArgumentSpec(String name, ArgumentType type, boolean required, JsonNode defaultValue,
        List<String> values, String description) {
    public ArgumentSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(description, "description");
        values = List.copyOf(values);
        if (required && defaultValue != null) {
            throw new IllegalArgumentException("argument '" + name + "' is required and has a default");
        }
        if (defaultValue != null && !type.hasShape(defaultValue)) {
            throw new IllegalArgumentException("default of argument '" + name + "' is not a " + type.jsonType());
        }
    }

    static ArgumentSpec required(String name, ArgumentType type, String description) {
        return new ArgumentSpec(name, type, true, null, List.of(), description);
    }

    static ArgumentSpec optional(String name, ArgumentType type, String description) {
        return new ArgumentSpec(name, type, false, null, List.of(), description);
    }

    static ArgumentSpec optional(String name, ArgumentType type, JsonNode defaultValue, String description) {
        return new ArgumentSpec(name, type, false, defaultValue, List.of(), description);
    }

    /** The same argument, accepting only the given values. */
    ArgumentSpec onlyValues(String... allowed) {
        return new ArgumentSpec(name, type, required, defaultValue, List.of(allowed), description);
    }
}
