package io.qsup.config;

/** How QEMU executes guest code: hardware virtualization, pure emulation, or KVM when the host offers it. */
public enum Accel {
    KVM,
    TCG,
    AUTO
}
