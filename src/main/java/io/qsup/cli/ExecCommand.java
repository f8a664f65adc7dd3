package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup exec NAME -- CMD [ARG...]}: runs a command in the guest through its agent, with its exit code. */
@Command(name = "exec", mixinStandardHelpOptions = true,
        description = {"Run a command in a VM's guest through the QEMU guest agent (qemu-ga must run in the guest).",
            "Prints the command's stdout and stderr as the agent returns them (once it ended) and exits with its exit"
                    + " code; 124 when --timeout passed first, 128+N when signal N ended it."},
        footer = {"", "Examples:", "  qsup exec web1 -- uname -a",
            "  qsup exec web1 --timeout 5m -- sh -c 'apt-get update'"})
final class ExecCommand implements Callable<Integer> {
    /** As timeout(1): the command did not end within --timeout. */
    static final int TIMED_OUT = 124;

    @Mixin DaemonOptions daemon;
    @Spec CommandSpec spec;

    @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "60s",
            description = "How long to wait for the command to end (default ${DEFAULT-VALUE}).")
    String timeout;

    @Parameters(index = "0", paramLabel = "NAME", description = "The VM.")
    String name;

    @Parameters(index = "1..*", arity = "1..*", paramLabel = "CMD", description = "The command and its arguments.")
    List<String> command;

    @Override
    public Integer call() {
        double seconds = DurationArg.seconds(spec, "--timeout", timeout);
        ObjectNode args = Json.object().put("name", name).put("path", command.get(0)).put("timeout", seconds);
        ArrayNode a = args.putArray("args");
        command.subList(1, command.size()).forEach(a::add);
        try (DaemonClient client = daemon.connect()) {
            JsonNode r = client.call("vm-exec", args, Duration.ofMillis((long) (seconds * 1000) + 15_000));
            spec.commandLine().getOut().print(r.path("stdout").asText(""));
            spec.commandLine().getOut().flush();
            spec.commandLine().getErr().print(r.path("stderr").asText(""));
            spec.commandLine().getErr().flush();
            if (r.path("timed-out").asBoolean(false)) {
                spec.commandLine().getErr().println("qsup exec: " + command.get(0) + " did not end within " + timeout
                        + "; it may still run in the guest");
                return TIMED_OUT;
            }
            if (r.hasNonNull("exit-code")) {
                return r.get("exit-code").asInt();
            }
            return r.hasNonNull("signal") ? 128 + r.get("signal").asInt() : ExitCodes.ERROR;
        }
    }
}
