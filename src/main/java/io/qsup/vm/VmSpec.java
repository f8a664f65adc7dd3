package io.qsup.vm;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * Everything one {@link VmController} needs to run a VM, already resolved from the definition and the daemon settings:
 * the vm package knows no YAML.
 *
 * @param name           VM name
 * @param argv           the full QEMU argv including {@code -daemonize -pidfile}
 * @param runDir         per-VM runtime folder ({@code run-dir/vms/NAME})
 * @param qmpSocket      QMP unix socket path named in argv
 * @param pidFile        pidfile path named in argv
 * @param qemuLog        per-VM launch and lifecycle log ({@code log-dir/NAME/qemu.log})
 * @param stopTimeout    bound of the whole stop ladder
 * @param restartOnHang  {@code hang-action: restart}: kill the VM when the liveness probe misses its deadline
 * @param probeInterval  time between liveness probes
 * @param probeTimeout   deadline of one liveness probe ({@code query-status})
 * @param launchTimeout  how long the QEMU launcher parent may take
 * @param agentSocket    the guest agent's host-side socket named in argv, or null when the VM has no agent channel
 * @param guestHangAfter how long the agent may miss its pings, while QEMU answers QMP, before the guest counts as hung
 * @param restartOnGuestHang {@code guest-hang-action: restart}: kill the VM when its guest counts as hung
 * @param readyCheck     what makes the running VM ready ({@code ready-when}), or null: ready once running
 * @param readyTimeout   how long, from running, the check may take before it is reported missed
 */
public record VmSpec(String name, List<String> argv, Path runDir, Path qmpSocket, Path pidFile, Path qemuLog,
                     Duration stopTimeout, boolean restartOnHang, Duration probeInterval, Duration probeTimeout,
                     Duration launchTimeout, Path agentSocket,
                     Duration guestHangAfter, boolean restartOnGuestHang, ReadyCheck readyCheck,
                     Duration readyTimeout) {

    public VmSpec {
        Objects.requireNonNull(name, "name");
        argv = List.copyOf(argv);
        Objects.requireNonNull(qmpSocket, "qmpSocket");
        Objects.requireNonNull(pidFile, "pidFile");
    }

    /** Default probe every 5 s with a 2 s deadline, 30 s for the launcher. */
    public static VmSpec of(String name, List<String> argv, Path runDir, Path qmpSocket, Path pidFile, Path qemuLog,
                            Duration stopTimeout, boolean restartOnHang) {
        return new VmSpec(name, argv, runDir, qmpSocket, pidFile, qemuLog, stopTimeout, restartOnHang,
                Duration.ofSeconds(5), Duration.ofSeconds(2), Duration.ofSeconds(30), null,
                Duration.ofSeconds(30), false, null,
                Duration.ofMinutes(5));
    }

    public VmSpec withProbe(Duration interval, Duration timeout) {
        return new VmSpec(name, argv, runDir, qmpSocket, pidFile, qemuLog, stopTimeout, restartOnHang, interval, timeout,
                launchTimeout, agentSocket, guestHangAfter, restartOnGuestHang,
                readyCheck, readyTimeout);
    }

    public VmSpec withAgentSocket(Path socket) {
        return new VmSpec(name, argv, runDir, qmpSocket, pidFile, qemuLog, stopTimeout, restartOnHang, probeInterval,
                probeTimeout, launchTimeout, socket, guestHangAfter, restartOnGuestHang,
                readyCheck, readyTimeout);
    }

    public VmSpec withReadyCheck(ReadyCheck check, Duration timeout) {
        return new VmSpec(name, argv, runDir, qmpSocket, pidFile, qemuLog, stopTimeout, restartOnHang, probeInterval,
                probeTimeout, launchTimeout, agentSocket, guestHangAfter, restartOnGuestHang, check, timeout);
    }

    public VmSpec withStopTimeout(Duration d) {
        return new VmSpec(name, argv, runDir, qmpSocket, pidFile, qemuLog, d, restartOnHang, probeInterval, probeTimeout,
                launchTimeout, agentSocket, guestHangAfter, restartOnGuestHang,
                readyCheck, readyTimeout);
    }
}
