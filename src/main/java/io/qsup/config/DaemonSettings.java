package io.qsup.config;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The daemon's settings from {@code qsupd.yaml}: where definitions, sockets, state and logs live, how many clients
 * the control socket serves at once, which QEMU to run, the default accelerator, how many VMs may start at once, the
 * log level, where the Prometheus metrics endpoint listens ({@code metricsListen}, null when {@code off}), and how
 * host shutdown runs: at most {@code shutdownParallel} stop ladders at once, all within {@code shutdownTimeout}.
 * {@code cluster} is null unless the file has a {@code cluster:} section. {@code sourceFile} is null for
 * {@link #defaults()}.
 */
public record DaemonSettings(
        Path vmsDir,
        Path controlSocket,
        String controlGroup,
        int controlMaxConnections,
        Path runDir,
        Path stateDir,
        Path logDir,
        String qemuBinary,
        Accel accel,
        int maxParallelStarts,
        String logLevel,
        MetricsListen metricsListen,
        int shutdownParallel,
        java.time.Duration shutdownTimeout,
        ClusterSettings cluster,
        Path sourceFile) {

    /** The default location of the settings file. */
    public static final Path DEFAULT_FILE = Path.of("/etc/qsup/qsupd.yaml");

    static final List<String> KEYS = List.of(
            "vms-dir", "control-socket", "control-group", "control-max-connections", "run-dir", "state-dir", "log-dir",
            "qemu-binary", "accel", "max-parallel-starts", "log-level", "metrics-listen", "shutdown-parallel",
            "shutdown-timeout", "cluster");
    /**
     * The whole host-shutdown budget unless {@code shutdown-timeout} says otherwise: the default stop-timeout (90 s)
     * twice over, so two rounds of ladders fit.
     */
    public static final java.time.Duration DEFAULT_SHUTDOWN_TIMEOUT = java.time.Duration.ofMinutes(3);
    /** Control connections served at once unless {@code control-max-connections} says otherwise. */
    public static final int DEFAULT_CONTROL_MAX_CONNECTIONS = 128;
    /** The most {@code control-max-connections} may be: each connection costs two threads and a descriptor. */
    public static final int MAX_CONTROL_MAX_CONNECTIONS = 4096;
    private static final Map<String, String> LOG_LEVELS = Map.of(
            "trace", "trace", "debug", "debug", "info", "info", "warn", "warn", "error", "error");
    private static final Pattern GROUP = Pattern.compile("[a-z_][a-z0-9_-]{0,31}");
    /** Longest unix socket path: sun_path is 108 bytes including the terminating NUL. */
    public static final int MAX_SOCKET_PATH_BYTES = 107;

    /**
     * Where the metrics endpoint listens: {@code metrics-listen: HOST:PORT}.
     *
     * @param host a host name or address; an IPv6 address is written in brackets in the file and kept without them
     * @param port 1 to 65535
     */
    public record MetricsListen(String host, int port) {
        /** {@code HOST:PORT}, with an IPv6 address in brackets. */
        @Override
        public String toString() {
            return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
        }
    }

    /**
     * The default endpoint: loopback only, on 9612, a port marked free in an older copy of Prometheus' list of default
     * port allocations (the prometheus/prometheus wiki page "Default port allocations"); see README.
     */
    public static final MetricsListen DEFAULT_METRICS_LISTEN = new MetricsListen("127.0.0.1", 9612);
    private static final Pattern LISTEN = Pattern.compile("(?:\\[([0-9A-Fa-f:.]+)]|([A-Za-z0-9.-]+)):(\\d{1,5})");

    /** The settings of a single host, outside any cluster. */
    public DaemonSettings(Path vmsDir, Path controlSocket, String controlGroup, int controlMaxConnections, Path runDir,
            Path stateDir, Path logDir, String qemuBinary, Accel accel, int maxParallelStarts, String logLevel,
            MetricsListen metricsListen, int shutdownParallel, java.time.Duration shutdownTimeout, Path sourceFile) {
        this(vmsDir, controlSocket, controlGroup, controlMaxConnections, runDir, stateDir, logDir, qemuBinary, accel,
                maxParallelStarts, logLevel, metricsListen, shutdownParallel, shutdownTimeout, null, sourceFile);
    }

    /** The settings with the default host-shutdown limits. */
    public DaemonSettings(Path vmsDir, Path controlSocket, String controlGroup, int controlMaxConnections, Path runDir,
            Path stateDir, Path logDir, String qemuBinary, Accel accel, int maxParallelStarts, String logLevel,
            MetricsListen metricsListen, Path sourceFile) {
        this(vmsDir, controlSocket, controlGroup, controlMaxConnections, runDir, stateDir, logDir, qemuBinary, accel,
                maxParallelStarts, logLevel, metricsListen, Runtime.getRuntime().availableProcessors(),
                DEFAULT_SHUTDOWN_TIMEOUT, sourceFile);
    }

    /** The settings with the default {@code metrics-listen}. */
    public DaemonSettings(Path vmsDir, Path controlSocket, String controlGroup, int controlMaxConnections, Path runDir,
            Path stateDir, Path logDir, String qemuBinary, Accel accel, int maxParallelStarts, String logLevel,
            Path sourceFile) {
        this(vmsDir, controlSocket, controlGroup, controlMaxConnections, runDir, stateDir, logDir, qemuBinary, accel,
                maxParallelStarts, logLevel, DEFAULT_METRICS_LISTEN, sourceFile);
    }

    /** The settings with the default {@code control-max-connections} and {@code metrics-listen}. */
    public DaemonSettings(Path vmsDir, Path controlSocket, String controlGroup, Path runDir, Path stateDir, Path logDir,
            String qemuBinary, Accel accel, int maxParallelStarts, String logLevel, Path sourceFile) {
        this(vmsDir, controlSocket, controlGroup, DEFAULT_CONTROL_MAX_CONNECTIONS, runDir, stateDir, logDir, qemuBinary,
                accel, maxParallelStarts, logLevel, DEFAULT_METRICS_LISTEN, sourceFile);
    }

    /** The settings of a host with no settings file. */
    public static DaemonSettings defaults() {
        return new DaemonSettings(
                Path.of("/etc/qsup/vms"),
                Path.of("/run/qsup/qsupd.sock"),
                "qsup",
                DEFAULT_CONTROL_MAX_CONNECTIONS,
                Path.of("/run/qsup"),
                Path.of("/var/lib/qsup"),
                Path.of("/var/log/qsup"),
                "qemu-system-x86_64",
                Accel.KVM,
                2 * Runtime.getRuntime().availableProcessors(),
                "info",
                DEFAULT_METRICS_LISTEN,
                Runtime.getRuntime().availableProcessors(), // parallel shutdowns flood disk I/O: one per core
                DEFAULT_SHUTDOWN_TIMEOUT,
                null);
    }

    /**
     * The settings the command line tools use: {@code file} when given, else {@link #DEFAULT_FILE} when it exists,
     * else {@link #defaults()}.
     */
    public static DaemonSettings loadOrDefaults(Path file) throws ConfigException {
        if (file != null) {
            return load(file);
        }
        return Files.exists(DEFAULT_FILE) ? load(DEFAULT_FILE) : defaults();
    }

    /** Where the runtime files of VM {@code vmName} live. */
    public VmPaths pathsFor(String vmName) {
        return VmPaths.of(runDir, logDir, stateDir, vmName);
    }

    /** Reads {@code file}; relative paths in it resolve against the file's folder. Reports every problem at once. */
    public static DaemonSettings load(Path file) throws ConfigException {
        Path abs = file.toAbsolutePath().normalize();
        Problems p = new Problems(abs);
        String text;
        try {
            text = ConfigFile.read(abs, "the daemon settings"); // regular files of at most 1 MiB, never blocking
        } catch (ConfigFile.Refused e) {
            throw new ConfigException(List.of(new ConfigError(abs, 0, 0, "",
                    "cannot read settings file: " + e.getMessage() + "; pass an existing file with --config")));
        }
        YamlNode root;
        try {
            root = YamlReader.parse(text);
        } catch (YamlReader.Failure f) {
            throw new ConfigException(List.of(new ConfigError(abs, f.location.line(), f.location.column(), "", f.getMessage())));
        }
        DaemonSettings d = defaults();
        if (root == null) {
            return d.withSource(abs);
        }
        if (!(root instanceof YamlNode.Mapping map)) {
            throw new ConfigException(List.of(new ConfigError(abs, root.location().line(), root.location().column(), "",
                    "expected a mapping of settings (key: value), got " + root.describe())));
        }
        Path base = abs.getParent();
        Fields f = new Fields(map, "", p, KEYS);
        Path vmsDir = pathOr(f, "vms-dir", p, base, d.vmsDir);
        Path controlSocket = pathOr(f, "control-socket", p, base, d.controlSocket);
        String group = d.controlGroup;
        YamlNode.Entry e;
        if ((e = f.get("control-group")) != null) {
            String g = Values.matching(e, "control-group", p, GROUP, "a group name: lower-case letters, digits, _ and -");
            group = g != null ? g : group;
        }
        int maxConnections = d.controlMaxConnections;
        if ((e = f.get("control-max-connections")) != null) {
            Integer n = Values.integer(e, "control-max-connections", p, 1, MAX_CONTROL_MAX_CONNECTIONS);
            maxConnections = n != null ? n : maxConnections;
        }
        Path runDir = pathOr(f, "run-dir", p, base, d.runDir);
        Path stateDir = pathOr(f, "state-dir", p, base, d.stateDir);
        Path logDir = pathOr(f, "log-dir", p, base, d.logDir);
        String qemu = d.qemuBinary;
        if ((e = f.get("qemu-binary")) != null) {
            String q = Values.string(e, "qemu-binary", p);
            if (q != null && q.isBlank()) {
                p.error(e.value().location(), "qemu-binary", "is empty; give a binary name or path");
            } else if (q != null) {
                // A bare name is looked up on PATH at launch; a path resolves like the other paths here.
                qemu = q.contains("/") ? base.resolve(q).normalize().toString() : q;
            }
        }
        Accel accel = d.accel;
        if ((e = f.get("accel")) != null) {
            Accel a = Values.choice(e, "accel", p, Values.words(Accel.class));
            accel = a != null ? a : accel;
        }
        int parallel = d.maxParallelStarts;
        if ((e = f.get("max-parallel-starts")) != null) {
            Integer n = Values.integer(e, "max-parallel-starts", p, 1, 1024);
            parallel = n != null ? n : parallel;
        }
        String level = d.logLevel;
        if ((e = f.get("log-level")) != null) {
            String l = Values.choice(e, "log-level", p, new java.util.TreeMap<>(LOG_LEVELS));
            level = l != null ? l : level;
        }
        MetricsListen metrics = d.metricsListen;
        if ((e = f.get("metrics-listen")) != null) {
            metrics = metricsListen(e, p, metrics);
        }
        int shutdownParallel = d.shutdownParallel;
        if ((e = f.get("shutdown-parallel")) != null) {
            Integer n = Values.integer(e, "shutdown-parallel", p, 1, 1024);
            shutdownParallel = n != null ? n : shutdownParallel;
        }
        java.time.Duration shutdownTimeout = d.shutdownTimeout;
        if ((e = f.get("shutdown-timeout")) != null) {
            java.time.Duration t = Values.duration(e, "shutdown-timeout", p);
            if (t != null && t.isZero()) {
                p.error(e.value().location(), "shutdown-timeout", "must be longer than 0s; give the whole time host"
                        + " shutdown may take, such as 3m");
            } else if (t != null) {
                shutdownTimeout = t;
            }
        }
        ClusterSettings cluster = null;
        if ((e = f.get("cluster")) != null) {
            cluster = ClusterSettings.parse(e, p);
        }
        f.finish();
        int len = controlSocket.toString().getBytes(StandardCharsets.UTF_8).length;
        if (len > MAX_SOCKET_PATH_BYTES) {
            YamlNode.Entry cs = f.get("control-socket");
            p.error(cs != null ? cs.value().location() : YamlNode.Location.FILE, "control-socket",
                    "unix socket path " + controlSocket + " is " + len + " bytes long; the limit is "
                            + MAX_SOCKET_PATH_BYTES + "; choose a shorter path");
        }
        if (p.hasErrors()) {
            throw new ConfigException(sorted(p.errors()));
        }
        return new DaemonSettings(vmsDir, controlSocket, group, maxConnections, runDir, stateDir, logDir, qemu, accel,
                parallel, level, metrics, shutdownParallel, shutdownTimeout, cluster, abs);
    }

    private DaemonSettings withSource(Path file) {
        return new DaemonSettings(vmsDir, controlSocket, controlGroup, controlMaxConnections, runDir, stateDir, logDir,
                qemuBinary, accel, maxParallelStarts, logLevel, metricsListen, shutdownParallel, shutdownTimeout, cluster,
                file);
    }

    /** {@code metrics-listen}: {@code HOST:PORT}, or {@code off} (YAML may read an unquoted off as false). */
    private static MetricsListen metricsListen(YamlNode.Entry e, Problems p, MetricsListen dflt) {
        if (e.value() instanceof YamlNode.Scalar sc && sc.kind() == YamlNode.Scalar.Kind.BOOLEAN
                && !Boolean.parseBoolean(sc.text())) {
            return null;
        }
        String v = Values.string(e, "metrics-listen", p);
        if (v == null) {
            return dflt;
        }
        if (v.equals("off")) {
            return null;
        }
        java.util.regex.Matcher m = LISTEN.matcher(v);
        int port = m.matches() ? Integer.parseInt(m.group(3)) : 0;
        if (port < 1 || port > 65535) {
            p.error(e.value().location(), "metrics-listen", "'" + Values.printable(v) + "' is not HOST:PORT with a port"
                    + " from 1 to 65535 (for example 127.0.0.1:" + DEFAULT_METRICS_LISTEN.port() + " or [::1]:"
                    + DEFAULT_METRICS_LISTEN.port() + "), nor off");
            return dflt;
        }
        return new MetricsListen(m.group(1) != null ? m.group(1) : m.group(2), port);
    }

    private static Path pathOr(Fields f, String key, Problems p, Path base, Path dflt) {
        YamlNode.Entry e = f.get(key);
        if (e == null) {
            return dflt;
        }
        Path v = Values.path(e, key, p, base);
        return v != null ? v : dflt;
    }

    static List<ConfigError> sorted(List<ConfigError> errors) {
        List<ConfigError> s = new ArrayList<>(errors);
        s.sort(java.util.Comparator.comparingInt(ConfigError::line).thenComparingInt(ConfigError::column));
        return s;
    }
}
