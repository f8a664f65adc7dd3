package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The types a control command's argument can have. Each knows the JSON type QEMU names in its errors ("Invalid
 * parameter type for 'name', expected: string") and how the docs call it.
 */
public enum ArgumentType {
    STRING("string", "string"),
    BOOLEAN("boolean", "boolean"),
    /** A number of seconds, fractions allowed, more than 0. */
    SECONDS("number", "seconds"),
    /** A number more than 0, in the unit its description names. */
    POSITIVE_NUMBER("number", "number"),
    /** Any JSON object, passed on as it is. */
    OBJECT("object", "object"),
    STRING_ARRAY("array", "array of strings"),
    /** An array of JSON objects, each passed on as it is. */
    OBJECT_ARRAY("array", "array of objects");

    private final String jsonType;
    private final String docName;

    ArgumentType(String jsonType, String docName) {
        this.jsonType = jsonType;
        this.docName = docName;
    }

    /** The JSON type as QEMU's errors and {@code query-command-arguments} name it. */
    public String jsonType() {
        return jsonType;
    }

    /** How docs/control-protocol.md names it. */
    public String docName() {
        return docName;
    }

    /** Whether {@code value} has this type's JSON shape; array elements are checked apart, each with its own name. */
    boolean hasShape(JsonNode value) {
        return switch (this) {
            case STRING -> value.isTextual();
            case BOOLEAN -> value.isBoolean();
            case SECONDS, POSITIVE_NUMBER -> value.isNumber();
            case OBJECT -> value.isObject();
            case STRING_ARRAY, OBJECT_ARRAY -> value.isArray();
        };
    }
}
