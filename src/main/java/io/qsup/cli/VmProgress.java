package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpEvent;
import java.time.Duration;

/**
 * What one VM is doing while a lifecycle verb waits for it, told by the control socket's {@code VM_STATE_CHANGED}
 * and {@code VM_STOP_RUNG} events, as the one line a terminal shows for it.
 *
 * <p>Threading: events arrive on the daemon connection's event thread, the line is read by the thread that draws
 * the terminal. The phase is one immutable value behind a volatile field, so neither waits for the other.
 */
final class VmProgress {
    /** What the VM is doing, and whether the stop's bound applies to it. */
    private record Phase(String text, boolean stopping, String result) {}

    private final String name;
    private final long requestedNanos;
    private final long boundNanos;
    private volatile Phase phase;

    /**
     * @param verb the verb as typed, for the first line ({@code stop requested})
     * @param bound how long the stop ladder may take, when the CLI knows it ({@code --timeout}); else null
     */
    VmProgress(String name, String verb, Duration bound, long requestedNanos) {
        this.name = name;
        this.requestedNanos = requestedNanos;
        this.boundNanos = bound == null ? -1 : bound.toNanos();
        this.phase = new Phase(verb + " requested", false, null);
    }

    void onEvent(QmpEvent e) {
        JsonNode d = e.data();
        if (!name.equals(d.path("vm").asText())) {
            return;
        }
        switch (e.name()) {
            case "VM_STOP_RUNG" -> phase = new Phase(rung(d.path("rung").asText()), true, null);
            case "VM_STATE_CHANGED" -> {
                String state = d.path("new").asText();
                if (state.equals("stopping") && phase.stopping()) {
                    return; // a rung already says more
                }
                String cause = d.path("cause").asText("");
                boolean unexpected = state.equals("backoff") || state.equals("failed") || state.equals("orphaned");
                phase = new Phase(unexpected && !cause.isEmpty() ? state + " (" + cause + ")" : state,
                        state.equals("stopping"), null);
            }
            default -> { }
        }
    }

    /** The VM's request is answered: from now on its line is the result. */
    void finish(String resultLine) {
        phase = new Phase(null, false, resultLine);
    }

    /** The line to show now, e.g. {@code web1: powerdown sent, waiting for the guest (62 s left)}. */
    String line(long nowNanos) {
        Phase p = phase;
        if (p.result() != null) {
            return p.result();
        }
        String time;
        if (p.stopping() && boundNanos >= 0) {
            long left = Math.max(0, requestedNanos + boundNanos - nowNanos);
            time = ceilSeconds(left) + " s left";
        } else {
            time = (nowNanos - requestedNanos) / 1_000_000_000L + " s";
        }
        return name + ": " + p.text() + " (" + time + ")";
    }

    private static long ceilSeconds(long nanos) {
        return (nanos + 999_999_999L) / 1_000_000_000L;
    }

    private static String rung(String rung) {
        return switch (rung) {
            case "powerdown" -> "powerdown sent, waiting for the guest";
            case "quit" -> "quit sent, waiting for QEMU to exit";
            case "sigterm" -> "SIGTERM sent, waiting for QEMU to exit";
            case "sigkill" -> "SIGKILL sent, waiting for the process to end";
            default -> rung;
        };
    }
}
