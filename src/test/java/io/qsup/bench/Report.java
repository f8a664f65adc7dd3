package io.qsup.bench;

import static io.qsup.bench.ProcessBench.*;

import java.util.List;
import java.util.Locale;
import java.util.OptionalDouble;

/**
 * The two summary tables of BENCHMARKS.md, read from one run's {@link Figures}: every target of the performance issue
 * with its measured median and whether this run met it, and qsup, bare QEMU and libvirt side by side. They say, never
 * judge: a target missed is printed as missed, and the run still succeeds.
 */
final class Report {
    private final Figures fig;
    private final int vms;
    private final int many;
    private final int idleSeconds;
    private final boolean libvirt;

    Report(Figures fig, int vms, int many, int idleSeconds, boolean libvirt) {
        this.fig = fig;
        this.vms = vms;
        this.many = many;
        this.idleSeconds = idleSeconds;
        this.libvirt = libvirt;
    }

    /** Every figure a complete run must have measured; the smoke test fails when one is missing. */
    List<String> expected() {
        List<String> e = new java.util.ArrayList<>(List.of(HELLO + " wall (ms)", LIST + " wall (ms)", LIST + " CPU (s)",
                STATUS + " wall (ms)", STATUS + " CPU (s)", VERSION + " wall (ms)", START + " wall (ms)",
                KILL + " wall (ms)", BARE_LAUNCH, BARE_TERM, target2("`qsup start b`"), target2("`qsup kill b`"),
                parallel(vms) + " wall (ms)", bareParallel(vms), ratio(parallel(vms), vms + " bare in parallel"),
                DIRECT, VM_QMP, ratio("`vm-qmp`", "direct QMP"), restart(vms), restarts(vms), rss(many),
                idleCpu(many, idleSeconds), osThreads(many), CRASHED, BACK, BARE_RELAUNCH, BARE_EOF,
                ratio("crash to running again", "bare relaunch")));
        if (libvirt) {
            e.addAll(List.of(VIRSH_LIST + " wall (ms)", VIRSH_START + " wall (ms)", VIRSH_DESTROY + " wall (ms)",
                    virshParallel(vms) + " wall (ms)", libvirtdRestart(vms), libvirtdRss(vms)));
        }
        return e;
    }

    String targets() {
        StringBuilder sb = new StringBuilder("| # | figure | target | this run (median, min–max, n) | met |\n"
                + "|---|---|---|---|---|\n");
        target(sb, "1", LIST + " wall", LIST + " wall (ms)", "≤ 100 ms", 100);
        target(sb, "1", LIST + " CPU", LIST + " CPU (s)", "≤ 0.15 s", 0.15);
        target(sb, "1", STATUS + " wall", STATUS + " wall (ms)", "≤ 100 ms", 100);
        target(sb, "1", STATUS + " CPU", STATUS + " CPU (s)", "≤ 0.15 s", 0.15);
        if (libvirt) {
            target(sb, "1", LIST + " / " + VIRSH_LIST + ", per iteration", ratio(LIST, VIRSH_LIST), "< 1", 0.9999);
        }
        target(sb, "2", "`qsup start b` / (100 ms + 1.2 × bare launch), per iteration",
                ratio("`qsup start b`", "target 2"), "≤ 1", 1);
        target(sb, "2", "`qsup kill b` / (100 ms + 1.2 × bare SIGTERM), per iteration",
                ratio("`qsup kill b`", "target 2"), "≤ 1", 1);
        target(sb, "3", "`qsup start p0 …` with " + vms + " VMs / " + vms + " bare launches in parallel",
                ratio(parallel(vms), vms + " bare in parallel"), "≤ 1.10", 1.10);
        target(sb, "4", "`vm-qmp` / direct QMP round trip, per iteration", ratio("`vm-qmp`", "direct QMP"), "≤ 1.5",
                1.5);
        target(sb, "5", "daemon restart, " + vms + " running VMs, to all answering", restart(vms), "≤ 400 ms", 400);
        target(sb, "5", "restarts of VMs during the daemon restart", restarts(vms), "0", 0);
        target(sb, "6", "qsupd RSS, " + many + " running VMs", rss(many), "≤ 64 MiB", 64);
        target(sb, "6", "qsupd CPU, idle over " + idleSeconds + " s, " + many + " running VMs",
                idleCpu(many, idleSeconds), "≤ 0.5 % of a core", 0.5);
        target(sb, "7", "qsupd platform (OS) threads, " + many + " running VMs", osThreads(many), "≤ 40", 40);
        target(sb, "8", "`kill -9` → `crashed` event", CRASHED, "≤ 10 ms", 10);
        target(sb, "8", "`kill -9` → running again / bare relaunch, per iteration",
                ratio("crash to running again", "bare relaunch"), "≤ 1.0", 1.0);
        List<String> scale = new java.util.ArrayList<>();
        if (vms != 20) {
            scale.add(vms + " VMs where the targets say 20");
        }
        if (many != 100) {
            scale.add(many + " where they say 100");
        }
        if (idleSeconds != 60) {
            scale.add("an idle window of " + idleSeconds + " s where they say 60");
        }
        if (!scale.isEmpty()) {
            sb.append("\nThis run used ").append(String.join(", ", scale)).append(".\n");
        }
        return sb.toString();
    }

    private void target(StringBuilder sb, String n, String what, String figure, String target, double bound) {
        List<Double> xs = fig.sorted(figure);
        if (xs.isEmpty()) {
            sb.append(String.format("| %s | %s | %s | not measured | — |%n", n, what, target));
            return;
        }
        double m = Figures.median(xs);
        sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s (%s–%s, %d) | %s |%n", n, what, target,
                Figures.num(m), Figures.num(xs.get(0)), Figures.num(xs.get(xs.size() - 1)), xs.size(),
                m <= bound ? "yes" : "**no**"));
    }

    String sideBySide() {
        StringBuilder sb = new StringBuilder(
                "| operation (medians; ratios are medians of per-iteration ratios) | bare QEMU | qsup | libvirt | "
                        + "qsup / bare | libvirt / bare |\n|---|---|---|---|---|---|\n");
        row(sb, "start one VM, to running (ms)", BARE_LAUNCH, START + " wall (ms)", VIRSH_START + " wall (ms)",
                ratio("`qsup start b`", "bare launch"), ratio(VIRSH_START, "bare launch"));
        row(sb, "kill one VM: bare SIGTERM / `qsup kill` / `virsh destroy`, to exited (ms)", BARE_TERM, KILL + " wall (ms)",
                VIRSH_DESTROY + " wall (ms)", ratio("`qsup kill b`", "bare SIGTERM"),
                ratio(VIRSH_DESTROY, "bare SIGTERM"));
        row(sb, "start " + vms + " VMs in parallel (ms)", bareParallel(vms), parallel(vms) + " wall (ms)",
                virshParallel(vms) + " wall (ms)", ratio(parallel(vms), vms + " bare in parallel"),
                ratio(virshParallel(vms), vms + " bare in parallel"));
        row(sb, "list VMs, whole process (ms)", null, LIST + " wall (ms)", VIRSH_LIST + " wall (ms)", null, null);
        row(sb, "daemon restart, " + vms + " running, to all answering (ms)", null, restart(vms),
                libvirtdRestart(vms), null, null);
        row(sb, "daemon RSS, " + vms + " running (MiB)", null, rss(vms), libvirtdRss(vms), null, null);
        row(sb, "`kill -9` of QEMU to running again (ms)", BARE_RELAUNCH, BACK, null,
                ratio("crash to running again", "bare relaunch"), null);
        if (!libvirt) {
            sb.append("\nlibvirt was not part of this run: `scripts/bench --with-libvirt` adds it.\n");
        }
        return sb.toString();
    }

    private void row(StringBuilder sb, String what, String bare, String qsup, String lv, String qsupRatio,
            String lvRatio) {
        sb.append("| ").append(what);
        for (String f : new String[] {bare, qsup, lv, qsupRatio, lvRatio}) {
            OptionalDouble m = f == null ? OptionalDouble.empty() : fig.median(f);
            sb.append(" | ").append(m.isPresent() ? Figures.num(m.getAsDouble()) : "—");
        }
        sb.append(" |\n");
    }
}
