package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup reload}: re-read the definitions and report the difference. */
@Command(name = "reload", mixinStandardHelpOptions = true,
        description = {"Re-read the VM definitions. New autostart VMs start, removed VMs stop along the ladder, changed",
            "VMs are marked restart-pending (or restarted with apply-changes: restart). A broken file keeps the old",
            "definition of its VM running; its errors are printed and the exit code is 1."},
        footer = {"", "Examples:", "  qsup reload", "  qsup reload --json"})
final class ReloadCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
        try (DaemonClient client = daemon.connect()) {
            JsonNode r = client.call("daemon-reload");
            PrintWriter out = spec.commandLine().getOut();
            boolean errors = r.path("errors").size() > 0;
            if (output.json) {
                out.println(Json.pretty(r));
                return errors ? ExitCodes.ERROR : ExitCodes.OK;
            }
            for (JsonNode n : r.path("added")) {
                out.println("added:   " + n.asText());
            }
            for (JsonNode n : r.path("removed")) {
                out.println("removed: " + n.asText());
            }
            for (JsonNode c : r.path("changed")) {
                StringBuilder keys = new StringBuilder();
                for (JsonNode k : c.path("keys")) {
                    keys.append(keys.isEmpty() ? "" : ", ").append(k.asText());
                }
                out.println("changed: " + c.path("name").asText() + " (" + keys + ")"
                        + (c.path("restarted").asBoolean(false) ? ", restarting" : ", restart pending"));
            }
            PrintWriter err = spec.commandLine().getErr();
            for (JsonNode e : r.path("errors")) {
                err.println(e.asText());
            }
            if (r.path("added").isEmpty() && r.path("removed").isEmpty() && r.path("changed").isEmpty() && !errors) {
                out.println("no changes");
            }
            return errors ? ExitCodes.ERROR : ExitCodes.OK;
        }
    }
}
