package io.qsup.config;

/** A user-network port forward from a host address and port to a guest port. */
public record PortForward(Protocol protocol, String hostAddress, int hostPort, int guestPort) {

    /** The transport protocol of a port forward. */
    public enum Protocol {
        TCP,
        UDP
    }
}
