package io.qsup.supervisor;

/** Root of the supervisor's errors: unknown VM, refused request, state that cannot be persisted. */
public class SupervisorException extends Exception {
    public SupervisorException(String message) {
        super(message);
    }

    public SupervisorException(String message, Throwable cause) {
        super(message, cause);
    }
}
