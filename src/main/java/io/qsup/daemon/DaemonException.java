package io.qsup.daemon;

/** Root of the daemon's own errors: settings, lock, start-up. Messages say what to do. */
public class DaemonException extends Exception {
    public DaemonException(String message) {
        super(message);
    }

    public DaemonException(String message, Throwable cause) {
        super(message, cause);
    }
}
