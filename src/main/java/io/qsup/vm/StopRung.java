package io.qsup.vm;

import java.util.Locale;

/** A rung of the stop ladder (DESIGN.md 5), in the order they are tried. */
public enum StopRung {
    /** ACPI {@code system_powerdown}, re-sent every few seconds. */
    POWERDOWN,
    /**
     * The guest agent's {@code guest-shutdown}, sent beside the power button inside the powerdown rung; named as the
     * rung that ended the VM when the agent accepted it before the VM went down.
     */
    AGENT,
    /** QMP {@code quit}. */
    QUIT,
    /** SIGTERM to the QEMU process. */
    SIGTERM,
    /** SIGKILL to the QEMU process. */
    SIGKILL;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return label();
    }
}
