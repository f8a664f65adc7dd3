package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup hosts}: the cluster's live hosts. */
@Command(name = "hosts", mixinStandardHelpOptions = true,
        description = "Cluster mode: every host alive in the cluster, with its address, capacity, what its VMs use,"
                + " which one is the leader, which are drained ('qsup drain'), and whether its qsupd runs (a host"
                + " whose qsupd stopped or died stays listed until its lease ends, and gets no new VM).",
        footer = {"", "Examples:", "  qsup hosts", "  qsup hosts --json"})
final class HostsCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
        try (DaemonClient client = daemon.connect()) {
            JsonNode hosts = client.call("query-hosts");
            if (output.json) {
                spec.commandLine().getOut().println(Json.pretty(hosts));
                return ExitCodes.OK;
            }
            Table t = new Table("HOST", "ADDRESS", "LEADER", "DRAINED", "QSUPD", "VMS", "MEMORY USED", "CPUS USED",
                    "VERSION");
            for (JsonNode h : hosts) {
                t.add(h.path("name").asText(), h.path("address").asText(), h.path("leader").asBoolean() ? "yes" : "-",
                        h.path("drained").asBoolean() ? "yes" : "-", h.path("qsupd").asText("?"),
                        h.path("vms").asText("0"), (h.path("used-memory").asLong() >> 20) + "/"
                                + (h.path("memory").asLong() >> 20) + " MiB",
                        h.path("used-cpus").asText() + "/" + h.path("cpus").asText(), h.path("version").asText());
            }
            spec.commandLine().getOut().print(t.render());
            spec.commandLine().getOut().flush();
            return ExitCodes.OK;
        }
    }
}
