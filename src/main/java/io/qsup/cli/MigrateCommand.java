package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup migrate NAME --to HOST}: live-migrate a running cluster VM to another host. */
@Command(name = "migrate", mixinStandardHelpOptions = true,
        description = {"Cluster mode: live-migrate a running cluster VM to another host, and wait",
            "for the outcome. The target starts QEMU waiting for the VM, the source sends",
            "it over TCP to the target's address, and the VM's claim moves to the target",
            "in one etcd transaction once the transfer completed. Every disk of the VM",
            "must be on shared storage ('shared: true') or read-only. A failed migration",
            "leaves the VM running on its source, and says why (exit status 1)."},
        footer = {"", "Examples:", "  qsup migrate web1 --to h2", "  qsup migrate db1 --to h3 --timeout 5m"})
final class MigrateCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", description = "The cluster VM.")
    String name;

    @Option(names = "--to", paramLabel = "HOST", required = true, description = "The target host ('qsup hosts').")
    String to;

    @Option(names = "--timeout", paramLabel = "D",
            description = "Bound of the transfer, e.g. 90s or 5m; past it the migration is cancelled and the VM runs"
                    + " on at its source. Default 2m.")
    String timeout;

    @Option(names = "--bandwidth", paramLabel = "MIB",
            description = "The most QEMU may send, in MiB per second. Default 1024.")
    Double bandwidth;

    @Option(names = "--no-wait", description = "Return once the migration is requested.")
    boolean noWait;

    @Override
    public Integer call() {
        ObjectNode args = JsonNodeFactory.instance.objectNode().put("name", name).put("to", to).put("wait", !noWait);
        double seconds = 120;
        if (timeout != null) {
            seconds = DurationArg.seconds(spec, "--timeout", timeout);
            args.put("timeout", seconds);
        }
        if (bandwidth != null) {
            args.put("bandwidth", bandwidth);
        }
        try (DaemonClient client = daemon.connect()) {
            JsonNode r = client.call("vm-migrate", args, Duration.ofMillis((long) (seconds * 1000)).plusMinutes(3));
            if (output.json) {
                spec.commandLine().getOut().println(Json.pretty(r));
            } else if (noWait) {
                spec.commandLine().getOut().println(name + ": migration from " + r.path("from").asText() + " to "
                        + r.path("to").asText() + " requested");
            } else {
                spec.commandLine().getOut().println(name + ": migrated from " + r.path("from").asText() + " to "
                        + r.path("to").asText() + figures(r));
            }
            return ExitCodes.OK;
        }
    }

    private static String figures(JsonNode r) {
        StringBuilder b = new StringBuilder();
        double s = r.path("seconds").asDouble(-1);
        if (s >= 0) {
            b.append(String.format(Locale.ROOT, " in %.1f s", s));
        }
        long down = r.path("downtime-ms").asLong(-1);
        long transfer = r.path("transfer-ms").asLong(-1);
        if (transfer >= 0) {
            b.append(" (transfer ").append(transfer).append(" ms");
            if (down >= 0) {
                b.append(", guest paused ").append(down).append(" ms");
            }
            b.append(')');
        }
        return b.toString();
    }
}
