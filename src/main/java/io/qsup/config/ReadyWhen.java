package io.qsup.config;

import java.util.regex.Pattern;

/**
 * When a running VM counts as ready ({@code ready-when:}): its guest agent answers, a serial console line matches,
 * or a TCP port accepts and holds a connection.
 */
public sealed interface ReadyWhen {
    /** {@code ready-when: agent}: the guest agent answers {@code guest-ping}. */
    record Agent() implements ReadyWhen {}

    /**
     * {@code ready-when: {serial: REGEX}}: a line of the serial console matches (find, not whole-line). The regex is
     * kept as text so that two equal definitions compare equal; the parser has checked that it compiles.
     */
    record Serial(String regex) implements ReadyWhen {
        public Pattern pattern() {
            return Pattern.compile(regex);
        }
    }

    /** {@code ready-when: {tcp: HOST:PORT}}: a connection to HOST:PORT succeeds and the service answers an empty line. */
    record Tcp(String host, int port) implements ReadyWhen {}

    /** Default time a VM has, from running, to pass its check. */
    java.time.Duration DEFAULT_TIMEOUT = java.time.Duration.ofMinutes(5);
}
