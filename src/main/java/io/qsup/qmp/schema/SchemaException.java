package io.qsup.qmp.schema;

import io.qsup.qmp.QmpException;

/** The introspection data ({@code query-qmp-schema}'s reply, or a cached copy of it) is not what QEMU documents. */
public final class SchemaException extends QmpException {
    public SchemaException(String message) {
        super(message);
    }

    public SchemaException(String message, Throwable cause) {
        super(message, cause);
    }
}
