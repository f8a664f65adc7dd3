package io.qsup.cli;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParseResult;

/**
 * Entry point of the {@code qsup} command line client; each verb lives in its own class. This annotation names every
 * verb, for the help, the completion and the man pages (picocli-codegen reads it); a run that names one verb builds
 * only that verb's model (see {@link #commandLineFor}).
 */
@Command(
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
            MigrateCommand.class,
            DrainCommand.class,
            EventsCommand.class,
            ConsoleCommand.class,
            LogsCommand.class,
            QmpCommand.class,
            ValidateCommand.class,
            ArgvCommand.class,
        })
public final class QsupMain extends QsupCommand {

    public static void main(String[] args) {
        prepare();
        Integer plain = FastVerbs.run(args);
        if (plain != null) {
            // halt, not exit: Runtime.exit first logs through System.Logger, whose first use looks for a LoggerFinder
            // on the class path and so opens the jar (17,000 entries, 15-25 ms of a qsup list). This path has
            // flushed its output and registered no shutdown hook, and its threads are daemons with nothing to finish.
            Runtime.getRuntime().halt(plain);
        }
        System.exit(runVerb(args));
    }

    /**
     * A run as {@link #main} makes it, but returning the exit code: the AOT training runs its verbs through here, so
     * that the cache holds what a real run does.
     */
    static int runProcess(String... args) {
        prepare();
        Integer plain = FastVerbs.run(args);
        return plain != null ? plain : runVerb(args);
    }

    /**
     * A verb through picocli. The connection (or a warm-up of the sockets and JSON) starts on a second thread while
     * picocli builds the verb's model on this one.
     */
    private static int runVerb(String... args) {
        Path early = earlySocket(args);
        Thread ahead = early != null ? DaemonClient.connectEarly(early) : warmsUp(args) ? warmUp() : null;
        int code = commandLineFor(args).execute(args);
        DaemonClient.discardEarly();
        try {
            if (ahead != null) {
                ahead.join(1000); // the JVM's exit waits up to 300 ms for a thread still in native code (QmpClient)
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return code;
    }

    private static final String SELECTOR_PROVIDER = "java.nio.channels.spi.SelectorProvider";
    private static final String EPOLL_PROVIDER = "sun.nio.ch.EPollSelectorProvider";

    /** What every run sets up before its first class of the verb: quiet logging, the JDK's own selector provider. */
    static void prepare() {
        quietLogging();
        nameSelectorProvider();
    }

    /**
     * Names the JDK's own selector provider (epoll, on Linux) for the first socket, unless the user named one:
     * without a name, the JDK looks for a provider on the class path first, through a ServiceLoader that opens the
     * jar and reads its 17,000 entries (about 14 ms of a {@code qsup list}), to find none and take this same one. A
     * JDK without that class is left to look as before.
     */
    static void nameSelectorProvider() {
        if (System.getProperty(SELECTOR_PROVIDER) != null) {
            return;
        }
        try {
            Class<?> c = Class.forName(EPOLL_PROVIDER, false, null);
            if (java.nio.channels.spi.SelectorProvider.class.isAssignableFrom(c)) {
                System.setProperty(SELECTOR_PROVIDER, EPOLL_PROVIDER);
            }
        } catch (ClassNotFoundException | LinkageError e) {
            // another platform or JDK: the JDK finds its provider its own way
        }
    }

    /** The verbs whose first step is a connection to qsupd on their {@code --socket}. */
    private static final Set<String> CONNECTING = Set.of("list", "status", "start", "stop", "restart", "kill", "pause",
            "resume", "reset", "reset-failed");

    /**
     * The control socket a run of {@code args} will connect to first, when that is certain from the words alone: a
     * verb of {@link #CONNECTING} and at most one {@code --socket} (before or after the verb, none after {@code --}),
     * else {@code QSUP_SOCKET} or the default, as {@link DaemonClient#resolveSocket} says. Null otherwise: then nothing
     * is connected early.
     */
    static Path earlySocket(String... args) {
        String verb = verbOf(args);
        if (verb == null || !CONNECTING.contains(verb)) {
            return null;
        }
        String socket = null;
        int seen = 0;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--")) {
                break;
            }
            if (a.equals("--socket") && i + 1 < args.length) {
                socket = args[++i];
                seen++;
            } else if (a.startsWith("--socket=")) {
                socket = a.substring("--socket=".length());
                seen++;
            } else if (a.startsWith("@") || a.startsWith("-h") || a.equals("--help")) {
                return null; // an @file may say more; help connects nowhere
            }
        }
        if (seen > 1 || (socket != null && socket.isEmpty())) {
            return null;
        }
        try {
            return DaemonClient.resolveSocket(socket == null ? null : Path.of(socket), System.getenv());
        } catch (java.nio.file.InvalidPathException e) {
            return null; // picocli says what is wrong with it
        }
    }

    /** Verbs that never open a socket: a warm-up would only cost them CPU, and time waiting for it at the exit. */
    private static final Set<String> OFFLINE = Set.of("argv", "validate");

    /** True when {@code args} name a verb that will open a socket (no warm-up for --version, help or usage). */
    static boolean warmsUp(String... args) {
        String verb = verbOf(args);
        return verb != null && !OFFLINE.contains(verb);
    }

    /**
     * For verbs that do not connect first: initialises, on a second core while picocli builds the verb's model on
     * the first, the JDK's unix-domain sockets, whose class initialiser sets up a SecureRandom and with it the security
     * providers (about 30 ms), and the JSON parser and generator QMP's messages go through. Nothing is connected or
     * sent.
     */
    static Thread warmUp() {
        return Thread.ofPlatform().daemon().name("warm-up").start(() -> {
            try {
                java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX).close();
            } catch (java.io.IOException | UnsupportedOperationException e) {
                // the verb that needs a socket will say what is wrong
            }
            try {
                io.qsup.qmp.JsonTrees.bytes(io.qsup.qmp.JsonTrees.read("{\"execute\": \"qmp_capabilities\"}"));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e); // a constant that parses
            }
        });
    }

    /**
     * Binds SLF4J to its no-op provider unless the user asked for a log level or a provider: the CLI talks to its user
     * through stdout and stderr, and initialising logback (then from its logback.xml) loaded about 650 of the 3300
     * classes of a {@code qsup list}. {@code -Dqsup.logLevel=DEBUG} (through {@code QSUP_JAVA_OPTS}) brings logback
     * back, with the QMP traffic.
     */
    static void quietLogging() {
        if (System.getProperty("qsup.logLevel") == null && System.getProperty("slf4j.provider") == null) {
            System.setProperty("slf4j.provider", "org.slf4j.helpers.NOP_FallbackServiceProvider");
            System.setProperty("slf4j.internal.verbosity", "WARN"); // else SLF4J reports the choice on stderr
        }
    }

    /**
     * Runs the CLI and returns its exit code; used by tests to avoid System.exit. The plain forms of {@code list},
     * {@code status}, the lifecycle verbs and a lone {@code --version} run without picocli (see {@link FastVerbs}).
     */
    public static int run(String... args) {
        Integer plain = FastVerbs.run(args);
        return plain != null ? plain : commandLineFor(args).execute(args);
    }

    /** The whole command tree, every verb in it. */
    public static CommandLine commandLine() {
        return configure(new CommandLine(new QsupMain()));
    }

    /**
     * The command tree a run of {@code args} needs: the top command with only the verb they name (none for a lone
     * {@code --version}), or the whole tree for help, for no verb or an unknown one, so that usage errors and
     * suggestions see every verb. picocli builds a verb's model by reflection on its annotations, and building all
     * of them was the largest part of a {@code qsup list}.
     */
    public static CommandLine commandLineFor(String... args) {
        String verb = verbOf(args);
        if (verb == null && !versionOnly(args)) {
            return commandLine();
        }
        CommandLine cl = new CommandLine(new QsupCommand());
        if (verb != null) {
            cl.addSubcommand(VERBS.get(verb));
        }
        return configure(cl);
    }

    /** True for a lone {@code --version} or {@code -V}, which needs the top command alone. */
    static boolean versionOnly(String... args) {
        return args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"));
    }

    /**
     * Every verb by its name, as this class's annotation lists them (VerbTableTest holds the two together): finding
     * the verb of a run by the annotations cost about 30 ms of reflection on the main thread, before the early
     * connection could start.
     */
    static final Map<String, Class<?>> VERBS = Map.ofEntries(
            Map.entry("list", ListCommand.class),
            Map.entry("top", TopCommand.class),
            Map.entry("status", StatusCommand.class),
            Map.entry("exec", ExecCommand.class),
            Map.entry("start", LifecycleCommand.Start.class),
            Map.entry("stop", LifecycleCommand.Stop.class),
            Map.entry("restart", LifecycleCommand.Restart.class),
            Map.entry("kill", LifecycleCommand.Kill.class),
            Map.entry("pause", LifecycleCommand.Pause.class),
            Map.entry("resume", LifecycleCommand.Resume.class),
            Map.entry("reset", LifecycleCommand.Reset.class),
            Map.entry("reset-failed", LifecycleCommand.ResetFailed.class),
            Map.entry("reload", ReloadCommand.class),
            Map.entry("apply", ApplyCommand.class),
            Map.entry("delete", DeleteCommand.class),
            Map.entry("hosts", HostsCommand.class),
            Map.entry("migrate", MigrateCommand.class),
            Map.entry("drain", DrainCommand.class),
            Map.entry("events", EventsCommand.class),
            Map.entry("console", ConsoleCommand.class),
            Map.entry("logs", LogsCommand.class),
            Map.entry("qmp", QmpCommand.class),
            Map.entry("validate", ValidateCommand.class),
            Map.entry("argv", ArgvCommand.class));

    /**
     * The verb that {@code args} name, skipping the global options before it; null for anything else (help, a
     * version or usage request, an {@code @file}, an unknown word).
     */
    static String verbOf(String... args) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--socket")) {
                i++;
            } else if (!a.equals("--json") && !a.startsWith("--socket=")) {
                return VERBS.containsKey(a) ? a : null;
            }
        }
        return null;
    }

    private static CommandLine configure(CommandLine cl) {
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

    /**
     * Hands the global options to the verb: {@code --socket} to its {@code --socket} (to {@code --daemon-socket} for
     * {@code qmp}, whose own {@code --socket} is a QEMU monitor), {@code --json} to its {@code --json}. Verbs that
     * work offline ignore {@code --socket}, so an alias such as {@code qsup --socket PATH} serves every verb;
     * {@code --json} on a verb that prints only text is a usage error rather than silently ignored.
     */
    static void applyGlobalOptions(ParseResult parsed) {
        QsupCommand top = parsed.commandSpec().commandLine().getCommand();
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
}
