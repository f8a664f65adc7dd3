package io.qsup.metrics;

import io.qsup.vm.ExitCause;
import io.qsup.vm.StopRung;
import io.qsup.vm.VmState;
import io.qsup.vm.VmStats;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Every series qsupd exports, declared once: name, type, help, labels and how its samples come from one scrape's
 * figures. {@link QsupCollector} turns the table into the Prometheus client's snapshots, README's metrics table is
 * {@link #markdown()} (a test holds them equal), and nothing else names a series. One family per metric, in the manner
 * of kube-state-metrics: every defined VM appears in the state and counter families whatever its state, with a 0 for
 * each state it is not in and for each cause or rung that never happened, so {@code increase()} sees the first one.
 * Figures of a QEMU process (uptime, CPU, memory, disks, QMP round trip) appear only while the VM has one.
 */
public final class MetricFamilies {
    private MetricFamilies() {}

    /** The Prometheus metric types qsupd uses. */
    public enum Type {
        GAUGE, COUNTER, INFO, HISTOGRAM;

        String word() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** What one scrape reads: every VM's stats snapshot and the daemon's figures, taken once. */
    public record Scrape(List<VmStats> vms, DaemonFigures daemon, Instant now) {}

    /** Where a family's sampler puts its samples; label values in the order of the family's labels. */
    public interface Points {
        void add(double value, String... labelValues);

        void add(VmStats.Durations histogram, String... labelValues);
    }

    /** Produces a family's samples from one scrape. */
    @FunctionalInterface
    public interface Sampler {
        void sample(Scrape scrape, Points out);
    }

    /**
     * One metric family.
     *
     * @param name    the name as scraped: counters end in {@code _total}, info families in {@code _info}
     * @param type    its type
     * @param help    one line for people
     * @param labels  label names, in order
     * @param sampler its samples
     */
    public record Family(String name, Type type, String help, List<String> labels, Sampler sampler) {}

    private static final String[] FLAGS = {"unresponsive", "restart-pending", "guest-unresponsive"};

    /** The table. */
    public static final List<Family> ALL = List.of(
            new Family("qsup_vm_state", Type.GAUGE,
                    "1 for the VM's current state, 0 for each other state", List.of("vm", "state"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            for (VmState st : VmState.values()) {
                                out.add(v.state() == st ? 1 : 0, v.vm(), st.label());
                            }
                        }
                    }),
            new Family("qsup_vm_flag", Type.GAUGE,
                    "1 while the VM has the flag (unresponsive: its liveness probe missed the deadline;"
                            + " restart-pending: changed definition keys wait for a restart; guest-unresponsive: the"
                            + " guest agent went silent while QEMU answers), else 0",
                    List.of("vm", "flag"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            out.add(v.unresponsive() ? 1 : 0, v.vm(), FLAGS[0]);
                            out.add(v.restartPending() ? 1 : 0, v.vm(), FLAGS[1]);
                            out.add(v.guestUnresponsive() ? 1 : 0, v.vm(), FLAGS[2]);
                        }
                    }),
            new Family("qsup_vm_info", Type.INFO,
                    "The VM's machine type and accelerator from its command line, and the version of its QEMU"
                            + " (the last one seen; empty before the first)",
                    List.of("vm", "machine", "accel", "qemu_version"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            out.add(1, v.vm(), v.machine(), v.accel(), v.qemuVersion());
                        }
                    }),
            new Family("qsup_vm_restarts_total", Type.COUNTER,
                    "Automatic restarts by the VM's restart policy since qsupd started", List.of("vm"),
                    (s, out) -> s.vms().forEach(v -> out.add(v.restarts(), v.vm()))),
            new Family("qsup_vm_exits_total", Type.COUNTER,
                    "Ends of the VM's QEMU (and failed launches) since qsupd started, by exit cause word",
                    List.of("vm", "cause"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            for (ExitCause.Kind k : ExitCause.Kind.values()) {
                                out.add(v.exits().getOrDefault(k.label(), 0L), v.vm(), k.label());
                            }
                        }
                    }),
            new Family("qsup_vm_stops_total", Type.COUNTER,
                    "Stop ladders that ended the VM since qsupd started, by the rung that ended it",
                    List.of("vm", "rung"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            for (StopRung r : StopRung.values()) {
                                out.add(v.stops().getOrDefault(r.label(), 0L), v.vm(), r.label());
                            }
                        }
                    }),
            new Family("qsup_vm_start_seconds", Type.HISTOGRAM,
                    "How long the VM's launches took, from starting to a running QEMU", List.of("vm"),
                    (s, out) -> s.vms().forEach(v -> out.add(v.startSeconds(), v.vm()))),
            new Family("qsup_vm_stop_seconds", Type.HISTOGRAM,
                    "How long the VM's stop ladders took, from stopping to stopped", List.of("vm"),
                    (s, out) -> s.vms().forEach(v -> out.add(v.stopSeconds(), v.vm()))),
            new Family("qsup_vm_uptime_seconds", Type.GAUGE,
                    "Time since the VM's QEMU started; only while it has one", List.of("vm"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            if (v.startedAt() != null) {
                                out.add(Math.max(0, Duration.between(v.startedAt(), s.now()).toMillis() / 1000.0),
                                        v.vm());
                            }
                        }
                    }),
            new Family("qsup_vm_cpu_seconds_total", Type.COUNTER,
                    "CPU time of the VM's QEMU process, all threads, user and system, from /proc", List.of("vm"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            if (v.usage() != null) {
                                out.add(v.usage().cpuSeconds(), v.vm());
                            }
                        }
                    }),
            new Family("qsup_vm_memory_rss_bytes", Type.GAUGE,
                    "Resident memory of the VM's QEMU process, from /proc", List.of("vm"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            if (v.usage() != null) {
                                out.add(v.usage().rssBytes(), v.vm());
                            }
                        }
                    }),
            block("qsup_vm_block_read_bytes_total", "Bytes read from the block device, from query-blockstats",
                    VmStats.BlockDevice::readBytes),
            block("qsup_vm_block_written_bytes_total", "Bytes written to the block device, from query-blockstats",
                    VmStats.BlockDevice::writtenBytes),
            block("qsup_vm_block_read_ops_total", "Read operations on the block device, from query-blockstats",
                    VmStats.BlockDevice::readOps),
            block("qsup_vm_block_written_ops_total", "Write operations on the block device, from query-blockstats",
                    VmStats.BlockDevice::writtenOps),
            new Family("qsup_vm_qmp_rtt_seconds", Type.GAUGE,
                    "Round trip of the VM's last answered liveness probe (query-status)", List.of("vm"),
                    (s, out) -> {
                        for (VmStats v : s.vms()) {
                            if (!Double.isNaN(v.qmpRttSeconds())) {
                                out.add(v.qmpRttSeconds(), v.vm());
                            }
                        }
                    }),
            new Family("qsup_build_info", Type.INFO, "The version of qsupd", List.of("version"),
                    (s, out) -> out.add(1, s.daemon().version())),
            new Family("qsup_vms", Type.GAUGE, "Defined VMs by state", List.of("state"),
                    (s, out) -> {
                        Map<VmState, Integer> n = new EnumMap<>(VmState.class);
                        s.vms().forEach(v -> n.merge(v.state(), 1, Integer::sum));
                        for (VmState st : VmState.values()) {
                            out.add(n.getOrDefault(st, 0), st.label());
                        }
                    }),
            new Family("qsup_control_connections", Type.GAUGE, "Clients connected to the control socket", List.of(),
                    (s, out) -> out.add(s.daemon().controlConnections().getAsInt())),
            new Family("qsup_control_events_dropped_total", Type.COUNTER,
                    "Events never delivered because their subscriber stopped reading and was disconnected",
                    List.of(), (s, out) -> out.add(s.daemon().eventsDropped().getAsLong())),
            new Family("qsup_hook_runs_total", Type.COUNTER, "Runs of the state-change hook (qsupd --hook)", List.of(),
                    (s, out) -> out.add(s.daemon().hookRuns().getAsLong())),
            new Family("qsup_hook_failures_total", Type.COUNTER,
                    "Hook runs that exited non-zero, were killed at their timeout or could not start", List.of(),
                    (s, out) -> out.add(s.daemon().hookFailures().getAsLong())));

    private static Family block(String name, String help, java.util.function.ToLongFunction<VmStats.BlockDevice> f) {
        return new Family(name, Type.COUNTER, help + "; only while the VM has a QEMU", List.of("vm", "device"),
                (s, out) -> {
                    for (VmStats v : s.vms()) {
                        if (v.block() != null) {
                            for (VmStats.BlockDevice d : v.block().devices()) {
                                out.add(f.applyAsLong(d), v.vm(), d.device());
                            }
                        }
                    }
                });
    }

    /** README's table of series: one row per family, in table order. */
    public static String markdown() {
        StringBuilder sb = new StringBuilder("| series | type | labels | what |\n|---|---|---|---|\n");
        for (Family f : ALL) {
            sb.append("| `").append(f.name()).append("` | ").append(f.type().word()).append(" | ")
                    .append(f.labels().isEmpty() ? "-" : "`" + String.join("`, `", f.labels()) + "`").append(" | ")
                    .append(f.help()).append(" |\n");
        }
        return sb.toString();
    }
}
