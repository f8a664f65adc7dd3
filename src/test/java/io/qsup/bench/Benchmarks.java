package io.qsup.bench;

import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.VmDefinition;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.HostFacts;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.ProcessInspector;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The benchmark harness: what qsup adds over bare QEMU, measured in one run on one machine and reported as ratios
 * against bare QEMU, because these machines are noisy. Run with {@code scripts/bench [ROUNDS]}; results go to
 * BENCHMARKS.md by hand, beside the command.
 *
 * <p>Each figure pairs a qsup measurement with the same work done on a bare QEMU in the same round:
 * <ul>
 *   <li>launch: qsupd's start of a test-guest VM until {@code running}, against spawning the same argv and getting
 *       a QMP {@code query-status} answer by hand;
 *   <li>crash detection: {@code kill -9} of QEMU until qsupd's state change, against a bare QMP client seeing EOF;
 *   <li>crash to running: {@code kill -9} until the VM runs again (restart-delay 0), against a bare launch;
 *   <li>memory: the RSS of a qsupd process supervising three VMs, against the RSS of one of those QEMUs.
 * </ul>
 */
public final class Benchmarks {
    private static final ProcessInspector PROC = new ProcessInspector();

    private Benchmarks() {}

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        List<Double> bareLaunch = new ArrayList<>();
        List<Double> qsupLaunch = new ArrayList<>();
        List<Double> bareEof = new ArrayList<>();
        List<Double> qsupCrash = new ArrayList<>();
        List<Double> qsupBack = new ArrayList<>();
        try (SupervisorFixture fx = new SupervisorFixture(2)) {
            fx.writeVm("bench", "restart: always\nrestart-delay: 0s\nstart-limit-burst: 1000\nautostart: false");
            DaemonSettings settings = fx.settings();
            HostFacts host = HostFacts.probe(settings.qemuBinary());
            VmDefinition bareDef = ConfigLoader.loadFile(writeBare(fx), settings, host);
            Supervisor sup = fx.supervisor(Supervisor.Options.defaults());
            sup.loadInitial();
            for (int i = 0; i < rounds; i++) {
                bareLaunch.add(bareLaunchAndEof(bareDef, settings, host, bareEof));
                long t0 = System.nanoTime();
                VmState s = sup.start("bench").get(60, TimeUnit.SECONDS);
                qsupLaunch.add(millisSince(t0));
                if (s != VmState.RUNNING) {
                    throw new IllegalStateException("bench VM did not start: " + s);
                }
                crashAndBack(sup, fx, qsupCrash, qsupBack);
                sup.stop("bench", true, Duration.ofSeconds(20)).get(60, TimeUnit.SECONDS);
            }
            double[] mem = memory(fx);
            System.out.println(report(rounds, bareLaunch, qsupLaunch, bareEof, qsupCrash, qsupBack, mem));
        }
    }

    private static Path writeBare(SupervisorFixture fx) throws IOException {
        Path f = fx.writeVm("bare", "autostart: false");
        Path moved = fx.base.resolve("bare.yaml");
        Files.move(f, moved);
        return moved;
    }

    /** Spawns QEMU as qsupd would, waits for a query-status answer, then kills it and times the monitor's EOF. */
    private static double bareLaunchAndEof(VmDefinition def, DaemonSettings settings, HostFacts host,
            List<Double> eof) throws Exception {
        var paths = settings.pathsFor(def.name());
        Files.createDirectories(paths.dir());
        Files.createDirectories(paths.logDir());
        List<String> argv = ArgvBuilder.build(def, settings, host);
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        if (p.waitFor() != 0) {
            throw new IllegalStateException("bare QEMU failed to start: " + argv);
        }
        QmpClient c = connectWithRetry(paths.qmpSocket());
        c.queryStatus();
        double launch = millisSince(t0);
        long pid = ProcessInspector.readPidFile(paths.pidFile()).orElseThrow();
        CountDownLatch gone = new CountDownLatch(1);
        c.onDisconnect(e -> gone.countDown());
        long k = System.nanoTime();
        PROC.signal(pid, ProcessInspector.Signal.KILL);
        gone.await(30, TimeUnit.SECONDS);
        eof.add(millisSince(k));
        c.close();
        PROC.awaitDeath(pid, Duration.ofSeconds(10), 10);
        Files.deleteIfExists(paths.pidFile());
        return launch;
    }

    private static QmpClient connectWithRetry(Path socket) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                return QmpClient.connect(new QmpEndpoint.Unix(socket));
            } catch (io.qsup.qmp.QmpConnectException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(5);
            }
        }
    }

    private static void crashAndBack(Supervisor sup, SupervisorFixture fx, List<Double> crash, List<Double> back)
            throws Exception {
        long pid = sup.get("bench").orElseThrow().pid();
        CompletableFuture<Long> crashed = new CompletableFuture<>();
        CompletableFuture<Long> running = new CompletableFuture<>();
        AutoCloseable l = sup.addListener(e -> {
            if (e instanceof VmEvent.StateChange sc && sc.vm().equals("bench")) {
                if (sc.from() == VmState.RUNNING && sc.cause() == io.qsup.vm.Cause.CRASHED) {
                    crashed.complete(System.nanoTime());
                } else if (sc.to() == VmState.RUNNING && crashed.isDone()) {
                    running.complete(System.nanoTime());
                }
            }
        });
        long k = System.nanoTime();
        PROC.signal(pid, ProcessInspector.Signal.KILL);
        long c = crashed.get(60, TimeUnit.SECONDS);
        long r = running.get(60, TimeUnit.SECONDS);
        l.close();
        crash.add((c - k) / 1e6);
        back.add((r - k) / 1e6);
    }

    /** RSS of a qsupd child process supervising three running VMs, and of one of its QEMUs, in MiB. */
    private static double[] memory(SupervisorFixture fx) throws Exception {
        for (String n : List.of("m1", "m2", "m3")) {
            fx.writeVm(n, "restart: no");
        }
        Files.deleteIfExists(fx.base.resolve("vms/bench.yaml"));
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("java.class.path");
        Process daemon = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", cp,
                "io.qsup.daemon.QsupdMain", "--config", fx.settingsFile.toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            DaemonSettings s = fx.settings();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            long qemuPid = -1;
            while (System.nanoTime() < deadline) {
                boolean all = true;
                for (String n : List.of("m1", "m2", "m3")) {
                    try {
                        qemuPid = ProcessInspector.readPidFile(s.pathsFor(n).pidFile()).orElse(-1);
                    } catch (IOException e) {
                        qemuPid = -1;
                    }
                    all &= qemuPid > 0;
                }
                if (all) {
                    break;
                }
                Thread.sleep(200);
            }
            Thread.sleep(5000); // let the guests boot and the daemon settle
            return new double[] {rssMiB(daemon.pid()), rssMiB(qemuPid)};
        } finally {
            daemon.destroy();
            daemon.waitFor(20, TimeUnit.SECONDS);
        }
    }

    private static double rssMiB(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
            }
        }
        throw new IOException("no VmRSS for pid " + pid);
    }

    private static double millisSince(long t0) {
        return (System.nanoTime() - t0) / 1e6;
    }

    static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        Collections.sort(s);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    private static String report(int rounds, List<Double> bareLaunch, List<Double> qsupLaunch, List<Double> bareEof,
            List<Double> qsupCrash, List<Double> qsupBack, double[] mem) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "| figure (median of %d rounds) | bare QEMU | qsup | ratio qsup/bare |%n",
                rounds));
        sb.append("|---|---|---|---|\n");
        row(sb, "launch to a QMP answer / to `running`", median(bareLaunch), median(qsupLaunch), "ms");
        row(sb, "`kill -9` to monitor EOF / to the `crashed` transition", median(bareEof), median(qsupCrash), "ms");
        row(sb, "`kill -9` to running again (restart-delay 0) / bare launch", median(bareLaunch), median(qsupBack),
                "ms");
        row(sb, "RSS: one QEMU (TCG, 128M guest) / qsupd with 3 VMs", mem[1], mem[0], "MiB");
        return sb.toString();
    }

    private static void row(StringBuilder sb, String what, double bare, double qsup, String unit) {
        sb.append(String.format(Locale.ROOT, "| %s | %.1f %s | %.1f %s | %.2f |%n", what, bare, unit, qsup, unit,
                qsup / bare));
    }
}
