package io.qsup.vm;

/** A state change that the transition table forbids; it always means a bug in qsupd, never bad user input. */
public final class IllegalTransitionException extends IllegalStateException {
    private final VmState from;
    private final VmState to;

    public IllegalTransitionException(String vm, VmState from, VmState to) {
        super("VM " + vm + ": illegal state transition " + from + " -> " + to);
        this.from = from;
        this.to = to;
    }

    public VmState from() {
        return from;
    }

    public VmState to() {
        return to;
    }
}
