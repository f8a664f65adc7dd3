package io.qsup.vm;

import java.time.Duration;

/**
 * How a stop ended.
 *
 * @param rung    the rung that ended the VM; null if there was no process to stop
 * @param took    time from the stop request to the process' death
 * @param stopped true if the process is gone
 * @param detail  words for the user
 */
public record StopResult(StopRung rung, Duration took, boolean stopped, String detail) {}
