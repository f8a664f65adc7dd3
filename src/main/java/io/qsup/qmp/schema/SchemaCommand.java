package io.qsup.qmp.schema;

import java.util.List;

/**
 * A command of the schema.
 *
 * @param argType  the object type of its {@code arguments}
 * @param retType  the type of its {@code return} value
 * @param features for example {@code deprecated} or {@code unstable}
 */
public record SchemaCommand(String name, String argType, String retType, boolean allowOob, List<String> features) {
    public SchemaCommand {
        features = List.copyOf(features);
    }
}
