package io.qsup.supervisor;

/** What the operator last asked for a VM; it always wins over autostart and restart policy. */
public enum Intent {
    /** No explicit request: follow {@code autostart}. */
    NONE,
    /** The operator started it: keep it up by policy. */
    STARTED,
    /** The operator stopped it: never start it by ourselves, not even after a daemon restart. */
    STOPPED
}
