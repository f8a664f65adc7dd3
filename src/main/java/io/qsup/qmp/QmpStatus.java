package io.qsup.qmp;

/** The answer to {@code query-status}: QEMU's run state (for example {@code running}, {@code paused}, {@code prelaunch}). */
public record QmpStatus(String status, boolean running, boolean singlestep) {}
