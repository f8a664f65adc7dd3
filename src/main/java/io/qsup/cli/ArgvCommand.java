package io.qsup.cli;

import io.qsup.config.ConfigError;
import io.qsup.config.ConfigException;
import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.LoadResult;
import io.qsup.config.VmDefinition;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.HostFacts;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code qsup argv}: prints the QEMU command line qsupd would run for a VM, without a daemon. */
@Command(
        name = "argv",
        mixinStandardHelpOptions = true,
        description = {
            "Print the QEMU command line of a VM, one argument per line, or as one shell line with --shell.",
            "NAME is looked up in the vms-dir of the settings; a path to a .yaml file is read directly."
        })
public final class ArgvCommand implements Callable<Integer> {
    private static final Pattern SHELL_SAFE = Pattern.compile("[A-Za-z0-9_@%+=:,./-]+");

    @Parameters(index = "0", paramLabel = "NAME|FILE", description = "A VM name or a definition file.")
    String vm;

    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "Daemon settings (default: /etc/qsup/qsupd.yaml if it exists, else built-in defaults).")
    Path config;

    @Option(names = "--shell", description = "Print one copy-pasteable line, quoted for a POSIX shell.")
    boolean shell;

    @Option(names = "--foreground", description = "Leave out -daemonize, to run QEMU by hand in a terminal.")
    boolean foreground;

    @Option(names = "--json", description = "Print the arguments as a JSON array of strings.")
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
            e.errors().forEach(x -> err.println(x.format()));
            err.flush();
            return ExitCodes.ERROR;
        }
        HostFacts host = HostFacts.probe(settings.qemuBinary());
        VmDefinition def;
        Path file = Path.of(vm);
        if (vm.endsWith(".yaml") || vm.contains("/")) {
            if (!Files.isRegularFile(file)) {
                err.println("qsup argv: no definition file " + file + "; give a VM name or an existing .yaml file");
                err.flush();
                return ExitCodes.NOT_FOUND;
            }
            try {
                def = ConfigLoader.loadFile(file, settings, host);
            } catch (ConfigException e) {
                e.errors().forEach(x -> err.println(x.format()));
                err.flush();
                return ExitCodes.ERROR;
            }
        } else {
            LoadResult r = ConfigLoader.loadDirectory(settings.vmsDir(), settings, host);
            def = r.vms().get(vm);
            if (def == null) {
                List<ConfigError> own = r.errorsByFile().entrySet().stream()
                        .filter(e -> e.getKey().getFileName().toString().equals(vm + ".yaml")
                                || e.getValue().stream().anyMatch(x -> x.message().contains("'" + vm + "'")))
                        .flatMap(e -> e.getValue().stream()).toList();
                if (!own.isEmpty()) {
                    own.forEach(x -> err.println(x.format()));
                    err.flush();
                    return ExitCodes.ERROR;
                }
                err.println("qsup argv: no VM named '" + vm + "' in " + settings.vmsDir()
                        + "; see 'qsup validate' for the VMs defined there");
                err.flush();
                return ExitCodes.NOT_FOUND;
            }
        }
        List<String> argv = foreground
                ? ArgvBuilder.buildForeground(def, settings, host)
                : ArgvBuilder.build(def, settings, host);
        if (json) {
            com.fasterxml.jackson.databind.node.ArrayNode a =
                    com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.arrayNode();
            argv.forEach(a::add);
            out.println(Json.pretty(a));
        } else if (shell) {
            out.println(argv.stream().map(ArgvCommand::shellQuote).collect(Collectors.joining(" ")));
        } else {
            argv.forEach(out::println);
        }
        out.flush();
        return ExitCodes.OK;
    }

    /** Quotes one argument for a POSIX shell: plain when safe, else in single quotes with {@code '} as {@code '\''}. */
    static String shellQuote(String arg) {
        if (SHELL_SAFE.matcher(arg).matches()) {
            return arg;
        }
        return "'" + arg.replace("'", "'\\''") + "'";
    }
}
