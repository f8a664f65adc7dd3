package io.qsup.config;

/** The image format of a disk file ({@code format: qcow2 | raw}). */
public enum DiskFormat {
    QCOW2,
    RAW
}
