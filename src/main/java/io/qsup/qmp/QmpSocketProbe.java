package io.qsup.qmp;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * Asks a unix socket whether some process listens on it, and which (SO_PEERCRED), without speaking QMP: a connect and
 * an immediate close, which a QEMU monitor takes as a client that left. It finds a QEMU whose pidfile is lost.
 *
 * <p>Stateless. Calls block for at most the connect timeout; call them from a platform thread (junixsocket).
 */
public final class QmpSocketProbe {
    private static final int CONNECT_MILLIS = 1000;

    private QmpSocketProbe() {}

    /** True if a process accepts connections on {@code socket}. */
    public static boolean isServed(Path socket) {
        return peerPid(socket) != -1;
    }

    /**
     * The pid of the process listening on {@code socket}; 0 if it listens but its pid cannot be seen (another pid
     * namespace), -1 if nothing listens there.
     */
    public static long peerPid(Path socket) {
        if (!Files.exists(socket)) {
            return -1;
        }
        try (AFUNIXSocket s = AFUNIXSocket.newInstance()) {
            s.connect(AFUNIXSocketAddress.of(socket.toFile()), CONNECT_MILLIS);
            long pid = s.getPeerCredentials().getPid();
            return Math.max(pid, 0);
        } catch (IOException e) {
            return -1;
        }
    }
}
