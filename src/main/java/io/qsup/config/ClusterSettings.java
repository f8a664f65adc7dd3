package io.qsup.config;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The {@code cluster:} section of {@code qsupd.yaml}: the etcd endpoints, this host's name and the address peers reach
 * it on, the TTL of its lease, what it offers to cluster VMs, and how long before the lease could expire it fences
 * itself ({@code fenceMargin}). Absent: qsupd runs single-host, as without a cluster.
 */
public record ClusterSettings(List<URI> etcd, String host, String address, Duration leaseTtl, long capacityMemory,
        int capacityCpus, Duration fenceMargin) {

    public ClusterSettings {
        etcd = List.copyOf(etcd);
    }

    static final List<String> KEYS = List.of("etcd", "host", "address", "lease-ttl", "capacity", "fence-margin");
    static final List<String> CAPACITY_KEYS = List.of("memory", "cpus");
    /** Default lease TTL. */
    public static final Duration DEFAULT_LEASE_TTL = Duration.ofSeconds(10);
    /** Memory the default capacity leaves to the host itself. */
    public static final long HOST_RESERVE = 1L << 30;
    static final Pattern HOST = Pattern.compile("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
    private static final Pattern ENDPOINT = Pattern.compile("https?://[A-Za-z0-9.:\\[\\]-]+:\\d{1,5}/?");

    /** The default margin: a fifth of the TTL, at least 500 ms. */
    public static Duration defaultFenceMargin(Duration ttl) {
        Duration fifth = ttl.dividedBy(5);
        return fifth.compareTo(Duration.ofMillis(500)) > 0 ? fifth : Duration.ofMillis(500);
    }

    /** Parses the section; null when it has errors (they are in {@code p}). */
    static ClusterSettings parse(YamlNode.Entry section, Problems p) {
        if (!(section.value() instanceof YamlNode.Mapping map)) {
            p.error(section.value().location(), "cluster", "expected a mapping (etcd: [...], host: ..., address: ...),"
                    + " got " + section.value().describe());
            return null;
        }
        int before = p.errors().size();
        Fields f = new Fields(map, "cluster", p, KEYS);
        YamlNode.Entry e;
        List<URI> endpoints = new ArrayList<>();
        if ((e = f.get("etcd")) == null) {
            p.error(map.location(), "cluster.etcd", "missing; list etcd's client URLs, such as [http://10.0.0.1:2379]");
        } else {
            List<YamlNode> items = e.value() instanceof YamlNode.Sequence seq ? seq.items() : List.of(e.value());
            for (int i = 0; i < items.size(); i++) {
                String path = e.value() instanceof YamlNode.Sequence ? "cluster.etcd[" + i + "]" : "cluster.etcd";
                String v = Values.matching(new YamlNode.Entry("etcd", e.keyLocation(), items.get(i)), path, p,
                        ENDPOINT, "an etcd client URL such as http://10.0.0.1:2379");
                if (v != null) {
                    endpoints.add(URI.create(v));
                }
            }
            if (items.isEmpty()) {
                p.error(e.value().location(), "cluster.etcd", "is empty; list at least one etcd client URL");
            }
        }
        String host = null;
        if ((e = f.get("host")) == null) {
            p.error(map.location(), "cluster.host", "missing; give this host's name in the cluster, such as h1");
        } else {
            host = Values.matching(e, "cluster.host", p, HOST, "lower-case letters, digits and '-', at most 63");
        }
        String address = null;
        if ((e = f.get("address")) == null) {
            p.error(map.location(), "cluster.address", "missing; give the address other hosts reach this one on");
        } else {
            address = Values.string(e, "cluster.address", p);
            if (address != null && address.isBlank()) {
                p.error(e.value().location(), "cluster.address", "is empty; give an IP address or host name");
            }
        }
        Duration ttl = DEFAULT_LEASE_TTL;
        if ((e = f.get("lease-ttl")) != null) {
            Duration t = Values.duration(e, "cluster.lease-ttl", p);
            if (t != null && (t.toMillis() % 1000 != 0 || t.toSeconds() < 2 || t.toSeconds() > 600)) {
                p.error(e.value().location(), "cluster.lease-ttl", "must be whole seconds from 2s to 10m (etcd counts"
                        + " lease TTLs in seconds); such as 10s");
            } else if (t != null) {
                ttl = t;
            }
        }
        long memory = Math.max(0, hostMemory() - HOST_RESERVE);
        int cpus = Runtime.getRuntime().availableProcessors();
        if ((e = f.get("capacity")) != null) {
            if (!(e.value() instanceof YamlNode.Mapping cm)) {
                p.error(e.value().location(), "cluster.capacity", "expected a mapping (memory: 8G, cpus: 4), got "
                        + e.value().describe());
            } else {
                Fields c = new Fields(cm, "cluster.capacity", p, CAPACITY_KEYS);
                YamlNode.Entry x;
                if ((x = c.get("memory")) != null) {
                    Long m = Values.size(x, "cluster.capacity.memory", p);
                    memory = m != null ? m : memory;
                }
                if ((x = c.get("cpus")) != null) {
                    Integer n = Values.integer(x, "cluster.capacity.cpus", p, 1, 4096);
                    cpus = n != null ? n : cpus;
                }
                c.finish();
            }
        }
        Duration margin = defaultFenceMargin(ttl);
        YamlNode.Entry marginEntry = f.get("fence-margin");
        if (marginEntry != null) {
            Duration m = Values.duration(marginEntry, "cluster.fence-margin", p);
            if (m != null) {
                margin = m;
            }
        }
        if (margin.compareTo(Duration.ofMillis(100)) < 0 || margin.multipliedBy(2).compareTo(ttl) > 0) {
            p.error(marginEntry != null ? marginEntry.value().location() : map.location(), "cluster.fence-margin",
                    "is " + VmParser.human(margin) + " with lease-ttl " + VmParser.human(ttl) + "; give at least 100ms"
                            + " and at most half the lease-ttl");
        }
        f.finish();
        if (p.errors().size() != before) {
            return null;
        }
        return new ClusterSettings(endpoints, host, address, ttl, memory, cpus, margin);
    }

    /** MemTotal from /proc/meminfo, or 0 when it cannot be read. */
    static long hostMemory() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }
}
