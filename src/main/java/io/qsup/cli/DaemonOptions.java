package io.qsup.cli;

import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/** Where the daemon is, for every verb that talks to qsupd; also given before the verb (see {@link QsupMain}). */
final class DaemonOptions {
    @Option(names = "--socket", paramLabel = "PATH",
            description = "qsupd's control socket (default: $QSUP_SOCKET, else /run/qsup/qsupd.sock).")
    Path socket;

    DaemonClient connect() {
        return DaemonClient.connect(DaemonClient.resolveSocket(socket, System.getenv()), Duration.ofSeconds(30));
    }

    DaemonClient connect(Duration callTimeout) {
        return DaemonClient.connect(DaemonClient.resolveSocket(socket, System.getenv()), callTimeout);
    }
}
