package io.qsup.qmp;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;

/**
 * A wait for one event, armed before the command that causes it so the event cannot slip by unseen.
 *
 * <p>Thread-safe: the event dispatcher completes it, any thread may {@link #await} or {@link #close} it.
 */
public final class EventWaiter implements AutoCloseable {
    private final String name;
    private final Predicate<QmpEvent> filter;
    private final String endpoint;
    private final CompletableFuture<QmpEvent> result = new CompletableFuture<>();
    private AutoCloseable eventRegistration = () -> {};
    private AutoCloseable disconnectRegistration = () -> {};

    EventWaiter(String name, Predicate<QmpEvent> filter, String endpoint) {
        this.name = name;
        this.filter = filter == null ? e -> true : filter;
        this.endpoint = endpoint;
    }

    void arm(QmpConnection conn) {
        eventRegistration = conn.addEventListener(e -> {
            if (e.name().equals(name) && filter.test(e)) {
                result.complete(e);
            }
        });
        disconnectRegistration = conn.addDisconnectListener(why -> result.completeExceptionally(
                new QmpDisconnectedException("event " + name + " did not come before the session ended: "
                        + why.getMessage(), why)));
    }

    /** The event name this waiter waits for. */
    public String name() {
        return name;
    }

    /** True once the event has been seen. */
    public boolean isDone() {
        return result.isDone() && !result.isCompletedExceptionally();
    }

    /**
     * Waits for the event.
     *
     * @throws QmpTimeoutException if it does not come within {@code timeout}
     * @throws QmpDisconnectedException if the session ends first
     */
    public QmpEvent await(Duration timeout) throws QmpException {
        try {
            return result.get(Math.max(0, timeout.toNanos()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new QmpTimeoutException("event " + name, timeout, "event " + name + " did not come from " + endpoint
                    + " within " + QmpDurations.format(timeout));
        } catch (ExecutionException e) {
            if (e.getCause() instanceof QmpException q) {
                throw q;
            }
            throw new QmpException("waiting for event " + name + " failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QmpException("interrupted while waiting for event " + name, e);
        } finally {
            close();
        }
    }

    @Override
    public void close() {
        try {
            eventRegistration.close();
            disconnectRegistration.close();
        } catch (Exception ignored) {
            // the registrations only remove list entries
        }
    }
}
