package io.qsup.vm;

import java.nio.file.Path;
import java.util.regex.Pattern;

/** What makes a running VM ready ({@code ready-when}), resolved for the vm package. */
public sealed interface ReadyCheck {
    /** The guest agent answers {@code guest-ping}. */
    record Agent() implements ReadyCheck {}

    /** A line written to the serial log after the launch matches {@code pattern}. */
    record SerialLine(Pattern pattern, Path serialLog) implements ReadyCheck {}

    /**
     * A TCP connection to host:port succeeds and the service answers: qsupd sends an empty line (CRLF) and takes any
     * byte back within 1 s (a banner, an HTTP 400, ...). A bare connect is not enough: QEMU's user-mode
     * {@code hostfwd} accepts on the host side whether or not the guest listens, and holds the connection open
     * without a word while the guest is still booting.
     */
    record Tcp(String host, int port) implements ReadyCheck {}
}
