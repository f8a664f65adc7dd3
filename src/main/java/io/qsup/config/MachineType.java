package io.qsup.config;

/** The QEMU machine type of a VM ({@code machine: q35 | pc}). */
public enum MachineType {
    Q35("q35"),
    PC("pc");

    private final String qemuName;

    MachineType(String qemuName) {
        this.qemuName = qemuName;
    }

    /** The name QEMU knows this machine type by. */
    public String qemuName() {
        return qemuName;
    }
}
