package io.qsup.invariant;

import io.qsup.testing.QemuProcesses;
import io.qsup.testing.QemuProcesses.Instance;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.LongFunction;

/**
 * Watches {@code /proc} every {@code periodMillis} for the QEMUs of one test folder and records every moment a VM
 * has two live instances (see {@link QemuProcesses} for how a daemonizing launch counts as one).
 *
 * <p>A scan is not atomic: a launcher parent that exits while the scan reads the other entries can look like a
 * second instance for that one scan. So a pair counts only when the next scan, at least one period later, still shows
 * the same two roots alive. A real overlap shorter than about two periods can be missed; a reported one is real.
 *
 * <p>Threading: one platform thread ({@code two-qemu-sampler}) scans; {@link #violations()} and {@link #scans()} may
 * be read from any thread.
 */
final class TwoQemuSampler implements AutoCloseable {

    /** One confirmed moment with two instances of one VM. */
    record Violation(String at, String vm, List<Instance> first, List<Instance> confirmed) {
        @Override
        public String toString() {
            StringBuilder s = new StringBuilder("at ").append(at).append(" VM ").append(vm).append(" had ")
                    .append(confirmed.size()).append(" live QEMU instances (seen twice, one scan apart):");
            for (Instance i : confirmed) {
                s.append("\n    ").append(i);
            }
            s.append("\n  first seen as:");
            for (Instance i : first) {
                s.append("\n    ").append(i);
            }
            return s.toString();
        }
    }

    private final QemuProcesses procs;
    private final long periodMillis;
    private final LongFunction<String> clock;
    private final Thread thread;
    private final List<Violation> violations = new CopyOnWriteArrayList<>();
    /** VM name + root pid of every instance already reported, so one leaked QEMU is reported once, not per pairing. */
    private final Set<String> reported = new HashSet<>();
    private volatile int repeats;
    private volatile boolean stop;
    private volatile long scans;
    private volatile RuntimeException failure;

    /** @param clock turns a {@link System#nanoTime()} into the test's own time label */
    TwoQemuSampler(Path dir, long periodMillis, LongFunction<String> clock) {
        this.procs = new QemuProcesses(dir);
        this.periodMillis = periodMillis;
        this.clock = clock;
        this.thread = Thread.ofPlatform().daemon().name("two-qemu-sampler").unstarted(this::loop);
    }

    void start() {
        thread.start();
    }

    List<Violation> violations() {
        return List.copyOf(violations);
    }

    long scans() {
        return scans;
    }

    /** A scan that threw (the sampler then stopped), or null. */
    RuntimeException failure() {
        return failure;
    }

    private void loop() {
        Map<String, List<Instance>> suspects = new HashMap<>();
        try {
            while (!stop) {
                QemuProcesses.Snapshot snap = procs.scan();
                scans++;
                Map<String, List<Instance>> next = new HashMap<>();
                snap.instances().forEach((vm, instances) -> {
                    if (instances.size() < 2) {
                        return;
                    }
                    next.put(vm, instances);
                    List<Instance> before = suspects.get(vm);
                    if (before == null) {
                        return;
                    }
                    Set<Long> now = roots(instances);
                    Set<Long> both = new TreeSet<>(roots(before));
                    both.retainAll(now);
                    if (both.size() >= 2) {
                        boolean seen = both.stream().anyMatch(p -> reported.contains(vm + "/" + p));
                        both.forEach(p -> reported.add(vm + "/" + p));
                        if (seen) {
                            repeats++;
                        } else {
                            violations.add(new Violation(clock.apply(snap.nanoTime()), vm, before, instances));
                        }
                    }
                });
                suspects.clear();
                suspects.putAll(next);
                Thread.sleep(periodMillis);
            }
        } catch (InterruptedException e) {
            // closing
        } catch (RuntimeException e) {
            failure = e;
        }
    }

    private static Set<Long> roots(List<Instance> instances) {
        Set<Long> s = new TreeSet<>();
        for (Instance i : instances) {
            s.add(i.root().pid());
        }
        return s;
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        thread.interrupt();
        thread.join(5000);
    }

    /** For the report: how many scans ran. */
    @Override
    public String toString() {
        return "sampler: " + scans + " scans every " + periodMillis + " ms, " + violations.size() + " violations"
                + (repeats > 0 ? " (and " + repeats + " more scans of a reported QEMU beside another)" : "");
    }

    static List<String> describe(List<Violation> vs) {
        List<String> out = new ArrayList<>();
        vs.forEach(v -> out.add(v.toString()));
        return out;
    }
}
