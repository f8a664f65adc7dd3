package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.config.DaemonSettings;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpTimeoutException;
import io.qsup.qmp.schema.SchemaCache;
import io.qsup.qmp.schema.SchemaKey;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorException;
import java.time.Duration;
import java.util.Map;

/**
 * {@code vm-qmp-schema}: a VM's QEMU schema ({@code query-qmp-schema}), for schema-aware clients such as
 * {@code qsup qmp}. Fetched from the VM's QEMU on the first request for its version, package and architecture, and
 * kept under {@code state-dir/qmp-schema}, so that later requests, from any VM of the same QEMU, do not ask QEMU.
 */
public final class SchemaCommands {
    private static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

    private final Supervisor supervisor;
    private final SchemaCache cache;

    private SchemaCommands(Supervisor supervisor, SchemaCache cache) {
        this.supervisor = supervisor;
        this.cache = cache;
    }

    public static void register(Map<String, ControlCommand> table, Supervisor supervisor, DaemonSettings settings) {
        SchemaCommands c = new SchemaCommands(supervisor, new SchemaCache(settings.stateDir().resolve("qmp-schema")));
        table.put("vm-qmp-schema", (args, session) -> c.schema(args));
    }

    private JsonNode schema(Arguments args) throws ControlException {
        String name = args.string("name"); // checked against CommandTable.VM_QMP_SCHEMA
        if (supervisor.get(name).isEmpty()) {
            throw new ControlException(ControlException.VM_NOT_FOUND,
                    "no VM named '" + name + "'; 'qsup list' shows the known VMs");
        }
        Duration given = args.seconds("timeout");
        Duration timeout = given != null ? given : DEFAULT_TIMEOUT;
        try {
            JsonNode version = supervisor.qmp(name, "query-version", null, timeout);
            String arch;
            try {
                arch = supervisor.qmp(name, "query-target", null, timeout).path("arch").asText("");
            } catch (QmpErrorException e) {
                arch = "";
            }
            Duration deadline = timeout;
            SchemaCache.Obtained o = cache.obtain(SchemaKey.of(version, arch), () -> {
                try {
                    return supervisor.qmp(name, "query-qmp-schema", null, deadline);
                } catch (SupervisorException e) {
                    throw new QmpException(e.getMessage(), e);
                }
            });
            ObjectNode out = JsonNodeFactory.instance.objectNode();
            out.put("version", o.key().version()).put("package", o.key().pkg()).put("arch", o.key().arch());
            out.put("cached", !o.fetched());
            out.set("schema", o.schema().raw());
            return out;
        } catch (QmpErrorException e) {
            throw new ControlException(e.errorClass(), e.desc());
        } catch (QmpTimeoutException e) {
            throw new ControlException(ControlException.TIMEOUT, name + ": " + e.getMessage());
        } catch (QmpException | SupervisorException e) {
            throw new ControlException(ControlException.INVALID_STATE, name + ": " + e.getMessage());
        }
    }
}
