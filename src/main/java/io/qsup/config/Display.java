package io.qsup.config;

/**
 * The display of a VM. For VNC, {@code listen} is the address to bind (loopback unless given) and {@code port}
 * the TCP port, or 0 to take the first free port from 5900 on.
 */
public record Display(DisplayType type, String listen, int port) {

    /** No display at all; the serial console is the only console. */
    public static final Display NONE = new Display(DisplayType.NONE, null, 0);
}
