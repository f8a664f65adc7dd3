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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * The whole-process figures: the {@code qsup} CLI as a user runs it (bin/qsup on the packaged jar and its caches),
 * a {@code qsupd} child started by bin/qsupd, and, in the same loop, the references: a JVM hello world, socat on the
 * control socket, bare QEMUs launched and killed by hand, QMP straight to such a QEMU, and, with
 * {@code --with-libvirt}, virsh against a libvirtd of this run's own. Variants run one after the other in each
 * iteration, their order rotated from one iteration to the next; ratios are taken per iteration.
 *
 * <p>Phases: the CLI and lifecycle rounds with one guest up; then {@code vms} guests up for RSS, threads and the
 * daemon restarts (qsupd's and libvirtd's interleaved); then {@code many} guests up for RSS, threads and idle CPU.
 */
final class ProcessBench {
    static final String HELLO = "JVM hello world";
    static final String SOCAT = "socat: query-vms on the control socket";
    static final String LIST = "`qsup list`";
    static final String STATUS = "`qsup status v0`";
    static final String VERSION = "`qsup --version`";
    static final String VIRSH_LIST = "`virsh list`";
    static final String START = "`qsup start b` (returns once running)";
    static final String KILL = "`qsup kill b`";
    static final String VIRSH_START = "`virsh start lb`";
    static final String VIRSH_DESTROY = "`virsh destroy lb`";
    static final String BARE_LAUNCH = "bare QEMU: -daemonize launch to a QMP answer (ms)";
    static final String BARE_TERM = "bare QEMU: SIGTERM to exited (ms)";
    static final String BARE_EOF = "bare QEMU: `kill -9` to its monitor's EOF (ms)";
    static final String BARE_RELAUNCH = "bare QEMU: relaunch after `kill -9`, to a QMP answer (ms)";
    static final String CRASHED = "qsupd: `kill -9` of QEMU to the `crashed` event on the control socket (ms)";
    static final String BACK = "qsupd: `kill -9` of QEMU to the `running` event again, restart-delay 0 (ms)";
    static final String DIRECT = "direct QMP query-status round trip (ms)";
    static final String VM_QMP = "`vm-qmp` query-status round trip on one control connection (ms)";
    /** Target 1's bound, the CLI floor in target 2's "≤ CLI floor + 1.2 × bare". */
    static final double CLI_FLOOR_MS = 100;

    static String target2(String what) {
        return "target 2 for " + what + ": " + (int) CLI_FLOOR_MS + " ms + 1.2 × bare, this iteration (ms)";
    }

    static String ratio(String a, String b) {
        return "ratio " + a + " / " + b;
    }

    static String parallel(int n) {
        return "`qsup start p0 … p" + (n - 1) + "` (" + n + " VMs, returns once all run)";
    }

    static String bareParallel(int n) {
        return "bare QEMU: " + n + " launches in parallel, to all answering QMP (ms)";
    }

    static String virshParallel(int n) {
        return "`virsh start` × " + n + " in parallel";
    }

    static String rss(int n) {
        return "qsupd RSS with " + n + " running VMs (MiB)";
    }

    static String qemuRss(int n) {
        return "one QEMU's RSS, median of the " + n + " running (MiB)";
    }

    static String osThreads(int n) {
        return "qsupd OS threads (/proc/PID/task) with " + n + " running VMs";
    }

    static String idleCpu(int n, int seconds) {
        return "qsupd CPU idle with " + n + " running VMs over " + seconds + " s (% of a core)";
    }

    static String restart(int n) {
        return "qsupd restart, " + n + " running VMs: start to all answering vm-qmp (ms)";
    }

    static String restarts(int n) {
        return "qsupd restart, " + n + " running VMs: restarts";
    }

    static String libvirtdRestart(int n) {
        return "libvirtd restart, " + n + " running domains: start to all answering qemu-monitor-command (ms)";
    }

    static String libvirtdRss(int n) {
        return "libvirtd RSS with " + n + " running domains (MiB)";
    }

    private static final ProcessInspector PROC = new ProcessInspector();
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    private static final int QMP_CALLS = 200;
    /** The test guest boots in about 2 s under TCG. */
    private static final long GUEST_BOOT_MS = 3000;

    private final Figures fig;
    private final Path project;
    private final Path base;
    private final Path socket;
    private final Path settingsFile;
    private final String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    private final String qsup;
    private final int vms;
    private final int many;
    private final boolean withLibvirt;
    private Libvirt lv;
    private Process daemon;
    private DaemonSettings settings;
    private HostFacts host;
    /** VMs v0 … v(running-1) are defined and started. */
    private int running = 1;
    private final java.util.Map<String, Double> phases = new java.util.LinkedHashMap<>();
    private long phaseStart = System.nanoTime();

    /** How long each phase took, in seconds, in order. */
    java.util.Map<String, Double> phases() {
        return phases;
    }

    private void phase(String name) {
        long now = System.nanoTime();
        phases.put(name, (now - phaseStart) / 1e9);
        System.err.printf(Locale.ROOT, "bench: %s took %.0f s%n", name, (now - phaseStart) / 1e9);
        phaseStart = now;
    }

    ProcessBench(Figures fig, Path project, int vms, int many, boolean withLibvirt) throws IOException {
        this.fig = fig;
        this.project = project;
        this.vms = vms;
        this.many = many;
        this.withLibvirt = withLibvirt;
        this.qsup = project.resolve("bin/qsup").toString();
        this.base = Files.createTempDirectory(Path.of("/tmp"), "qsb");
        this.socket = base.resolve("run/qsupd.sock");
        this.settingsFile = base.resolve("qsupd.yaml");
        Files.createDirectories(base.resolve("vms"));
        Files.createDirectories(base.resolve("bare"));
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
        writeVm(base.resolve("vms/v0.yaml"), "autostart: true");
        writeVm(base.resolve("vms/b.yaml"), "autostart: false");
        writeVm(base.resolve("vms/c.yaml"), "autostart: false\nrestart: always\nrestart-delay: 0s\n"
                + "start-limit-burst: 1000");
        for (int p = 0; p < vms; p++) {
            writeVm(base.resolve("vms/p" + p + ".yaml"), "autostart: false");
        }
    }

    private static void writeVm(Path file, String extra) throws IOException {
        TestGuest g = TestGuest.get();
        Files.writeString(file, """
                memory: 128M
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
            settings = DaemonSettings.load(settingsFile);
            host = HostFacts.probe(settings.qemuBinary());
            VmDefinition bare = bareDefinition("bare");
            List<VmDefinition> bareMany = new ArrayList<>();
            for (int p = 0; p < vms; p++) {
                bareMany.add(bareDefinition("bp" + p));
            }
            if (withLibvirt) {
                Libvirt.ensureInstalled();
                lv = new Libvirt(base.resolve("libvirt"));
                lv.start();
                lv.define("lb");
                for (int p = 0; p < vms; p++) {
                    lv.define("lp" + p);
                }
            }
            phase(lv != null ? "set-up, libvirt's included" : "set-up");
            for (int i = 0; i < rounds; i++) {
                cliRound(i);
                lifecycleRound(i, bare);
                parallelRound(i, bareMany);
            }
            phase(rounds + " rounds of CLI, lifecycle and parallel start");
            growTo(vms, false);
            if (lv != null) {
                startDomains();
            }
            List<Path> serials = new ArrayList<>(serialLogs(0, vms));
            if (lv != null) {
                IntStream.range(0, vms).forEach(p -> serials.add(lv.serialLog("lp" + p)));
            }
            awaitBooted(serials); // the guests' boot loads the machine: measure the restarts on booted, idle guests
            snapshot(vms, 0);
            if (lv != null) {
                fig.add(libvirtdRss(vms), 0, status(lv.daemonPid(), "VmRSS:") / 1024.0);
                fig.add("libvirtd OS threads with " + vms + " running domains", 0, status(lv.daemonPid(), "Threads:"));
            }
            for (int i = 0; i < Math.max(1, rounds / 2); i++) {
                List<Call> variants = new ArrayList<>();
                int it = i;
                variants.add(() -> daemonRestart(it));
                if (lv != null) {
                    List<String> names = IntStream.range(0, vms).mapToObj(p -> "lp" + p).toList();
                    variants.add(() -> fig.add(libvirtdRestart(vms), it, lv.restart(names)));
                }
                rotate(variants, i);
            }
            if (lv != null) {
                lv.close();
                lv = null;
            }
            phase(vms + " VMs up, snapshot and daemon restarts");
            growTo(many, true);
            awaitBooted(serialLogs(0, many));
            snapshot(many, idleSeconds);
            phase(many + " VMs up, snapshot and idle window");
        } finally {
            try {
                stopEverything();
            } catch (Exception e) {
                System.err.println("bench: clean-up: " + e); // never hides why the run stopped
            }
        }
    }

    private VmDefinition bareDefinition(String name) throws Exception {
        Path f = base.resolve("bare/" + name + ".yaml");
        writeVm(f, "autostart: false");
        return ConfigLoader.loadFile(f, settings, host);
    }

    private interface Call {
        void run() throws Exception;
    }

    private static void rotate(List<Call> variants, int i) throws Exception {
        for (int k = 0; k < variants.size(); k++) {
            variants.get((k + i) % variants.size()).run();
        }
    }

    /** qsup list / status / --version against the references, order rotated per iteration. */
    private void cliRound(int i) throws Exception {
        String jar = project.resolve("target/qsup.jar").toString();
        List<Call> variants = new ArrayList<>();
        double[] hello = new double[1];
        double[] socat = new double[1];
        double[] list = new double[1];
        double[] virsh = new double[1];
        variants.add(() -> timed(i, HELLO, hello, java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-XX:-UsePerfData", "-cp", project.resolve("target/test-classes").toString(), Hello.class.getName()));
        variants.add(() -> timed(i, SOCAT, socat, "sh", "-c",
                "printf '{\"execute\":\"qmp_capabilities\"}\\n{\"execute\":\"query-vms\"}\\n' | socat -t 0 - UNIX-CONNECT:"
                        + socket));
        variants.add(() -> timed(i, LIST, list, qsup, "list"));
        variants.add(() -> timed(i, STATUS, new double[1], qsup, "status", "v0"));
        variants.add(() -> timed(i, VERSION, new double[1], qsup, "--version"));
        variants.add(() -> timed(i, "`qsup list` without launcher flags or cache (java -cp qsup.jar)", new double[1],
                java, "--enable-native-access=ALL-UNNAMED", "-cp", jar, "io.qsup.cli.QsupMain", "list"));
        if (lv != null) {
            variants.add(() -> timed(i, VIRSH_LIST, virsh, lv.virsh("list", "--all").toArray(String[]::new)));
        }
        rotate(variants, i);
        fig.add(ratio(LIST, HELLO), i, list[0] / hello[0]);
        fig.add(ratio(LIST, "socat"), i, list[0] / socat[0]);
        if (lv != null) {
            fig.add(ratio(LIST, VIRSH_LIST), i, list[0] / virsh[0]);
        }
    }

    /**
     * One VM's life, each variant in turn: bare QEMU (launch, direct QMP once its guest is up, SIGTERM; relaunch,
     * {@code kill -9}, EOF); {@code qsup start b} and {@code qsup kill b}; qsupd seeing a {@code kill -9} of VM c and
     * restarting it; {@code vm-qmp} on v0; {@code virsh start} and {@code virsh destroy}.
     */
    private void lifecycleRound(int i, VmDefinition bare) throws Exception {
        double[] bareLaunch = new double[1];
        double[] bareTerm = new double[1];
        double[] bareRelaunch = new double[1];
        double[] direct = new double[1];
        double[] viaDaemon = new double[1];
        double[] back = new double[1];
        double[] start = new double[1];
        double[] kill = new double[1];
        double[] vStart = new double[1];
        double[] vDestroy = new double[1];
        List<Call> variants = new ArrayList<>();
        variants.add(() -> {
            try (Bare b = Bare.launch(bare, settings, host)) {
                bareLaunch[0] = b.launchMillis;
                Thread.sleep(GUEST_BOOT_MS); // compare with v0, whose guest is up, not with a guest still booting
                direct[0] = roundTrips(() -> b.qmp.queryStatus());
                bareTerm[0] = b.signalAndAwaitDeath(ProcessInspector.Signal.TERM);
            }
            try (Bare b = Bare.launch(bare, settings, host)) {
                bareRelaunch[0] = b.launchMillis;
                fig.add(BARE_EOF, i, b.killAndAwaitEof());
            }
        });
        variants.add(() -> {
            timed(i, START, start, qsup, "start", "b");
            timed(i, KILL, kill, qsup, "kill", "b");
        });
        variants.add(() -> back[0] = crashAndBack(i));
        variants.add(() -> {
            try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
                ObjectNode args = JSON.objectNode().put("name", "v0").put("command", "query-status");
                viaDaemon[0] = roundTrips(() -> c.execute("vm-qmp", args));
            }
        });
        if (lv != null) {
            variants.add(() -> {
                timed(i, VIRSH_START, vStart, lv.virsh("start", "lb").toArray(String[]::new));
                lv.noteRunning("lb");
                timed(i, VIRSH_DESTROY, vDestroy, lv.virsh("destroy", "lb").toArray(String[]::new));
            });
        }
        rotate(variants, i);
        fig.add(BARE_LAUNCH, i, bareLaunch[0]);
        fig.add(BARE_TERM, i, bareTerm[0]);
        fig.add(BARE_RELAUNCH, i, bareRelaunch[0]);
        fig.add(ratio("`qsup start b`", "bare launch"), i, start[0] / bareLaunch[0]);
        fig.add(ratio("`qsup kill b`", "bare SIGTERM"), i, kill[0] / bareTerm[0]);
        double startTarget = CLI_FLOOR_MS + 1.2 * bareLaunch[0];
        double killTarget = CLI_FLOOR_MS + 1.2 * bareTerm[0];
        fig.add(target2("`qsup start b`"), i, startTarget);
        fig.add(ratio("`qsup start b`", "target 2"), i, start[0] / startTarget);
        fig.add(target2("`qsup kill b`"), i, killTarget);
        fig.add(ratio("`qsup kill b`", "target 2"), i, kill[0] / killTarget);
        fig.add(ratio("crash to running again", "bare relaunch"), i, back[0] / bareRelaunch[0]);
        fig.add(DIRECT, i, direct[0]);
        fig.add(VM_QMP, i, viaDaemon[0]);
        fig.add(ratio("`vm-qmp`", "direct QMP"), i, viaDaemon[0] / direct[0]);
        if (lv != null) {
            fig.add(ratio(VIRSH_START, "bare launch"), i, vStart[0] / bareLaunch[0]);
            fig.add(ratio(VIRSH_DESTROY, "bare SIGTERM"), i, vDestroy[0] / bareTerm[0]);
        }
    }

    /** Starts VM c, kills its QEMU with SIGKILL, times the control socket's events; returns kill to running again. */
    private double crashAndBack(int i) throws Exception {
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
            c.execute("vm-start", JSON.objectNode().put("name", "c"));
            c.execute("event-subscribe", subscription("c"));
            CompletableFuture<Long> crashed = new CompletableFuture<>();
            CompletableFuture<Long> back = new CompletableFuture<>();
            c.addEventListener(e -> {
                if (e.name().equals("VM_STATE_CHANGED")) {
                    long now = System.nanoTime();
                    if (e.data().path("cause").asText().equals("crashed")) {
                        crashed.complete(now);
                    } else if (e.data().path("new").asText().equals("running") && crashed.isDone()) {
                        back.complete(now);
                    }
                }
            });
            long pid = ProcessInspector.readPidFile(settings.pathsFor("c").pidFile()).orElseThrow();
            long k = System.nanoTime();
            PROC.signal(pid, ProcessInspector.Signal.KILL);
            double toCrashed = (crashed.get(60, TimeUnit.SECONDS) - k) / 1e6;
            double toBack = (back.get(60, TimeUnit.SECONDS) - k) / 1e6;
            fig.add(CRASHED, i, toCrashed);
            fig.add(BACK, i, toBack);
            c.execute("vm-kill", JSON.objectNode().put("name", "c"));
            return toBack;
        }
    }

    private static ObjectNode subscription(String vm) {
        ObjectNode args = JSON.objectNode();
        args.putArray("vms").add(vm);
        args.putArray("events").add("VM_STATE_CHANGED");
        return args;
    }

    /** {@code qsup start p0 … p(N-1)}, N bare launches in parallel, and N {@code virsh start} in parallel, rotated. */
    private void parallelRound(int i, List<VmDefinition> bare) throws Exception {
        int n = bare.size();
        double[] qsupWall = new double[1];
        double[] bareWall = new double[1];
        double[] virshWall = new double[1];
        List<Call> variants = new ArrayList<>();
        variants.add(() -> {
            List<String> argv = new ArrayList<>(List.of(qsup, "start"));
            IntStream.range(0, n).forEach(p -> argv.add("p" + p));
            timed(i, parallel(n), qsupWall, argv.toArray(String[]::new));
            try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
                for (int p = 0; p < n; p++) {
                    try {
                        c.execute("vm-kill", JSON.objectNode().put("name", "p" + p));
                    } catch (io.qsup.qmp.QmpErrorException e) {
                        // not running: its start failed, and that failure is recorded
                    }
                }
            }
        });
        variants.add(() -> {
            long t0 = System.nanoTime();
            List<CompletableFuture<Bare>> all = new ArrayList<>();
            for (VmDefinition d : bare) {
                CompletableFuture<Bare> f = new CompletableFuture<>();
                // platform threads: the QMP client's socket may be junixsocket's
                Thread.ofPlatform().name("bare-launch " + d.name()).start(() -> {
                    try {
                        f.complete(Bare.launch(d, settings, host));
                    } catch (Throwable e) {
                        f.completeExceptionally(e);
                    }
                });
                all.add(f);
            }
            List<Bare> launched = new ArrayList<>();
            Exception failed = null;
            for (CompletableFuture<Bare> f : all) {
                try {
                    launched.add(f.get(300, TimeUnit.SECONDS));
                } catch (Exception e) {
                    failed = e;
                }
            }
            bareWall[0] = (System.nanoTime() - t0) / 1e6;
            for (Bare b : launched) {
                b.close();
            }
            if (failed != null) {
                throw failed;
            }
            fig.add(bareParallel(n), i, bareWall[0]);
        });
        if (lv != null) {
            variants.add(() -> {
                virshWall[0] = virshAll(n, "start", i);
                fig.add(virshParallel(n) + " wall (ms)", i, virshWall[0]);
                for (int p = 0; p < n; p++) {
                    lv.noteRunning("lp" + p);
                }
                virshAll(n, "destroy", -1);
            });
        }
        rotate(variants, i);
        fig.add(ratio(parallel(n), n + " bare in parallel"), i, qsupWall[0] / bareWall[0]);
        if (lv != null) {
            fig.add(ratio(virshParallel(n), n + " bare in parallel"), i, virshWall[0] / bareWall[0]);
        }
    }

    /**
     * {@code virsh VERB lpK} for every K at once, as N processes; returns the wall time until all returned, or NaN when
     * one failed, which is recorded as a failure of iteration {@code i} (none when {@code i < 0}: a clean-up).
     */
    private double virshAll(int n, String verb, int i) throws Exception {
        long t0 = System.nanoTime();
        List<Process> ps = new ArrayList<>();
        for (int p = 0; p < n; p++) {
            ps.add(new ProcessBuilder(lv.virsh(verb, "lp" + p)).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start());
        }
        boolean ok = true;
        for (int p = 0; p < n; p++) {
            if (ps.get(p).waitFor() != 0) {
                ok = false;
                if (i >= 0) {
                    fig.failure(virshParallel(n), i, "virsh " + verb + " lp" + p + " exited " + ps.get(p).exitValue());
                }
            }
        }
        return ok ? (System.nanoTime() - t0) / 1e6 : Double.NaN;
    }

    /** libvirt's domains for the restart phase: all started at once, as the qsup VMs were. */
    private void startDomains() throws Exception {
        if (Double.isNaN(virshAll(vms, "start", 0))) {
            throw new IllegalStateException("libvirt's " + vms + " domains did not all start; see the failures above");
        }
        for (int p = 0; p < vms; p++) {
            lv.noteRunning("lp" + p);
        }
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
     * timed; the daemon figures need them all: define the rest, reload, start them. With {@code guardMemory}, first
     * checks that the host has the memory for them, from the QEMUs already running.
     */
    private void growTo(int n, boolean guardMemory) throws Exception {
        if (n <= running) {
            return;
        }
        if (guardMemory) {
            double perVm = fig.median(qemuRss(running)).orElse(256.0);
            double needMiB = perVm * (n - running) * 1.2 + 2048;
            double availMiB = meminfo("MemAvailable:") / 1024.0;
            if (availMiB < needMiB) {
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "%d more VMs need about %.0f MiB (%.0f MiB each, plus 2 GiB), and %.0f MiB are available; "
                                + "run with a smaller --many", n - running, needMiB, perVm, availMiB));
            }
        }
        for (int v = running; v < n; v++) {
            writeVm(base.resolve("vms/v" + v + ".yaml"), "autostart: true");
        }
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
            c.execute("daemon-reload");
            for (int v = running; v < n; v++) {
                c.execute("vm-start", JSON.objectNode().put("name", "v" + v).put("wait", false));
            }
        }
        running = n;
        awaitAllAnswering();
    }

    /** The serial logs of VMs v{@code from} … v{@code to - 1} (log-dir {@code log}). */
    private List<Path> serialLogs(int from, int to) {
        return IntStream.range(from, to).mapToObj(v -> base.resolve("log/v" + v + "/serial.log")).toList();
    }

    /**
     * Waits until every serial log holds the test guest's ready line, so that figures taken next see booted, idle
     * guests and not the boot's load; gives up after 10 minutes with a warning in the harness's output.
     */
    private void awaitBooted(List<Path> serials) throws Exception {
        long t0 = System.nanoTime();
        long deadline = t0 + TimeUnit.MINUTES.toNanos(10);
        List<Path> left = new ArrayList<>(serials);
        while (!left.isEmpty() && System.nanoTime() < deadline) {
            left.removeIf(f -> {
                try {
                    return Files.exists(f) && Files.readString(f, StandardCharsets.ISO_8859_1)
                            .contains(TestGuest.READY_LINE);
                } catch (IOException e) {
                    return false;
                }
            });
            Thread.sleep(500);
        }
        System.out.printf(Locale.ROOT, "bench: %d guests booted after %.0f s%s%n", serials.size() - left.size(),
                (System.nanoTime() - t0) / 1e9, left.isEmpty() ? "" : "; not booted: " + left);
    }

    /** RSS and threads of qsupd with n VMs running, the QEMUs' RSS, and qsupd's CPU over idleSeconds (if any). */
    private void snapshot(int n, int idleSeconds) throws Exception {
        long pid = daemon.pid();
        if (idleSeconds > 0) {
            long cpu0 = cpuTicks(pid);
            long t0 = System.nanoTime();
            Thread.sleep(idleSeconds * 1000L);
            double cpu = (cpuTicks(pid) - cpu0) / 100.0;
            double wall = (System.nanoTime() - t0) / 1e9;
            fig.add(idleCpu(n, idleSeconds), 0, 100 * cpu / wall);
        }
        fig.add(rss(n), 0, status(pid, "VmRSS:") / 1024.0);
        List<Double> qemu = new ArrayList<>();
        for (int v = 0; v < n; v++) {
            long q = ProcessInspector.readPidFile(settings.pathsFor("v" + v).pidFile()).orElseThrow();
            qemu.add(status(q, "VmRSS:") / 1024.0);
        }
        fig.add(qemuRss(n), 0, Figures.median(qemu.stream().sorted().toList()));
        fig.add("all " + n + " QEMUs' RSS (MiB)", 0, qemu.stream().mapToDouble(Double::doubleValue).sum());
        Threads t = Threads.of(pid, base);
        fig.add(osThreads(n), 0, t.os());
        fig.add("… of them Java platform threads, with " + n + " running VMs", 0, t.javaPlatform());
        fig.add("… of those, carriers of virtual threads, with " + n + " running VMs", 0, t.carriers());
        fig.add("… of them JVM-internal (GC, JIT, VM thread), with " + n + " running VMs", 0, t.jvmInternal());
        fig.add("qsupd virtual threads with " + n + " running VMs", 0, t.virtual());
    }

    /** SIGTERM qsupd (its VMs keep running), start it again, until every VM answers vm-qmp. */
    private void daemonRestart(int i) throws Exception {
        int before = awaitAllAnswering(); // the tallies persist: VM c's crash rounds are in them
        daemon.destroy();
        daemon.waitFor(60, TimeUnit.SECONDS);
        long t0 = System.nanoTime();
        startDaemon();
        int restarts = awaitAllAnswering();
        fig.add(restart(running), i, (System.nanoTime() - t0) / 1e6);
        fig.add(restarts(running), i, restarts - before);
    }

    /** Waits until the control socket answers and every VM answers vm-qmp; returns the v* VMs' restart counts' sum. */
    private int awaitAllAnswering() throws Exception {
        // qsupd starts max-parallel-starts VMs at a time, each taking seconds on a loaded machine: scale the bound
        long bound = 300 + 5L * running;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(bound);
        while (true) {
            if (!daemon.isAlive()) {
                throw new IllegalStateException("qsupd exited: see " + base.resolve("qsupd.log"));
            }
            try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
                boolean all = true;
                for (int v = 0; v < running && all; v++) {
                    try {
                        c.execute("vm-qmp", JSON.objectNode().put("name", "v" + v).put("command", "query-status"));
                    } catch (io.qsup.qmp.QmpException e) {
                        all = false;
                    }
                }
                if (all) {
                    int restarts = 0;
                    for (JsonNode vm : c.execute("query-vms")) {
                        restarts += vm.path("name").asText().startsWith("v") ? vm.path("restart-count").asInt() : 0;
                    }
                    return restarts;
                }
            } catch (io.qsup.qmp.QmpException e) {
                // not listening yet
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the " + running + " VMs did not all answer in " + bound
                        + " s: see target/bench-qsupd.log");
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

    /**
     * A whole process, timed: wall clock here, CPU from /usr/bin/time; both recorded under the figure's name. A process
     * that fails is recorded as a failure with the end of its output, and its sample as missing (NaN), so that one
     * command losing a race on a loaded machine does not end the run; a figure with no sample at all still fails it.
     */
    private void timed(int i, String figure, double[] wallOut, String... cmd) {
        wallOut[0] = Double.NaN;
        try {
            Path cpuFile = base.resolve("time.out");
            Path outFile = base.resolve("command.out");
            List<String> argv = new ArrayList<>(List.of("/usr/bin/time", "-f", "%U %S", "-o", cpuFile.toString()));
            argv.addAll(List.of(cmd));
            ProcessBuilder pb = new ProcessBuilder(argv);
            pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
            pb.environment().put("QSUP_SOCKET", socket.toString());
            pb.environment().remove("QSUP_JAVA_OPTS");
            long t0 = System.nanoTime();
            Process p = pb.redirectErrorStream(true).redirectOutput(outFile.toFile()).start();
            int code = p.waitFor();
            double wall = (System.nanoTime() - t0) / 1e6;
            if (code != 0) {
                List<String> out = Files.readAllLines(outFile);
                fig.failure(figure, i, String.join(" ", cmd) + " exited " + code + ": "
                        + String.join(" / ", out.subList(Math.max(0, out.size() - 3), out.size())));
                return;
            }
            String[] cpu = Files.readString(cpuFile).trim().split("\\s+");
            String[] last = cpu.length >= 2 ? new String[] {cpu[cpu.length - 2], cpu[cpu.length - 1]} : cpu;
            wallOut[0] = wall;
            fig.add(figure + " wall (ms)", i, wall);
            fig.add(figure + " CPU (s)", i, Double.parseDouble(last[0]) + Double.parseDouble(last[1]));
        } catch (Exception e) {
            throw new IllegalStateException(figure + ": " + e.getMessage(), e);
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

    private static long meminfo(String key) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith(key)) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("no " + key + " in /proc/meminfo");
    }

    /**
     * Tears down libvirt's part, then kills the daemon and every QEMU of this run, found by the pidfiles under this
     * run's own folder (qsupd's VMs and the bare ones), keeps the logs in target/bench-*.log, and removes the folder.
     */
    private void stopEverything() throws Exception {
        if (lv != null) {
            try {
                lv.close();
            } catch (Exception e) {
                System.err.println("bench: libvirt teardown: " + e);
            }
        }
        // qsupd first and for sure: alive, it would relaunch the QEMUs killed below
        if (daemon != null) {
            daemon.destroy();
            if (!daemon.waitFor(30, TimeUnit.SECONDS)) {
                daemon.destroyForcibly();
                daemon.waitFor(30, TimeUnit.SECONDS);
            }
        }
        Path run = base.resolve("run/vms");
        if (Files.isDirectory(run)) {
            try (Stream<Path> s = Files.list(run)) {
                for (Path vm : s.toList()) {
                    var pid = ProcessInspector.readPidFile(vm.resolve("qemu.pid"));
                    if (pid.isPresent() && PROC.isAlive(pid.getAsLong())
                            && PROC.cmdline(pid.getAsLong()).stream().anyMatch(a -> a.contains(base.toString()))) {
                        PROC.signal(pid.getAsLong(), ProcessInspector.Signal.KILL);
                        PROC.awaitDeath(pid.getAsLong(), Duration.ofSeconds(10), 10);
                    }
                }
            }
        }
        // the logs outlive the run's folder, for a run that failed
        Files.createDirectories(project.resolve("target"));
        for (String[] log : new String[][] {{"qsupd.log", "bench-qsupd.log"},
                {"libvirt/log/libvirtd.log", "bench-libvirtd.log"}}) {
            if (Files.exists(base.resolve(log[0]))) {
                Files.copy(base.resolve(log[0]), project.resolve("target").resolve(log[1]),
                        StandardCopyOption.REPLACE_EXISTING);
            }
        }
        try (Stream<Path> s = Files.walk(base)) {
            for (Path f : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        } catch (IOException e) {
            System.err.println("bench: could not remove " + base + ": " + e);
        }
    }
}
