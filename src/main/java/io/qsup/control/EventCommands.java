package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** The control commands about events: {@code event-subscribe}, {@code event-unsubscribe}, {@code query-events}. */
public final class EventCommands {
    private EventCommands() {}

    public static void register(Map<String, ControlCommand> table, EventHub hub) {
        table.put("event-subscribe", (args, session) -> {
            session.subscribe(filter(args));
            return JsonNodeFactory.instance.objectNode();
        });
        table.put("event-unsubscribe", (args, session) -> {
            session.unsubscribe();
            return JsonNodeFactory.instance.objectNode();
        });
        table.put("query-events", (args, session) -> {
            ArrayNode out = JsonNodeFactory.instance.arrayNode();
            for (ControlEvent e : hub.history(filter(args))) {
                out.add(ControlSession.eventMessage(e));
            }
            return out;
        });
    }

    /** Reads {@code {"vms": [...], "events": [...]}}; either may be missing or empty for "all". */
    static EventFilter filter(ObjectNode args) throws ControlException {
        return new EventFilter(strings(args, "vms"), strings(args, "events"));
    }

    private static Set<String> strings(ObjectNode args, String key) throws ControlException {
        JsonNode node = args.get(key);
        Set<String> out = new HashSet<>();
        if (node == null || node.isNull()) {
            return out;
        }
        if (!node.isArray()) {
            throw ControlException.generic("'" + key + "' must be an array of strings");
        }
        for (JsonNode n : node) {
            if (!n.isTextual()) {
                throw ControlException.generic("'" + key + "' must be an array of strings, found " + n);
            }
            out.add(n.asText());
        }
        return out;
    }
}
