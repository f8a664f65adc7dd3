package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup list}: every VM with its state. */
@Command(name = "list", mixinStandardHelpOptions = true,
        description = "List every VM qsupd knows, with its state.",
        footer = {"", "Examples:", "  qsup list", "  qsup list --json | jq -r '.[] | select(.state==\"failed\") | .name'"})
final class ListCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @picocli.CommandLine.Option(names = "--names", description = "Print only the names, one per line (for scripts and completion).")
    boolean namesOnly;

    @Override
    public Integer call() {
        return run(spec.commandLine().getOut());
    }

    /** The verb's work, printing to {@code out}; also run without picocli by {@link FastVerbs}. */
    int run(PrintWriter out) {
        try (DaemonClient client = daemon.connect()) {
            JsonNode vms = client.call("query-vms");
            if (namesOnly) {
                for (JsonNode vm : vms) {
                    out.println(vm.path("name").asText());
                }
                return ExitCodes.OK;
            }
            if (output.json) {
                out.println(Json.pretty(vms));
                return ExitCodes.OK;
            }
            Function<String, String> colour = Table.stateColours(Table.colourWanted());
            // cluster mode: every VM object names its host
            boolean cluster = vms.size() > 0 && vms.get(0).has("host");
            Table t = cluster ? new Table("NAME", "HOST", "STATE", "FLAGS", "PID", "UPTIME", "IP", "RESTARTS",
                    "LAST EXIT") : new Table("NAME", "STATE", "FLAGS", "PID", "UPTIME", "IP", "RESTARTS", "LAST EXIT");
            for (JsonNode vm : vms) {
                String flags = VmText.flags(vm).isEmpty() ? "-" : VmText.flags(vm);
                String restarts = vm.path("restart-count").asText("0");
                if (cluster) {
                    t.add(vm.path("name").asText(), vm.path("host").asText("-"), colour.apply(VmText.state(vm)),
                            flags, VmText.pid(vm), VmText.uptime(vm), VmText.ip(vm), restarts, VmText.cause(vm));
                } else {
                    t.add(vm.path("name").asText(), colour.apply(VmText.state(vm)), flags, VmText.pid(vm),
                            VmText.uptime(vm), VmText.ip(vm), restarts, VmText.cause(vm));
                }
            }
            out.print(t.render());
            out.flush();
            return ExitCodes.OK;
        }
    }
}
