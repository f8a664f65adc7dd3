package io.qsup.config;

/** The host I/O engine of a disk ({@code aio: threads | native | io_uring}). */
public enum DiskAio {
    THREADS("threads"),
    NATIVE("native"),
    IO_URING("io_uring");

    private final String qemuName;

    DiskAio(String qemuName) {
        this.qemuName = qemuName;
    }

    /** The name QEMU knows this engine by. */
    public String qemuName() {
        return qemuName;
    }
}
