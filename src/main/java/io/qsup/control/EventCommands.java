package io.qsup.control;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.util.Map;

/**
 * The control commands about events: {@code event-subscribe}, {@code event-unsubscribe}, {@code query-events}.
 * Every negotiated session gets all events until it narrows them with {@code event-subscribe} or stops them with
 * {@code event-unsubscribe}.
 */
public final class EventCommands {
    private EventCommands() {}

    public static void register(Map<String, ControlCommand> table, EventHub hub) {
        table.put(CommandTable.EVENT_SUBSCRIBE.name(), (args, session) -> {
            session.subscribe(filter(args));
            return JsonNodeFactory.instance.objectNode();
        });
        table.put(CommandTable.EVENT_UNSUBSCRIBE.name(), (args, session) -> {
            session.unsubscribe();
            return JsonNodeFactory.instance.objectNode();
        });
        table.put(CommandTable.QUERY_EVENTS.name(), (args, session) -> {
            ArrayNode out = JsonNodeFactory.instance.arrayNode();
            for (ControlEvent e : hub.history(filter(args))) {
                out.add(ControlSession.eventMessage(e));
            }
            return out;
        });
    }

    /** {@code vms} and {@code events}; either may be missing or empty for "all". */
    static EventFilter filter(Arguments args) {
        return new EventFilter(args.stringSet("vms"), args.stringSet("events"));
    }
}
