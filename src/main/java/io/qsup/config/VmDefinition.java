package io.qsup.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * One VM as its definition file describes it, fully validated and with every default filled in. Instances come
 * only from {@link ConfigLoader}; runtime code trusts them and never re-checks. Nullable fields: {@code description},
 * {@code cpuModel} (null: {@code host} under KVM, {@code max} under TCG), {@code kernel}, {@code initrd},
 * {@code append}. {@code readyWhen} (null: the VM is ready
 * once running). {@code guestAgent} adds the guest agent's virtio-serial channel and its host socket
 * ({@link VmPaths#agentSocket}). {@code accel} is what the admin asked for (the settings' default when the file says nothing);
 * {@code AUTO} is resolved against the host when the command line is built. {@code placement} and {@code failover}
 * only matter for a definition applied to a cluster ({@code qsup apply}).
 */
public record VmDefinition(
        String name,
        Path sourceFile,
        String description,
        long memoryBytes,
        CpuTopology cpus,
        MachineType machine,
        String cpuModel,
        Accel accel,
        Firmware firmware,
        Path kernel,
        Path initrd,
        String append,
        List<Disk> disks,
        List<Network> networks,
        Display display,
        Devices devices,
        boolean guestAgent,
        boolean autostart,
        List<String> dependsOn,
        RestartPolicy restart,
        Duration restartDelay,
        Duration restartMaxDelay,
        int restartSteps,
        int startLimitBurst,
        Duration startLimitInterval,
        Duration stopTimeout,
        HangAction hangAction,
        HangAction guestHangAction,
        Duration guestHangAfter,
        ReadyWhen readyWhen,
        Duration readyTimeout,
        ApplyChanges applyChanges,
        List<String> extraArgs,
        Placement placement,
        boolean failover) {

    public VmDefinition {
        disks = List.copyOf(disks);
        networks = List.copyOf(networks);
        dependsOn = List.copyOf(dependsOn);
        extraArgs = List.copyOf(extraArgs);
    }

    /** Default restart policy. */
    public static final RestartPolicy DEFAULT_RESTART = RestartPolicy.ON_FAILURE;
    /** Default first restart delay. */
    public static final Duration DEFAULT_RESTART_DELAY = Duration.ofSeconds(1);
    /** Default ceiling of the restart backoff. */
    public static final Duration DEFAULT_RESTART_MAX_DELAY = Duration.ofMinutes(1);
    /** Default number of steps from the first delay to the ceiling. */
    public static final int DEFAULT_RESTART_STEPS = 5;
    /** Default number of starts allowed within the start-limit interval. */
    public static final int DEFAULT_START_LIMIT_BURST = 5;
    /** Default start-limit interval. */
    public static final Duration DEFAULT_START_LIMIT_INTERVAL = Duration.ofMinutes(5);
    /** Default stop timeout, aligned with the systemd unit's TimeoutStopSec. */
    public static final Duration DEFAULT_STOP_TIMEOUT = Duration.ofSeconds(90);
    /** Default time the guest agent may miss its pings, while QEMU answers, before the guest counts as hung. */
    public static final Duration DEFAULT_GUEST_HANG_AFTER = Duration.ofSeconds(30);
    /** Default memory: 512 MiB. */
    public static final long DEFAULT_MEMORY = 512L << 20;

    /** Whether the VM boots a kernel given directly rather than from its disks. */
    public boolean directKernelBoot() {
        return kernel != null;
    }
}
