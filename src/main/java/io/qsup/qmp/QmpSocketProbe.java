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
 * <p>Stateless. Calls block for at most the connect timeout. Only junixsocket reads the peer's pid (the JDK's
 * SO_PEERCRED has none), and its calls misbehave on virtual threads (kohlschutter/junixsocket#172): a virtual caller's
 * probe runs on a short-lived platform thread.
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
        if (!Thread.currentThread().isVirtual()) {
            return probe(socket);
        }
        long[] out = {-1};
        Thread t = Thread.ofPlatform().daemon().name("qmp-socket-probe").start(() -> out[0] = probe(socket));
        // the connect timeout bounds the wait; an interrupt must not turn "served" into "nothing listens"
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return out[0];
    }

    private static long probe(Path socket) {
        try (AFUNIXSocket s = AFUNIXSocket.newInstance()) {
            s.connect(AFUNIXSocketAddress.of(socket.toFile()), CONNECT_MILLIS);
            long pid = s.getPeerCredentials().getPid();
            return Math.max(pid, 0);
        } catch (IOException e) {
            return -1;
        }
    }
}
