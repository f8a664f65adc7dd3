package io.qsup.supervisor;

import io.qsup.vm.ExitCause;
import io.qsup.vm.VmState;
import java.time.Instant;
import java.time.Duration;
import java.util.List;

/**
 * A read-only picture of one VM for listings ({@code qsup list}, the control socket).
 *
 * @param name               VM name
 * @param state              life-cycle state
 * @param unresponsive       the liveness probe missed its deadline
 * @param pid                QEMU pid, or -1
 * @param lastExit           the last exit cause, or null
 * @param lastExitAt         when it happened, or null
 * @param restarts           automatic restarts since the operator last started or reset it
 * @param restartPendingKeys definition keys changed on disk that wait for a restart
 * @param launchError        QEMU's own words from the last failed launch, or null
 * @param uptime             time since the current QEMU started, or null
 * @param intent             the operator's persisted request
 * @param autostart          the definition's autostart
 * @param intentPersisted    false while the VM's latest intent could not be written to state-dir
 * @param agent              the guest agent's state
 * @param interfaces         the guest's interfaces as its agent last reported them; empty when unknown
 * @param guestUnresponsive  the guest agent went silent while QEMU answers QMP (a hung guest OS)
 * @param ready              the VM has {@code ready-when} and passed it
 * @param heldBack           why autostart holds the VM back (its dependency is not ready), or null
 */
public record VmSnapshot(String name, VmState state, boolean unresponsive, long pid, ExitCause lastExit, Instant lastExitAt,
                         int restarts,
                         List<String> restartPendingKeys, String launchError, Duration uptime, Intent intent,
                         boolean autostart, boolean intentPersisted, io.qsup.vm.AgentState agent,
                         List<io.qsup.vm.GuestInterface> interfaces, boolean guestUnresponsive,
                         boolean ready, String heldBack) {}
