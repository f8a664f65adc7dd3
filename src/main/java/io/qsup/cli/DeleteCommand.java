package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup delete NAME}: remove a cluster VM's definition from etcd. */
@Command(name = "delete", mixinStandardHelpOptions = true,
        description = {"Cluster mode: remove a cluster VM's definition from etcd. The host that runs the VM stops it",
            "along its shutdown ladder, then lets its claim go."},
        footer = {"", "Examples:", "  qsup delete web1"})
final class DeleteCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", description = "The cluster VM.")
    String name;

    @Override
    public Integer call() {
        try (DaemonClient client = daemon.connect()) {
            JsonNode r = client.call("cluster-delete", JsonNodeFactory.instance.objectNode().put("name", name));
            spec.commandLine().getOut().println(output.json ? Json.pretty(r) : "deleted: " + name);
            return ExitCodes.OK;
        }
    }
}
