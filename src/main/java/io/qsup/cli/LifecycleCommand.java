package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The verbs that act on named VMs ({@code start}, {@code stop}, {@code restart}, ...): each sends one control
 * command per VM, waits for the result by default, and says what happened to each.
 */
abstract class LifecycleCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", arity = "0..*", description = "The VMs to act on.")
    List<String> names = new ArrayList<>();

    @Option(names = "--all", description = "Act on every VM qsupd knows.")
    boolean all;

    @Option(names = "--no-wait", description = "Return once qsupd accepted the request, without waiting for the result.")
    boolean noWait;

    @Option(names = "--allow-unpersisted",
            description = "Exit 0 even if qsupd could not write the intent to its state-dir (it still warns).")
    boolean allowUnpersisted;

    /** The control command, e.g. {@code vm-start}. */
    abstract String controlCommand();

    /** Extra arguments of this verb. */
    void addArguments(ObjectNode args) {}

    /** How long the daemon may take, beyond which the CLI stops waiting. */
    Duration callTimeout() {
        return Duration.ofMinutes(10);
    }

    @Override
    public Integer call() {
        if (all == !names.isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    all ? "give VM names or --all, not both" : "name at least one VM, or use --all");
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        ArrayNode results = JsonNodeFactory.instance.arrayNode();
        int exit = ExitCodes.OK;
        try (DaemonClient client = daemon.connect(callTimeout())) {
            List<String> targets = names;
            if (all) {
                targets = new ArrayList<>();
                for (JsonNode vm : client.call("query-vms")) {
                    targets.add(vm.path("name").asText());
                }
            }
            for (String name : targets) {
                ObjectNode args = Json.object().put("name", name).put("wait", !noWait);
                addArguments(args);
                try {
                    JsonNode r = client.call(controlCommand(), args, callTimeout());
                    results.add(r);
                    if (!output.json) {
                        out.println(describe(name, r));
                    }
                    for (JsonNode w : r.path("warnings")) {
                        err.println("qsup: " + name + ": warning: " + w.asText());
                        if (!allowUnpersisted && exit == ExitCodes.OK) {
                            exit = ExitCodes.ERROR;
                        }
                    }
                } catch (CliException e) {
                    if (e.exitCode() == ExitCodes.UNREACHABLE) {
                        throw e;
                    }
                    exit = exit == ExitCodes.OK ? e.exitCode() : exit;
                    ObjectNode failed = Json.object().put("name", name).put("error", e.getMessage());
                    results.add(failed);
                    if (!output.json) {
                        err.println("qsup: " + name + ": " + e.getMessage());
                    }
                }
            }
        }
        if (output.json) {
            out.println(Json.pretty(results));
        }
        return exit;
    }

    /** One human line for one VM's result, e.g. {@code web1: stopped (powerdown, 3.2s)}. */
    static String describe(String name, JsonNode r) {
        StringBuilder s = new StringBuilder(name).append(": ").append(r.path("state").asText("requested"));
        List<String> details = new ArrayList<>();
        String rung = Json.text(r, "rung");
        if (rung != null) {
            details.add("by " + rung);
        }
        JsonNode secs = r.get("seconds");
        if (secs != null && !secs.isNull()) {
            details.add(String.format("%.1fs", secs.asDouble()));
        }
        String message = Json.text(r, "message");
        if (message != null && rung == null) {
            details.add(message);
        }
        if (!details.isEmpty()) {
            s.append(" (").append(String.join(", ", details)).append(')');
        }
        return s.toString();
    }

    @CommandLine.Command(name = "start", mixinStandardHelpOptions = true,
            description = "Start VMs (also clears 'failed'); the operator intent 'started' is remembered.",
            footer = {"", "Examples:", "  qsup start web1 db1", "  qsup start --all --no-wait"})
    static final class Start extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-start";
        }
    }

    @CommandLine.Command(name = "stop", mixinStandardHelpOptions = true,
            description = {"Stop VMs along the shutdown ladder: ACPI powerdown, then QMP quit, then SIGTERM, then SIGKILL.",
                "A VM stopped by the operator is never restarted by its restart policy."},
            footer = {"", "Examples:", "  qsup stop web1", "  qsup stop --force --all", "  qsup stop web1 --timeout 30s"})
    static final class Stop extends LifecycleCommand {
        @Option(names = "--force", description = "Skip the ACPI powerdown and start at QMP quit.")
        boolean force;

        @Option(names = "--timeout", paramLabel = "DURATION",
                description = "Bound for the whole ladder (default: the VM's stop-timeout), e.g. 30s, 2m.")
        String timeout;

        @Override
        String controlCommand() {
            return "vm-stop";
        }

        @Override
        void addArguments(ObjectNode args) {
            args.put("force", force);
            if (timeout != null) {
                args.put("timeout", DurationArg.seconds(spec, "--timeout", timeout));
            }
        }
    }

    @CommandLine.Command(name = "restart", mixinStandardHelpOptions = true,
            description = "Stop VMs along the ladder, then start them again (applies pending definition changes).",
            footer = {"", "Examples:", "  qsup restart web1"})
    static final class Restart extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-restart";
        }
    }

    @CommandLine.Command(name = "kill", mixinStandardHelpOptions = true,
            description = "Kill VMs' QEMU processes with SIGKILL at once; counts as an operator stop.",
            footer = {"", "Examples:", "  qsup kill web1"})
    static final class Kill extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-kill";
        }
    }

    @CommandLine.Command(name = "pause", mixinStandardHelpOptions = true, description = "Pause VMs' vCPUs (QMP stop).",
            footer = {"", "Examples:", "  qsup pause web1"})
    static final class Pause extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-pause";
        }
    }

    @CommandLine.Command(name = "resume", mixinStandardHelpOptions = true, description = "Resume paused VMs (QMP cont).",
            footer = {"", "Examples:", "  qsup resume web1"})
    static final class Resume extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-resume";
        }
    }

    @CommandLine.Command(name = "reset", mixinStandardHelpOptions = true,
            description = "Hard-reset VMs (QMP system_reset), like pressing the reset button.",
            footer = {"", "Examples:", "  qsup reset web1"})
    static final class Reset extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-reset";
        }
    }

    @CommandLine.Command(name = "reset-failed", mixinStandardHelpOptions = true,
            description = "Clear the 'failed' state and the restart tally of VMs, leaving them stopped.",
            footer = {"", "Examples:", "  qsup reset-failed web1", "  qsup reset-failed --all"})
    static final class ResetFailed extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-reset-failed";
        }
    }
}
