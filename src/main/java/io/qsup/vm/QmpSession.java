package io.qsup.vm;

import io.qsup.qmp.QmpClient;

/**
 * One QMP session to one QEMU process, with what its events said about how the process is ending.
 *
 * <p>Threading: the event fields are written by the QMP dispatcher thread and read by the VM's ops thread; they are
 * volatile and no lock is involved.
 */
final class QmpSession {
    final QmpClient client;
    final long pid;
    volatile String shutdownReason;
    volatile boolean panicked;
    volatile boolean watchdog;
    /** Set when we end the process ourselves, so the disconnect is expected. */
    volatile boolean ending;

    QmpSession(QmpClient client, long pid) {
        this.client = client;
        this.pid = pid;
    }
}
