package io.qsup.config;

/** What QEMU does when the guest's watchdog expires (QEMU's {@code -action watchdog=}). */
public enum WatchdogAction {
    RESET("reset"),
    SHUTDOWN("shutdown"),
    POWEROFF("poweroff"),
    PAUSE("pause"),
    DEBUG("debug"),
    NONE("none"),
    INJECT_NMI("inject-nmi");

    private final String qemuName;

    WatchdogAction(String qemuName) {
        this.qemuName = qemuName;
    }

    /** The name QEMU knows this action by. */
    public String qemuName() {
        return qemuName;
    }
}
