package io.qsup.control;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.vm.VmEvent;

/** Turns the supervisor's VM events into control-socket events, in the wire vocabulary of docs/control-protocol.md. */
public final class SupervisorEvents {
    private SupervisorEvents() {}

    public static ControlEvent toControlEvent(VmEvent e) {
        ObjectNode d = JsonNodeFactory.instance.objectNode();
        String name;
        switch (e) {
            case VmEvent.StateChange s -> {
                name = "VM_STATE_CHANGED";
                d.put("old", s.from().label());
                d.put("new", s.to().label());
                d.put("cause", s.cause().label());
                d.put("detail", s.detail());
            }
            case VmEvent.ResponsivenessChange r -> {
                name = "VM_UNRESPONSIVE";
                d.put("unresponsive", r.unresponsive());
                d.put("detail", r.detail());
            }
            case VmEvent.StopRungReached r -> {
                name = "VM_STOP_RUNG";
                d.put("rung", r.rung().label());
            }
            case VmEvent.RestartScheduled r -> {
                name = "VM_RESTART_SCHEDULED";
                d.put("delay-seconds", r.delay().toMillis() / 1000.0);
            }
            case VmEvent.QmpEventSeen q -> {
                name = "VM_QMP_EVENT";
                d.put("event", q.event());
                if (q.data() != null && !q.data().isMissingNode()) {
                    d.set("data", q.data());
                }
            }
            case VmEvent.AgentChange a -> {
                name = "VM_AGENT_CHANGED";
                d.put("agent", a.state().label());
                d.put("detail", a.detail());
            }
            case VmEvent.GuestHangChange g -> {
                name = "VM_GUEST_UNRESPONSIVE";
                d.put("guest-unresponsive", g.guestUnresponsive());
                d.put("detail", g.detail());
            }
            case VmEvent.Ready r -> {
                name = "VM_READY";
                d.put("detail", r.detail());
            }
            case VmEvent.ReadyMissed r -> {
                name = "VM_NOT_READY";
                d.put("detail", r.detail());
            }
            case VmEvent.RestartPendingChange p -> {
                name = "VM_RESTART_PENDING";
                var keys = d.putArray("keys");
                p.changedKeys().forEach(keys::add);
            }
        }
        return new ControlEvent(name, e.vm(), d, e.time());
    }
}
