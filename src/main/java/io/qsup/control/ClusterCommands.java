package io.qsup.control;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The cluster-mode commands ({@code cluster-apply}, {@code cluster-delete}, {@code query-hosts}, {@code vm-migrate},
 * {@code host-drain}), served on every
 * qsupd: without {@code cluster:} they answer that cluster mode is off.
 */
final class ClusterCommands {
    private ClusterCommands() {}

    static void register(Map<String, ControlCommand> table, ClusterPort cluster) {
        table.put(CommandTable.CLUSTER_APPLY.name(), (a, s) -> {
            Map<String, String> defs = new LinkedHashMap<>();
            int i = 0;
            for (ObjectNode d : a.objects("definitions")) {
                if (!d.path("file").isTextual() || !d.path("yaml").isTextual()) {
                    throw ControlException.generic("Parameter 'definitions[" + i + "]' needs \"file\" and \"yaml\","
                            + " both strings");
                }
                if (defs.put(d.path("file").asText(), d.path("yaml").asText()) != null) {
                    throw ControlException.generic("file " + d.path("file").asText() + " is given twice");
                }
                i++;
            }
            return on(cluster).apply(defs);
        });
        table.put(CommandTable.CLUSTER_DELETE.name(), (a, s) -> on(cluster).delete(a.string("name")));
        table.put(CommandTable.QUERY_HOSTS.name(), (a, s) -> on(cluster).hosts());
        table.put(CommandTable.VM_MIGRATE.name(), (a, s) -> {
            Double mib = a.number("bandwidth");
            long bytes = mib == null ? 0 : (long) (mib * (1 << 20));
            return on(cluster).migrate(a.string("name"), a.string("to"), a.bool("wait"), a.seconds("timeout"), bytes);
        });
        table.put(CommandTable.HOST_DRAIN.name(), (a, s) -> on(cluster).drain(a.string("host"), a.bool("undo"),
                a.seconds("timeout")));
    }

    static ClusterPort on(ClusterPort cluster) throws ControlException {
        if (cluster == null) {
            throw ControlException.generic("cluster mode is off on this host: add a cluster: section (etcd, host,"
                    + " address) to qsupd.yaml and restart qsupd");
        }
        return cluster;
    }
}
