package io.qsup.qmp;

/** The QMP session ended (EOF, I/O error, protocol error or close); every call still waiting fails with this. */
public final class QmpDisconnectedException extends QmpException {
    public QmpDisconnectedException(String message, Throwable cause) {
        super(message, cause);
    }
}
