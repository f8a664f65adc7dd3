package io.qsup.vm;

import java.util.Locale;
import java.util.Objects;

/**
 * Why a VM's QEMU ended (or failed to start), told apart from QMP: the {@code SHUTDOWN} reason, {@code GUEST_PANICKED},
 * {@code WATCHDOG}, or a monitor that closed without a {@code SHUTDOWN} (the process died).
 *
 * @param kind   the class of cause the restart policy acts on
 * @param detail free text for people (QEMU's stderr for a failed launch, the raw SHUTDOWN reason, ...); may be empty
 */
public record ExitCause(Kind kind, String detail) {

    /** The classes of exit cause; {@link #label()} is the name shown to users and hooks. */
    public enum Kind {
        /** The guest powered itself off (SHUTDOWN reason guest-shutdown). */
        GUEST_SHUTDOWN(false),
        /** The guest rebooted and QEMU ran with -no-reboot (SHUTDOWN reason guest-reset): it wants to come back. */
        GUEST_RESET(true),
        /** The guest kernel panicked (GUEST_PANICKED, or SHUTDOWN reason guest-panic). */
        GUEST_PANIC(true),
        /** Someone else sent QMP {@code quit} (SHUTDOWN reason host-qmp-quit). */
        HOST_QMP_QUIT(false),
        /** QEMU got SIGTERM/SIGINT/SIGHUP from outside qsupd (SHUTDOWN reason host-signal). */
        HOST_SIGNAL(false),
        /** QEMU shut down on an internal host error (SHUTDOWN reason host-error). */
        HOST_ERROR(true),
        /** The guest watchdog fired (WATCHDOG event) and QEMU ended. */
        WATCHDOG(true),
        /** The monitor closed without a SHUTDOWN event: QEMU was killed, crashed or was OOM-killed. */
        CRASHED(true),
        /** The launch did not get as far as a running VM; detail holds QEMU's own stderr. */
        LAUNCH_FAILED(true),
        /** The liveness probe missed its deadline and {@code hang-action: restart} ended the VM. */
        HANG(true),
        /**
         * The guest agent answered, then missed its pings for {@code guest-hang-after} while QEMU went on answering
         * QMP (a hung guest OS), and {@code guest-hang-action: restart} ended the VM.
         */
        GUEST_HANG(true),
        /** qsupd stopped the VM because the operator (or a reload) asked. */
        OPERATOR_STOP(false),
        /** Cluster self-fencing killed the VM: this host could not renew its etcd lease in time. */
        FENCED(false),
        /** A SHUTDOWN reason qsupd has no class for; detail holds it. */
        OTHER(false);

        private final boolean failure;

        Kind(boolean failure) {
            this.failure = failure;
        }

        /** True for causes that {@code restart: on-failure} restarts. */
        public boolean isFailure() {
            return failure;
        }

        /** Kebab-case name: {@code guest-shutdown}, {@code crashed}, ... */
        public String label() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }

        /** The kind whose {@link #label()} this is; {@link #OTHER} for a word qsupd does not know. */
        public static Kind fromLabel(String label) {
            for (Kind k : values()) {
                if (k.label().equals(label)) {
                    return k;
                }
            }
            return OTHER;
        }
    }

    public ExitCause {
        Objects.requireNonNull(kind, "kind");
        detail = detail == null ? "" : detail;
    }

    public static ExitCause of(Kind kind) {
        return new ExitCause(kind, "");
    }

    public static ExitCause of(Kind kind, String detail) {
        return new ExitCause(kind, detail);
    }

    /**
     * Maps the {@code reason} of a QMP {@code SHUTDOWN} event (QEMU's ShutdownCause, see qapi/run-state.json).
     * Unknown reasons map to {@link Kind#OTHER} keeping the raw text.
     */
    public static ExitCause fromShutdownReason(String reason) {
        String r = reason == null ? "" : reason.trim();
        Kind kind = switch (r) {
            case "guest-shutdown" -> Kind.GUEST_SHUTDOWN;
            case "guest-reset" -> Kind.GUEST_RESET;
            case "guest-panic" -> Kind.GUEST_PANIC;
            case "host-qmp-quit" -> Kind.HOST_QMP_QUIT;
            case "host-signal", "host-ui" -> Kind.HOST_SIGNAL;
            case "host-error" -> Kind.HOST_ERROR;
            default -> Kind.OTHER;
        };
        return new ExitCause(kind, kind == Kind.OTHER ? "SHUTDOWN reason " + (r.isEmpty() ? "(none)" : r) : "");
    }

    public boolean isFailure() {
        return kind.isFailure();
    }

    /** {@code crashed} or {@code launch-failed: <detail>}. */
    public String describe() {
        return detail.isEmpty() ? kind.label() : kind.label() + ": " + detail;
    }

    @Override
    public String toString() {
        return describe();
    }
}
