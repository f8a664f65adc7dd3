package io.qsup.vm;

import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * One VM's figures at one moment, for the metrics endpoint and {@code query-vm-stats}: assembled from volatile fields
 * that the VM's own threads keep current (its state events, its probe loop), so reading it never waits on the VM.
 *
 * @param vm             VM name
 * @param state          life-cycle state, as the last state event said
 * @param unresponsive   the liveness probe missed its deadline
 * @param restartPending definition keys changed on disk wait for a restart
 * @param pid            QEMU pid, or -1
 * @param startedAt      when the current QEMU started, or null
 * @param usage          CPU and memory of the current QEMU from {@code /proc}, or null before the first sample
 * @param block          the current QEMU's {@code query-blockstats} at the last probe, or null before the first
 * @param qmpRttSeconds  round trip of the last liveness probe that was answered, in seconds; NaN before the first
 * @param machine        machine type the VM's command line names ({@code q35}, {@code pc}), or empty
 * @param accel          accelerator the VM's command line names ({@code kvm}, {@code tcg}), or empty
 * @param qemuVersion    version QEMU's monitor greeting gave (the last one seen), or empty
 * @param restarts       automatic restarts by the restart policy since qsupd started
 * @param exits          exits since qsupd started by {@link ExitCause.Kind#label()}, every kind present
 * @param stops          stop ladders that ended the VM since qsupd started, by the {@link StopRung#label()} that did
 * @param startSeconds   how long launches took, from {@code starting} to running
 * @param stopSeconds    how long stop ladders took, from {@code stopping} to stopped
 * @param guestUnresponsive the guest agent went silent while QEMU answers (a hung guest OS)
 */
public record VmStats(String vm, VmState state, boolean unresponsive, boolean restartPending, long pid,
                      Instant startedAt, ProcUsage usage, BlockSample block, double qmpRttSeconds, String machine,
                      String accel, String qemuVersion, long restarts, Map<String, Long> exits, Map<String, Long> stops,
                      Durations startSeconds, Durations stopSeconds, boolean guestUnresponsive) {

    /**
     * {@code query-blockstats} of one QEMU at one probe.
     *
     * @param pid     the QEMU it came from
     * @param at      when the answer came
     * @param devices one entry per block device
     */
    public record BlockSample(long pid, Instant at, List<BlockDevice> devices) {
        public BlockSample {
            devices = List.copyOf(devices);
        }
    }

    /**
     * The counters of one block device since its QEMU started.
     *
     * @param device       the device's id ({@code device}, else its qdev path, else its node name)
     * @param readBytes    bytes read
     * @param writtenBytes bytes written
     * @param readOps      read operations
     * @param writtenOps   write operations
     */
    public record BlockDevice(String device, long readBytes, long writtenBytes, long readOps, long writtenOps) {}

    /**
     * A histogram of durations in seconds.
     *
     * @param upperBounds bucket upper bounds, ascending, the last one {@code +Inf}
     * @param counts      observations per bucket (not cumulative), as many as {@code upperBounds}
     * @param sum         sum of all observations
     * @param count       number of observations
     */
    public record Durations(double[] upperBounds, long[] counts, double sum, long count) {}
}
