package io.qsup.config;

import java.util.List;

/**
 * One network card of a VM. {@code mac} is always set (derived from the VM name and index when not given);
 * {@code ifname} is used by tap (null lets the kernel choose), {@code bridge} and {@code helper} by bridge,
 * {@code forwards} by user networks.
 */
public record Network(
        NetworkType type,
        NicModel model,
        String mac,
        boolean macDerived,
        String ifname,
        String bridge,
        String helper,
        List<PortForward> forwards) {

    public Network {
        forwards = List.copyOf(forwards);
    }
}
