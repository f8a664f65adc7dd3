package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpFraming;
import io.qsup.qmp.QmpProtocolException;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.time.Instant;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection to the control socket, speaking QMP: greeting, negotiation, commands, events.
 *
 * <p>Threading: a reader thread ({@code control-reader N}) parses requests and runs commands one at a time,
 * in order, as QEMU does. Everything sent to the client (replies and events) goes through one bounded
 * outbox drained by a writer thread ({@code control-writer N}), so nothing that publishes an event ever
 * blocks on a slow client. When the outbox overflows, the client gets a {@value #DROPPED_EVENT} notice and
 * is disconnected. No lock is held across I/O. Both threads are platform threads: junixsocket's blocking
 * native reads and writes would pin a virtual thread's carrier, and a few idle clients would starve the rest.
 */
public final class ControlSession {
    /** The largest request a client may send. */
    public static final int MAX_REQUEST_BYTES = 1024 * 1024;
    /** Sent once to a client whose outbox overflowed, just before it is disconnected. */
    public static final String DROPPED_EVENT = "QSUP_SUBSCRIBER_DROPPED";

    private static final Logger log = LoggerFactory.getLogger(ControlSession.class);
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    private static final ObjectNode CLOSE_MARKER = JSON.objectNode();

    private final long number;
    private final Socket socket;
    private final AccessPolicy.PeerCredentials peer;
    private final ControlServer server;
    private final BlockingQueue<ObjectNode> outbox;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final AtomicBoolean overflowed = new AtomicBoolean();
    private volatile boolean negotiated;
    private volatile EventHub.Subscription subscription;

    ControlSession(long number, Socket socket, AccessPolicy.PeerCredentials peer, ControlServer server, int outboxLimit) {
        this.number = number;
        this.socket = socket;
        this.peer = peer;
        this.server = server;
        this.outbox = new ArrayBlockingQueue<>(outboxLimit + 2);
    }

    public AccessPolicy.PeerCredentials peer() {
        return peer;
    }

    public long number() {
        return number;
    }

    /** Starts the reader and writer threads; sends the greeting, or the denial and closes. */
    void start(AccessPolicy.Decision decision) {
        Thread.ofPlatform().daemon().name("control-writer " + number).start(this::writeLoop);
        if (!decision.allowed()) {
            log.warn("control: connection {} from pid {} uid {} refused: {}", number, peer.pid(), peer.uid(),
                    decision.reason());
            enqueue(error(ControlException.ACCESS_DENIED, decision.reason(), null));
            enqueue(CLOSE_MARKER);
            return;
        }
        enqueue(server.greeting());
        Thread.ofPlatform().daemon().name("control-reader " + number).start(this::readLoop);
    }

    /** Subscribes this session to events matching the filter, replacing an earlier subscription. */
    public void subscribe(EventFilter filter) {
        EventHub.Subscription old = subscription;
        subscription = server.events().subscribe(filter, this::deliver);
        if (old != null) {
            old.close();
        }
    }

    public void unsubscribe() {
        EventHub.Subscription old = subscription;
        subscription = null;
        if (old != null) {
            old.close();
        }
    }

    private void deliver(ControlEvent e) {
        enqueue(eventMessage(e));
    }

    /** The QMP wire form of an event: name, data (with the VM's name), timestamp. */
    static ObjectNode eventMessage(ControlEvent e) {
        ObjectNode msg = JSON.objectNode();
        msg.put("event", e.name());
        ObjectNode data = e.data() != null ? e.data().deepCopy() : JSON.objectNode();
        if (e.vm() != null && !data.has("vm")) {
            data.put("vm", e.vm());
        }
        msg.set("data", data);
        msg.set("timestamp", timestamp(e.time()));
        return msg;
    }

    static ObjectNode timestamp(Instant t) {
        ObjectNode ts = JSON.objectNode();
        ts.put("seconds", t.getEpochSecond());
        ts.put("microseconds", t.getNano() / 1000);
        return ts;
    }

    private void enqueue(ObjectNode msg) {
        if (closed.get() || overflowed.get()) {
            return;
        }
        // Leave two slots for the drop notice and the close marker.
        if (msg != CLOSE_MARKER && outbox.remainingCapacity() <= 2) {
            overflow();
            return;
        }
        outbox.offer(msg);
    }

    private void overflow() {
        if (!overflowed.compareAndSet(false, true)) {
            return;
        }
        log.warn("control: connection {} (pid {}) stopped reading; dropping it after {} queued messages", number,
                peer.pid(), outbox.size());
        unsubscribe();
        outbox.clear();
        ObjectNode notice = JSON.objectNode();
        notice.put("event", DROPPED_EVENT);
        ObjectNode data = notice.putObject("data");
        data.put("reason", "the client did not read its events fast enough; the connection is closed");
        data.put("queue-limit", outbox.remainingCapacity() - 2);
        notice.set("timestamp", timestamp(Instant.now()));
        outbox.offer(notice);
        outbox.offer(CLOSE_MARKER);
        // A client that reads nothing at all leaves the writer blocked in write(); closing the socket frees it.
        Thread.ofVirtual().name("control-drop " + number).start(() -> {
            try {
                Thread.sleep(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            close();
        });
    }

    private void writeLoop() {
        try (OutputStream out = socket.getOutputStream()) {
            while (!closed.get()) {
                ObjectNode msg = outbox.poll(1, TimeUnit.SECONDS);
                if (msg == null) {
                    continue;
                }
                if (msg == CLOSE_MARKER) {
                    break;
                }
                if (log.isDebugEnabled()) {
                    log.debug("control {} <-- {}", number, QmpFraming.toJson(msg));
                }
                QmpFraming.write(out, msg);
            }
        } catch (IOException e) {
            log.debug("control: connection {} write failed: {}", number, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            close();
        }
    }

    private void readLoop() {
        try (InputStream in = socket.getInputStream()) {
            QmpFraming framing = new QmpFraming(in, MAX_REQUEST_BYTES);
            while (!closed.get()) {
                ObjectNode request;
                try {
                    request = framing.read();
                } catch (QmpProtocolException e) {
                    if (framing.messageTooLarge()) {
                        enqueue(error(ControlException.GENERIC, "request too large: " + e.getMessage()
                                + "; the connection is closed", null));
                        enqueue(CLOSE_MARKER);
                        return;
                    }
                    enqueue(error(ControlException.GENERIC, "JSON parse error: " + e.getMessage(), null));
                    framing.discardLine();
                    continue;
                }
                if (request == null) {
                    return;
                }
                if (log.isDebugEnabled()) {
                    log.debug("control {} --> {}", number, QmpFraming.toJson(request));
                }
                enqueue(handle(request));
            }
        } catch (EOFException e) {
            log.debug("control: connection {} ended mid-message", number);
        } catch (IOException e) {
            log.debug("control: connection {} read failed: {}", number, e.toString());
        } finally {
            // Let queued replies go out before the socket closes.
            enqueue(CLOSE_MARKER);
            unsubscribe();
        }
    }

    private ObjectNode handle(ObjectNode request) {
        JsonNode id = request.get("id");
        JsonNode execute = request.get("execute");
        if (execute == null || !execute.isTextual()) {
            return error(ControlException.GENERIC, "QMP input must be an object with a string member 'execute'", id);
        }
        JsonNode args = request.get("arguments");
        if (args != null && !args.isObject()) {
            return error(ControlException.GENERIC, "QMP input member 'arguments' must be an object", id);
        }
        String command = execute.asText();
        if (!negotiated && !command.equals("qmp_capabilities")) {
            return error(ControlException.COMMAND_NOT_FOUND,
                    "Expecting capabilities negotiation with 'qmp_capabilities'", id);
        }
        if (negotiated && command.equals("qmp_capabilities")) {
            return error(ControlException.COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored", id);
        }
        try {
            JsonNode result;
            if (command.equals("qmp_capabilities")) {
                negotiated = true;
                result = JSON.objectNode();
            } else {
                ControlCommand handler = server.command(command);
                if (handler == null) {
                    return error(ControlException.COMMAND_NOT_FOUND, "The command " + command + " has not been found",
                            id);
                }
                result = handler.execute(args == null ? JSON.objectNode() : (ObjectNode) args, this);
            }
            ObjectNode reply = JSON.objectNode();
            reply.set("return", result == null ? JSON.objectNode() : result);
            if (id != null) {
                reply.set("id", id);
            }
            return reply;
        } catch (ControlException e) {
            return error(e.errorClass(), e.getMessage(), id);
        } catch (RuntimeException e) {
            log.error("control: command {} failed unexpectedly", command, e);
            return error(ControlException.GENERIC, "internal error in " + command + ": " + e, id);
        }
    }

    static ObjectNode error(String errorClass, String desc, JsonNode id) {
        ObjectNode reply = JSON.objectNode();
        ObjectNode err = reply.putObject("error");
        err.put("class", errorClass);
        err.put("desc", desc);
        if (id != null) {
            reply.set("id", id);
        }
        return reply;
    }

    /** Closes the connection; safe to call from any thread, more than once. */
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        unsubscribe();
        try {
            socket.close();
        } catch (IOException e) {
            log.debug("control: closing connection {}: {}", number, e.toString());
        }
        server.sessionClosed(this);
    }

    public boolean isClosed() {
        return closed.get();
    }
}
