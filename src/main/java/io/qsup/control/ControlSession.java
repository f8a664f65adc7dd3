package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpDurations;
import io.qsup.qmp.QmpFraming;
import io.qsup.qmp.QmpProtocolException;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection to the control socket, speaking QMP: greeting, negotiation, commands, events.
 *
 * <p>Requests are checked as QEMU checks them: the envelope ({@code execute}, {@code arguments}, {@code id} and
 * nothing else), then the command's arguments against {@link CommandTable}, with QEMU's error wording. Once the client
 * has negotiated, it gets every event, as a QEMU monitor does, until {@code event-subscribe} narrows them or
 * {@code event-unsubscribe} stops them.
 *
 * <p>Threading: a reader thread ({@code control-reader N}) parses requests and runs commands one at a time,
 * in order, as QEMU does. Everything sent to the client (replies and events) is encoded when queued and goes through
 * one bounded outbox drained by a writer thread ({@code control-writer N}), so nothing that publishes an event ever
 * blocks on a slow client. When the outbox overflows, the client gets one notice naming what it did not read and is
 * disconnected. A client that sends no {@code qmp_capabilities} in time is disconnected by the server's timer thread.
 * The only lock, {@code eventGate}, is held just to queue a message, so that the reply to {@code qmp_capabilities} is
 * queued before the first event; no lock is held across I/O. Both threads are platform threads: junixsocket's blocking
 * native reads and writes would pin a virtual thread's carrier, and a few idle clients would starve the rest. The
 * session tells the server it has ended only once both threads are done, so its slot under the connection limit
 * covers its threads.
 */
public final class ControlSession {
    /** The largest request a client may send. */
    public static final int MAX_REQUEST_BYTES = 1024 * 1024;
    /** Sent once to a subscriber whose outbox overflowed, just before it is disconnected. */
    public static final String DROPPED_EVENT = "QSUP_SUBSCRIBER_DROPPED";
    /** How long a client that is being dropped has to read its last notice before the socket is closed anyway. */
    static final Duration DROP_GRACE = Duration.ofSeconds(2);

    private static final Logger log = LoggerFactory.getLogger(ControlSession.class);
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    private static final int LOG_LIMIT = 4096;

    private enum Kind { GREETING, REPLY, EVENT, NOTICE, CLOSE }

    /** One encoded message (JSON plus CRLF) waiting for the writer. */
    private record Outgoing(byte[] bytes, Kind kind) {}

    private static final Outgoing CLOSE = new Outgoing(new byte[0], Kind.CLOSE);

    private final long number;
    private final Socket socket;
    private final AccessPolicy.PeerCredentials peer;
    private final ControlServer server;
    private final ControlServer.Limits limits;
    private final BlockingQueue<Outgoing> outbox;
    private final AtomicLong queuedBytes = new AtomicLong();
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Set once the client has been given its last notice; nothing else is queued or run for it. */
    private final AtomicBoolean finishing = new AtomicBoolean();
    private final AtomicInteger threadsRunning = new AtomicInteger(2);
    /** Orders the negotiation reply before the first event; held only to queue one message. */
    private final Object eventGate = new Object();
    private volatile boolean negotiated;
    /** Set by qmp_capabilities, so that events start only after its reply is queued (reader thread only). */
    private boolean startEventsAfterReply;
    private volatile EventHub.Subscription subscription;
    private volatile ScheduledFuture<?> negotiationDeadline;

    ControlSession(long number, Socket socket, AccessPolicy.PeerCredentials peer, ControlServer server,
            ControlServer.Limits limits) {
        this.number = number;
        this.socket = socket;
        this.peer = peer;
        this.server = server;
        this.limits = limits;
        // two slots beyond the limit for the last notice and the close marker
        this.outbox = new ArrayBlockingQueue<>(limits.outboxMessages() + 2);
    }

    public AccessPolicy.PeerCredentials peer() {
        return peer;
    }

    public long number() {
        return number;
    }

    /** Queues the greeting, arms the negotiation deadline and starts the reader and writer threads. */
    void start() {
        enqueue(QmpFraming.encode(server.greeting()), Kind.GREETING);
        negotiationDeadline = server.schedule(this::negotiationExpired, limits.negotiationTimeout());
        Thread writer = Thread.ofPlatform().daemon().name("control-writer " + number).unstarted(this::writeLoop);
        Thread reader = Thread.ofPlatform().daemon().name("control-reader " + number).unstarted(this::readLoop);
        try {
            writer.start();
        } catch (RuntimeException | OutOfMemoryError e) {
            threadEnded();
            threadEnded();
            throw e;
        }
        try {
            reader.start();
        } catch (RuntimeException | OutOfMemoryError e) {
            threadEnded();
            close();
            throw e;
        }
    }

    /**
     * From now on this session gets the events matching the filter; it replaces the earlier filter in place, so no event
     * is lost or sent twice while it changes.
     */
    public void subscribe(EventFilter filter) {
        EventHub.Subscription current = subscription;
        if (current != null) {
            current.filter(filter);
            return;
        }
        subscription = server.events().subscribe(filter, this::deliver);
        if (closed.get() || finishing.get()) {
            unsubscribe(); // lost a race with close(): leave nothing subscribed for a dead session
        }
    }

    /** This session gets no more events until the next {@link #subscribe}. */
    public void unsubscribe() {
        EventHub.Subscription old = subscription;
        subscription = null;
        if (old != null) {
            old.close();
        }
    }

    private void deliver(ControlEvent e) {
        if (closed.get() || finishing.get()) {
            return;
        }
        byte[] bytes = QmpFraming.encode(eventMessage(e));
        if (bytes.length - 2 > QmpFraming.MAX_MESSAGE_BYTES) {
            log.warn("control: event {} of VM {} is {} bytes, more than a QMP client accepts ({}); not sent to"
                    + " connection {}", e.name(), e.vm(), bytes.length - 2, QmpFraming.MAX_MESSAGE_BYTES, number);
            return;
        }
        synchronized (eventGate) {
            enqueue(bytes, Kind.EVENT);
        }
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

    private void enqueue(byte[] bytes, Kind kind) {
        if (closed.get() || finishing.get()) {
            return;
        }
        if (outbox.remainingCapacity() <= 2 || queuedBytes.get() + bytes.length > limits.outboxBytes()) {
            server.countDroppedEvents(kind == Kind.EVENT ? 1 : 0);
            overflow();
            return;
        }
        queuedBytes.addAndGet(bytes.length);
        outbox.offer(new Outgoing(bytes, kind));
    }

    /** The client stopped reading: tell it what piled up, in words that fit what it did, and let it go. */
    private void overflow() {
        int replies = 0;
        int events = 0;
        for (Outgoing o : outbox) {
            if (o.kind() == Kind.EVENT) {
                events++;
            } else if (o.kind() == Kind.REPLY) {
                replies++;
            }
        }
        server.countDroppedEvents(events);
        String limit = limits.outboxMessages() + " messages or " + formatSize(limits.outboxBytes());
        String waiting = formatSize(queuedBytes.get());
        // events were waiting: the client reads neither; otherwise it sends commands without reading the replies
        boolean subscriber = events > 0;
        ObjectNode notice;
        if (subscriber) {
            notice = JSON.objectNode();
            notice.put("event", DROPPED_EVENT);
            ObjectNode data = notice.putObject("data");
            data.put("reason", "the client did not read fast enough: " + events + " events and " + replies
                    + " replies (" + waiting + ") were waiting to be sent, the most qsupd queues for one connection ("
                    + limit + "); the connection is closed");
            data.put("queue-limit", limits.outboxMessages());
            data.put("queued-events", events);
            data.put("queued-replies", replies);
            notice.set("timestamp", timestamp(Instant.now()));
        } else {
            notice = error(ControlException.GENERIC, "qsupd closes this connection: the client did not read its"
                    + " replies; " + replies + " replies (" + waiting + ") were waiting to be sent, the most qsupd"
                    + " queues for one connection (" + limit + "); read each reply before sending more commands",
                    null);
        }
        if (!finish(notice)) {
            return;
        }
        if (subscriber) {
            log.warn("control: connection {} (pid {}) stopped reading its events; dropping it with {} events and {}"
                    + " replies ({}) queued", number, peer.pid(), events, replies, waiting);
        } else {
            log.warn("control: connection {} (pid {}) sends commands without reading the replies; dropping it with {}"
                    + " replies ({}) queued", number, peer.pid(), replies, waiting);
        }
    }

    private void negotiationExpired() {
        if (negotiated || closed.get()) {
            return;
        }
        String within = QmpDurations.format(limits.negotiationTimeout());
        if (finish(error(ControlException.GENERIC, "no capabilities negotiation within " + within + " of connecting;"
                + " send {\"execute\":\"qmp_capabilities\"} first; the connection is closed", null))) {
            log.debug("control: connection {} (pid {}) sent no qmp_capabilities within {}; closing it", number,
                    peer.pid(), within);
        }
    }

    /**
     * Replaces whatever is queued with one last message and the close marker; false when that was done already. A client
     * that reads gets the message and then the end of the connection; one that does not is closed after
     * {@link #DROP_GRACE}, which also frees a writer blocked in write().
     */
    private boolean finish(ObjectNode lastMessage) {
        if (!finishing.compareAndSet(false, true)) {
            return false;
        }
        unsubscribe();
        outbox.clear();
        outbox.offer(new Outgoing(QmpFraming.encode(lastMessage), Kind.NOTICE));
        outbox.offer(CLOSE);
        if (server.schedule(this::close, DROP_GRACE) == null) {
            close();
        }
        return true;
    }

    private void writeLoop() {
        boolean lingering = false;
        // not try-with-resources: closing a socket's stream closes the socket, which lingering must not do yet
        try {
            OutputStream out = socket.getOutputStream();
            while (!closed.get()) {
                Outgoing o = outbox.poll(1, TimeUnit.SECONDS);
                if (o == null) {
                    continue;
                }
                queuedBytes.addAndGet(-o.bytes().length);
                if (o.kind() == Kind.CLOSE) {
                    if (finishing.get() && !closed.get()) {
                        // A dropped client still has requests in flight: closing now would reset the connection and
                        // could cost it the notice just written. End our side instead; the reader drains theirs, and
                        // the DROP_GRACE timer closes the socket.
                        // junixsocket can refuse the shutdown ("Socket is not connected") while the peer still
                        // writes; lingering goes on all the same, for closing at once here would reset the
                        // connection under the client and lose the notice it has not read yet
                        lingering = true;
                        try {
                            socket.shutdownOutput();
                        } catch (IOException e) {
                            log.debug("control: connection {}: shutdown of our side: {}", number, e.toString());
                        }
                    }
                    break;
                }
                if (log.isDebugEnabled()) {
                    log.debug("control {} <-- {}", number, abbreviate(o.bytes()));
                }
                out.write(o.bytes());
                out.flush();
            }
        } catch (IOException e) {
            log.debug("control: connection {} write failed: {}", number, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            if (!lingering) {
                close();
            }
            threadEnded();
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
                        reply(error(ControlException.GENERIC, "request too large: " + e.getMessage()
                                + "; the connection is closed", null), null);
                        return;
                    }
                    // QEMU's words; the framing goes on at the next message or line
                    reply(error(ControlException.GENERIC, e.getMessage(), null), null);
                    continue;
                }
                if (request == null) {
                    return;
                }
                if (finishing.get()) {
                    continue; // the client is being dropped: read on so that it can finish writing, run nothing
                }
                if (log.isDebugEnabled()) {
                    log.debug("control {} --> {}", number, QmpFraming.toJson(request));
                }
                ObjectNode response = handle(request);
                String command = request.path("execute").asText(null);
                if (startEventsAfterReply) {
                    startEventsAfterReply = false;
                    // one step: an event published meanwhile waits at the gate and is queued after the reply
                    synchronized (eventGate) {
                        subscribe(EventFilter.ALL);
                        reply(response, command);
                    }
                } else {
                    reply(response, command);
                }
            }
        } catch (EOFException e) {
            log.debug("control: connection {} ended mid-message", number);
        } catch (IOException e) {
            log.debug("control: connection {} read failed: {}", number, e.toString());
        } finally {
            // Let queued replies go out before the socket closes.
            if (!finishing.get()) {
                outbox.offer(CLOSE);
            }
            unsubscribe();
            threadEnded();
        }
    }

    /** Queues a reply, or an error in its place when the reply is larger than a QMP client accepts. */
    private void reply(ObjectNode reply, String command) {
        byte[] bytes = QmpFraming.encode(reply);
        int size = bytes.length - 2;
        if (size > QmpFraming.MAX_MESSAGE_BYTES) {
            log.warn("control: reply to {} on connection {} is {} bytes, over the {} a QMP client accepts; sending an"
                    + " error instead", command, number, size, QmpFraming.MAX_MESSAGE_BYTES);
            bytes = QmpFraming.encode(error(ControlException.GENERIC, "the reply to '" + command + "' is too large: "
                    + formatSize(size) + ", more than the " + formatSize(QmpFraming.MAX_MESSAGE_BYTES) + " a QMP client"
                    + " accepts, so qsupd did not send it; ask for less, for example filter query-events by 'vms' or"
                    + " 'events'", reply.get("id")));
        }
        enqueue(bytes, Kind.REPLY);
    }

    private ObjectNode handle(ObjectNode request) {
        JsonNode id = request.get("id");
        String command = null;
        try {
            command = checkEnvelope(request);
            if (!negotiated && !command.equals(CommandTable.QMP_CAPABILITIES.name())) {
                throw new ControlException(ControlException.COMMAND_NOT_FOUND,
                        "Expecting capabilities negotiation with 'qmp_capabilities'");
            }
            ControlServer.Served served = server.command(command);
            if (served == null) {
                throw new ControlException(ControlException.COMMAND_NOT_FOUND,
                        "The command " + command + " has not been found");
            }
            Arguments args = Arguments.check(served.spec(), (ObjectNode) request.get("arguments"));
            JsonNode result = served.handler().execute(args, this);
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

    /** The request's command, once its members are those QMP allows, as QEMU's qmp-dispatch checks them. */
    private static String checkEnvelope(ObjectNode request) throws ControlException {
        String execute = null;
        for (Map.Entry<String, JsonNode> m : request.properties()) {
            switch (m.getKey()) {
                case "execute" -> {
                    if (!m.getValue().isTextual()) {
                        throw ControlException.generic("QMP input member 'execute' must be a string");
                    }
                    execute = m.getValue().asText();
                }
                case "arguments" -> {
                    if (!m.getValue().isObject()) {
                        throw ControlException.generic("QMP input member 'arguments' must be an object");
                    }
                }
                case "id" -> {
                    // any JSON value, echoed in the reply
                }
                // exec-oob too: qsupd offers no out-of-band capability, as a QEMU that was not asked for it
                default -> throw ControlException.generic("QMP input member '" + m.getKey() + "' is unexpected");
            }
        }
        if (execute == null) {
            throw ControlException.generic("QMP input lacks member 'execute'");
        }
        return execute;
    }

    /**
     * {@code qmp_capabilities}: ends negotiation. qsupd offers no capability, so asking for one fails, and the client
     * may try again; events start once the reply is queued, so a client reads the reply first.
     */
    JsonNode negotiate(Arguments args) throws ControlException {
        if (negotiated) {
            throw new ControlException(ControlException.COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored");
        }
        List<String> enable = args.strings("enable");
        if (!enable.isEmpty()) {
            throw ControlException.generic("Capability " + String.join(", ", enable) + " not available");
        }
        negotiated = true;
        ScheduledFuture<?> deadline = negotiationDeadline;
        if (deadline != null) {
            deadline.cancel(false);
        }
        startEventsAfterReply = true;
        return JSON.objectNode();
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

    /** Closes the connection; safe to call from any thread, more than once. Never blocks on the peer. */
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        unsubscribe();
        ScheduledFuture<?> deadline = negotiationDeadline;
        if (deadline != null) {
            deadline.cancel(false);
        }
        outbox.offer(CLOSE); // wakes the writer if it waits for work
        // shutdown first: it wakes a reader blocked in recv() and a writer blocked in send(), which close() may not
        try {
            socket.shutdownInput();
        } catch (IOException e) {
            // already gone
        }
        try {
            socket.shutdownOutput();
        } catch (IOException e) {
            // already gone
        }
        try {
            socket.close();
        } catch (IOException e) {
            log.debug("control: closing connection {}: {}", number, e.toString());
        }
    }

    private void threadEnded() {
        if (threadsRunning.decrementAndGet() == 0) {
            server.sessionEnded(this);
        }
    }

    public boolean isClosed() {
        return closed.get();
    }

    private static String abbreviate(byte[] bytes) {
        int n = Math.max(0, bytes.length - 2);
        String text = new String(bytes, 0, Math.min(n, LOG_LIMIT), StandardCharsets.UTF_8);
        return n > LOG_LIMIT ? text + "... (" + n + " bytes)" : text;
    }

    /** 10 MiB, 1.5 MiB, 12 KiB, 300 bytes. */
    static String formatSize(long bytes) {
        if (bytes >= 1024 * 1024) {
            double mib = bytes / (1024.0 * 1024);
            String n = mib == Math.rint(mib) ? Long.toString((long) mib) : String.format(Locale.ROOT, "%.1f", mib);
            return n + " MiB";
        }
        if (bytes >= 1024) {
            return bytes / 1024 + " KiB";
        }
        return bytes + " bytes";
    }
}
