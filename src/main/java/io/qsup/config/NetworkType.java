package io.qsup.config;

/** How a network card reaches the host ({@code type: user | tap | bridge}). */
public enum NetworkType {
    /** QEMU's user-mode stack (slirp): no privileges, outgoing connections and port forwards only. */
    USER,
    /** A host tap device, created or opened by name, with no up/down scripts. */
    TAP,
    /** A tap device attached to a host bridge by the setuid {@code qemu-bridge-helper}. */
    BRIDGE
}
