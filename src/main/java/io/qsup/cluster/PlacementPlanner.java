package io.qsup.cluster;

import io.qsup.config.Placement;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The leader's choice of a host for one VM, a pure function: the VM's constraints first (allowed hosts,
 * anti-affinity), then capacity (memory and cpus left), then spread: the host with the most free memory, ties by
 * name.
 */
final class PlacementPlanner {
    private PlacementPlanner() {}

    /** A live host: what it offers, and what the VMs placed on it already take. */
    record HostLoad(String name, long memory, int cpus, long usedMemory, int usedCpus, Set<String> groups) {
        long freeMemory() {
            return memory - usedMemory;
        }
    }

    /** What the VM to place asks for. */
    record Demand(String vm, long memory, int cpus, Placement placement) {}

    /** The chosen host, or empty with nothing that fits. */
    static Optional<String> choose(Demand d, List<HostLoad> hosts) {
        return hosts.stream()
                .filter(h -> d.placement().allows(h.name()))
                .filter(h -> d.placement().antiAffinity().stream().noneMatch(h.groups()::contains))
                .filter(h -> h.freeMemory() >= d.memory() && h.cpus() - h.usedCpus() >= d.cpus())
                .max(Comparator.comparingLong(HostLoad::freeMemory)
                        .thenComparing(HostLoad::name, Comparator.reverseOrder()))
                .map(HostLoad::name);
    }

    /** Why nothing fits, for the status a user reads. */
    static String whyNot(Demand d, List<HostLoad> hosts) {
        if (hosts.isEmpty()) {
            return "no host is registered";
        }
        List<HostLoad> allowed = hosts.stream().filter(h -> d.placement().allows(h.name())).toList();
        if (allowed.isEmpty()) {
            return "none of placement.hosts " + d.placement().hosts() + " is alive";
        }
        List<HostLoad> apart = allowed.stream()
                .filter(h -> d.placement().antiAffinity().stream().noneMatch(h.groups()::contains)).toList();
        if (apart.isEmpty()) {
            return "every allowed host already runs a VM of anti-affinity group " + d.placement().antiAffinity();
        }
        return "no allowed host has " + (d.memory() >> 20) + " MiB and " + d.cpus() + " cpus free";
    }

    /** Used memory and cpus per host, from the VMs placed there. */
    static HostLoad load(String host, long memory, int cpus, Map<String, Demand> placedHere) {
        long mem = 0;
        int c = 0;
        java.util.Set<String> groups = new java.util.TreeSet<>();
        for (Demand p : placedHere.values()) {
            mem += p.memory();
            c += p.cpus();
            groups.addAll(p.placement().antiAffinity());
        }
        return new HostLoad(host, memory, cpus, mem, c, groups);
    }
}
