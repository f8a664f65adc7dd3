package io.qsup.config;

/** The extra devices of a VM; {@code watchdog} is null when the VM has none. */
public record Devices(boolean pvpanic, Watchdog watchdog, boolean virtioRng) {

    /** The defaults: a pvpanic device so guest panics are reported, nothing else. */
    public static final Devices DEFAULTS = new Devices(true, null, false);
}
