package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpFraming;
import java.io.PrintWriter;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup events}: recent events, and with {@code --follow} every new one as it happens. */
@Command(name = "events", mixinStandardHelpOptions = true,
        description = {"Print recent VM events kept by qsupd (state changes, scheduled restarts, QMP events).",
            "With --follow, keep printing new events until interrupted."},
        footer = {"", "Examples:", "  qsup events web1", "  qsup events --follow --type VM_STATE_CHANGED",
            "  qsup events --follow --json | jq ."})
final class EventsCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", arity = "0..*", description = "Only events of these VMs.")
    List<String> names = new ArrayList<>();

    @Option(names = {"-f", "--follow"}, description = "Keep printing new events.")
    boolean follow;

    @Option(names = "--type", paramLabel = "EVENT", description = "Only events of this type (repeatable).")
    List<String> types = new ArrayList<>();

    @Override
    public Integer call() throws InterruptedException {
        PrintWriter out = spec.commandLine().getOut();
        try (DaemonClient client = daemon.connect()) {
            ObjectNode filter = Json.object();
            ArrayNode vms = filter.putArray("vms");
            names.forEach(vms::add);
            ArrayNode ev = filter.putArray("events");
            types.forEach(ev::add);
            CountDownLatch ended = new CountDownLatch(1);
            if (follow) {
                // qsupd sends every event until event-subscribe narrows them: skip those that come before
                client.onEvent(e -> {
                    if (wanted(e.raw())) {
                        print(out, e.raw());
                    }
                });
                client.onDisconnect(e -> ended.countDown());
            }
            // Subscribe before reading the history so nothing falls between the two.
            if (follow) {
                client.call("event-subscribe", filter);
            }
            for (JsonNode e : client.call("query-events", filter)) {
                print(out, e);
            }
            if (!follow) {
                return ExitCodes.OK;
            }
            ended.await();
            spec.commandLine().getErr().println("qsup: qsupd closed the connection");
            return ExitCodes.UNREACHABLE;
        }
    }

    private boolean wanted(JsonNode e) {
        return (names.isEmpty() || names.contains(e.path("data").path("vm").asText()))
                && (types.isEmpty() || types.contains(e.path("event").asText()));
    }

    private synchronized void print(PrintWriter out, JsonNode e) {
        if (output.json) {
            out.println(QmpFraming.toJson(e));
        } else {
            out.println(line(e));
        }
        out.flush();
    }

    /** One human line: local time, VM, event, and what changed. */
    static String line(JsonNode e) {
        return line(e, ZoneId.systemDefault());
    }

    static String line(JsonNode e, ZoneId zone) {
        JsonNode ts = e.path("timestamp");
        Instant t = Instant.ofEpochSecond(ts.path("seconds").asLong(), ts.path("microseconds").asLong() * 1000);
        JsonNode d = e.path("data");
        String vm = d.path("vm").asText("-");
        String name = e.path("event").asText();
        String what = switch (name) {
            case "VM_STATE_CHANGED" -> d.path("old").asText() + " -> " + d.path("new").asText()
                    + (d.hasNonNull("cause") ? " (" + d.path("cause").asText() + ")" : "");
            case "VM_RESTART_SCHEDULED" -> "restart in " + d.path("delay-seconds").asText() + "s (attempt "
                    + d.path("attempt").asText() + ")";
            case "VM_QMP_EVENT" -> d.path("event").asText() + " " + QmpFraming.toJson(d.path("data"));
            default -> QmpFraming.toJson(d);
        };
        return TimeText.event(t, zone) + " " + vm + " " + name + " " + what;
    }

}
