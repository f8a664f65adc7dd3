package io.qsup.daemon;

import java.time.Duration;

/**
 * Keeps systemd from killing {@code qsupd --shutdown-all} mid-ladder: while the VMs stop, it sends
 * {@code EXTEND_TIMEOUT_USEC=} every {@value #PERIOD_SECONDS} s, each extending the unit's stop timeout by
 * {@value #EXTEND_SECONDS} s, so a VM whose stop-timeout is longer than the unit's {@code TimeoutStopSec} still ends
 * along its ladder. It stops extending once {@code shutdown-timeout} (plus a margin) is spent: past that budget
 * systemd's own timeout may act. Without a notify socket it does nothing.
 *
 * <p>Threading: one platform thread ({@code sd-notify-extend}; junixsocket I/O never runs on a virtual thread) does
 * all the sending; {@link #close()} stops it and may be called from any thread.
 */
final class StopExtender implements AutoCloseable {
    static final long PERIOD_SECONDS = 5;
    static final long EXTEND_SECONDS = 15;
    /** Beyond the budget: qsupd's own start-up and adoption, and the forced stops of VMs whose turn came late. */
    private static final Duration MARGIN = Duration.ofSeconds(30);

    private final Thread thread;

    private StopExtender(Thread thread) {
        this.thread = thread;
    }

    static StopExtender start(String socket, Duration budget) {
        long until = System.nanoTime() + budget.plus(MARGIN).toNanos();
        Thread t = Thread.ofPlatform().daemon().name("sd-notify-extend").unstarted(() -> {
            try {
                while (System.nanoTime() < until) {
                    SdNotify.notify(socket, "EXTEND_TIMEOUT_USEC=" + EXTEND_SECONDS * 1_000_000);
                    Thread.sleep(PERIOD_SECONDS * 1_000);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        if (socket != null && !socket.isEmpty()) {
            t.start();
        }
        return new StopExtender(t);
    }

    @Override
    public void close() {
        thread.interrupt();
    }
}
