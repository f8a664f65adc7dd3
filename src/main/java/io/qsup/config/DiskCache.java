package io.qsup.config;

/** The host cache mode of a disk, with the meanings libvirt and QEMU's {@code -drive cache=} give them. */
public enum DiskCache {
    /** Host page cache bypassed (O_DIRECT), guest write cache honoured with flushes. */
    NONE(true, false, true),
    /** Host page cache used, guest flushes honoured. */
    WRITEBACK(false, false, true),
    /** Host page cache used, every write flushed. */
    WRITETHROUGH(false, false, false),
    /** Host page cache bypassed and every write flushed. */
    DIRECTSYNC(true, false, false),
    /** Flushes ignored: fast, loses data on a host crash. */
    UNSAFE(false, true, true);

    private final boolean direct;
    private final boolean noFlush;
    private final boolean writeCache;

    DiskCache(boolean direct, boolean noFlush, boolean writeCache) {
        this.direct = direct;
        this.noFlush = noFlush;
        this.writeCache = writeCache;
    }

    /** Whether the block node opens the file with O_DIRECT. */
    public boolean direct() {
        return direct;
    }

    /** Whether the block node ignores flush requests. */
    public boolean noFlush() {
        return noFlush;
    }

    /** Whether the guest device advertises a volatile write cache. */
    public boolean writeCache() {
        return writeCache;
    }
}
