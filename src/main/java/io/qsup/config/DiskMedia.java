package io.qsup.config;

/** Whether a drive is a hard disk or a CD-ROM ({@code media: disk | cdrom}). */
public enum DiskMedia {
    DISK,
    CDROM
}
