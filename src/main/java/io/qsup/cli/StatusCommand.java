package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpFraming;
import java.io.PrintWriter;
import java.time.Instant;
import java.time.ZoneId;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup status NAME}: everything qsupd knows about one VM. */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Show one VM's state, process, last exit cause, restart count and pending changes.",
        footer = {"", "Examples:", "  qsup status web1", "  qsup status web1 --json"})
final class StatusCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME", description = "The VM.")
    String name;

    @Override
    public Integer call() {
        return run(spec.commandLine().getOut());
    }

    /** The verb's work, printing to {@code out}; also run without picocli by {@link FastVerbs}. */
    int run(PrintWriter out) {
        try (DaemonClient client = daemon.connect()) {
            JsonNode vm = client.call("query-vm", Json.object().put("name", name));
            if (output.json) {
                out.println(Json.pretty(vm));
                return ExitCodes.OK;
            }
            Table t = new Table("", "");
            String state = Table.stateColours(Table.colourWanted()).apply(VmText.state(vm));
            String flags = VmText.flags(vm);
            // as systemctl status has it: running since <local time> (3m ago)
            JsonNode up = vm.get("uptime-seconds");
            Instant now = Instant.now();
            String since = up == null || !up.isNumber() ? ""
                    : " since " + TimeText.since(now.minusSeconds(up.asLong()), now, ZoneId.systemDefault());
            out.println(vm.path("name").asText() + ": " + state + (flags.isEmpty() ? "" : " (" + flags + ")") + since);
            if (!vm.path("intent-persisted").asBoolean(true)) {
                out.println("  state-dir: not writable; this VM's intent is not persisted, so a qsupd restart would"
                        + " not know it (qsupd keeps retrying; 'qsup status' clears once a write succeeds)");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = vm.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("name") || e.getKey().equals("state")) {
                    continue;
                }
                JsonNode v = e.getValue();
                if (e.getKey().equals("uptime-seconds") && v.isNumber()) {
                    continue; // on the first line
                }
                // QmpFraming.toJson, not JsonNode.toString(), which builds an ObjectMapper of its own
                String text = v.isNull() ? "-" : e.getKey().equals("last-exit-cause") && v.isObject() ? lastExit(v, now)
                        : e.getKey().equals("interfaces") ? VmText.interfaces(v)
                        : v.isValueNode() ? v.asText() : QmpFraming.toJson(v);
                t.add(e.getKey() + ":", text);
            }
            String body = t.render();
            out.print(body.substring(body.indexOf('\n') + 1).indent(2));
            out.flush();
            return ExitCodes.OK;
        }
    }

    /** {@code operator-stop (ended at rung powerdown), 2026-12-01 10:19:43 (3m ago)}. */
    static String lastExit(JsonNode exit, Instant now) {
        StringBuilder b = new StringBuilder(exit.path("cause").asText("?"));
        String detail = exit.path("detail").asText("");
        if (!detail.isEmpty()) {
            b.append(" (").append(detail).append(')');
        }
        if (exit.path("at").isTextual()) {
            b.append(", ").append(TimeText.since(Instant.parse(exit.path("at").asText()), now, ZoneId.systemDefault()));
        }
        return b.toString();
    }
}
