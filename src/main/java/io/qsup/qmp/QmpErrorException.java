package io.qsup.qmp;

/**
 * The server answered a command with {@code {"error": {"class": ..., "desc": ...}}}, or sent such an error in place of
 * its greeting to refuse the session.
 */
public final class QmpErrorException extends QmpException {
    private final String command;
    private final String errorClass;
    private final String desc;

    public QmpErrorException(String command, String errorClass, String desc) {
        super(errorClass + ": " + desc);
        this.command = command;
        this.errorClass = errorClass;
        this.desc = desc;
    }

    /** The command that was refused, as sent in {@code execute}; null when the whole session was refused. */
    public String command() {
        return command;
    }

    /** The QMP error class, for example {@code GenericError} or {@code CommandNotFound}. */
    public String errorClass() {
        return errorClass;
    }

    /** The human-readable description QEMU gave. */
    public String desc() {
        return desc;
    }
}
