package io.qsup.qmp;

/** Root of every failure the QMP package reports; the subclasses say whether the server refused, went silent or went away. */
public class QmpException extends Exception {
    public QmpException(String message) {
        super(message);
    }

    public QmpException(String message, Throwable cause) {
        super(message, cause);
    }
}
