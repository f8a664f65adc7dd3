package io.qsup.control;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.daemon.Version;
import java.io.IOException;
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.AFUNIXSocketCredentials;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon's control socket: accepts connections, checks each peer's credentials, and runs one
 * {@link ControlSession} per connection.
 *
 * <p>Threading: one accept thread ({@code control-accept}); the command table is fixed at construction;
 * the session set is a concurrent map. No lock is held across I/O.
 */
public final class ControlServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ControlServer.class);
    /** Events queued for one client before it counts as not reading. */
    public static final int DEFAULT_OUTBOX_LIMIT = 4096;

    private final Path socketPath;
    private final String groupName;
    private final Map<String, ControlCommand> commands;
    private final EventHub events;
    private final int outboxLimit;
    private final Map<Long, ControlSession> sessions = new ConcurrentHashMap<>();
    private final AtomicLong counter = new AtomicLong();
    private AFUNIXServerSocket serverSocket;
    private AccessPolicy policy;
    private volatile boolean closed;

    public ControlServer(Path socketPath, String groupName, Map<String, ControlCommand> commands, EventHub events,
            int outboxLimit) {
        this.socketPath = socketPath;
        this.groupName = groupName;
        this.commands = Map.copyOf(commands);
        this.events = events;
        this.outboxLimit = outboxLimit;
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

    private void acceptLoop() {
        while (!closed) {
            AFUNIXSocket socket;
            try {
                socket = serverSocket.accept();
            } catch (SocketException e) {
                if (!closed) {
                    log.error("control: accept failed; the control socket stops serving", e);
                }
                return;
            } catch (IOException e) {
                log.warn("control: accept failed: {}", e.toString());
                continue;
            }
            long n = counter.incrementAndGet();
            AccessPolicy.PeerCredentials peer;
            try {
                AFUNIXSocketCredentials c = socket.getPeerCredentials();
                peer = AccessPolicy.PeerCredentials.of(c.getPid(), c.getUid(), c.getGid(), c.getGids());
            } catch (IOException e) {
                log.warn("control: cannot read peer credentials of connection {}: {}", n, e.toString());
                closeQuietly(socket);
                continue;
            }
            ControlSession session = new ControlSession(n, socket, peer, this, outboxLimit);
            sessions.put(n, session);
            session.start(policy.check(peer));
        }
    }

    private static void closeQuietly(AFUNIXSocket socket) {
        try {
            socket.close();
        } catch (IOException e) {
            // nothing left to do with a socket we are dropping
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

    ControlCommand command(String name) {
        return commands.get(name);
    }

    public EventHub events() {
        return events;
    }

    void sessionClosed(ControlSession s) {
        sessions.remove(s.number());
    }

    public int sessionCount() {
        return sessions.size();
    }

    public Path socketPath() {
        return socketPath;
    }

    @Override
    public void close() {
        closed = true;
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
        try {
            Files.deleteIfExists(socketPath);
        } catch (IOException e) {
            log.debug("control: removing {}: {}", socketPath, e.toString());
        }
    }
}
