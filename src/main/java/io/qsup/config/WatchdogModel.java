package io.qsup.config;

/** The emulated watchdog device ({@code model: i6300esb | ib700}). */
public enum WatchdogModel {
    I6300ESB("i6300esb"),
    IB700("ib700");

    private final String qemuDriver;

    WatchdogModel(String qemuDriver) {
        this.qemuDriver = qemuDriver;
    }

    /** The QEMU device driver of this model. */
    public String qemuDriver() {
        return qemuDriver;
    }
}
