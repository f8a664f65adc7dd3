package io.qsup.config;

/** A watchdog device and what happens when it fires. */
public record Watchdog(WatchdogModel model, WatchdogAction action) {}
