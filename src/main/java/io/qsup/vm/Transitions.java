package io.qsup.vm;

import static io.qsup.vm.VmState.ADOPTING;
import static io.qsup.vm.VmState.BACKOFF;
import static io.qsup.vm.VmState.FAILED;
import static io.qsup.vm.VmState.INCOMING;
import static io.qsup.vm.VmState.MIGRATING;
import static io.qsup.vm.VmState.ORPHANED;
import static io.qsup.vm.VmState.PAUSED;
import static io.qsup.vm.VmState.RUNNING;
import static io.qsup.vm.VmState.STARTING;
import static io.qsup.vm.VmState.STOPPED;
import static io.qsup.vm.VmState.STOPPING;

import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

/** The one table of legal VM state transitions (compare cloud-hypervisor's {@code valid_transition}). */
public final class Transitions {
    private static final Map<VmState, Set<VmState>> TABLE = new EnumMap<>(VmState.class);

    static {
        // STOPPED -> RUNNING/PAUSED/ORPHANED is adoption of a QEMU that outlived a previous qsupd;
        // STOPPED -> BACKOFF is a VM found dead at startup whose policy asks for a restart.
        TABLE.put(STOPPED, EnumSet.of(ADOPTING, STARTING, RUNNING, PAUSED, ORPHANED, BACKOFF, FAILED));
        // ADOPTING ends in whatever adoption found: a live QEMU (running, paused, orphaned) or none.
        TABLE.put(ADOPTING, EnumSet.of(RUNNING, PAUSED, ORPHANED, STOPPED, BACKOFF, FAILED));
        // STARTING -> ORPHANED: a start found this VM's QEMU already alive and adopted it instead of launching.
        // STARTING -> INCOMING: the launch was of a live-migration target.
        TABLE.put(STARTING, EnumSet.of(RUNNING, PAUSED, STOPPING, STOPPED, BACKOFF, FAILED, ORPHANED, INCOMING));
        TABLE.put(RUNNING, EnumSet.of(PAUSED, STOPPING, STOPPED, BACKOFF, FAILED, ORPHANED, MIGRATING));
        // A migration target takes the VM over (RUNNING), or the migration failed and it is quit (STOPPED); never
        // BACKOFF: its QEMU ending must not boot the VM afresh while the source still runs it.
        TABLE.put(INCOMING, EnumSet.of(RUNNING, STOPPING, STOPPED, ORPHANED));
        // A migration source hands over and its QEMU is gone (STOPPED), or the migration failed and it runs on; its
        // QEMU dying mid-way is an exit like any other.
        TABLE.put(MIGRATING, EnumSet.of(RUNNING, STOPPING, STOPPED, BACKOFF, FAILED, ORPHANED));
        TABLE.put(PAUSED, EnumSet.of(RUNNING, STOPPING, STOPPED, BACKOFF, FAILED, ORPHANED));
        // A stop ends in STOPPED; FAILED only if even SIGKILL could not end the process.
        TABLE.put(STOPPING, EnumSet.of(STOPPED, FAILED));
        TABLE.put(BACKOFF, EnumSet.of(STARTING, STOPPED, FAILED));
        TABLE.put(FAILED, EnumSet.of(STARTING, STOPPED));
        // An orphan can come back (QMP answers again), die, or be stopped by signals.
        TABLE.put(ORPHANED, EnumSet.of(RUNNING, PAUSED, STOPPING, STOPPED, BACKOFF, FAILED));
    }

    private Transitions() {}

    /** True if {@code from -> to} is allowed. Staying in the same state is not a transition. */
    public static boolean allowed(VmState from, VmState to) {
        return TABLE.get(from).contains(to);
    }

    /** Throws {@link IllegalTransitionException} unless {@code from -> to} is allowed. */
    public static void check(String vm, VmState from, VmState to) {
        if (!allowed(from, to)) {
            throw new IllegalTransitionException(vm, from, to);
        }
    }

    /** The states reachable from {@code from} in one step. */
    public static Set<VmState> from(VmState from) {
        return EnumSet.copyOf(TABLE.get(from));
    }
}
