package io.qsup.config;

/**
 * The virtual CPUs of a VM: a count, and optionally how they are laid out; a zero in sockets, cores or threads means
 * the layout was not given and QEMU chooses it.
 */
public record CpuTopology(int count, int sockets, int cores, int threads) {

    /** A plain count of CPUs with QEMU's default layout. */
    public static CpuTopology of(int count) {
        return new CpuTopology(count, 0, 0, 0);
    }

    /** Whether sockets, cores and threads were given. */
    public boolean hasLayout() {
        return sockets > 0;
    }
}
