package io.qsup.config;

import java.nio.file.Path;

/**
 * One disk or CD-ROM of a VM. {@code file} is null only for an empty CD-ROM drive; {@code serial} and
 * {@code bootOrder} are null when not given.
 */
public record Disk(
        Path file,
        DiskFormat format,
        DiskInterface iface,
        DiskMedia media,
        DiskCache cache,
        DiskAio aio,
        boolean discard,
        boolean readonly,
        String serial,
        Integer bootOrder) {

    /** Whether this drive is a CD-ROM. */
    public boolean isCdrom() {
        return media == DiskMedia.CDROM;
    }
}
