package io.qsup.cli;

import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/** Options every verb that talks to qsupd shares: where the daemon is, and machine-readable output. */
final class DaemonOptions {
    @Option(names = "--socket", paramLabel = "PATH",
            description = "qsupd's control socket (default: $QSUP_SOCKET, else /run/qsup/qsupd.sock).")
    Path socket;

    @Option(names = "--json", description = "Print stable JSON objects instead of human text.")
    boolean json;

    DaemonClient connect() {
        return DaemonClient.connect(DaemonClient.resolveSocket(socket, System.getenv()), Duration.ofSeconds(30));
    }

    DaemonClient connect(Duration callTimeout) {
        return DaemonClient.connect(DaemonClient.resolveSocket(socket, System.getenv()), callTimeout);
    }
}
