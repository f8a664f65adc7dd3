package io.qsup.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Facts about unix sockets that tests wait on, read without connecting (a QEMU monitor serves only one client). */
public final class UnixSockets {
    private UnixSockets() {}

    /**
     * Whether a server listens on the socket. Its file appears at bind(), a moment before listen(), and a connect in
     * between is refused; /proc/net/unix marks listening sockets with the __SO_ACCEPTCON flag (00010000).
     */
    public static boolean isListening(Path socket) {
        if (!Files.exists(socket)) {
            return false;
        }
        try {
            String path = socket.toString();
            return Files.readAllLines(Path.of("/proc/net/unix")).stream()
                    .map(l -> l.trim().split("\\s+"))
                    .anyMatch(f -> f.length >= 8 && f[7].equals(path) && f[3].equals("00010000"));
        } catch (IOException e) {
            return true; // no /proc: the file's existence is the best sign there is
        }
    }
}
