package io.qsup.supervisor;

/** Placeholder for the definition's restart policy until io.qsup.config lands. */
public enum RestartPolicy {
    NO, ON_FAILURE, ALWAYS
}
