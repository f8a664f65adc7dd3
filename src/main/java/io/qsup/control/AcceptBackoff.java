package io.qsup.control;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How the accept loop rides out failing {@code accept()} calls (EMFILE when descriptors run out, ENFILE, ENOMEM): it
 * waits 10 ms, doubling up to 1 s, and tries again, for as long as it takes. One warning starts a burst of failures and
 * one line ends it, however many attempts fail in between.
 *
 * <p>Threading: used by the accept thread only; {@link #wakeUp} may be called from any thread.
 */
final class AcceptBackoff {
    private static final Logger log = LoggerFactory.getLogger(AcceptBackoff.class);
    static final Duration FIRST_DELAY = Duration.ofMillis(10);
    static final Duration MAX_DELAY = Duration.ofSeconds(1);

    private final String what;
    private final CountDownLatch closed = new CountDownLatch(1);
    private long delayMillis;
    private int failures;
    private long burstStart;

    /** {@code what} names the socket in the log lines. */
    AcceptBackoff(String what) {
        this.what = what;
    }

    /** Records a failed accept and waits before the next attempt; returns early once {@link #wakeUp} was called. */
    void failed(Exception e) {
        if (failures++ == 0) {
            burstStart = System.nanoTime();
            delayMillis = FIRST_DELAY.toMillis();
            log.warn("control: cannot accept connections on {}: {}; retrying from {} ms up to every {} ms until it"
                    + " works (if descriptors ran out, raise LimitNOFILE= or lower control-max-connections)", what,
                    e.getMessage() != null ? e.getMessage() : e.toString(), FIRST_DELAY.toMillis(),
                    MAX_DELAY.toMillis());
        } else {
            log.debug("control: accept failed again ({} times): {}", failures, e.toString());
        }
        try {
            closed.await(delayMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
        }
        delayMillis = Math.min(delayMillis * 2, MAX_DELAY.toMillis());
    }

    /** Records a successful accept, which ends a burst of failures. */
    void succeeded() {
        if (failures > 0) {
            log.info("control: accepting connections again on {} after {} failed attempts over {} ms", what, failures,
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - burstStart));
            failures = 0;
        }
    }

    /** Ends any wait at once (the server is closing). */
    void wakeUp() {
        closed.countDown();
    }
}
