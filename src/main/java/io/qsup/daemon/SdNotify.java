package io.qsup.daemon;

import java.io.IOException;
import java.net.DatagramPacket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * systemd's {@code sd_notify}: one datagram such as {@code READY=1} to the unix socket named by {@code NOTIFY_SOCKET}
 * (a path, or {@code @name} in the abstract namespace). Without that variable it does nothing, so qsupd runs the same
 * outside systemd. Stateless and thread-safe.
 */
public final class SdNotify {
    private static final Logger log = LoggerFactory.getLogger(SdNotify.class);

    private SdNotify() {}

    /** Sends {@code state} if systemd asked for notifications; returns whether a datagram was sent. */
    public static boolean notify(String state) {
        return notify(System.getenv("NOTIFY_SOCKET"), state);
    }

    /** Sends {@code state} to the given socket (null or empty: nothing to do). */
    public static boolean notify(String socket, String state) {
        if (socket == null || socket.isEmpty()) {
            return false;
        }
        try (AFUNIXDatagramSocket ds = AFUNIXDatagramSocket.newInstance()) {
            AFUNIXSocketAddress addr = socket.startsWith("@")
                    ? AFUNIXSocketAddress.inAbstractNamespace(socket.substring(1))
                    : AFUNIXSocketAddress.of(Path.of(socket));
            byte[] msg = state.getBytes(StandardCharsets.UTF_8);
            // DatagramPacket refuses a unix address ("unresolved"), so connect first and send without one
            ds.connect(addr);
            ds.send(new DatagramPacket(msg, msg.length));
            log.debug("sd_notify {} -> {}", state.replace('\n', ' '), socket);
            return true;
        } catch (IOException e) {
            log.warn("sd_notify to {} failed: {}", socket, e.toString());
            return false;
        }
    }
}
