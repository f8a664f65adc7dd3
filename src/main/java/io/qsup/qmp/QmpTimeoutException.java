package io.qsup.qmp;

import java.time.Duration;

/** A command got no reply (or an awaited event did not come) before its deadline; the session itself may still be fine. */
public final class QmpTimeoutException extends QmpException {
    private final String command;
    private final Duration timeout;

    public QmpTimeoutException(String command, Duration timeout, String message) {
        super(message);
        this.command = command;
        this.timeout = timeout;
    }

    /** The command (or {@code event NAME} for an event wait) whose deadline passed. */
    public String command() {
        return command;
    }

    public Duration timeout() {
        return timeout;
    }
}
