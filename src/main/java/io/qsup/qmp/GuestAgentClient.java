package io.qsup.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A client of the QEMU guest agent ({@code qemu-ga}) on its host-side socket; knows nothing about VMs. The session
 * reconnects by itself: a call finds the socket closed (QEMU restarted it, or it never opened) and connects again, and
 * after any timeout the next call resynchronises, so an agent that comes and goes inside the guest is picked up again
 * without the caller doing anything.
 *
 * <p>Thread-safe. Locking: {@code conversation} is held for one request and its reply, because the agent's replies
 * carry no id; time spent waiting for it counts against the caller's deadline, so no call waits longer than it asked.
 * The lock is held across socket I/O on purpose, since it is the conversation itself; nothing else is ever taken
 * under it.
 */
public final class GuestAgentClient implements AutoCloseable {
    private final String name;
    private final QmpEndpoint endpoint;
    private final ReentrantLock conversation = new ReentrantLock();
    /** Guarded by {@code conversation}; read by {@link #close} from any thread. */
    private volatile GuestAgentConnection conn;
    private volatile boolean closed;

    /**
     * @param name names the session in thread names and logs, e.g. the VM name
     */
    public GuestAgentClient(String name, QmpEndpoint endpoint) {
        this.name = name;
        this.endpoint = endpoint;
    }

    public QmpEndpoint endpoint() {
        return endpoint;
    }

    /** Runs one agent command within {@code timeout}, connecting and resynchronising first as needed. */
    public JsonNode execute(String command, ObjectNode args, Duration timeout) throws QmpException {
        return call(command, args, timeout, true);
    }

    /** {@code guest-ping}: returns when the agent answers; throws when it does not within {@code timeout}. */
    public void ping(Duration timeout) throws QmpException {
        execute("guest-ping", null, timeout);
    }

    /** {@code guest-network-get-interfaces}: the guest's interfaces as the agent reports them (a JSON array). */
    public JsonNode networkInterfaces(Duration timeout) throws QmpException {
        return execute("guest-network-get-interfaces", null, timeout);
    }

    /**
     * {@code guest-shutdown} with mode {@code powerdown}. The agent answers only if it refuses, so this returns
     * normally when no error came within {@code timeout}.
     */
    public void shutdown(Duration timeout) throws QmpException {
        ObjectNode args = JsonNodeFactory.instance.objectNode().put("mode", "powerdown");
        call("guest-shutdown", args, timeout, false);
    }

    /**
     * {@code guest-exec} with its output captured: starts {@code path} with {@code args} in the guest and returns the
     * guest's pid for {@link #execStatus}.
     */
    public long exec(String path, java.util.List<String> args, Duration timeout) throws QmpException {
        ObjectNode a = JsonNodeFactory.instance.objectNode().put("path", path).put("capture-output", true);
        var arr = a.putArray("arg");
        args.forEach(arr::add);
        return execute("guest-exec", a, timeout).path("pid").asLong();
    }

    /** {@code guest-exec-status} of a {@link #exec}'d pid: {@code exited}, {@code exitcode}, base64 {@code out-data}... */
    public JsonNode execStatus(long pid, Duration timeout) throws QmpException {
        return execute("guest-exec-status", JsonNodeFactory.instance.objectNode().put("pid", pid), timeout);
    }

    /** {@code guest-set-time}: sets the guest's clock to {@code time}. */
    public void setTime(java.time.Instant time, Duration timeout) throws QmpException {
        long ns = time.getEpochSecond() * 1_000_000_000L + time.getNano();
        execute("guest-set-time", JsonNodeFactory.instance.objectNode().put("time", ns), timeout);
    }

    private JsonNode call(String command, ObjectNode args, Duration timeout, boolean expectReply)
            throws QmpException {
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            if (!conversation.tryLock(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
                throw new QmpTimeoutException(command, timeout, name + ": guest agent busy with another command for "
                        + timeout.toMillis() + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QmpException(name + ": interrupted while waiting for the guest agent", e);
        }
        try {
            if (closed) {
                throw new QmpDisconnectedException(name + ": guest agent client closed", null);
            }
            GuestAgentConnection c = conn;
            if (c == null || !c.isOpen()) {
                if (c != null) {
                    c.close();
                }
                c = GuestAgentConnection.connect(name, endpoint, remaining(deadline));
                conn = c;
            }
            return c.call(command, args, remaining(deadline), expectReply);
        } finally {
            conversation.unlock();
        }
    }

    private static Duration remaining(long deadline) {
        return Duration.ofNanos(Math.max(1_000_000, deadline - System.nanoTime()));
    }

    /** Closes the socket; calls after this fail. Safe from any thread, also while a call waits. */
    @Override
    public void close() {
        closed = true;
        GuestAgentConnection c = conn;
        if (c != null) {
            c.close();
        }
    }
}
