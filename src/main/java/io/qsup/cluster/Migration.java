package io.qsup.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;

/**
 * The value of {@code migrations/NAME}: one planned move of a cluster VM from host {@code from} to host {@code to},
 * kept under the source's lease (so it vanishes with the source), and the steps it went through:
 * <ol>
 *   <li>{@code requested}: written by {@code vm-migrate} on any host, only while {@code running/NAME} is the claim it
 *       read and no other migration of the VM is under way;</li>
 *   <li>{@code listening}: the target started its QEMU with {@code -incoming defer}, listening at {@code uri};</li>
 *   <li>{@code handed-over}: the source's transfer completed (the source is paused in {@code postmigrate}) and, in the
 *       same etcd transaction, the claim and the placement moved to the target;</li>
 *   <li>{@code completed}: the target runs the VM ({@code cont}); the source then quits its QEMU and adds
 *       {@code "source-ended": true};</li>
 *   <li>{@code failed}: with {@code reason}; the VM runs on at the source, and the target's QEMU is gone.</li>
 * </ol>
 * The key stays after {@code completed} or {@code failed}, as the record of the last move, until the next one
 * replaces it.
 *
 * @param entry     the key as read, for guarded writes (its mod revision and lease)
 * @param id        the request's own id, so a waiter knows its move from a later one
 * @param bandwidth bytes per second QEMU may send, 0 for qsup's default
 * @param timeoutMs bound of the transfer, 0 for the default
 */
record Migration(ClusterView.Entry entry, String id, String from, String to, State state, String uri, String reason,
        long bandwidth, long timeoutMs, long requestedAtMs, long transferMs, long downtimeMs) {

    enum State {
        REQUESTED, LISTENING, HANDED_OVER, COMPLETED, FAILED;

        String label() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }

        static State parse(String s) {
            for (State st : values()) {
                if (st.label().equals(s)) {
                    return st;
                }
            }
            return null;
        }
    }

    /** Ended, one way or the other: a new migration may replace the key. */
    boolean ended() {
        return state == State.COMPLETED || state == State.FAILED;
    }

    static Migration of(ClusterView.Entry e) {
        JsonNode j = e.json();
        if (j == null) {
            return new Migration(e, "", "", "", State.FAILED, "", "the key's value is not JSON", 0, 0, 0, -1, -1);
        }
        State st = State.parse(j.path("state").asText(""));
        return new Migration(e, j.path("id").asText(""), j.path("from").asText(""), j.path("to").asText(""),
                st == null ? State.FAILED : st, j.path("uri").asText(""),
                st == null ? "unknown state '" + j.path("state").asText("") + "'" : j.path("reason").asText(""),
                j.path("bandwidth").asLong(0), j.path("timeout-ms").asLong(0), j.path("requested-at-ms").asLong(0),
                j.path("transfer-ms").asLong(-1), j.path("downtime-ms").asLong(-1));
    }

    /** A fresh request. */
    static ObjectNode request(String id, String from, String to, long bandwidth, long timeoutMs) {
        return JsonNodeFactory.instance.objectNode().put("id", id).put("from", from).put("to", to)
                .put("state", State.REQUESTED.label()).put("bandwidth", bandwidth).put("timeout-ms", timeoutMs)
                .put("requested-at-ms", System.currentTimeMillis());
    }

    /** This value moved on to {@code next}, keeping everything else. */
    ObjectNode with(State next) {
        ObjectNode o = entry.json() != null && entry.json().isObject() ? ((ObjectNode) entry.json()).deepCopy()
                : JsonNodeFactory.instance.objectNode();
        return o.put("state", next.label());
    }

    /** This value, failed with {@code why}. */
    ObjectNode failed(String why) {
        return with(State.FAILED).put("reason", why);
    }

    @Override
    public String toString() {
        return "migration " + id + " " + from + " -> " + to + " " + state.label();
    }
}
