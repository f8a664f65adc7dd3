package io.qsup.vm;

import java.util.Locale;

/**
 * Why a VM changed state: one word from this closed set, documented in docs/control-protocol.md, carried by every
 * {@code VM_STATE_CHANGED} event, the hooks' {@code QSUP_CAUSE} and the log. Tools, metrics labels and restart
 * decisions match on the word; the prose goes in a separate {@code detail}.
 */
public enum Cause {
    /** The operator started the VM ({@code qsup start}). */
    OPERATOR_START("the operator started the VM"),
    /** The operator stopped or killed the VM ({@code qsup stop}, {@code qsup kill}), or a stop came during a start. */
    OPERATOR_STOP("the operator stopped or killed the VM"),
    /** The operator restarted the VM ({@code qsup restart}), both halves. */
    OPERATOR_RESTART("the operator restarted the VM"),
    /** The operator paused the vCPUs. */
    OPERATOR_PAUSE("the operator paused the VM"),
    /** The operator resumed the vCPUs. */
    OPERATOR_RESUME("the operator resumed the VM"),
    /** The operator cleared the failed state. */
    RESET_FAILED("the operator cleared the failed state"),
    /** qsupd started the VM at its own start: autostart, or the operator's earlier start. */
    AUTOSTART("qsupd started the VM at its own start"),
    /** The restart policy started the VM again after its backoff. */
    RESTART("the restart policy started the VM again"),
    /** A reload added, removed or changed the VM's definition. */
    RELOAD("a reload added, removed or changed the definition"),
    /** The host is shutting down ({@code qsupd --shutdown-all}). */
    HOST_SHUTDOWN("the host is shutting down"),
    /** This host won the cluster VM's claim (the leader placed it here) and started it. */
    CLAIMED("this host won the cluster claim and started the VM"),
    /** Cluster mode: this host could not renew its etcd lease in time and SIGKILLed the failover VM before it expired. */
    FENCED("the host lost its etcd lease and killed the failover VM"),
    /** Cluster mode: the VM's host lost its etcd lease; a {@code failover: false} VM is reported, not moved. */
    HOST_LOST("the VM's host lost its etcd lease; not moved"),
    /** The launch reached a running (or paused) QEMU. */
    LAUNCHED("the launch reached a running QEMU"),
    /** qsupd took over a QEMU it found running (at its own start, or instead of launching a second one). */
    ADOPTED("qsupd took over a running QEMU"),
    /** Adoption found no QEMU of this VM. */
    NOT_RUNNING("adoption found no QEMU of this VM"),
    /** QEMU lives but its monitor does not answer or closed. */
    MONITOR_LOST("QEMU lives but its monitor is lost"),
    /** The monitor of an orphaned QEMU answers again. */
    MONITOR_REGAINED("the monitor answers again"),
    /** QEMU's own run state changed (QMP STOP / RESUME, or query-status). */
    QEMU_STATUS("QEMU's own run state changed"),
    /** A live migration of the VM began: its target was launched, or its source began to send. */
    MIGRATE("a live migration of the VM began"),
    /** A live migration handed the VM over: the target runs it, the source's QEMU is gone. */
    MIGRATED("a live migration handed the VM over to another QEMU"),
    /** A live migration failed; the VM runs on at its source, and its target is gone. The detail holds QEMU's reason. */
    MIGRATION_FAILED("a live migration failed; the VM runs on at its source"),
    /** The start limit was hit. */
    START_LIMIT("the start limit was hit"),
    /** The process did not end even after SIGKILL. */
    STOP_FAILED("the process survived SIGKILL"),
    /** The guest powered itself off. */
    GUEST_SHUTDOWN("the guest powered itself off"),
    /** The guest rebooted and QEMU ran with -no-reboot. */
    GUEST_RESET("the guest reset and QEMU ended"),
    /** The guest kernel panicked. */
    GUEST_PANIC("the guest panicked"),
    /** The guest watchdog fired and QEMU ended. */
    WATCHDOG("the guest watchdog fired"),
    /** QEMU was killed, crashed or was OOM-killed: its monitor closed without SHUTDOWN. */
    CRASHED("QEMU died without a SHUTDOWN event"),
    /** QEMU got a signal from outside qsupd. */
    HOST_SIGNAL("QEMU got a signal from outside qsupd"),
    /** Someone else sent QMP quit. */
    HOST_QMP_QUIT("someone else sent QMP quit"),
    /** QEMU shut down on a host error. */
    HOST_ERROR("QEMU shut down on a host error"),
    /** The liveness probe missed its deadline and hang-action: restart ended the VM. */
    HANG("the liveness probe missed its deadline"),
    /** The guest OS hung (its agent went silent while QEMU answered) and guest-hang-action: restart ended the VM. */
    GUEST_HANG("the guest agent went silent while QEMU answered"),
    /** The launch failed; the detail holds QEMU's own words. */
    LAUNCH_FAILED("the launch failed"),
    /** QEMU ended with a SHUTDOWN reason qsupd has no word for; the detail holds it. */
    OTHER("an exit qsupd has no word for");

    private final String meaning;

    Cause(String meaning) {
        this.meaning = meaning;
    }

    /** The word on the wire: {@code operator-stop}, {@code crashed}, ... */
    public String label() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** One line for the docs. */
    public String meaning() {
        return meaning;
    }

    /** The word of an exit cause: exit kinds share their labels with causes. */
    public static Cause of(ExitCause.Kind kind) {
        return valueOf(kind.name());
    }

    @Override
    public String toString() {
        return label();
    }
}
