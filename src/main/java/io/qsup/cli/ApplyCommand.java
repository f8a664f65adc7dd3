package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup apply FILE|DIR...}: store cluster VM definitions in etcd, all or none. */
@Command(name = "apply", mixinStandardHelpOptions = true,
        description = {"Cluster mode: validate VM definitions (a file, or every *.yaml file of a folder) as qsupd",
            "validates its own, then store them all in etcd in one transaction; with any error, nothing is stored and",
            "every error is printed as file:line:column: key: message. The leader places each VM on a host."},
        footer = {"", "Examples:", "  qsup apply web1.yaml", "  qsup apply /srv/cluster-vms/"})
final class ApplyCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "FILE|DIR", arity = "1..*", description = "Definition files or folders of them.")
    List<Path> paths;

    @Override
    public Integer call() {
        ArrayNode defs = JsonNodeFactory.instance.arrayNode();
        for (Path p : files()) {
            try {
                defs.addObject().put("file", p.toAbsolutePath().normalize().toString())
                        .put("yaml", Files.readString(p, StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new CliException(ExitCodes.NOT_FOUND, "cannot read " + p + ": " + e.getMessage());
            }
        }
        ObjectNode args = JsonNodeFactory.instance.objectNode();
        args.set("definitions", defs);
        try (DaemonClient client = daemon.connect()) {
            JsonNode r = client.call("cluster-apply", args);
            PrintWriter out = spec.commandLine().getOut();
            if (output.json) {
                out.println(Json.pretty(r));
                return ExitCodes.OK;
            }
            r.path("applied").forEach(n -> out.println("applied:   " + n.asText()));
            r.path("unchanged").forEach(n -> out.println("unchanged: " + n.asText()));
            return ExitCodes.OK;
        }
    }

    private List<Path> files() {
        List<Path> out = new ArrayList<>();
        for (Path p : paths) {
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.list(p)) {
                    s.filter(f -> f.getFileName().toString().endsWith(".yaml")
                            && !f.getFileName().toString().startsWith(".")).sorted().forEach(out::add);
                } catch (IOException e) {
                    throw new CliException(ExitCodes.NOT_FOUND, "cannot list " + p + ": " + e.getMessage());
                }
            } else if (Files.isRegularFile(p)) {
                out.add(p);
            } else {
                throw new CliException(ExitCodes.NOT_FOUND, p + ": no such file or folder");
            }
        }
        if (out.isEmpty()) {
            throw new CliException(ExitCodes.NOT_FOUND, "no *.yaml file in " + paths);
        }
        return out;
    }
}
