package io.qsup.vm;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.Consumer;

/**
 * Keeps one VM's {@link VmStats} current without ever being asked to wait: it listens to the VM's own state events
 * for the state, the flags and the counters, and the VM's probe loop hands it {@code /proc} figures, the probe's round
 * trip and {@code query-blockstats}. {@link #snapshot} only reads.
 *
 * <p>Threading: lock-free. Every field is volatile or atomic; writers are the VM's state machine listeners (called one
 * at a time under the state machine's lock, so state-derived fields change in event order), the ops thread
 * ({@link #exited}) and the monitor thread ({@link #probed}) and any snapshot's reader (the {@code /proc} reading). Readers on any thread see each
 * field's latest value; a snapshot may mix figures a few milliseconds apart, never a half-written one.
 */
public final class VmStatsRecorder implements Consumer<VmEvent> {
    /** Bucket bounds of {@code qsup_vm_start_seconds}: a TCG boot takes seconds, a stuck launch its whole timeout. */
    static final double[] START_BOUNDS = {0.25, 0.5, 1, 2, 5, 10, 30, 60, Double.POSITIVE_INFINITY};
    /** Bucket bounds of {@code qsup_vm_stop_seconds}: from a QMP quit to a full ladder of several minutes. */
    static final double[] STOP_BOUNDS = {0.5, 1, 2, 5, 10, 30, 60, 120, 300, Double.POSITIVE_INFINITY};

    private final String vm;
    private volatile VmState state;
    private volatile boolean unresponsive;
    private volatile boolean guestUnresponsive;
    private volatile boolean restartPending;
    /** The latest {@code /proc} reading; see {@link #usage(long)}. */
    private volatile ProcUsage usage;
    private volatile VmStats.BlockSample block;
    private volatile double rttSeconds = Double.NaN;
    private volatile String qemuVersion = "";
    /** System.nanoTime() when the VM entered starting or stopping; written by listeners only. */
    private volatile long startingSince;
    private volatile long stoppingSince;
    private volatile StopRung lastRung;
    private final AtomicLong restarts = new AtomicLong();
    private final AtomicLongArray exits = new AtomicLongArray(ExitCause.Kind.values().length);
    private final AtomicLongArray stops = new AtomicLongArray(StopRung.values().length);
    private final Histogram startTimes = new Histogram(START_BOUNDS);
    private final Histogram stopTimes = new Histogram(STOP_BOUNDS);

    /** How long a {@code /proc} reading serves further snapshots. */
    static final Duration USAGE_FRESH = Duration.ofMillis(200);

    public VmStatsRecorder(String vm, VmState initial) {
        this.vm = vm;
        this.state = initial;
    }

    /** A state machine listener: must not block (it runs under the state machine's lock). */
    @Override
    public void accept(VmEvent event) {
        switch (event) {
            case VmEvent.StateChange s -> onStateChange(s);
            case VmEvent.ResponsivenessChange r -> unresponsive = r.unresponsive();
            case VmEvent.GuestHangChange g -> guestUnresponsive = g.guestUnresponsive();
            case VmEvent.RestartPendingChange p -> restartPending = !p.changedKeys().isEmpty();
            case VmEvent.StopRungReached r -> lastRung = r.rung();
            default -> { }
        }
    }

    private void onStateChange(VmEvent.StateChange s) {
        long now = System.nanoTime();
        state = s.to();
        if (!s.to().hasProcess()) {
            guestUnresponsive = false;
            unresponsive = false; // the state machine drops the flag silently when the process is gone
        }
        if (s.to() == VmState.STARTING) {
            startingSince = now;
            if (s.cause() == Cause.RESTART) {
                restarts.incrementAndGet();
            }
        } else if (s.from() == VmState.STARTING && s.cause() == Cause.LAUNCHED) {
            startTimes.observe(now - startingSince);
        }
        if (s.to() == VmState.STOPPING) {
            stoppingSince = now;
            lastRung = null;
        } else if (s.from() == VmState.STOPPING && s.to() == VmState.STOPPED) {
            stopTimes.observe(now - stoppingSince);
            StopRung r = lastRung;
            if (r != null) {
                stops.incrementAndGet(r.ordinal());
            }
        }
    }

    /** The VM's QEMU ended (or its launch failed) for this cause; called once per exit. */
    public void exited(ExitCause.Kind kind) {
        exits.incrementAndGet(kind.ordinal());
    }

    /**
     * The {@code /proc} figures of the QEMU {@code pid}, read when asked for rather than on a timer, so that 100 idle
     * VMs cost no file reads between queries; a reading younger than {@link #USAGE_FRESH} is reused, which bounds the
     * cost of a scrape and a {@code qsup top} at once. A process that is gone leaves the last figures as they were.
     */
    private ProcUsage usage(long pid) {
        ProcUsage u = usage;
        if (u != null && u.pid() == pid && Duration.between(u.at(), Instant.now()).compareTo(USAGE_FRESH) < 0) {
            return u;
        }
        try {
            u = ProcUsage.read(pid);
            usage = u;
        } catch (IOException | RuntimeException gone) {
            // exited between the pid read and /proc; the exit handling takes it from here
        }
        return u;
    }

    /**
     * A liveness probe was answered.
     *
     * @param pid         the QEMU that answered
     * @param rtt         the probe's round trip
     * @param version     QEMU's version from its greeting
     * @param blockstats  the reply to {@code query-blockstats}, or null when it was not answered
     */
    public void probed(long pid, Duration rtt, String version, JsonNode blockstats) {
        rttSeconds = rtt.toNanos() / 1e9;
        if (version != null && !version.isEmpty()) {
            qemuVersion = version;
        }
        if (blockstats != null && blockstats.isArray()) {
            block = new VmStats.BlockSample(pid, Instant.now(), devices(blockstats));
        }
    }

    static List<VmStats.BlockDevice> devices(JsonNode blockstats) {
        List<VmStats.BlockDevice> out = new ArrayList<>();
        for (JsonNode d : blockstats) {
            JsonNode st = d.path("stats");
            out.add(new VmStats.BlockDevice(deviceName(d), st.path("rd_bytes").asLong(), st.path("wr_bytes").asLong(),
                    st.path("rd_operations").asLong(), st.path("wr_operations").asLong()));
        }
        return out;
    }

    /** The device's id: {@code device} for -drive, else the id in its qdev path ({@code disk0}), else its node. */
    static String deviceName(JsonNode d) {
        String device = d.path("device").asText("");
        if (!device.isEmpty()) {
            return device;
        }
        String qdev = d.path("qdev").asText("");
        if (!qdev.isEmpty()) {
            for (String prefix : List.of("/machine/peripheral/", "/machine/peripheral-anon/", "/machine/")) {
                if (qdev.startsWith(prefix)) {
                    String rest = qdev.substring(prefix.length());
                    int slash = rest.indexOf('/');
                    return slash < 0 ? rest : rest.substring(0, slash);
                }
            }
            return qdev;
        }
        return d.path("node-name").asText("");
    }

    /**
     * The figures now. Process figures are given only when they belong to {@code pid}, the QEMU that runs now, so a
     * restarted VM never shows its previous process's counters.
     */
    public VmStats snapshot(long pid, Instant startedAt, List<String> argv) {
        VmState st = state;
        boolean live = st.hasProcess() && pid > 0;
        ProcUsage u = live ? usage(pid) : null;
        VmStats.BlockSample b = block;
        Map<String, Long> exitCounts = new LinkedHashMap<>();
        for (ExitCause.Kind k : ExitCause.Kind.values()) {
            exitCounts.put(k.label(), exits.get(k.ordinal()));
        }
        Map<String, Long> stopCounts = new LinkedHashMap<>();
        for (StopRung r : StopRung.values()) {
            stopCounts.put(r.label(), stops.get(r.ordinal()));
        }
        return new VmStats(vm, st, live && unresponsive, restartPending, live ? pid : -1, live ? startedAt : null,
                live && u != null && u.pid() == pid ? u : null, live && b != null && b.pid() == pid ? b : null,
                live ? rttSeconds : Double.NaN, option(argv, "-machine"), option(argv, "-accel"), qemuVersion,
                restarts.get(), Collections.unmodifiableMap(exitCounts), Collections.unmodifiableMap(stopCounts),
                startTimes.snapshot(), stopTimes.snapshot(), live && guestUnresponsive);
    }

    /** The first QEMU option of an argv entry ({@code q35} of {@code -machine q35,pflash0=...}), or empty. */
    static String option(List<String> argv, String flag) {
        int i = argv.indexOf(flag);
        if (i < 0 || i + 1 >= argv.size()) {
            return "";
        }
        String v = argv.get(i + 1);
        int comma = v.indexOf(',');
        return comma < 0 ? v : v.substring(0, comma);
    }

    /** A fixed-bucket histogram of durations; lock-free. */
    private static final class Histogram {
        private final double[] bounds;
        private final AtomicLongArray counts;
        private final AtomicLong sumNanos = new AtomicLong();

        Histogram(double[] bounds) {
            this.bounds = bounds;
            this.counts = new AtomicLongArray(bounds.length);
        }

        void observe(long nanos) {
            double seconds = nanos / 1e9;
            int i = 0;
            while (seconds > bounds[i]) {
                i++;
            }
            counts.incrementAndGet(i);
            sumNanos.addAndGet(nanos);
        }

        VmStats.Durations snapshot() {
            long[] c = new long[bounds.length];
            long n = 0;
            for (int i = 0; i < c.length; i++) {
                c[i] = counts.get(i);
                n += c[i];
            }
            return new VmStats.Durations(bounds.clone(), c, sumNanos.get() / 1e9, n);
        }
    }
}
