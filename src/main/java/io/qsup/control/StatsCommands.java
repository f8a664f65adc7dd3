package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.supervisor.Supervisor;
import io.qsup.vm.VmStats;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * {@code query-vm-stats}: every VM's figures from the same snapshots the metrics endpoint reads (state, CPU time and
 * memory of its QEMU, disk counters, the probe's round trip, restarts), so {@code qsup top} needs no HTTP. Answering
 * takes no VM lock and makes no QMP call.
 */
public final class StatsCommands {
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    private StatsCommands() {}

    public static void register(Map<String, ControlCommand> table, Supervisor supervisor) {
        table.put("query-vm-stats", (args, session) -> query(supervisor, args));
    }

    private static JsonNode query(Supervisor supervisor, Arguments args) throws ControlException {
        String only = args.string("name"); // checked against CommandTable.QUERY_VM_STATS: a string, or absent
        List<VmStats> all = supervisor.vmStats();
        Instant now = Instant.now();
        ArrayNode out = JSON.arrayNode();
        for (VmStats s : all) {
            if (only == null || only.equals(s.vm())) {
                out.add(object(s, now));
            }
        }
        if (only != null && out.isEmpty()) {
            throw new ControlException(ControlException.VM_NOT_FOUND,
                    "no VM named '" + only + "'; 'qsup list' shows the known VMs");
        }
        return out;
    }

    static ObjectNode object(VmStats s, Instant now) {
        ObjectNode o = JSON.objectNode();
        o.put("name", s.vm());
        o.put("state", s.state().label());
        o.put("unresponsive", s.unresponsive());
        o.put("restart-pending", s.restartPending());
        putOrNull(o, "pid", s.pid() > 0 ? s.pid() : null);
        if (s.startedAt() != null) {
            o.put("uptime-seconds", Math.max(0, Duration.between(s.startedAt(), now).toMillis() / 1000.0));
        } else {
            o.putNull("uptime-seconds");
        }
        if (s.usage() != null) {
            o.put("cpu-seconds", s.usage().cpuSeconds());
            o.put("rss-bytes", s.usage().rssBytes());
            o.put("sampled-at", seconds(s.usage().at()));
        } else {
            o.putNull("cpu-seconds");
            o.putNull("rss-bytes");
            o.putNull("sampled-at");
        }
        if (s.block() != null) {
            ArrayNode devices = o.putArray("block");
            for (VmStats.BlockDevice d : s.block().devices()) {
                devices.addObject().put("device", d.device()).put("read-bytes", d.readBytes())
                        .put("written-bytes", d.writtenBytes()).put("read-ops", d.readOps())
                        .put("written-ops", d.writtenOps());
            }
            o.put("block-sampled-at", seconds(s.block().at()));
        } else {
            o.putNull("block");
            o.putNull("block-sampled-at");
        }
        if (Double.isNaN(s.qmpRttSeconds())) {
            o.putNull("qmp-rtt-seconds");
        } else {
            o.put("qmp-rtt-seconds", s.qmpRttSeconds());
        }
        o.put("restarts", s.restarts());
        ObjectNode exits = o.putObject("exits");
        s.exits().forEach(exits::put);
        o.put("machine", s.machine());
        o.put("accel", s.accel());
        o.put("qemu-version", s.qemuVersion());
        o.putNull("ip"); // the guest agent would know; until it is supported, qsupd does not
        return o;
    }

    private static void putOrNull(ObjectNode o, String key, Long v) {
        if (v == null) {
            o.putNull(key);
        } else {
            o.put(key, v);
        }
    }

    private static double seconds(Instant t) {
        return t.getEpochSecond() + t.getNano() / 1e9;
    }
}
