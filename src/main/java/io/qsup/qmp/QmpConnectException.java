package io.qsup.qmp;

/** No QMP session could be set up at all: the socket is missing, refuses, or never sends a greeting. */
public final class QmpConnectException extends QmpException {
    public QmpConnectException(String message, Throwable cause) {
        super(message, cause);
    }
}
