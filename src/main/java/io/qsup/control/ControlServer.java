package io.qsup.control;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.config.DaemonSettings;
import io.qsup.vm.LoopHealth;
import io.qsup.daemon.Version;
import io.qsup.qmp.QmpFraming;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.AFUNIXSocketCredentials;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon's control socket: accepts connections, checks each peer's credentials, and runs one
 * {@link ControlSession} per connection, at most {@link Limits#maxConnections} at once.
 *
 * <p>Threading: one accept thread ({@code control-accept}) admits or refuses connections; refusals are written on
 * that thread (a few hundred bytes into a fresh socket never block) and cost no thread of their own. Each admitted
 * session runs two platform threads and counts against the limit until both have ended, so the control socket never
 * runs more than twice the limit in session threads. One timer thread ({@code control-timer}) ends sessions that
 * never negotiate and closes refused sockets. The command table is fixed at construction; the session set is a
 * concurrent map. No lock is held across I/O.
 */
public final class ControlServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ControlServer.class);
    /** How long a refused connection stays half-open so that the client reads why. */
    static final Duration REFUSAL_LINGER = Duration.ofMillis(500);

    /**
     * What one control socket allows.
     *
     * @param maxConnections sessions served at once ({@code control-max-connections}); more are refused with an error
     * @param negotiationTimeout how long a new connection may take to send {@code qmp_capabilities}: long enough for
     *     a client on a loaded host (with 5 s, clients in the tests missed it on a busy CI machine), short enough that
     *     an abandoned connection gives its slot back within the minute (sshd allows 120 s to log in)
     * @param outboxMessages messages queued for one client before it counts as not reading
     * @param outboxBytes bytes queued for one client before it counts as not reading; above one maximal message
     */
    public record Limits(int maxConnections, Duration negotiationTimeout, int outboxMessages, long outboxBytes) {
        public static final Duration DEFAULT_NEGOTIATION_TIMEOUT = Duration.ofSeconds(30);
        public static final int DEFAULT_OUTBOX_MESSAGES = 4096;
        public static final long DEFAULT_OUTBOX_BYTES = 32L * 1024 * 1024;

        public Limits {
            if (maxConnections < 1) {
                throw new IllegalArgumentException("maxConnections must be at least 1, got " + maxConnections);
            }
            if (negotiationTimeout.isNegative() || negotiationTimeout.isZero()) {
                throw new IllegalArgumentException("negotiationTimeout must be positive, got " + negotiationTimeout);
            }
            if (outboxMessages < 1) {
                throw new IllegalArgumentException("outboxMessages must be at least 1, got " + outboxMessages);
            }
            if (outboxBytes <= QmpFraming.MAX_MESSAGE_BYTES) {
                throw new IllegalArgumentException("outboxBytes must exceed the largest message ("
                        + QmpFraming.MAX_MESSAGE_BYTES + "), got " + outboxBytes);
            }
        }

        public static Limits defaults() {
            return new Limits(DaemonSettings.DEFAULT_CONTROL_MAX_CONNECTIONS, DEFAULT_NEGOTIATION_TIMEOUT,
                    DEFAULT_OUTBOX_MESSAGES, DEFAULT_OUTBOX_BYTES);
        }

        public Limits withMaxConnections(int n) {
            return new Limits(n, negotiationTimeout, outboxMessages, outboxBytes);
        }

        public Limits withNegotiationTimeout(Duration d) {
            return new Limits(maxConnections, d, outboxMessages, outboxBytes);
        }

        public Limits withOutboxMessages(int n) {
            return new Limits(maxConnections, negotiationTimeout, n, outboxBytes);
        }
    }

    private final Path socketPath;
    private final String groupName;
    private final Map<String, Served> commands;
    private final EventHub events;
    private final Limits limits;
    private final Map<Long, ControlSession> sessions = new ConcurrentHashMap<>();
    private final AtomicLong counter = new AtomicLong();
    /** Events never delivered because their subscriber stopped reading (its connection was dropped). */
    private final AtomicLong eventsDropped = new AtomicLong();
    private final AcceptBackoff backoff;
    private final ScheduledThreadPoolExecutor timer;
    private AFUNIXServerSocket serverSocket;
    private AccessPolicy policy;
    private LoopHealth.Loop health;
    private volatile boolean closed;
    private long refusedInARow; // accept thread only

    /** A command this server runs: its declaration and its handler. */
    record Served(CommandSpec spec, ControlCommand handler) {}

    /**
     * A server running the given handlers, each of a command declared in {@link CommandTable}, plus
     * {@code qmp_capabilities}, {@code query-commands} and {@code query-command-arguments}, which every server runs.
     *
     * @throws IllegalArgumentException when a handler's command is not declared in {@link CommandTable}
     */
    public ControlServer(Path socketPath, String groupName, Map<String, ControlCommand> commands, EventHub events,
            Limits limits) {
        this.socketPath = socketPath;
        this.groupName = groupName;
        this.commands = serve(commands);
        this.events = events;
        this.limits = limits;
        this.backoff = new AcceptBackoff(socketPath.toString());
        this.timer = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("control-timer").factory());
        timer.setRemoveOnCancelPolicy(true);
    }

    /**
     * Binds the socket with mode 0660 and the control group, and starts accepting.
     *
     * @throws IOException when the socket cannot be bound, for example because another qsupd is serving it
     */
    public void start() throws IOException {
        Files.createDirectories(socketPath.toAbsolutePath().getParent());
        if (Files.exists(socketPath)) {
            if (isServed(socketPath)) {
                throw new IOException("control socket " + socketPath + " is already served by another process;"
                        + " is another qsupd running? Stop it or set another control-socket");
            }
            Files.delete(socketPath);
        }
        serverSocket = AFUNIXServerSocket.newInstance();
        serverSocket.bind(AFUNIXSocketAddress.of(socketPath.toFile()), 256);
        Files.setPosixFilePermissions(socketPath, PosixFilePermissions.fromString("rw-rw----"));
        OptionalLong gid = applyGroup();
        policy = new AccessPolicy(currentUid(), groupName, gid);
        log.info("control: listening on {} (group {})", socketPath, gid.isPresent() ? groupName : "none");
        health = LoopHealth.poked("control-accept", LoopHealth.connectingTo(socketPath));
        Thread.ofPlatform().daemon().name("control-accept").start(this::acceptLoop);
    }

    private static boolean isServed(Path path) {
        try (AFUNIXSocket probe = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path.toFile()))) {
            return probe.isConnected();
        } catch (IOException e) {
            return false;
        }
    }

    private OptionalLong applyGroup() {
        try {
            GroupPrincipal group = socketPath.getFileSystem().getUserPrincipalLookupService()
                    .lookupPrincipalByGroupName(groupName);
            Files.getFileAttributeView(socketPath, PosixFileAttributeView.class).setGroup(group);
            return OptionalLong.of(((Number) Files.getAttribute(socketPath, "unix:gid")).longValue());
        } catch (UserPrincipalNotFoundException e) {
            log.warn("control: group '{}' does not exist; only root and the daemon's user may use {}", groupName,
                    socketPath);
        } catch (IOException | UnsupportedOperationException e) {
            log.warn("control: cannot give {} to group '{}': {}; only root and the daemon's user may use it",
                    socketPath, groupName, e.toString());
        }
        return OptionalLong.empty();
    }

    private static long currentUid() {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
        } catch (IOException e) {
            return -1;
        }
    }

    /** Accepts until {@link #close}; a failing accept() backs off and retries, it never ends the loop. */
    private void acceptLoop() {
        while (!closed) {
            health.beat();
            AFUNIXSocket socket;
            try {
                socket = serverSocket.accept();
                health.beat();
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                backoff.failed(e);
                continue;
            }
            backoff.succeeded();
            try {
                admit(socket);
            } catch (RuntimeException | OutOfMemoryError e) {
                // OutOfMemoryError here is "unable to create native thread": the host is out of threads, not heap
                closeQuietly(socket);
                backoff.failed(new IOException("cannot serve a new connection: " + e, e));
            }
        }
    }

    private void admit(AFUNIXSocket socket) {
        long n = counter.incrementAndGet();
        if (sessions.size() >= limits.maxConnections()) {
            refuseOverLimit(socket, n);
            return;
        }
        refusedInARow = 0;
        AccessPolicy.PeerCredentials peer;
        try {
            AFUNIXSocketCredentials c = socket.getPeerCredentials();
            peer = AccessPolicy.PeerCredentials.of(c.getPid(), c.getUid(), c.getGid(), c.getGids());
        } catch (IOException e) {
            log.warn("control: cannot read peer credentials of connection {}: {}", n, e.toString());
            closeQuietly(socket);
            return;
        }
        AccessPolicy.Decision decision = policy.check(peer);
        if (!decision.allowed()) {
            log.warn("control: connection {} from pid {} uid {} refused: {}", n, peer.pid(), peer.uid(),
                    decision.reason());
            refuse(socket, ControlException.ACCESS_DENIED, decision.reason());
            return;
        }
        ControlSession session = new ControlSession(n, socket, peer, this, limits);
        sessions.put(n, session);
        try {
            session.start();
        } catch (RuntimeException | OutOfMemoryError e) {
            sessions.remove(n);
            session.close();
            throw e;
        }
    }

    private void refuseOverLimit(AFUNIXSocket socket, long n) {
        String desc = "too many control connections: qsupd serves at most " + limits.maxConnections()
                + " at once (control-max-connections); close idle clients, or raise control-max-connections in the"
                + " daemon settings";
        if (refusedInARow++ == 0) {
            log.warn("control: refusing connection {} and any more while {} connections are open"
                    + " (control-max-connections)", n, limits.maxConnections());
        } else {
            log.debug("control: refused connection {}: at the limit of {} connections", n, limits.maxConnections());
        }
        refuse(socket, ControlException.GENERIC, desc);
    }

    /**
     * Sends one error in place of the greeting and ends the connection; a fresh socket takes these few bytes without
     * blocking. The socket stays open for {@link #REFUSAL_LINGER} with only its sending side shut, so that a client
     * that wrote right after connecting (socat with piped input) can still read the error instead of failing with
     * EPIPE on its write.
     */
    private void refuse(AFUNIXSocket socket, String errorClass, String desc) {
        try {
            OutputStream out = socket.getOutputStream();
            out.write(QmpFraming.encode(ControlSession.error(errorClass, desc, null)));
            out.flush();
        } catch (IOException e) {
            log.debug("control: could not tell a refused client why: {}", e.toString());
            closeQuietly(socket);
            return;
        }
        try {
            socket.shutdownOutput();
        } catch (IOException e) {
            // a peer that already shut its own side makes junixsocket call the socket unconnected; close() ends it
        }
        if (schedule(() -> closeQuietly(socket), REFUSAL_LINGER) == null) {
            closeQuietly(socket);
        }
    }

    private static void closeQuietly(AFUNIXSocket socket) {
        try {
            socket.close();
        } catch (IOException e) {
            // nothing left to do with a socket we are dropping
        }
    }

    /** Runs {@code task} on the timer thread after {@code delay}; null once the server is closed. */
    ScheduledFuture<?> schedule(Runnable task, Duration delay) {
        try {
            return timer.schedule(task, delay.toNanos(), TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
            return null;
        }
    }

    ObjectNode greeting() {
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        ObjectNode qmp = root.putObject("QMP");
        ObjectNode version = qmp.putObject("version");
        int[] v = numericVersion(Version.get());
        ObjectNode q = version.putObject("qemu");
        q.put("major", v[0]);
        q.put("minor", v[1]);
        q.put("micro", v[2]);
        version.put("package", "qsupd " + Version.get());
        qmp.putArray("capabilities");
        return root;
    }

    static int[] numericVersion(String version) {
        int[] out = new int[3];
        String[] parts = version.split("[.-]");
        for (int i = 0; i < 3 && i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                break;
            }
        }
        return out;
    }

    /** The command of that name, or null when this server does not run it. */
    Served command(String name) {
        return commands.get(name);
    }

    private static Map<String, Served> serve(Map<String, ControlCommand> handlers) {
        Map<String, ControlCommand> all = new HashMap<>(handlers);
        for (String builtIn : List.of(CommandTable.QMP_CAPABILITIES.name(), CommandTable.QUERY_COMMANDS.name(),
                CommandTable.QUERY_COMMAND_ARGUMENTS.name())) {
            if (all.containsKey(builtIn)) {
                throw new IllegalArgumentException(builtIn + " is run by the control server itself");
            }
        }
        for (String name : handlers.keySet()) {
            if (CommandTable.find(name).isEmpty()) {
                throw new IllegalArgumentException("command '" + name + "' has no declaration; declare it and its"
                        + " arguments in CommandTable");
            }
        }
        all.put(CommandTable.QMP_CAPABILITIES.name(), (args, session) -> session.negotiate(args));
        all.put(CommandTable.QUERY_COMMANDS.name(), null); // filled in below, once the list is known
        all.put(CommandTable.QUERY_COMMAND_ARGUMENTS.name(), null);
        List<CommandSpec> specs = CommandTable.all().stream().filter(c -> all.containsKey(c.name())).toList();
        ArrayNode names = JsonNodeFactory.instance.arrayNode();
        specs.forEach(c -> names.addObject().put("name", c.name()));
        ArrayNode described = CommandTable.toJson(specs);
        all.put(CommandTable.QUERY_COMMANDS.name(), (args, session) -> names.deepCopy());
        all.put(CommandTable.QUERY_COMMAND_ARGUMENTS.name(), (args, session) -> described.deepCopy());
        Map<String, Served> out = new LinkedHashMap<>();
        for (CommandSpec c : specs) {
            out.put(c.name(), new Served(c, all.get(c.name())));
        }
        return Collections.unmodifiableMap(out);
    }

    public EventHub events() {
        return events;
    }

    /** Called once both threads of a session have ended; only then does its slot free up. */
    void sessionEnded(ControlSession s) {
        sessions.remove(s.number());
    }

    /** Sessions open now, counting those whose threads are still winding down. */
    public int sessionCount() {
        return sessions.size();
    }

    /** Events dropped since start because a subscriber stopped reading; for the metrics endpoint. */
    public long eventsDropped() {
        return eventsDropped.get();
    }

    void countDroppedEvents(long n) {
        if (n > 0) {
            eventsDropped.addAndGet(n);
        }
    }

    public Path socketPath() {
        return socketPath;
    }

    @Override
    public void close() {
        closed = true;
        if (health != null) {
            health.close();
        }
        backoff.wakeUp();
        try {
            if (serverSocket != null) {
                serverSocket.close();
            }
        } catch (IOException e) {
            log.debug("control: closing server socket: {}", e.toString());
        }
        for (ControlSession s : sessions.values()) {
            s.close();
        }
        for (Runnable pending : timer.shutdownNow()) {
            pending.run(); // closes refused sockets still lingering
        }
        try {
            Files.deleteIfExists(socketPath);
        } catch (IOException e) {
            log.debug("control: removing {}: {}", socketPath, e.toString());
        }
    }
}
