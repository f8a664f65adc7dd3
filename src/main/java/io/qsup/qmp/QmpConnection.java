package io.qsup.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileDescriptor;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The QMP protocol over one transport: greeting, id-matched replies and ordered event delivery.
 *
 * <p>Threads: one thread {@code qmp-reader NAME} reads and routes every message: replies complete the future
 * waiting on their id, events are queued for one virtual thread {@code qmp-events NAME}, which calls the event
 * listeners in arrival order and, last of all, the disconnect listeners. A call writes its message itself when the
 * peer has read everything sent before it: every earlier call has its reply, and none that gave up waiting is still
 * unanswered. The socket's buffer toward the peer is then empty, so a message of at most {@link #INLINE_BYTES} cannot
 * block the caller, and the call costs no hand-off to another thread. Otherwise one thread {@code qmp-writer NAME}
 * sends the message, so a peer that stops reading can block only that thread, never a caller past its deadline. Reader
 * and writer are virtual threads over the JDK's channel or a TCP socket, and platform threads over junixsocket, whose
 * blocking native calls misbehave on virtual threads (kohlschutter/junixsocket#172), or when the session is
 * {@code exitReady}: then {@link #close} also waits for the reader to leave the socket, because the JVM's exit waits
 * up to 300 ms for any thread inside native code (a platform thread's blocking read, or the JDK's poller thread that a
 * virtual thread's read starts).
 *
 * <p>A malformed message (bad JSON, an unclosed string) is dropped and reading goes on with the peer's next line; only
 * a message over the size limit ends the session, since the stream cannot be trusted after it.
 *
 * <p>Locking: {@code lock} guards {@code pending}, {@code nextId}, {@code lastAbandoned}, {@code lastAnswered},
 * {@code closed}, {@code reason}, {@code delivered}, {@code disconnectNotified} and {@code disconnectListeners}.
 * Nothing blocks or does I/O while holding it; the transport orders whole messages on the wire. The
 * malformed-message count and text are volatile, written by the reader thread only.
 */
final class QmpConnection {
    private static final Logger log = LoggerFactory.getLogger(QmpConnection.class);
    private static final int LOG_LIMIT = 4096;
    private static final int MALFORMED_WARNINGS = 10;
    /**
     * The largest message a caller writes itself; far below a unix socket's send buffer (208 KiB by default on
     * Linux), which an empty buffer takes at once.
     */
    static final int INLINE_BYTES = 64 * 1024;

    /** A reply and the number of events that had arrived before it. */
    record Reply(ObjectNode message, long eventsBefore) {}

    /** A call waiting for its reply. */
    record Pending(String id, String command, CompletableFuture<Reply> future) {}

    private sealed interface Inbound {}

    private record EventItem(long seq, QmpEvent event) implements Inbound {}

    private record End() implements Inbound {}

    /** A message waiting for the writer; a null {@code bytes} tells the writer to stop. */
    private record Outgoing(byte[] bytes, FileDescriptor[] fds, Pending pending) {}

    private final QmpTransport transport;
    private final QmpFraming framing;
    private final String label;
    private final QmpEndpoint endpoint;
    private final Object lock = new Object();
    private final Map<String, Pending> pending = new HashMap<>();
    private final List<Consumer<QmpEvent>> eventListeners = new CopyOnWriteArrayList<>();
    private final List<Consumer<QmpException>> disconnectListeners = new ArrayList<>();
    private final LinkedBlockingQueue<Inbound> inbox = new LinkedBlockingQueue<>();
    private final LinkedBlockingQueue<Outgoing> outbox = new LinkedBlockingQueue<>();
    private long nextId = 1;
    /** The highest id of a call that stopped waiting for its reply, and the highest id the peer has answered. */
    private long lastAbandoned;
    private long lastAnswered;
    /** Whether callers may write their own messages: not over junixsocket, whose writes want a platform thread. */
    private final boolean inlineWrites;
    private long eventsReceived; // reader thread only
    private volatile long malformedCount; // written by the reader thread only
    private volatile String lastMalformed;
    private long delivered;
    private boolean closed;
    private boolean disconnectNotified;
    private QmpDisconnectedException reason;
    private volatile Thread dispatcher;
    private final boolean exitReady;
    private volatile Thread reader;

    QmpConnection(QmpTransport transport, QmpEndpoint endpoint, String label, boolean exitReady) {
        this.transport = transport;
        this.endpoint = endpoint;
        this.label = label;
        this.exitReady = exitReady;
        this.inlineWrites = !transport.needsPlatformThreads();
        this.framing = new QmpFraming(transport.input(), QmpFraming.MAX_MESSAGE_BYTES);
    }

    String label() {
        return label;
    }

    QmpEndpoint endpoint() {
        return endpoint;
    }

    boolean canPassFds() {
        return transport.canPassFds();
    }

    /** Reads the greeting on the calling thread, before the reader thread exists. */
    QmpGreeting readGreeting(Duration timeout) throws QmpException {
        ObjectNode msg;
        try {
            transport.setReadTimeout(timeout);
            msg = framing.read();
            transport.setReadTimeout(Duration.ZERO);
        } catch (SocketTimeoutException e) {
            throw new QmpConnectException("no QMP greeting from " + endpoint + " within " + QmpDurations.format(timeout)
                    + "; is it a QMP socket, and is no other client connected? (a QEMU monitor serves one client at a"
                    + " time)", e);
        } catch (QmpProtocolException e) {
            throw new QmpProtocolException("bad QMP greeting from " + endpoint + ": " + e.getMessage()
                    + "; is this a QMP socket?", e);
        } catch (IOException e) {
            throw new QmpConnectException("lost connection to " + endpoint + " while waiting for the QMP greeting: "
                    + e.getMessage(), e);
        }
        if (msg == null) {
            throw new QmpConnectException("QMP socket " + endpoint + " closed the connection without a greeting", null);
        }
        logIn(msg);
        return parseGreeting(msg);
    }

    private QmpGreeting parseGreeting(ObjectNode msg) throws QmpException {
        JsonNode refusal = msg.get("error");
        if (refusal != null && refusal.isObject() && !msg.has("QMP")) {
            // a server that refuses the session (qsupd: access denied, too many connections) says why in its place
            throw new QmpErrorException(null, refusal.path("class").asText("GenericError"),
                    refusal.path("desc").asText(""));
        }
        JsonNode qmp = msg.get("QMP");
        if (qmp == null || !qmp.isObject()) {
            throw new QmpProtocolException("bad QMP greeting from " + endpoint
                    + ": expected {\"QMP\": {\"version\": ..., \"capabilities\": [...]}}, got " + abbreviate(msg)
                    + "; is this a QMP socket?");
        }
        JsonNode v = qmp.path("version");
        JsonNode q = v.path("qemu");
        List<String> caps = new ArrayList<>();
        JsonNode capsNode = qmp.path("capabilities");
        if (!capsNode.isArray()) {
            throw new QmpProtocolException("bad QMP greeting from " + endpoint + ": no \"capabilities\" array in "
                    + abbreviate(msg));
        }
        capsNode.forEach(c -> caps.add(c.asText()));
        return new QmpGreeting(q.path("major").asInt(), q.path("minor").asInt(), q.path("micro").asInt(),
                v.path("package").asText(""), caps, msg);
    }

    /** Starts the reader and the event dispatcher. */
    void start() {
        // a short-lived process's session runs on platform threads only: its first virtual thread would set up the
        // JDK's scheduler and carrier threads for it alone
        dispatcher = (exitReady ? Thread.ofPlatform().daemon(true) : Thread.ofVirtual())
                .name("qmp-events " + label).start(this::dispatchLoop);
        Thread.Builder io = transport.needsPlatformThreads() || exitReady
                ? Thread.ofPlatform().daemon(true)
                : Thread.ofVirtual();
        reader = io.name("qmp-reader " + label).start(this::readLoop);
        io.name("qmp-writer " + label).start(this::writeLoop);
    }

    /**
     * Sends a message with a fresh id: on the calling thread when the peer has read all that came before it, else
     * through the writer. The returned pending call completes on the reader thread.
     */
    Pending submit(ObjectNode message, FileDescriptor[] fds) throws QmpException {
        String command = commandName(message);
        Pending p;
        boolean peerCaughtUp;
        synchronized (lock) {
            if (closed) {
                throw new QmpDisconnectedException("cannot send '" + command + "': " + reason.getMessage(), reason);
            }
            long id = nextId++;
            message.put("id", id);
            p = new Pending(Long.toString(id), command, new CompletableFuture<>());
            peerCaughtUp = pending.isEmpty() && lastAnswered >= lastAbandoned;
            pending.put(p.id(), p);
        }
        if (log.isDebugEnabled()) {
            log.debug("{} --> {}", label, abbreviate(message));
        }
        byte[] bytes = QmpFraming.encode(message);
        if (peerCaughtUp && inlineWrites && fds == null && bytes.length <= INLINE_BYTES) {
            send(bytes, null, p);
        } else {
            outbox.add(new Outgoing(bytes, fds, p));
        }
        return p;
    }

    /** Writes one message; a failure ends the session. Returns false if it did. */
    private boolean send(byte[] bytes, FileDescriptor[] fds, Pending p) {
        try {
            transport.send(bytes, fds);
            return true;
        } catch (IOException e) {
            disconnect(new QmpDisconnectedException("cannot send '" + p.command() + "' to " + endpoint + ": "
                    + e.getMessage(), e));
            return false;
        }
    }

    private void writeLoop() {
        while (true) {
            Outgoing o;
            try {
                o = outbox.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (o.bytes() == null || o.pending().future().isDone()) {
                if (o.bytes() == null) {
                    return;
                }
                continue; // timed out or failed while queued: do not send it late
            }
            if (!send(o.bytes(), o.fds(), o.pending())) {
                return;
            }
        }
    }

    /** Forgets a call whose deadline passed, so a late reply is logged and dropped like any unknown id. */
    void abandon(Pending p) {
        synchronized (lock) {
            pending.remove(p.id());
            // the peer may not have read it: later messages go through the writer until a reply shows it has
            lastAbandoned = Math.max(lastAbandoned, Long.parseLong(p.id()));
        }
        // if it is still queued, the writer sees this and never sends it late
        p.future().cancel(false);
    }

    static String commandName(JsonNode message) {
        JsonNode c = message.get("execute");
        if (c == null) {
            c = message.get("exec-oob");
        }
        return c == null ? "(no execute)" : c.asText();
    }

    AutoCloseable addEventListener(Consumer<QmpEvent> listener) {
        Consumer<QmpEvent> holder = listener::accept; // a distinct identity, so adding one listener twice is harmless
        eventListeners.add(holder);
        return () -> eventListeners.remove(holder);
    }

    /** Registers a listener called once when the session ends; called at once if it already has. */
    AutoCloseable addDisconnectListener(Consumer<QmpException> listener) {
        QmpDisconnectedException already;
        synchronized (lock) {
            if (!disconnectNotified) {
                disconnectListeners.add(listener);
                return () -> {
                    synchronized (lock) {
                        disconnectListeners.remove(listener);
                    }
                };
            }
            already = reason;
        }
        listener.accept(already);
        return () -> {};
    }

    boolean isConnected() {
        synchronized (lock) {
            return !closed;
        }
    }

    /**
     * Waits until listeners have seen the first {@code seq} events, so a caller sees events that preceded a reply
     * before the reply itself. Returns at once on the dispatcher thread (a listener calling execute) to avoid a
     * deadlock, and gives up at the deadline so a stuck listener cannot hold callers forever.
     */
    void awaitDelivered(long seq, long deadlineNanos) throws InterruptedException {
        if (Thread.currentThread() == dispatcher) {
            return;
        }
        synchronized (lock) {
            while (delivered < seq && !disconnectNotified) {
                long left = deadlineNanos - System.nanoTime();
                if (left <= 0) {
                    return;
                }
                TimeUnit.NANOSECONDS.timedWait(lock, left);
            }
        }
    }

    /**
     * Ends the session from our side; never blocks on the peer. An {@code exitReady} session then waits, a second at
     * most, for its reader to return from the closed socket.
     */
    void close() {
        disconnect(new QmpDisconnectedException("QMP session to " + endpoint + " was closed by this client", null));
        Thread r = reader;
        if (exitReady && r != null && r != Thread.currentThread()) {
            try {
                r.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void readLoop() {
        QmpDisconnectedException why;
        try {
            while (true) {
                ObjectNode msg;
                try {
                    msg = framing.read();
                } catch (QmpProtocolException e) {
                    if (framing.messageTooLarge()) {
                        throw e;
                    }
                    dropMalformed(e);
                    continue;
                }
                if (msg == null) {
                    why = new QmpDisconnectedException("QMP connection to " + endpoint + " closed by the peer", null);
                    break;
                }
                logIn(msg);
                route(msg);
            }
        } catch (QmpProtocolException e) {
            log.error("{}: protocol error, closing the QMP session: {}", label, e.getMessage());
            why = new QmpDisconnectedException("QMP session to " + endpoint + " closed after a protocol error: "
                    + e.getMessage(), e);
        } catch (IOException e) {
            why = new QmpDisconnectedException("QMP connection to " + endpoint + " lost: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            log.error("{}: QMP reader failed", label, e);
            why = new QmpDisconnectedException("QMP reader for " + endpoint + " failed: " + e, e);
        } catch (Error e) {
            // even an OutOfMemoryError must not leave callers waiting for replies that can no longer come
            disconnect(new QmpDisconnectedException("QMP reader for " + endpoint + " died: " + e, e));
            throw e;
        }
        disconnect(why);
    }

    /**
     * A message that is not valid JSON costs only itself: the framing goes on at the next message or line, and a call
     * whose reply it was fails at its deadline, saying what was dropped.
     */
    private void dropMalformed(QmpProtocolException e) {
        long n = ++malformedCount;
        lastMalformed = e.getMessage();
        if (n <= MALFORMED_WARNINGS) {
            log.warn("{}: dropped a malformed message from {} ({} so far): {}", label, endpoint, n, e.getMessage());
        } else {
            log.debug("{}: dropped a malformed message from {} ({} so far): {}", label, endpoint, n, e.getMessage());
        }
    }

    /** How many malformed messages the peer sent and the error of the last, or null when it sent none. */
    String malformedSummary() {
        String last = lastMalformed;
        long n = malformedCount;
        if (last == null) {
            return null;
        }
        return (n == 1 ? "dropped a malformed message from it" : "dropped " + n + " malformed messages from it, the"
                + " last") + " (" + last + ")";
    }

    private void route(ObjectNode msg) {
        if (msg.has("event")) {
            JsonNode ts = msg.path("timestamp");
            Instant when = ts.has("seconds")
                    ? Instant.ofEpochSecond(ts.path("seconds").asLong(), ts.path("microseconds").asLong() * 1000)
                    : Instant.now();
            JsonNode data = msg.has("data") ? msg.get("data") : JsonNodeFactory.instance.objectNode();
            inbox.add(new EventItem(++eventsReceived, new QmpEvent(msg.get("event").asText(), data, when, msg)));
            return;
        }
        if (msg.has("return") || msg.has("error")) {
            JsonNode idNode = msg.get("id");
            Pending p = null;
            if (idNode != null) {
                synchronized (lock) {
                    p = pending.remove(idNode.asText());
                    if (idNode.canConvertToLong()) {
                        // the peer reads in order: an answer to id N means it has read every message up to N
                        lastAnswered = Math.max(lastAnswered, Math.min(idNode.asLong(), nextId - 1));
                    }
                }
            }
            if (p == null) {
                log.warn("{}: dropping a reply with unknown id {} (a call that timed out, or not ours): {}", label,
                        idNode, abbreviate(msg));
                return;
            }
            p.future().complete(new Reply(msg, eventsReceived));
            return;
        }
        log.warn("{}: dropping a message that is neither a reply nor an event: {}", label, abbreviate(msg));
    }

    private void disconnect(QmpDisconnectedException why) {
        List<Pending> failed;
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            reason = why;
            failed = new ArrayList<>(pending.values());
            pending.clear();
        }
        transport.close();
        log.debug("{}: session ended: {}", label, why.getMessage());
        for (Pending p : failed) {
            p.future().completeExceptionally(new QmpDisconnectedException(
                    "no reply to '" + p.command() + "': " + why.getMessage(), why.getCause() != null ? why.getCause() : why));
        }
        inbox.add(new End());
        outbox.add(new Outgoing(null, null, null));
        if (dispatcher == null) {
            // never started (failed during connect): nobody else will tell the listeners
            notifyDisconnect();
        }
    }

    private void dispatchLoop() {
        while (true) {
            Inbound item;
            try {
                item = inbox.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            // an if chain, not a pattern switch, whose first run has a class made for it (see QmpTransport.connect)
            if (item instanceof EventItem e) {
                for (Consumer<QmpEvent> l : eventListeners) {
                    try {
                        l.accept(e.event());
                    } catch (RuntimeException ex) {
                        log.warn("{}: event listener failed on {}", label, e.event().name(), ex);
                    }
                }
                synchronized (lock) {
                    delivered = e.seq();
                    lock.notifyAll();
                }
            } else { // End
                notifyDisconnect();
                return;
            }
        }
    }

    private void notifyDisconnect() {
        List<Consumer<QmpException>> ls;
        QmpDisconnectedException why;
        synchronized (lock) {
            if (disconnectNotified) {
                return;
            }
            disconnectNotified = true;
            lock.notifyAll();
            ls = new ArrayList<>(disconnectListeners);
            disconnectListeners.clear();
            why = reason;
        }
        for (Consumer<QmpException> l : ls) {
            try {
                l.accept(why);
            } catch (RuntimeException ex) {
                log.warn("{}: disconnect listener failed", label, ex);
            }
        }
    }

    private void logIn(ObjectNode msg) {
        if (log.isDebugEnabled()) {
            log.debug("{} <-- {}", label, abbreviate(msg));
        }
    }

    static String abbreviate(JsonNode msg) {
        String s = QmpFraming.toJson(msg);
        return s.length() <= LOG_LIMIT ? s : s.substring(0, LOG_LIMIT) + "...(" + s.length() + " chars)";
    }
}
