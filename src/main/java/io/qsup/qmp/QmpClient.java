package io.qsup.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileDescriptor;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A QMP client session: connects, negotiates, and runs commands with deadlines; knows nothing about VMs.
 *
 * <p>Thread-safe: any number of threads may call commands at once; replies are matched by id. Event listeners run on
 * the session's one event thread in arrival order and must not block for long. A command that times out leaves the
 * session usable: its late reply, if any, is logged and dropped.
 */
public final class QmpClient implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(QmpClient.class);

    /**
     * Connection settings.
     *
     * @param connectTimeout deadline for connecting, the greeting and negotiation
     * @param defaultTimeout deadline of each command when none is given
     * @param name names the session in thread names and logs, e.g. the VM name; null means the endpoint
     * @param fdPassing whether the session may pass file descriptors; without, a unix socket is served by the JDK's
     *     own channel rather than junixsocket, which spares a client its native library
     * @param exitReady for a process about to exit, such as the CLI: the session reads, writes and dispatches events
     *     on platform threads, and {@link #close} returns once its reader has left the socket. The JVM's exit waits
     *     up to 300 ms while any thread is inside native code, and a virtual thread's blocking read leaves the JDK's
     *     poller thread in {@code epoll_wait} for good: without this, every {@code qsup} run paid those 300 ms at exit
     */
    public record Options(Duration connectTimeout, Duration defaultTimeout, String name, boolean fdPassing,
            boolean exitReady) {
        public Options(Duration connectTimeout, Duration defaultTimeout, String name) {
            this(connectTimeout, defaultTimeout, name, true, false);
        }

        public Options {
            Objects.requireNonNull(connectTimeout, "connectTimeout");
            Objects.requireNonNull(defaultTimeout, "defaultTimeout");
            if (connectTimeout.isNegative() || connectTimeout.isZero()) {
                throw new IllegalArgumentException("connectTimeout must be positive, got " + connectTimeout);
            }
            if (defaultTimeout.isNegative() || defaultTimeout.isZero()) {
                throw new IllegalArgumentException("defaultTimeout must be positive, got " + defaultTimeout);
            }
        }

        /** 5 s to connect, 10 s per command, named after the endpoint. */
        public static Options defaults() {
            return new Options(Duration.ofSeconds(5), Duration.ofSeconds(10), null);
        }

        public Options withName(String n) {
            return new Options(connectTimeout, defaultTimeout, n, fdPassing, exitReady);
        }

        public Options withConnectTimeout(Duration d) {
            return new Options(d, defaultTimeout, name, fdPassing, exitReady);
        }

        public Options withDefaultTimeout(Duration d) {
            return new Options(connectTimeout, d, name, fdPassing, exitReady);
        }

        /** A session that never passes file descriptors (see {@code fdPassing}). */
        public Options withoutFdPassing() {
            return new Options(connectTimeout, defaultTimeout, name, false, exitReady);
        }

        /** A session of a short-lived process (see {@code exitReady}). */
        public Options forExit() {
            return new Options(connectTimeout, defaultTimeout, name, fdPassing, true);
        }
    }

    private final QmpConnection conn;
    private final QmpGreeting greeting;
    private final Options options;

    private QmpClient(QmpConnection conn, QmpGreeting greeting, Options options) {
        this.conn = conn;
        this.greeting = greeting;
        this.options = options;
    }

    /** Connects with default options. */
    public static QmpClient connect(QmpEndpoint endpoint) throws QmpException {
        return connect(endpoint, Options.defaults());
    }

    /**
     * Connects, reads the greeting and negotiates capabilities ({@code oob} only when the server offers it).
     *
     * <p>From a virtual thread, a session that may pass fds (junixsocket) is connected on a short-lived platform
     * thread: junixsocket 2.10's blocking calls on a virtual thread may sleep until their timeout although data has
     * arrived, and leave the socket in a mode in which the session's reader thread then fails. Seen here as greetings
     * that took the whole connect timeout. Without fd passing the JDK's channel serves, on the calling thread.
     */
    public static QmpClient connect(QmpEndpoint endpoint, Options options) throws QmpException {
        if (!Thread.currentThread().isVirtual() || !options.fdPassing() || endpoint instanceof QmpEndpoint.Tcp) {
            return connectHere(endpoint, options);
        }
        CompletableFuture<QmpClient> result = new CompletableFuture<>();
        String label = options.name() != null ? options.name() : endpoint.toString();
        Thread.ofPlatform().daemon().name("qmp-connect " + label).start(() -> {
            try {
                result.complete(connectHere(endpoint, options));
            } catch (Throwable t) {
                result.completeExceptionally(t);
            }
        });
        try {
            return result.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            result.thenAccept(QmpClient::close);
            throw new QmpConnectException("interrupted while connecting to " + endpoint, e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof QmpException q) {
                throw q;
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new QmpConnectException("cannot connect to " + endpoint + ": " + cause, cause);
        }
    }

    private static QmpClient connectHere(QmpEndpoint endpoint, Options options) throws QmpException {
        String label = options.name() != null ? options.name() : endpoint.toString();
        QmpTransport transport = QmpTransport.connect(endpoint, options.connectTimeout(), options.fdPassing());
        QmpConnection conn = new QmpConnection(transport, endpoint, label, options.exitReady());
        try {
            QmpGreeting greeting = conn.readGreeting(options.connectTimeout());
            conn.start();
            QmpClient client = new QmpClient(conn, greeting, options);
            ObjectNode args = JsonNodeFactory.instance.objectNode();
            if (greeting.capabilities().contains("oob")) {
                args.putArray("enable").add("oob");
            }
            client.execute("qmp_capabilities", args, options.connectTimeout());
            log.debug("{}: connected to {} (QEMU {} {})", label, endpoint, greeting.version(), greeting.pkg());
            return client;
        } catch (QmpTimeoutException e) {
            conn.close();
            throw new QmpConnectException("QMP negotiation with " + endpoint + " got no answer within "
                    + QmpDurations.format(options.connectTimeout()), e);
        } catch (QmpException | RuntimeException e) {
            conn.close();
            throw e;
        }
    }

    public QmpGreeting greeting() {
        return greeting;
    }

    public QmpEndpoint endpoint() {
        return conn.endpoint();
    }

    public Options options() {
        return options;
    }

    /** Runs a command without arguments with the default deadline; returns its {@code return} value. */
    public JsonNode execute(String command) throws QmpException {
        return execute(command, null, options.defaultTimeout());
    }

    public JsonNode execute(String command, ObjectNode args) throws QmpException {
        return execute(command, args, options.defaultTimeout());
    }

    /**
     * Runs a command and returns its {@code return} value once every event that arrived before the reply has been
     * handed to the listeners.
     *
     * @throws QmpErrorException the server refused the command
     * @throws QmpTimeoutException no reply within {@code timeout}; the session stays usable
     * @throws QmpDisconnectedException the session ended before the reply
     */
    public JsonNode execute(String command, ObjectNode args, Duration timeout) throws QmpException {
        return call(message(command, args), timeout, null);
    }

    /** Sends a message as given (qmp-shell's raw {@code {...}} lines) with our id in place of any id it carries. */
    public JsonNode sendRaw(ObjectNode message, Duration timeout) throws QmpException {
        return call(message.deepCopy(), timeout, null);
    }

    /** Runs a command and passes {@code fds} with it as SCM_RIGHTS (for {@code getfd}, {@code add-fd}); unix only. */
    public JsonNode executeWithFds(String command, ObjectNode args, FileDescriptor... fds) throws QmpException {
        return executeWithFds(command, args, options.defaultTimeout(), fds);
    }

    /** As {@link #executeWithFds(String, ObjectNode, FileDescriptor...)} with its own deadline. */
    public JsonNode executeWithFds(String command, ObjectNode args, Duration timeout, FileDescriptor... fds)
            throws QmpException {
        if (!conn.canPassFds()) {
            throw new QmpException("'" + command + "' needs file descriptor passing, which works only over a unix"
                    + " socket, not " + conn.endpoint());
        }
        return call(message(command, args), timeout, fds);
    }

    /**
     * Runs a command without blocking. The future completes on the reader thread, possibly before the listeners have
     * seen events that preceded the reply; it fails with the same exceptions as {@link #execute}.
     */
    public CompletableFuture<JsonNode> executeAsync(String command, ObjectNode args, Duration timeout) {
        CompletableFuture<JsonNode> out = new CompletableFuture<>();
        QmpConnection.Pending p;
        try {
            p = conn.submit(message(command, args), null);
        } catch (QmpException e) {
            out.completeExceptionally(e);
            return out;
        }
        p.future().orTimeout(timeout.toNanos(), TimeUnit.NANOSECONDS).whenComplete((reply, ex) -> {
            if (ex == null) {
                try {
                    out.complete(unwrap(reply.message(), command));
                } catch (QmpErrorException e) {
                    out.completeExceptionally(e);
                }
                return;
            }
            Throwable cause = ex instanceof CompletionException && ex.getCause() != null ? ex.getCause() : ex;
            if (cause instanceof TimeoutException) {
                conn.abandon(p);
                out.completeExceptionally(timeout(command, timeout));
            } else {
                out.completeExceptionally(cause);
            }
        });
        return out;
    }

    private static ObjectNode message(String command, ObjectNode args) {
        ObjectNode m = JsonNodeFactory.instance.objectNode();
        m.put("execute", command);
        if (args != null && !args.isEmpty()) {
            m.set("arguments", args);
        }
        return m;
    }

    private JsonNode call(ObjectNode message, Duration timeout, FileDescriptor[] fds) throws QmpException {
        long deadline = System.nanoTime() + timeout.toNanos();
        QmpConnection.Pending p = conn.submit(message, fds);
        QmpConnection.Reply reply;
        try {
            reply = p.future().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            conn.awaitDelivered(reply.eventsBefore(), deadline);
        } catch (TimeoutException e) {
            conn.abandon(p);
            throw timeout(p.command(), timeout);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof QmpException q) {
                throw q;
            }
            throw new QmpException("'" + p.command() + "' failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            conn.abandon(p);
            Thread.currentThread().interrupt();
            throw new QmpException("interrupted while waiting for the reply to '" + p.command() + "'", e);
        }
        return unwrap(reply.message(), p.command());
    }

    private QmpTimeoutException timeout(String command, Duration timeout) {
        String malformed = conn.malformedSummary();
        return new QmpTimeoutException(command, timeout, "no reply to '" + command + "' from " + conn.endpoint()
                + " within " + QmpDurations.format(timeout) + "; QEMU may be hung or very busy"
                + (malformed == null ? "" : "; qsup " + malformed + ", which may have been the reply"));
    }

    private static JsonNode unwrap(ObjectNode reply, String command) throws QmpErrorException {
        if (reply.has("error")) {
            JsonNode err = reply.get("error");
            throw new QmpErrorException(command, err.path("class").asText("GenericError"), err.path("desc").asText(""));
        }
        return reply.get("return");
    }

    /** Adds a listener for every event; close the returned handle to remove it. */
    public AutoCloseable addEventListener(Consumer<QmpEvent> listener) {
        return conn.addEventListener(listener);
    }

    /**
     * Arms a wait for an event; arm it before sending the command that causes the event, then {@code await}.
     *
     * @param filter further condition on the event, or null for any event of that name
     */
    public EventWaiter expectEvent(String name, Predicate<QmpEvent> filter) {
        EventWaiter w = new EventWaiter(name, filter, conn.endpoint().toString());
        w.arm(conn);
        return w;
    }

    /** Waits for an event arriving from now on. */
    public QmpEvent awaitEvent(String name, Predicate<QmpEvent> filter, Duration timeout) throws QmpException {
        return expectEvent(name, filter).await(timeout);
    }

    /** Called once when the session ends (EOF, error or close), after every event before the end was delivered. */
    public void onDisconnect(Consumer<QmpException> listener) {
        conn.addDisconnectListener(listener);
    }

    public boolean isConnected() {
        return conn.isConnected();
    }

    /** Ends the session; pending calls fail with {@link QmpDisconnectedException}. Never waits for the peer. */
    @Override
    public void close() {
        conn.close();
    }

    // --- typed helpers ---

    public QmpStatus queryStatus() throws QmpException {
        return queryStatus(options.defaultTimeout());
    }

    public QmpStatus queryStatus(Duration timeout) throws QmpException {
        JsonNode r = execute("query-status", null, timeout);
        return new QmpStatus(r.path("status").asText(), r.path("running").asBoolean(),
                r.path("singlestep").asBoolean(false));
    }

    /** Presses the ACPI power button ({@code system_powerdown}); the guest decides whether to shut down. */
    public void powerdown() throws QmpException {
        execute("system_powerdown");
    }

    /** Asks QEMU to exit ({@code quit}); the connection closing right after the reply is expected, not an error. */
    public void quit() throws QmpException {
        try {
            execute("quit");
        } catch (QmpDisconnectedException e) {
            log.debug("{}: connection closed during quit, as QEMU exits: {}", conn.label(), e.getMessage());
        }
    }

    public void stop() throws QmpException {
        execute("stop");
    }

    public void cont() throws QmpException {
        execute("cont");
    }

    public void systemReset() throws QmpException {
        execute("system_reset");
    }

    /** Lists the fd sets QEMU holds ({@code query-fdsets}). */
    public ArrayNode queryFdsets() throws QmpException {
        JsonNode r = execute("query-fdsets");
        return r instanceof ArrayNode a ? a : JsonNodeFactory.instance.arrayNode();
    }
}
