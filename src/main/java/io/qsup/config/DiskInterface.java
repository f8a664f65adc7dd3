package io.qsup.config;

/** The bus a disk is attached to in the guest ({@code interface: virtio | scsi | nvme | ide}). */
public enum DiskInterface {
    VIRTIO,
    SCSI,
    NVME,
    IDE
}
