package io.qsup.testing;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An independent witness of the QEMUs a test made, per VM, read from {@code /proc} by {@link QemuProcesses} (not
 * through qsupd's own code): a daemonizing launch is one instance, zombies never count. {@link #startSampling()}
 * samples every few milliseconds and keeps the worst moment, so a second QEMU that lived only briefly is still seen.
 *
 * <p>Thread-safe: the sampler thread writes only the concurrent {@code worst} map.
 */
public final class QemuCensus implements AutoCloseable {
    private final Path base;
    private final QemuProcesses procs;
    private final Map<String, List<Long>> worst = new ConcurrentHashMap<>();
    private volatile Thread sampler;

    public QemuCensus(Path base) {
        this.base = base;
        this.procs = new QemuProcesses(base);
    }

    /** VM name to the pids of its live QEMU instances (the daemonized QEMU of each), now. */
    public Map<String, List<Long>> now() {
        Map<String, List<Long>> out = new TreeMap<>();
        procs.scan().instances().forEach((vm, instances) -> out.put(vm,
                instances.stream().map(i -> i.leaf().pid()).sorted().toList()));
        return out;
    }

    /** Starts sampling in the background. */
    public QemuCensus startSampling() {
        sampler = Thread.ofPlatform().daemon().name("qemu-census").start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                now().forEach((vm, pids) -> {
                    if (pids.size() > 1) {
                        worst.merge(vm, pids, (a, b) -> b.size() > a.size() ? b : a);
                    }
                });
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        return this;
    }

    /** Every VM that was ever seen with more than one live QEMU, with the pids of its worst moment. */
    public Map<String, List<Long>> duplicates() {
        return new TreeMap<>(worst);
    }

    /** Kills every QEMU of this test still alive, by pid. */
    public void killAll() throws InterruptedException {
        QemuProcesses.killAll(base, Duration.ofSeconds(10));
    }

    @Override
    public void close() {
        Thread t = sampler;
        if (t != null) {
            t.interrupt();
        }
    }
}
