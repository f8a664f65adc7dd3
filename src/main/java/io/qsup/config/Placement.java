package io.qsup.config;

import java.util.List;

/**
 * Where a cluster VM may run: {@code hosts} it is allowed on (empty: any) and the {@code antiAffinity} groups it is in
 * (two VMs sharing a group never run on one host). Meaningful only for definitions applied to a cluster.
 */
public record Placement(List<String> hosts, List<String> antiAffinity) {
    public static final Placement ANY = new Placement(List.of(), List.of());

    public Placement {
        hosts = List.copyOf(hosts);
        antiAffinity = List.copyOf(antiAffinity);
    }

    /** Whether {@code host} is allowed. */
    public boolean allows(String host) {
        return hosts.isEmpty() || hosts.contains(host);
    }
}
