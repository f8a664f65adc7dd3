package io.qsup.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection to a guest agent's socket: the agent protocol's layer. The agent has no greeting, no negotiation and
 * no events; a reply carries no id, so a conversation is one request and its reply at a time. Whenever the two ends
 * may be out of step (a fresh connection, a timeout, an agent that restarted inside the guest) the next call first
 * resynchronises: it sends 0xFF (which resets the agent's parser), then {@code guest-sync-delimited} with a random
 * id, drops everything until the agent's 0xFF, and takes the reply that echoes the id.
 *
 * <p>Threading: one virtual reader thread {@code agent-reader NAME} frames the stream into a queue; the socket is the
 * JDK's own channel (nothing is ever passed to the agent as a file descriptor), so its reads park the virtual thread. {@link #call} may be called by one thread at a time ({@link GuestAgentClient}
 * serialises them); {@link #close} from any thread.
 */
final class GuestAgentConnection implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(GuestAgentConnection.class);
    /** The agent's replies are small; a guest cannot make the host buffer more than this. */
    static final int MAX_MESSAGE_BYTES = QmpFraming.MAX_MESSAGE_BYTES;

    /** Queue entries: a message, the delimiter (see {@link QmpFraming#isDelimiter}), or the end of the stream. */
    private record Closed(String why) {}

    private final String label;
    private final QmpEndpoint endpoint;
    private final QmpTransport transport;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final Thread reader;
    private volatile boolean open = true;
    /** Whether the last exchange ended in step; written by the calling thread only. */
    private boolean synced;

    private GuestAgentConnection(String label, QmpEndpoint endpoint, QmpTransport transport) {
        this.label = label;
        this.endpoint = endpoint;
        this.transport = transport;
        this.reader = Thread.ofVirtual().name("agent-reader " + label).unstarted(this::readLoop);
    }

    static GuestAgentConnection connect(String label, QmpEndpoint endpoint, Duration timeout)
            throws QmpConnectException {
        QmpTransport t;
        try {
            t = QmpTransport.connect(endpoint, timeout, false);
        } catch (QmpConnectException e) {
            throw new QmpConnectException("cannot connect to guest agent socket " + endpoint + ": "
                    + e.getMessage().replaceFirst("^cannot connect to QMP socket [^:]*: ", ""), e.getCause());
        }
        GuestAgentConnection c = new GuestAgentConnection(label, endpoint, t);
        c.reader.start();
        return c;
    }

    boolean isOpen() {
        return open;
    }

    /**
     * Runs one command and returns its {@code return} value, resynchronising first when needed.
     *
     * @param expectReply false for commands the agent answers only on failure ({@code guest-shutdown}): the deadline
     *                    passing without an error then counts as success
     * @throws QmpTimeoutException when the deadline passes; the next call resynchronises
     */
    JsonNode call(String command, ObjectNode args, Duration timeout, boolean expectReply) throws QmpException {
        long deadline = System.nanoTime() + timeout.toNanos();
        if (!synced) {
            sync(command, deadline, timeout);
        }
        ObjectNode req = JsonNodeFactory.instance.objectNode().put("execute", command);
        if (args != null && !args.isEmpty()) {
            req.set("arguments", args);
        }
        synced = false; // until the reply is in
        send(req, false);
        while (true) {
            Object got = next(deadline);
            if (got == null) {
                if (!expectReply) {
                    return null;
                }
                throw new QmpTimeoutException(command, timeout, label + ": guest agent gave no answer to " + command
                        + " within " + timeout.toMillis() + " ms");
            }
            if (got instanceof Closed c) {
                if (!expectReply) {
                    return null;
                }
                throw new QmpDisconnectedException(label + ": guest agent socket closed during " + command + ": "
                        + c.why(), null);
            }
            ObjectNode msg = (ObjectNode) got;
            if (QmpFraming.isDelimiter(msg)) {
                continue;
            }
            if (msg.has("return")) {
                synced = true;
                return msg.get("return");
            }
            if (msg.has("error")) {
                synced = true;
                JsonNode e = msg.get("error");
                throw new QmpErrorException(command, e.path("class").asText("GenericError"), e.path("desc").asText(""));
            }
            log.debug("{}: guest agent: ignoring {}", label, QmpFraming.toJson(msg));
        }
    }

    private void sync(String forCommand, long deadline, Duration timeout) throws QmpException {
        inbox.removeIf(o -> !(o instanceof Closed));
        long id = ThreadLocalRandom.current().nextLong(1, 1L << 31);
        ObjectNode req = JsonNodeFactory.instance.objectNode().put("execute", "guest-sync-delimited");
        req.putObject("arguments").put("id", id);
        send(req, true);
        boolean delimiterSeen = false;
        while (true) {
            Object got = next(deadline);
            if (got == null) {
                throw new QmpTimeoutException(forCommand, timeout, label + ": guest agent did not answer "
                        + "guest-sync-delimited within " + timeout.toMillis() + " ms (is qemu-ga running in the guest?)");
            }
            if (got instanceof Closed c) {
                throw new QmpDisconnectedException(label + ": guest agent socket closed during guest-sync-delimited: "
                        + c.why(), null);
            }
            ObjectNode msg = (ObjectNode) got;
            if (QmpFraming.isDelimiter(msg)) {
                delimiterSeen = true;
            } else if (delimiterSeen && msg.path("return").isIntegralNumber() && msg.get("return").asLong() == id) {
                synced = true;
                return;
            } else {
                log.debug("{}: guest agent: dropping stale {}", label, QmpFraming.toJson(msg));
            }
        }
    }

    /** The next queue entry, or null once the deadline passes; a Closed entry stays for later calls to see. */
    private Object next(long deadline) throws QmpException {
        try {
            Object o = inbox.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            if (o instanceof Closed) {
                inbox.offer(o);
            }
            return o;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QmpException(label + ": interrupted while waiting for the guest agent", e);
        }
    }

    private void send(ObjectNode req, boolean delimiterFirst) throws QmpDisconnectedException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (delimiterFirst) {
            b.write(QmpFraming.AGENT_DELIMITER); // ends whatever half message the agent's parser holds
        }
        b.writeBytes(QmpFraming.encode(req));
        log.debug("{} agent --> {}", label, QmpFraming.toJson(req));
        try {
            transport.send(b.toByteArray(), null);
        } catch (IOException e) {
            close();
            throw new QmpDisconnectedException(label + ": cannot write to guest agent socket " + endpoint + ": "
                    + e.getMessage(), e);
        }
    }

    private void readLoop() {
        QmpFraming framing = QmpFraming.delimited(transport.input(), MAX_MESSAGE_BYTES);
        String why = "end of stream";
        try {
            while (true) {
                ObjectNode msg;
                try {
                    msg = framing.read();
                } catch (QmpProtocolException e) {
                    if (framing.messageTooLarge()) {
                        why = e.getMessage();
                        break;
                    }
                    log.debug("{}: guest agent sent garbage: {}", label, e.getMessage());
                    continue;
                }
                if (msg == null) {
                    break;
                }
                if (!QmpFraming.isDelimiter(msg)) {
                    log.debug("{} agent <-- {}", label, QmpFraming.toJson(msg));
                }
                inbox.offer(msg);
            }
        } catch (IOException e) {
            why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        }
        open = false;
        inbox.offer(new Closed(why));
        transport.close();
    }

    @Override
    public void close() {
        open = false;
        transport.close();
    }
}
