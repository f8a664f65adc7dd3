package io.qsup.supervisor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The kernel's id of the current boot ({@code /proc/sys/kernel/random/boot_id}): it tells a qsupd restart, after which
 * a VM the restart policy left down stays down, from a host reboot, after which autostart applies again.
 */
final class BootId {
    private static final String CURRENT = read();

    private BootId() {}

    static String current() {
        return CURRENT;
    }

    private static String read() {
        try {
            return Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).trim();
        } catch (IOException e) {
            return "unknown"; // no /proc: every start counts as the same boot, the cautious reading
        }
    }
}
