package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup drain HOST}: empty a host of its cluster VMs by live migration, and place nothing new there. */
@Command(name = "drain", mixinStandardHelpOptions = true,
        description = {"Cluster mode: mark a host drained, so that the leader places nothing new",
            "there, then live-migrate every VM it runs whose disks are all shared or",
            "read-only to hosts the placement rules pick (allowed hosts, anti-affinity,",
            "capacity, most free memory), two at a time. Prints, per VM, where it moved,",
            "or why it could not. The mark stays until 'qsup drain --undo HOST', which",
            "moves nothing back. Exit status 1 if any VM was left on the host."},
        footer = {"", "Examples:", "  qsup drain h1", "  qsup drain --undo h1"})
final class DrainCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "HOST", description = "The host ('qsup hosts').")
    String host;

    @Option(names = "--undo", description = "Lift the drain mark: the host takes new VMs again.")
    boolean undo;

    @Option(names = "--timeout", paramLabel = "D",
            description = "Bound of each VM's transfer, e.g. 90s or 5m. Default 2m.")
    String timeout;

    @Override
    public Integer call() {
        ObjectNode args = JsonNodeFactory.instance.objectNode().put("host", host).put("undo", undo);
        double seconds = 120;
        if (timeout != null) {
            seconds = DurationArg.seconds(spec, "--timeout", timeout);
            args.put("timeout", seconds);
        }
        try (DaemonClient client = daemon.connect()) {
            JsonNode r = client.call("host-drain", args, Duration.ofMillis((long) (seconds * 1000)).plusMinutes(30));
            PrintWriter out = spec.commandLine().getOut();
            int left = 0;
            for (JsonNode vm : r.path("vms")) {
                if (!"moved".equals(vm.path("result").asText())) {
                    left++;
                }
            }
            if (output.json) {
                out.println(Json.pretty(r));
            } else if (undo) {
                out.println("host " + host + " is no longer drained; the leader may place VMs there again");
            } else {
                for (JsonNode vm : r.path("vms")) {
                    String n = vm.path("name").asText();
                    switch (vm.path("result").asText()) {
                        case "moved" -> out.println(n + ": moved to " + vm.path("to").asText()
                                + (vm.path("seconds").asDouble(-1) >= 0
                                        ? String.format(Locale.ROOT, " in %.1f s", vm.path("seconds").asDouble()) : ""));
                        case "not-movable" -> out.println(n + ": not movable: " + vm.path("reason").asText());
                        default -> out.println(n + ": failed" + (vm.path("to").isTextual() ? " to move to "
                                + vm.path("to").asText() : "") + ": " + vm.path("reason").asText());
                    }
                }
                out.println("host " + host + " is drained: nothing new is placed there"
                        + (left == 0 ? "" : "; " + left + " VM(s) still run there") + "; 'qsup drain --undo " + host
                        + "' lifts it");
            }
            out.flush();
            return left == 0 ? ExitCodes.OK : ExitCodes.ERROR;
        }
    }
}
