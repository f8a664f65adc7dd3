package io.qsup.cli;

import io.qsup.daemon.Version;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParseResult;

/** Entry point of the {@code qsup} command line client; each verb lives in its own class. */
@Command(
        name = "qsup",
        mixinStandardHelpOptions = true,
        versionProvider = QsupMain.VersionProvider.class,
        description = "Control QEMU virtual machines supervised by qsupd, or talk QMP directly.",
        footer = {
            "",
            "Examples:",
            "  qsup list                         every VM and its state",
            "  qsup start web1 && qsup console web1",
            "  qsup stop --all                   ACPI powerdown, then quit, SIGTERM, SIGKILL",
            "  qsup events --follow              state changes as they happen",
            "  qsup qmp web1 query-block         one QMP command on a supervised VM",
            "  qsup qmp --socket unix:/run/vm.sock query-status   any QEMU monitor, no daemon",
            "  qsup validate /etc/qsup/vms       check definitions offline",
            "",
            "The daemon's socket: --socket PATH, before or after the verb; else $QSUP_SOCKET;",
            "else /run/qsup/qsupd.sock. After 'qmp', --socket names a QEMU monitor instead.",
            "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 daemon or socket unreachable.",
            "'qsup VERB --help' shows each verb's options and examples.",
        },
        subcommands = {
            CommandLine.HelpCommand.class,
            ListCommand.class,
            TopCommand.class,
            StatusCommand.class,
            ExecCommand.class,
            LifecycleCommand.Start.class,
            LifecycleCommand.Stop.class,
            LifecycleCommand.Restart.class,
            LifecycleCommand.Kill.class,
            LifecycleCommand.Pause.class,
            LifecycleCommand.Resume.class,
            LifecycleCommand.Reset.class,
            LifecycleCommand.ResetFailed.class,
            ReloadCommand.class,
            ApplyCommand.class,
            DeleteCommand.class,
            HostsCommand.class,
            EventsCommand.class,
            ConsoleCommand.class,
            LogsCommand.class,
            QmpCommand.class,
            ValidateCommand.class,
            ArgvCommand.class,
        })
public final class QsupMain implements Runnable {

    @CommandLine.Spec CommandSpec spec;

    // Global options, written before the verb; each verb's own option of the same meaning wins when both are given.
    @Option(names = "--socket", paramLabel = "PATH",
            description = "qsupd's control socket, for every verb that talks to qsupd (for 'qmp': the daemon, as its"
                    + " --daemon-socket). Also accepted after the verb.")
    Path socket;

    @Option(names = "--json", description = "Print stable JSON objects, for the verbs whose output is data."
            + " Also accepted after the verb.")
    boolean json;

    public static void main(String[] args) {
        quietLogging();
        System.exit(run(args));
    }

    /**
     * Binds SLF4J to its no-op provider unless the user asked for a log level or a provider: the CLI talks to its user
     * through stdout and stderr, and initialising logback (which parses logback.xml) loaded about 650 of the 3300
     * classes of a {@code qsup list}. {@code -Dqsup.logLevel=DEBUG} (through {@code QSUP_JAVA_OPTS}) brings logback
     * back, with the QMP traffic.
     */
    static void quietLogging() {
        if (System.getProperty("qsup.logLevel") == null && System.getProperty("slf4j.provider") == null) {
            System.setProperty("slf4j.provider", "org.slf4j.helpers.NOP_FallbackServiceProvider");
            System.setProperty("slf4j.internal.verbosity", "WARN"); // else SLF4J reports the choice on stderr
        }
    }

    /** Runs the CLI and returns its exit code; used by tests to avoid System.exit. */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new QsupMain());
        cl.setExitCodeExceptionMapper(ExitCodes::forException);
        cl.setParameterExceptionHandler(UsageError::print);
        cl.setExecutionStrategy(parsed -> {
            applyGlobalOptions(parsed);
            return new CommandLine.RunLast().execute(parsed);
        });
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            if (ex instanceof CliException ce) {
                cmd.getErr().println("qsup: " + ce.getMessage());
                cmd.getErr().flush();
                return ce.exitCode();
            }
            throw ex;
        });
        return cl;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a verb, e.g. 'qsup list'");
    }

    /**
     * Hands the global options to the verb: {@code --socket} to its {@code --socket} (to {@code --daemon-socket} for
     * {@code qmp}, whose own {@code --socket} is a QEMU monitor), {@code --json} to its {@code --json}. Verbs that
     * work offline ignore {@code --socket}, so an alias such as {@code qsup --socket PATH} serves every verb;
     * {@code --json} on a verb that prints only text is a usage error rather than silently ignored.
     */
    private static void applyGlobalOptions(ParseResult parsed) {
        QsupMain top = parsed.commandSpec().commandLine().getCommand();
        ParseResult verb = parsed;
        while (verb.hasSubcommand()) {
            verb = verb.subcommand();
        }
        if (verb == parsed || verb.isUsageHelpRequested() || verb.isVersionHelpRequested()) {
            return; // --help shows the help, whatever else the line says
        }
        CommandSpec spec = verb.commandSpec();
        if (top.socket != null) {
            String own = spec.findOption("--daemon-socket") != null ? "--daemon-socket" : "--socket";
            OptionSpec option = spec.findOption(own);
            if (option != null && !verb.hasMatchedOption(own)) {
                option.setValue(top.socket);
            }
        }
        if (top.json) {
            OptionSpec option = spec.findOption("--json");
            if (option != null) {
                option.setValue(true);
            } else if (!spec.name().equals("qmp") && !spec.name().equals("help")) {
                throw new CommandLine.ParameterException(verb.commandSpec().commandLine(),
                        "--json does not apply to '" + spec.qualifiedName() + "', which prints text only");
            }
        }
    }

    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"qsup " + Version.get()};
        }
    }
}
