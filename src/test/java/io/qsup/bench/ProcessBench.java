package io.qsup.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.VmDefinition;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.HostFacts;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.testing.TestGuest;
import io.qsup.vm.ProcessInspector;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The whole-process figures: the {@code qsup} CLI as a user runs it (bin/qsup on the packaged jar and its caches),
 * a {@code qsupd} child started by bin/qsupd, and, in the same loop, the references: a JVM hello world, socat on the
 * control socket, a bare QEMU launched and killed by hand, and QMP straight to that QEMU. Variants run one after the
 * other in each iteration, their order rotated from one iteration to the next; ratios are taken per iteration.
 */
final class ProcessBench {
    private static final ProcessInspector PROC = new ProcessInspector();
    private static final int QMP_CALLS = 200;
    /** The test guest boots in about 2 s under TCG. */
    private static final long GUEST_BOOT_MS = 3000;

    private final Figures fig;
    private final Path project;
    private final Path base;
    private final Path socket;
    private final Path settingsFile;
    private final String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    private final int vms;
    private Process daemon;
    /** VMs v0 … v(running-1) are defined and started. */
    private int running = 1;

    ProcessBench(Figures fig, Path project, int vms) throws IOException {
        this.fig = fig;
        this.project = project;
        this.vms = vms;
        this.base = Files.createTempDirectory(Path.of("/tmp"), "qsb");
        this.socket = base.resolve("run/qsupd.sock");
        this.settingsFile = base.resolve("qsupd.yaml");
        Files.createDirectories(base.resolve("vms"));
        Files.writeString(settingsFile, """
                vms-dir: vms
                control-socket: run/qsupd.sock
                run-dir: run
                state-dir: state
                log-dir: log
                accel: tcg
                metrics-listen: off
                max-parallel-starts: %d
                """.formatted(Math.max(2, vms)));
        writeVm("v0", "autostart: true");
        writeVm("b", "autostart: false");
    }

    private void writeVm(String name, String extra) throws IOException {
        TestGuest g = TestGuest.get();
        Files.writeString(base.resolve("vms/" + name + ".yaml"), """
                memory: 64M
                cpus: 1
                kernel: %s
                initrd: %s
                append: "%s"
                %s
                """.formatted(g.kernel(), g.initrd(), g.append(), extra));
    }

    void run(int rounds, int idleSeconds) throws Exception {
        try {
            startDaemon();
            awaitAllAnswering();
            DaemonSettings settings = DaemonSettings.load(settingsFile);
            HostFacts host = HostFacts.probe(settings.qemuBinary());
            Path bareFile = base.resolve("bare.yaml");
            Files.copy(base.resolve("vms/b.yaml"), bareFile);
            VmDefinition bare = ConfigLoader.loadFile(bareFile, settings, host);
            for (int i = 0; i < rounds; i++) {
                cliRound(i);
                lifecycleRound(i, bare, settings, host);
            }
            growTo(vms);
            steadyState(idleSeconds);
            for (int i = 0; i < Math.max(1, rounds / 2); i++) {
                daemonRestart(i);
            }
        } finally {
            stopEverything();
        }
    }

    /** qsup list / status / --version against the references, order rotated per iteration. */
    private void cliRound(int i) throws Exception {
        String qsup = project.resolve("bin/qsup").toString();
        String jar = project.resolve("target/qsup.jar").toString();
        List<Runnable> variants = new ArrayList<>();
        double[] hello = new double[1];
        double[] socat = new double[1];
        double[] list = new double[1];
        variants.add(timed(i, "JVM hello world", hello, java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-XX:-UsePerfData", "-cp", project.resolve("target/test-classes").toString(),
                Hello.class.getName()));
        variants.add(timed(i, "socat: query-vms on the control socket", socat, "sh", "-c",
                "printf '{\"execute\":\"qmp_capabilities\"}\\n{\"execute\":\"query-vms\"}\\n' | socat -t 0 - UNIX-CONNECT:"
                        + socket));
        variants.add(timed(i, "`qsup list`", list, qsup, "list"));
        variants.add(timed(i, "`qsup status v0`", new double[1], qsup, "status", "v0"));
        variants.add(timed(i, "`qsup --version`", new double[1], qsup, "--version"));
        variants.add(timed(i, "`qsup list` without launcher flags or cache (java -cp qsup.jar)", new double[1],
                java, "--enable-native-access=ALL-UNNAMED", "-cp", jar, "io.qsup.cli.QsupMain", "list"));
        for (int k = 0; k < variants.size(); k++) {
            variants.get((k + i) % variants.size()).run();
        }
        fig.add("ratio `qsup list` / JVM hello world", i, list[0] / hello[0]);
        fig.add("ratio `qsup list` / socat", i, list[0] / socat[0]);
    }

    /** qsup start / kill of VM b, and vm-qmp on v0, against a bare QEMU launched, queried and SIGTERMed by hand. */
    private void lifecycleRound(int i, VmDefinition bare, DaemonSettings settings, HostFacts host) throws Exception {
        String qsup = project.resolve("bin/qsup").toString();
        var paths = settings.pathsFor("bare");
        Files.createDirectories(paths.dir());
        Files.createDirectories(paths.logDir());
        List<String> argv = ArgvBuilder.build(bare, settings, host);
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        if (p.waitFor() != 0) {
            throw new IllegalStateException("bare QEMU failed to start: " + argv);
        }
        double bareLaunch;
        double direct;
        try (QmpClient c = connectWithRetry(paths.qmpSocket())) {
            c.queryStatus();
            bareLaunch = (System.nanoTime() - t0) / 1e6;
            Thread.sleep(GUEST_BOOT_MS); // compare with v0, whose guest is up, not with a guest still booting
            direct = roundTrips(() -> c.queryStatus());
        }
        long pid = ProcessInspector.readPidFile(paths.pidFile()).orElseThrow();
        long k = System.nanoTime();
        PROC.signal(pid, ProcessInspector.Signal.TERM);
        PROC.awaitDeath(pid, Duration.ofSeconds(20), 1);
        double bareTerm = (System.nanoTime() - k) / 1e6;
        Files.deleteIfExists(paths.pidFile());

        double viaDaemon;
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
            ObjectNode args = JsonNodeFactory.instance.objectNode().put("name", "v0").put("command", "query-status");
            viaDaemon = roundTrips(() -> c.execute("vm-qmp", args));
        }
        double[] start = new double[1];
        double[] kill = new double[1];
        timed(i, "`qsup start b` (returns once running)", start, qsup, "start", "b").run();
        timed(i, "`qsup kill b`", kill, qsup, "kill", "b").run();
        fig.add("bare QEMU: -daemonize launch to a QMP answer (ms)", i, bareLaunch);
        fig.add("bare QEMU: SIGTERM to exited (ms)", i, bareTerm);
        fig.add("ratio `qsup start b` / bare launch", i, start[0] / bareLaunch);
        fig.add("ratio `qsup kill b` / bare SIGTERM", i, kill[0] / bareTerm);
        fig.add("direct QMP query-status round trip (ms)", i, direct);
        fig.add("`vm-qmp` query-status round trip on one control connection (ms)", i, viaDaemon);
        fig.add("ratio `vm-qmp` / direct QMP", i, viaDaemon / direct);
    }

    private interface Call {
        void run() throws Exception;
    }

    private static double roundTrips(Call call) throws Exception {
        for (int w = 0; w < 20; w++) {
            call.run();
        }
        long t = System.nanoTime();
        for (int n = 0; n < QMP_CALLS; n++) {
            call.run();
        }
        return (System.nanoTime() - t) / 1e6 / QMP_CALLS;
    }

    /**
     * The CLI and lifecycle rounds run with one guest up, so that booting guests do not load the machine while they are
     * timed; the daemon figures need them all: define the rest, reload, start them, let them boot.
     */
    private void growTo(int n) throws Exception {
        for (int v = running; v < n; v++) {
            writeVm("v" + v, "autostart: true");
        }
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
            c.execute("daemon-reload");
            for (int v = running; v < n; v++) {
                c.execute("vm-start", JsonNodeFactory.instance.objectNode().put("name", "v" + v).put("wait", false));
            }
        }
        int added = n - running;
        running = n;
        awaitAllAnswering();
        Thread.sleep(1000L * added); // the guests' boot under TCG (2 s each on one core), which loads the machine
    }

    /** RSS, threads and idle CPU of qsupd with every VM running. */
    private void steadyState(int idleSeconds) throws Exception {
        long pid = daemon.pid();
        long cpu0 = cpuTicks(pid);
        long t0 = System.nanoTime();
        Thread.sleep(idleSeconds * 1000L);
        double cpu = (cpuTicks(pid) - cpu0) / 100.0;
        double wall = (System.nanoTime() - t0) / 1e9;
        fig.add("qsupd RSS with " + vms + " running VMs (MiB)", 0, status(pid, "VmRSS:") / 1024.0);
        fig.add("qsupd threads with " + vms + " running VMs", 0, status(pid, "Threads:"));
        fig.add("qsupd CPU idle with " + vms + " running VMs over " + idleSeconds + " s (% of a core)", 0,
                100 * cpu / wall);
    }

    /** SIGTERM qsupd (its VMs keep running), start it again, until every VM answers vm-qmp. */
    private void daemonRestart(int i) throws Exception {
        daemon.destroy();
        daemon.waitFor(60, TimeUnit.SECONDS);
        long t0 = System.nanoTime();
        startDaemon();
        int restarts = awaitAllAnswering();
        fig.add("daemon restart, " + vms + " running VMs: start to all answering vm-qmp (ms)", i,
                (System.nanoTime() - t0) / 1e6);
        fig.add("daemon restart, " + vms + " running VMs: restarts", i, restarts);
    }

    /** Waits until the control socket answers and every VM answers vm-qmp; returns the VMs' restart counts' sum. */
    private int awaitAllAnswering() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
        while (true) {
            if (!daemon.isAlive()) {
                throw new IllegalStateException("qsupd exited: see " + base.resolve("qsupd.log"));
            }
            try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
                boolean all = true;
                for (int v = 0; v < running && all; v++) {
                    try {
                        c.execute("vm-qmp", JsonNodeFactory.instance.objectNode().put("name", "v" + v)
                                .put("command", "query-status"));
                    } catch (io.qsup.qmp.QmpException e) {
                        all = false;
                    }
                }
                if (all) {
                    int restarts = 0;
                    for (JsonNode vm : c.execute("query-vms")) {
                        restarts += vm.path("restart-count").asInt();
                    }
                    return restarts;
                }
            } catch (io.qsup.qmp.QmpException e) {
                // not listening yet
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the VMs did not all answer in 300 s");
            }
            Thread.sleep(2);
        }
    }

    private void startDaemon() throws IOException {
        ProcessBuilder pb = new ProcessBuilder(project.resolve("bin/qsupd").toString(), "--config",
                settingsFile.toString());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("QSUP_JAVA_OPTS");
        daemon = pb.redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(base.resolve("qsupd.log").toFile())).start();
    }

    /** A whole process, timed: wall clock here, CPU from /usr/bin/time; both recorded under the figure's name. */
    private Runnable timed(int i, String figure, double[] wallOut, String... cmd) {
        return () -> {
            try {
                Path cpuFile = base.resolve("time.out");
                List<String> argv = new ArrayList<>(List.of("/usr/bin/time", "-f", "%U %S", "-o", cpuFile.toString()));
                argv.addAll(List.of(cmd));
                ProcessBuilder pb = new ProcessBuilder(argv);
                pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
                pb.environment().put("QSUP_SOCKET", socket.toString());
                pb.environment().remove("QSUP_JAVA_OPTS");
                long t0 = System.nanoTime();
                Process p = pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                int code = p.waitFor();
                double wall = (System.nanoTime() - t0) / 1e6;
                if (code != 0) {
                    throw new IllegalStateException(String.join(" ", cmd) + " exited " + code);
                }
                String[] cpu = Files.readString(cpuFile).trim().split("\\s+");
                String[] last = cpu.length >= 2 ? new String[] {cpu[cpu.length - 2], cpu[cpu.length - 1]} : cpu;
                wallOut[0] = wall;
                fig.add(figure + " wall (ms)", i, wall);
                fig.add(figure + " CPU (s)", i, Double.parseDouble(last[0]) + Double.parseDouble(last[1]));
            } catch (Exception e) {
                throw new IllegalStateException(figure + ": " + e.getMessage(), e);
            }
        };
    }

    private static QmpClient connectWithRetry(Path sock) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                return QmpClient.connect(new QmpEndpoint.Unix(sock));
            } catch (io.qsup.qmp.QmpConnectException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(2);
            }
        }
    }

    private static long cpuTicks(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime
    }

    private static long status(long pid, String key) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
            if (line.startsWith(key)) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("no " + key + " for pid " + pid);
    }

    /** Kills the daemon and every QEMU of this run, found by the pidfiles under this run's own folder. */
    private void stopEverything() throws Exception {
        if (daemon != null) {
            daemon.destroy();
            daemon.waitFor(30, TimeUnit.SECONDS);
        }
        Path run = base.resolve("run/vms");
        if (Files.isDirectory(run)) {
            try (Stream<Path> s = Files.list(run)) {
                for (Path vm : s.toList()) {
                    var pid = ProcessInspector.readPidFile(vm.resolve("qemu.pid"));
                    if (pid.isPresent() && PROC.isAlive(pid.getAsLong())) {
                        PROC.signal(pid.getAsLong(), ProcessInspector.Signal.KILL);
                        PROC.awaitDeath(pid.getAsLong(), Duration.ofSeconds(10), 10);
                    }
                }
            }
        }
        try (Stream<Path> s = Files.walk(base)) {
            for (Path f : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
    }
}
