package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.JsonTrees;

/** JSON output for {@code --json}: pretty, stable key order as the daemon sends it. */
final class Json {
    private Json() {}

    static String pretty(JsonNode node) {
        return JsonTrees.pretty(node);
    }

    static ObjectNode object() {
        return JsonNodeFactory.instance.objectNode();
    }

    static String text(JsonNode node, String field) {
        JsonNode v = node.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }
}
