package io.qsup.qmp.schema;

import java.util.List;

/**
 * An event of the schema.
 *
 * @param argType the object type of its {@code data}
 */
public record SchemaEvent(String name, String argType, List<String> features) {
    public SchemaEvent {
        features = List.copyOf(features);
    }
}
