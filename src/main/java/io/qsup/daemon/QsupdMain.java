package io.qsup.daemon;

import ch.qos.logback.classic.Level;
import io.qsup.config.ConfigError;
import io.qsup.config.ConfigException;
import io.qsup.config.DaemonSettings;
import io.qsup.control.ClusterPort;
import io.qsup.control.DaemonControl;
import io.qsup.metrics.DaemonFigures;
import io.qsup.metrics.MetricsServer;
import io.qsup.qemu.HostFacts;
import io.qsup.supervisor.Supervisor;
import io.qsup.vm.StopResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Entry point of the {@code qsupd} daemon: loads the settings and definitions, adopts the VMs still running, starts
 * the rest, and supervises until SIGTERM or SIGINT, which leave every VM running. SIGHUP reloads the definitions.
 * {@code --shutdown-all} instead adopts every VM, stops them all in parallel, each with its own ladder, and exits: the
 * host-shutdown unit runs it after the daemon itself has stopped. {@code --reload} asks the running qsupd to reload
 * and waits for its report (the unit's {@code ExecReload}).
 *
 * <p>Exit codes: 0 done, 1 failure (a VM that would not stop, a lock held by another qsupd), 2 usage, 78 (EX_CONFIG)
 * bad settings file.
 */
@Command(name = "qsupd", mixinStandardHelpOptions = true, versionProvider = QsupdMain.VersionProvider.class,
        description = "Supervise QEMU virtual machines: launch, watch, restart by policy, stop by ladder.")
public final class QsupdMain implements Callable<Integer> {
    private static final Logger log = LoggerFactory.getLogger(QsupdMain.class);
    /** sysexits.h EX_CONFIG. */
    public static final int EXIT_CONFIG = 78;

    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "Daemon settings file (default: /etc/qsup/qsupd.yaml if it exists, else built-in defaults).")
    Path config;

    @Option(names = "--shutdown-all",
            description = "Stop every VM in parallel, each with its stop ladder, then exit (for the host-shutdown unit).")
    boolean shutdownAll;

    @Option(names = "--reload",
            description = "Ask the running qsupd, at the control socket these settings name, to re-read the VM"
                    + " definitions; wait until it has, print what changed, exit 1 if a file is broken (the unit's"
                    + " ExecReload).")
    boolean reload;

    @Option(names = "--hook", paramLabel = "EXE",
            description = "Program run on every VM state change, with QSUP_VM, QSUP_OLD_STATE, QSUP_NEW_STATE, QSUP_CAUSE.")
    Path hook;

    @Option(names = "--hook-timeout", paramLabel = "SECONDS", defaultValue = DEFAULT_HOOK_TIMEOUT,
            description = "How long one hook run may take before it is killed (default: ${DEFAULT-VALUE}).")
    int hookTimeoutSeconds;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs qsupd and returns its exit code (tests call this for the options; the daemon itself runs until a signal). */
    public static int run(String... args) {
        QsupdMain plain = plainForm(args);
        if (plain == null) {
            return new CommandLine(new QsupdMain()).execute(args);
        }
        try {
            return plain.call();
        } catch (RuntimeException e) {
            e.printStackTrace(); // as picocli reports an exception of call(), with the same code
            return 1;
        }
    }

    private static final String DEFAULT_HOOK_TIMEOUT = "30";
    /** In the run-dir: what QEMU's {@code -help} said, for the next start of qsupd with the same binary. */
    static final String HOST_FACTS_CACHE = "host-facts";

    /**
     * The daemon as the unit starts it, {@code qsupd} or {@code qsupd --config FILE} ({@code -c FILE},
     * {@code --config=FILE}), set up without picocli, whose model of this command, built from its annotations, cost
     * about 70 ms of every start; null for any other command line, which picocli parses (and reports on).
     * QsupdPlainFormTest checks that picocli parses every form taken here alike.
     */
    static QsupdMain plainForm(String... args) {
        String file;
        if (args.length == 0) {
            file = null;
        } else if (args.length == 2 && (args[0].equals("--config") || args[0].equals("-c"))) {
            file = args[1];
        } else if (args.length == 1 && args[0].startsWith("--config=")) {
            file = args[0].substring("--config=".length());
        } else {
            return null;
        }
        QsupdMain m = new QsupdMain();
        m.hookTimeoutSeconds = Integer.parseInt(DEFAULT_HOOK_TIMEOUT);
        if (file == null) {
            return m;
        }
        if (file.isEmpty() || file.startsWith("-") || file.startsWith("@")) {
            return null;
        }
        try {
            m.config = Path.of(file);
        } catch (java.nio.file.InvalidPathException e) {
            return null;
        }
        return m;
    }

    @Override
    public Integer call() {
        DaemonSettings settings;
        try {
            settings = loadSettings();
        } catch (ConfigException e) {
            for (ConfigError err : e.errors()) {
                System.err.println("qsupd: " + err.format());
            }
            if (e.errors().isEmpty()) {
                System.err.println("qsupd: " + e.getMessage());
            }
            return EXIT_CONFIG;
        }
        if (reload) {
            // the same request as 'qsup reload', to the socket of this settings file: systemctl reload returns only
            // once the definitions are applied, on every systemd (a SIGHUP alone returns at once)
            return io.qsup.cli.QsupMain.run("--socket", settings.controlSocket().toString(), "reload");
        }
        applyLogLevel(settings.logLevel());
        if (hook != null && !Files.isExecutable(hook)) {
            System.err.println("qsupd: hook " + hook + " is not an executable file; fix the path or drop --hook");
            return 2;
        }
        Supervisor.Options options = Supervisor.Options.defaults().withHook(hook, Duration.ofSeconds(hookTimeoutSeconds));
        try (DaemonLock lock = DaemonLock.acquire(settings.runDir(), shutdownAll ? 30_000 : 0)) {
            log.debug("holding {}", lock.file());
            HostFacts host = HostFacts.probe(settings.qemuBinary(), settings.runDir().resolve(HOST_FACTS_CACHE));
            return shutdownAll ? shutdownAll(settings, host, options) : supervise(settings, host, options);
        } catch (DaemonException e) {
            System.err.println("qsupd: " + e.getMessage());
            return 1;
        }
    }

    private DaemonSettings loadSettings() throws ConfigException {
        if (config != null) {
            return DaemonSettings.load(config);
        }
        return Files.isRegularFile(DaemonSettings.DEFAULT_FILE) ? DaemonSettings.load(DaemonSettings.DEFAULT_FILE)
                : DaemonSettings.defaults();
    }

    private static int supervise(DaemonSettings settings, HostFacts host, Supervisor.Options options) {
        Supervisor sup = new Supervisor(settings, host, options);
        ServiceNotifier notifier = ServiceNotifier.fromEnvironment(sup::list);
        sup.addListener(e -> notifier.changed());
        CountDownLatch exit = new CountDownLatch(1);
        Signals.on("TERM", exit::countDown);
        Signals.on("INT", exit::countDown);
        Signals.on("HUP", () -> {
            notifier.reloading();
            sup.reload();
            notifier.reloaded();
        });
        log.info("qsupd {} starting: definitions in {}, run-dir {}, state-dir {}", Version.get(), settings.vmsDir(),
                settings.runDir(), settings.stateDir());
        // known before any probe starts, so that their loops beat for it
        java.util.Optional<SdWatchdog> watchdog = SdWatchdog.fromEnvironment();
        watchdog.ifPresent(w -> io.qsup.vm.LoopHealth.expectWatchdog(w.period()));
        sup.loadInitial();
        ClusterPort cluster = settings.cluster() == null ? null : joinCluster(settings, sup, host);
        DaemonControl control;
        try {
            control = DaemonControl.start(settings, sup, cluster);
        } catch (IOException e) {
            log.error("cannot serve the control socket {}: {}", settings.controlSocket(), e.getMessage());
            System.err.println("qsupd: cannot serve the control socket " + settings.controlSocket() + ": "
                    + e.getMessage());
            leaveCluster(cluster);
            sup.close();
            return EXIT_CONFIG;
        }
        MetricsServer metrics = startMetrics(settings, sup, control);
        sup.startup();
        notifier.ready();
        watchdog.ifPresent(SdWatchdog::start);
        log.info("qsupd ready: {} VMs", sup.list().size());
        try {
            exit.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        watchdog.ifPresent(SdWatchdog::close);
        notifier.close();
        notifier.stopping();
        log.info("qsupd exiting; VMs keep running and are adopted by the next qsupd");
        if (metrics != null) {
            metrics.close();
        }
        control.close();
        leaveCluster(cluster);
        sup.close();
        return 0;
    }

    /**
     * The only place qsupd touches the cluster package: a single host never loads it, nor the etcd client, gRPC and
     * netty behind it.
     */
    private static ClusterPort joinCluster(DaemonSettings settings, Supervisor sup, HostFacts host) {
        return io.qsup.cluster.ClusterMode.start(settings, sup, host);
    }

    private static void leaveCluster(ClusterPort cluster) {
        if (cluster != null) {
            io.qsup.cluster.ClusterMode.stop(cluster);
        }
    }

    /** The Prometheus endpoint, or null when it is off or cannot be bound: metrics never keep VMs unsupervised. */
    private static MetricsServer startMetrics(DaemonSettings settings, Supervisor sup, DaemonControl control) {
        DaemonSettings.MetricsListen listen = settings.metricsListen();
        if (listen == null) {
            log.info("metrics endpoint off (metrics-listen: off)");
            return null;
        }
        DaemonFigures figures = new DaemonFigures(Version.get(), control.server()::sessionCount,
                control.server()::eventsDropped, sup::hookRuns, sup::hookFailures);
        try {
            MetricsServer m = MetricsServer.start(listen, sup::vmStats, figures);
            log.info("metrics endpoint on http://{}/metrics", listen);
            return m;
        } catch (IOException | RuntimeException e) {
            log.error("cannot serve metrics on {}: {}; qsupd runs on without them. Set metrics-listen in {} to a free"
                    + " HOST:PORT, or to off", listen, e.getMessage() == null ? e.toString() : e.getMessage(),
                    settings.sourceFile() == null ? "qsupd.yaml" : settings.sourceFile());
            return null;
        }
    }

    private static int shutdownAll(DaemonSettings settings, HostFacts host, Supervisor.Options options) {
        Supervisor sup = new Supervisor(settings, host, options);
        sup.disableRestarts();
        sup.loadInitial();
        sup.adoptAll();
        log.info("host shutdown: stopping {} VMs, at most {} at once, within {} s", sup.list().size(),
                settings.shutdownParallel(), settings.shutdownTimeout().toSeconds());
        Map<String, StopResult> results;
        try (StopExtender extender = StopExtender.start(System.getenv("NOTIFY_SOCKET"), settings.shutdownTimeout())) {
            results = sup.shutdownAll();
        }
        boolean ok = true;
        for (Map.Entry<String, StopResult> e : results.entrySet()) {
            StopResult r = e.getValue();
            ok &= r.stopped();
            String line = e.getKey() + ": " + (r.rung() == null ? r.detail()
                    : (r.stopped() ? "stopped" : "NOT stopped") + " at rung " + r.rung() + " after "
                            + r.took().toMillis() + " ms");
            System.out.println(line);
            if (r.stopped()) {
                log.info("VM {}", line);
            } else {
                log.error("VM {}", line);
            }
        }
        sup.close();
        return ok ? 0 : 1;
    }

    /** The settings' log-level, unless -Dqsup.logLevel overrides it. */
    private static void applyLogLevel(String level) {
        if (System.getProperty("qsup.logLevel") != null || level == null) {
            return;
        }
        org.slf4j.Logger root = LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        if (root instanceof ch.qos.logback.classic.Logger lb) {
            lb.setLevel(Level.toLevel(level, Level.INFO));
        }
    }

    /** Reports the jar's version. */
    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"qsupd " + Version.get()};
        }
    }
}
