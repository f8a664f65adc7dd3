package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.schema.QmpSchema;
import io.qsup.qmp.schema.SchemaCache;
import io.qsup.qmp.schema.SchemaKey;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gets the schema of the QEMU behind a {@code qsup qmp} target: from the cache when it holds the schema of exactly
 * this QEMU's version, package and target architecture, else from QEMU, which is then cached.
 */
final class QmpSchemas {
    private static final Logger log = LoggerFactory.getLogger(QmpSchemas.class);

    /**
     * The outcome.
     *
     * @param schema      null when the server offers none (not a QEMU, or one without introspection)
     * @param unavailable why there is none, for a user who asked for it explicitly
     */
    record Found(QmpSchema schema, String unavailable) {}

    private QmpSchemas() {}

    static Found obtain(QmpTarget target, SchemaCache cache, Duration timeout) {
        try {
            SchemaKey key = SchemaKey.of(target.versionInfo(timeout), arch(target, timeout));
            SchemaCache.Obtained o = cache.obtain(key, () -> target.fetchSchema(timeout));
            log.debug("schema of {} for {}: {}", key, target.id(), o.fetched() ? "fetched" : "from the cache");
            cache.remember(target.id(), key);
            return new Found(o.schema(), null);
        } catch (QmpException e) {
            log.debug("no QMP schema from {}: {}", target.id(), e.getMessage());
            return new Found(null, e.getMessage());
        }
    }

    private static String arch(QmpTarget target, Duration timeout) throws QmpException {
        try {
            JsonNode r = target.send(JsonNodeFactory.instance.objectNode().put("execute", "query-target"), timeout);
            return r == null ? "" : r.path("arch").asText("");
        } catch (QmpErrorException e) {
            return "";
        }
    }
}
