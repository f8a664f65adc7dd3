package io.qsup.vm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Samples two VM controllers' QEMUs through their own QMP sessions ({@code query-status}, which goes straight to the
 * session) every {@code periodMillis}, alternately, and records every moment both ran guest code.
 *
 * <p>Two answers from two monitors are never one instant: a source sampled running just before it stopped, and then a
 * target sampled running just after it started, are a hand-over, not an overlap. So a sample of one QEMU running counts
 * as an overlap only when the other QEMU answered running both just before and just after it: three consecutive
 * samples, other-this-other, all running. QEMU cannot stop and restart a VM within one sampling period during a
 * migration, so the other one ran all through, and both ran at the middle sample's instant.
 *
 * <p>Threading: one platform thread ({@code at-most-one-running}) samples; the lists are concurrent and may be read
 * from any thread; {@link #close} stops the thread and waits for it.
 */
final class AtMostOneRunning implements AutoCloseable {
    /** One answer: which QEMU (0 or 1), when ({@link System#nanoTime()}), and its QMP status word. */
    record Sample(int which, long at, String status, boolean running) {}

    private final VmController[] vms;
    private final long periodMillis;
    private final List<Sample> samples = new CopyOnWriteArrayList<>();
    private final List<String> overlaps = new CopyOnWriteArrayList<>();
    private final Thread thread;
    private volatile boolean stop;

    AtMostOneRunning(VmController a, VmController b, long periodMillis) {
        this.vms = new VmController[] {a, b};
        this.periodMillis = periodMillis;
        this.thread = Thread.ofPlatform().daemon().name("at-most-one-running").unstarted(this::loop);
        thread.start();
    }

    private void loop() {
        int which = 0;
        while (!stop) {
            samples.add(sample(which));
            check();
            which = 1 - which;
            try {
                Thread.sleep(periodMillis / 2);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private Sample sample(int which) {
        long at = System.nanoTime();
        try {
            var r = vms[which].qmp("query-status", null, java.time.Duration.ofSeconds(2));
            return new Sample(which, at, r.path("status").asText(), r.path("running").asBoolean());
        } catch (Exception e) {
            return new Sample(which, at, "no-monitor", false); // no session: no QEMU of this controller runs
        }
    }

    private void check() {
        int n = samples.size();
        if (n < 3) {
            return;
        }
        Sample a = samples.get(n - 3);
        Sample b = samples.get(n - 2);
        Sample c = samples.get(n - 1);
        if (a.running() && b.running() && c.running() && a.which() == c.which() && a.which() != b.which()) {
            overlaps.add("QEMU " + b.which() + " was " + b.status() + " while QEMU " + a.which() + " was " + a.status()
                    + " before and " + c.status() + " after (samples " + (n - 3) + ".." + (n - 1) + ")");
        }
    }

    /** Every overlap seen: empty when the two QEMUs never ran at once. */
    List<String> overlaps() {
        return List.copyOf(overlaps);
    }

    /** How many samples of QEMU {@code which} said running. */
    long runningSamples(int which) {
        return samples.stream().filter(s -> s.which() == which && s.running()).count();
    }

    int size() {
        return samples.size();
    }

    /** The distinct status words QEMU {@code which} went through, in order. */
    List<String> statuses(int which) {
        List<String> out = new ArrayList<>();
        for (Sample s : samples) {
            if (s.which() == which && (out.isEmpty() || !out.getLast().equals(s.status()))) {
                out.add(s.status());
            }
        }
        return out;
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        thread.join(5000);
    }
}
