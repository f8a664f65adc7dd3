package io.qsup.control;

/**
 * A control command failed; becomes a QMP {@code {"error": {"class": ..., "desc": ...}}} reply.
 *
 * <p>The classes are QMP's where one fits ({@code GenericError}, {@code CommandNotFound}) and qsup's own
 * otherwise ({@code VmNotFound}, {@code InvalidState}, {@code Timeout}, {@code AccessDenied}).
 */
public class ControlException extends Exception {
    public static final String GENERIC = "GenericError";
    public static final String COMMAND_NOT_FOUND = "CommandNotFound";
    public static final String VM_NOT_FOUND = "VmNotFound";
    public static final String INVALID_STATE = "InvalidState";
    public static final String TIMEOUT = "Timeout";
    public static final String ACCESS_DENIED = "AccessDenied";

    private final String errorClass;

    public ControlException(String errorClass, String desc) {
        super(desc);
        this.errorClass = errorClass;
    }

    public ControlException(String errorClass, String desc, Throwable cause) {
        super(desc, cause);
        this.errorClass = errorClass;
    }

    public static ControlException generic(String desc) {
        return new ControlException(GENERIC, desc);
    }

    public String errorClass() {
        return errorClass;
    }
}
