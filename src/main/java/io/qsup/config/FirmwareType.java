package io.qsup.config;

/** The firmware a VM boots with ({@code firmware: bios | uefi}). */
public enum FirmwareType {
    BIOS,
    UEFI
}
