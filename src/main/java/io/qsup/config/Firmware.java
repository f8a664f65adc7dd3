package io.qsup.config;

import java.nio.file.Path;

/**
 * The firmware of a VM. For UEFI, {@code code} is the read-only OVMF image shared by all VMs and
 * {@code varsTemplate} the variable store that is copied once per VM (to {@link VmPaths#efiVars()}) before
 * the first launch; both are null for BIOS.
 */
public record Firmware(FirmwareType type, Path code, Path varsTemplate) {

    /** SeaBIOS, QEMU's built-in default. */
    public static final Firmware BIOS = new Firmware(FirmwareType.BIOS, null, null);

    /** Whether this is UEFI firmware, which needs a per-VM copy of the vars template before launch. */
    public boolean isUefi() {
        return type == FirmwareType.UEFI;
    }
}
