package io.qsup.control;

import java.util.Set;

/** Which events a subscriber wants: empty sets mean "all". */
public record EventFilter(Set<String> vms, Set<String> events) {
    public static final EventFilter ALL = new EventFilter(Set.of(), Set.of());

    public EventFilter {
        vms = Set.copyOf(vms);
        events = Set.copyOf(events);
    }

    public boolean accepts(ControlEvent e) {
        boolean vmOk = vms.isEmpty() || (e.vm() != null && vms.contains(e.vm()));
        boolean nameOk = events.isEmpty() || events.contains(e.name());
        return vmOk && nameOk;
    }
}
