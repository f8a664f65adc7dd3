package io.qsup.vm;

import java.util.Locale;

/** The life-cycle state of one VM as qsupd sees it; transitions between them are checked by {@link Transitions}. */
public enum VmState {
    /** No QEMU process; nothing scheduled. */
    STOPPED,
    /**
     * qsupd has just started and is still looking for this VM's QEMU (pidfile, {@code /proc}, QMP); until it knows,
     * it says so instead of guessing {@code stopped}.
     */
    ADOPTING,
    /** A launch is in progress: spawn, wait for QMP, negotiate. */
    STARTING,
    /** QEMU runs and its vCPUs run. */
    RUNNING,
    /** QEMU runs with its vCPUs stopped (operator pause, or started paused). */
    PAUSED,
    /** The stop ladder is working on the VM. */
    STOPPING,
    /** The VM ended and a restart is scheduled after a delay. */
    BACKOFF,
    /** The start limit was hit; only an explicit start or reset-failed leaves this state. */
    FAILED,
    /** QEMU is alive but its QMP monitor cannot be reached; reported, never killed. */
    ORPHANED,
    /**
     * QEMU runs as the target of a live migration ({@code -incoming defer}): it waits for, or receives, the VM's state
     * from the QEMU that runs the VM elsewhere, and runs no guest code until the migration hands the VM over.
     */
    INCOMING,
    /**
     * QEMU is sending the VM to a migration target. Until the target takes over this QEMU may still run the guest;
     * once the transfer completed it is stopped ({@code postmigrate}) and waits to be quit, or resumed if the hand-over
     * fails.
     */
    MIGRATING;

    /** The name users see: lower case, as in {@code qsup list}. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** True while a QEMU process is believed to exist for this VM. */
    public boolean hasProcess() {
        return this == RUNNING || this == PAUSED || this == STOPPING || this == ORPHANED || this == INCOMING
                || this == MIGRATING;
    }

    /** Parses a {@link #label()}, ignoring case. */
    public static VmState parse(String s) {
        return valueOf(s.trim().toUpperCase(Locale.ROOT));
    }

    @Override
    public String toString() {
        return label();
    }
}
