package io.qsup.qmp;

/** The peer does not speak QMP properly: garbage, malformed JSON, an oversized message or a bad greeting. */
public final class QmpProtocolException extends QmpException {
    public QmpProtocolException(String message) {
        super(message);
    }

    public QmpProtocolException(String message, Throwable cause) {
        super(message, cause);
    }
}
