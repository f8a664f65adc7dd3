package io.qsup.vm;

import java.time.Instant;
import java.util.List;

/** Something that happened to one VM, published to listeners (log, hooks, the control socket). */
public sealed interface VmEvent {

    /** The VM's name. */
    String vm();

    /** When it happened. */
    Instant time();

    /** The VM moved from one state to another; {@code cause} is the word for why, {@code detail} the particulars. */
    record StateChange(String vm, VmState from, VmState to, Cause cause, String detail, Instant time)
            implements VmEvent {}

    /** The liveness probe started or stopped missing its deadline. */
    record ResponsivenessChange(String vm, boolean unresponsive, String detail, Instant time) implements VmEvent {}

    /** The stop ladder moved to a rung ({@code powerdown}, {@code quit}, {@code sigterm}, {@code sigkill}). */
    record StopRungReached(String vm, StopRung rung, Instant time) implements VmEvent {}

    /** The VM ended and will be started again after {@code delay}, by its restart policy. */
    record RestartScheduled(String vm, java.time.Duration delay, Instant time) implements VmEvent {}

    /** QEMU sent an event on the VM's monitor; forwarded as it came. */
    record QmpEventSeen(String vm, String event, com.fasterxml.jackson.databind.JsonNode data, Instant time)
            implements VmEvent {}

    /** The guest agent connected, stopped answering, or went away ({@code VM_AGENT_CHANGED}). */
    record AgentChange(String vm, AgentState state, String detail, Instant time) implements VmEvent {}

    /**
     * The guest OS started or stopped counting as hung: its agent missed its pings for {@code guest-hang-after} while
     * QEMU answered QMP ({@code VM_GUEST_UNRESPONSIVE}).
     */
    record GuestHangChange(String vm, boolean guestUnresponsive, String detail, Instant time) implements VmEvent {}

    /** The running VM passed its {@code ready-when} check ({@code VM_READY}); {@code detail} says what passed. */
    record Ready(String vm, String detail, Instant time) implements VmEvent {}

    /** The running VM missed its {@code ready-timeout} ({@code VM_NOT_READY}); {@code detail} says what it waited for. */
    record ReadyMissed(String vm, String detail, Instant time) implements VmEvent {}

    /** The VM's definition changed on disk; the listed keys take effect at the next restart (empty list: cleared). */
    record RestartPendingChange(String vm, List<String> changedKeys, Instant time) implements VmEvent {}
}
