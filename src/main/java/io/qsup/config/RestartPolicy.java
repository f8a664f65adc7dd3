package io.qsup.config;

/** When the supervisor restarts a VM that ended on its own ({@code restart: no | on-failure | always}). */
public enum RestartPolicy {
    NO,
    ON_FAILURE,
    ALWAYS
}
