package io.qsup.config;

import java.nio.file.Path;

/**
 * One disk or CD-ROM of a VM. {@code file} is null only for an empty CD-ROM drive; {@code serial} and
 * {@code bootOrder} are null when not given. {@code shared}: the image lives on storage every cluster host reaches
 * (NFS, Ceph RBD, iSCSI), so a failover VM may start from it on another host.
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
        Integer bootOrder,
        boolean shared) {

    /** Whether this drive is a CD-ROM. */
    public boolean isCdrom() {
        return media == DiskMedia.CDROM;
    }
}
