package io.qsup.cli;

import io.qsup.config.ConfigError;
import io.qsup.config.ConfigException;
import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.LoadResult;
import io.qsup.config.VmDefinition;
import io.qsup.qemu.HostFacts;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code qsup validate}: checks definitions offline, printing every problem or {@code ok: N VMs}. */
@Command(
        name = "validate",
        mixinStandardHelpOptions = true,
        description = {
            "Check VM definitions without a daemon: a file, a folder, or the vms-dir of the settings.",
            "Prints each problem as file:line:column: key: message (the first 50 of a file, then a count of the",
            "rest), or 'ok: N VMs'. Exit code 1 on errors."
        })
public final class ValidateCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", paramLabel = "FILE|DIR",
            description = "A definition file or a folder of them (default: vms-dir from the settings).")
    Path target;

    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "Daemon settings (default: /etc/qsup/qsupd.yaml if it exists, else built-in defaults).")
    Path config;

    @Option(names = "--json", description = "Print {\"ok\", \"vms\", \"errors\", \"warnings\"}; each problem has file,"
            + " line, column, key and message.")
    boolean json;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        DaemonSettings settings;
        try {
            settings = DaemonSettings.loadOrDefaults(config);
        } catch (ConfigException e) {
            e.errors().forEach(x -> out.println(x.format()));
            out.println("settings are invalid: fix the file above or pass another with --config");
            out.flush();
            return ExitCodes.ERROR;
        }
        HostFacts host = HostFacts.probe(settings.qemuBinary());
        Path path = target != null ? target : settings.vmsDir();
        if (!Files.exists(path)) {
            err.println("qsup validate: " + path + " does not exist; give a definition file or folder");
            err.flush();
            return ExitCodes.NOT_FOUND;
        }
        List<ConfigError> errors;
        List<ConfigError> warnings;
        int count;
        if (Files.isDirectory(path)) {
            LoadResult r = ConfigLoader.loadDirectory(path, settings, host);
            errors = r.errors();
            warnings = r.warnings();
            count = r.vms().size();
        } else {
            warnings = ConfigLoader.warnings(path, settings, host);
            try {
                VmDefinition vm = ConfigLoader.loadFile(path, settings, host);
                errors = List.of();
                count = vm != null ? 1 : 0;
            } catch (ConfigException e) {
                errors = e.errors();
                count = 0;
            }
        }
        if (json) {
            com.fasterxml.jackson.databind.node.ObjectNode o = Json.object();
            o.put("ok", errors.isEmpty());
            o.put("vms", count);
            com.fasterxml.jackson.databind.node.ArrayNode es = o.putArray("errors");
            errors.forEach(e -> es.add(problem(e)));
            com.fasterxml.jackson.databind.node.ArrayNode ws = o.putArray("warnings");
            warnings.forEach(w -> ws.add(problem(w)));
            if (host.qemuProblem() != null) {
                ws.addObject().put("message", host.qemuProblem());
            }
            out.println(Json.pretty(o));
            out.flush();
            return errors.isEmpty() ? ExitCodes.OK : ExitCodes.ERROR;
        }
        errors.forEach(e -> out.println(e.format()));
        warnings.forEach(w -> out.println("warning: " + w.format()));
        if (host.qemuProblem() != null) {
            out.println("warning: " + host.qemuProblem());
        }
        if (!errors.isEmpty()) {
            long files = errors.stream().map(ConfigError::file).distinct().count();
            // Past the per-file limit one entry stands for the rest; count what it stands for.
            long n = errors.stream().mapToLong(e -> e.moreCount() > 0 ? e.moreCount() : 1).sum();
            out.println(n + (n == 1 ? " error" : " errors") + " in " + files
                    + (files == 1 ? " file" : " files") + "; " + count + (count == 1 ? " VM is" : " VMs are") + " valid");
            out.flush();
            return ExitCodes.ERROR;
        }
        out.println("ok: " + count + (count == 1 ? " VM" : " VMs"));
        out.flush();
        return ExitCodes.OK;
    }

    private static com.fasterxml.jackson.databind.node.ObjectNode problem(ConfigError e) {
        com.fasterxml.jackson.databind.node.ObjectNode o = Json.object();
        o.put("file", e.file() == null ? null : e.file().toString());
        o.put("line", e.line());
        o.put("column", e.column());
        o.put("key", e.keyPath());
        o.put("message", e.message());
        return o;
    }
}
