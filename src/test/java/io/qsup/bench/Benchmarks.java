package io.qsup.bench;

import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.VmDefinition;
import io.qsup.qemu.HostFacts;
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
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The benchmark harness: what qsup adds over bare QEMU (and, with {@code --with-libvirt}, what libvirt adds), measured
 * in one run on one machine, with ratios taken per iteration against the bare operation done in the same loop,
 * because these machines are noisy. Run with {@code scripts/bench [--quick] [--with-libvirt] [--vms N] [--many N]
 * [ROUNDS]}, which regenerates the results part of BENCHMARKS.md and the raw samples in BENCHMARKS.tsv.
 *
 * <p>This class holds the entry point, the header and the in-process figures (the supervisor's own start and crash
 * handling, with no process or socket around it); {@link ProcessBench} the whole-process and daemon figures;
 * {@link Report} the tables of targets and of qsup, bare QEMU and libvirt side by side.
 */
public final class Benchmarks {
    private static final ProcessInspector PROC = new ProcessInspector();

    private Benchmarks() {}

    /**
     * {@code [--quick] [--vms N] [--many N] [--with-libvirt] [--out FILE] [ROUNDS]}: runs every figure and writes the
     * Markdown report to FILE (default: stdout) and the raw samples beside it ({@code FILE} with {@code .tsv}).
     * {@code --vms} (default 20) is the VM count of the parallel start, the daemon restart and the first RSS figure;
     * {@code --many} (default 100) that of the RSS, thread and idle-CPU figures. {@code --quick} is the smoke test: one
     * round, two VMs, three for {@code --many}, a short idle window; it fails only when a figure cannot be measured.
     * Exits 1 when a figure could not be measured.
     */
    public static void main(String[] args) throws Exception {
        List<String> missing = run(args);
        if (!missing.isEmpty()) {
            System.err.println("bench: not measured: " + missing);
            System.exit(1);
        }
    }

    /** Runs the harness as {@link #main} does; returns the figures it could not measure. */
    static List<String> run(String[] args) throws Exception {
        long began = System.nanoTime();
        String loadBefore = Files.readString(Path.of("/proc/loadavg")).trim();
        boolean quick = false;
        boolean libvirt = false;
        int rounds = 5;
        int vms = 20;
        int many = 100;
        Path out = null;
        List<String> shown = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--out")) {
                out = Path.of(args[++i]);
                continue;
            }
            shown.add(args[i]);
            switch (args[i]) {
                case "--quick" -> quick = true;
                case "--with-libvirt" -> libvirt = true;
                case "--vms" -> vms = Integer.parseInt(shownNext(shown, args, ++i));
                case "--many" -> many = Integer.parseInt(shownNext(shown, args, ++i));
                default -> rounds = Integer.parseInt(args[i]);
            }
        }
        if (quick) {
            rounds = 1;
            vms = Math.min(vms, 2);
            many = Math.min(many, 3);
        }
        if (many < vms) {
            throw new IllegalArgumentException("--many " + many + " is below --vms " + vms + "; give --many >= --vms");
        }
        int idle = quick ? 3 : 60;
        Path project = Path.of(System.getProperty("qsup.projectDir", "."));
        Figures fig = new Figures();
        inProcess(fig, rounds);
        int processRounds = Math.max(rounds, quick ? 1 : 3);
        long inProcessEnd = System.nanoTime();
        ProcessBench pb = new ProcessBench(fig, project, vms, many, libvirt);
        try {
            pb.run(processRounds, idle);
        } catch (Exception e) {
            // the report is still written, with what was measured; the figures left are missing, and the run fails
            e.printStackTrace();
            fig.failure("the run", 0, "stopped: " + e);
        }
        StringBuilder phases = new StringBuilder(String.format(Locale.ROOT, "in process %.0f s",
                (inProcessEnd - began) / 1e9));
        pb.phases().forEach((k, v) -> phases.append(String.format(Locale.ROOT, "; %s %.0f s", k, v)));
        Report rep = new Report(fig, vms, many, idle, libvirt);
        List<String> missing = fig.missing(rep.expected());
        double minutes = (System.nanoTime() - began) / 60e9;
        String report = header(shown, rounds, processRounds, vms, many, quick, libvirt, loadBefore, minutes, phases.toString())
                + "### Targets\n\n" + rep.targets()
                + "\n### qsup, bare QEMU and libvirt side by side\n\n" + rep.sideBySide()
                + (fig.failures().isEmpty() ? "" : "\n### Commands that failed (their samples are missing)\n\n"
                        + fig.failures())
                + "\n### Every figure\n\n" + fig.table();
        if (out == null) {
            System.out.println(report);
        } else {
            String doc = Files.exists(out) ? Files.readString(out) : "";
            int at = doc.indexOf(RESULTS);
            Files.writeString(out, (at >= 0 ? doc.substring(0, at) : doc) + RESULTS + "\n\n" + report);
            Path raw = out.resolveSibling(out.getFileName().toString().replaceFirst("\\.md$", "") + ".tsv");
            fig.writeRaw(raw);
            System.out.println("wrote " + out + " and " + raw);
        }
        return missing;
    }

    private static String shownNext(List<String> shown, String[] args, int i) {
        shown.add(args[i]);
        return args[i];
    }

    /** Where the generated part of BENCHMARKS.md starts; everything above it is kept as written. */
    static final String RESULTS = "## Results (generated by scripts/bench; do not edit below)";

    private static String header(List<String> args, int rounds, int processRounds, int vms, int many, boolean quick, boolean libvirt,
            String loadBefore, double minutes, String phases) throws Exception {
        String qemu = new String(new ProcessBuilder("qemu-system-x86_64", "--version").start().getInputStream()
                .readAllBytes()).lines().findFirst().orElse("?");
        String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                .findFirst().map(l -> l.substring(l.indexOf(':') + 2)).orElse("?");
        String mem = Files.readAllLines(Path.of("/proc/meminfo")).get(0).replaceAll("[^0-9]", "");
        String load = Files.readString(Path.of("/proc/loadavg")).trim();
        String libvirtVersion = "";
        if (libvirt) {
            libvirtVersion = "; libvirt: " + new String(new ProcessBuilder("libvirtd", "--version").start()
                    .getInputStream().readAllBytes()).trim() + " (libvirtd under a child subreaper, see above)";
        }
        return String.format(Locale.ROOT, """
                - date: %s; the run took %.1f min (after the build): %s
                - command: `scripts/bench%s`
                - machine: %d cores (%s), %d MiB; load average at the start: %s; at the end: %s
                - JDK: %s %s; QEMU: %s; TCG%s
                - guests: the test guest, 128 MiB, 1 vCPU, no disks (its kernel resets at once in 64 MiB)
                - rounds: %d in process, %d of whole processes%s; daemon restarts: %d; parallel start and daemon restart \
                with %d VMs; RSS, threads and idle CPU with %d

                """, java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS), minutes, phases,
                args.isEmpty() ? "" : " " + String.join(" ", args), Runtime.getRuntime().availableProcessors(), cpu,
                Long.parseLong(mem) / 1024, loadBefore, load, System.getProperty("java.vm.vendor"),
                System.getProperty("java.runtime.version"), qemu, libvirtVersion, rounds, processRounds,
                quick ? " (--quick)" : "", Math.max(1, processRounds / 2), vms, many);
    }

    /**
     * The daemon's own work with no process or socket around it: the supervisor in this JVM starts VM "bench" and sees
     * its QEMU killed, against a bare launch and a bare QMP client's EOF in the same iteration.
     */
    private static void inProcess(Figures fig, int rounds) throws Exception {
        try (SupervisorFixture fx = new SupervisorFixture(2)) {
            fx.writeVm("bench", "restart: always\nrestart-delay: 0s\nstart-limit-burst: 1000\nautostart: false");
            DaemonSettings settings = fx.settings();
            HostFacts host = HostFacts.probe(settings.qemuBinary());
            VmDefinition bareDef = ConfigLoader.loadFile(writeBare(fx), settings, host);
            Supervisor sup = fx.supervisor(Supervisor.Options.defaults());
            sup.loadInitial();
            for (int i = 0; i < rounds; i++) {
                double bare;
                double eof;
                try (Bare b = Bare.launch(bareDef, settings, host)) {
                    bare = b.launchMillis;
                    eof = b.killAndAwaitEof();
                }
                long t0 = System.nanoTime();
                VmState s = sup.start("bench").get(60, TimeUnit.SECONDS);
                double launch = (System.nanoTime() - t0) / 1e6;
                if (s != VmState.RUNNING) {
                    throw new IllegalStateException("bench VM did not start: " + s);
                }
                double[] crash = crashAndBack(sup);
                sup.stop("bench", true, Duration.ofSeconds(20)).get(60, TimeUnit.SECONDS);
                fig.add(IN + "bare launch to a QMP answer (ms)", i, bare);
                fig.add(IN + "supervisor start to `running` (ms)", i, launch);
                fig.add(IN + "ratio start / bare launch", i, launch / bare);
                fig.add(IN + "bare `kill -9` to monitor EOF (ms)", i, eof);
                fig.add(IN + "`kill -9` to the `crashed` transition (ms)", i, crash[0]);
                fig.add(IN + "`kill -9` to `running` again, restart-delay 0 (ms)", i, crash[1]);
                fig.add(IN + "ratio crash to running again / bare launch", i, crash[1] / bare);
            }
        }
    }

    private static final String IN = "in process: ";

    private static Path writeBare(SupervisorFixture fx) throws IOException {
        Path f = fx.writeVm("bare", "autostart: false");
        Path moved = fx.base.resolve("bare.yaml");
        Files.move(f, moved);
        return moved;
    }

    /** Kills the VM's QEMU; returns the milliseconds to the {@code crashed} transition and to {@code running} again. */
    private static double[] crashAndBack(Supervisor sup) throws Exception {
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
        return new double[] {(c - k) / 1e6, (r - k) / 1e6};
    }
}
