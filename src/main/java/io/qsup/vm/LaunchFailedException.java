package io.qsup.vm;

/** QEMU did not start; {@link #qemuStderr()} holds what QEMU itself printed, word for word. */
public final class LaunchFailedException extends VmException {
    private final String step;
    private final String qemuStderr;

    public LaunchFailedException(String vm, String step, String message, String qemuStderr, Throwable cause) {
        super("VM " + vm + ": launch failed at step '" + step + "': " + message, cause);
        this.step = step;
        this.qemuStderr = qemuStderr == null ? "" : qemuStderr;
    }

    /** The launch step that failed (validate, prepare-dirs, spawn, wait-qmp, negotiate, query-status). */
    public String step() {
        return step;
    }

    /** QEMU's own error output, unchanged; empty if QEMU printed nothing or never ran. */
    public String qemuStderr() {
        return qemuStderr;
    }

    /** What the user sees: QEMU's own words when it gave any, otherwise our message. */
    public String userMessage() {
        return qemuStderr.isBlank() ? getMessage() : qemuStderr.strip();
    }
}
