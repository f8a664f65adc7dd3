package io.qsup.config;

/** The emulated network card ({@code model: virtio | e1000 | e1000e | rtl8139}). */
public enum NicModel {
    VIRTIO("virtio-net-pci"),
    E1000("e1000"),
    E1000E("e1000e"),
    RTL8139("rtl8139");

    private final String qemuDriver;

    NicModel(String qemuDriver) {
        this.qemuDriver = qemuDriver;
    }

    /** The QEMU device driver of this model. */
    public String qemuDriver() {
        return qemuDriver;
    }
}
