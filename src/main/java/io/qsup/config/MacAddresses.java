package io.qsup.config;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** Derives a stable MAC address for a network card from its VM's name and position. */
final class MacAddresses {
    private MacAddresses() {}

    /**
     * {@code 52:54:00} (QEMU's locally administered prefix) plus three bytes of SHA-256 over name and index, so the
     * guest sees the same address on every run and two VMs rarely collide.
     */
    static String derive(String vmName, int index) {
        try {
            byte[] h = MessageDigest.getInstance("SHA-256")
                    .digest((vmName + "/" + index).getBytes(StandardCharsets.UTF_8));
            return String.format("52:54:00:%02x:%02x:%02x", h[0] & 0xff, h[1] & 0xff, h[2] & 0xff);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }
}
