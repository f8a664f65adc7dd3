package io.qsup.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The whole lab on one machine: a {@link NetLab} of N hosts, a three-member {@link EtcdCluster} on the lab's bridge,
 * one {@link LabHost} per namespace (settings written, qsupd not yet started), all under one short base folder in
 * /tmp, and a {@link QemuWitness} sampling every QEMU under that folder from the start. {@link #close} takes it all
 * down in reverse, by pid and by name, and removes the base folder (kept, and named on stderr, when the system
 * property {@code qsup.keepLab} is set, to read the logs after a failure).
 *
 * <p>Not thread-safe: one test thread builds and closes a lab.
 */
public final class ClusterLab implements AutoCloseable {
    private final Path base;
    private final NetLab net;
    private final EtcdCluster etcd;
    private final Map<String, LabHost> hosts;
    private final QemuWitness witness;

    private ClusterLab(Path base, NetLab net, EtcdCluster etcd, Map<String, LabHost> hosts, QemuWitness witness) {
        this.base = base;
        this.net = net;
        this.etcd = etcd;
        this.hosts = hosts;
        this.witness = witness;
    }

    /**
     * Builds a lab of {@code hostCount} hosts named h1..hN; with {@code clusterMode}, each host's settings carry the
     * {@code cluster:} block (etcd endpoints, its name and address, {@code leaseTtl}, 1G and 2 cpus of capacity).
     */
    public static ClusterLab start(int hostCount, boolean clusterMode, Duration leaseTtl) throws IOException {
        Path base = Files.createTempDirectory(Path.of("/tmp"), "qsl");
        NetLab net = null;
        EtcdCluster etcd = null;
        QemuWitness witness = null;
        Map<String, LabHost> hosts = new LinkedHashMap<>();
        try {
            net = NetLab.create(hostCount);
            etcd = EtcdCluster.start(net.bridgeAddress(), base.resolve("etcd"), Duration.ofSeconds(30));
            Map<String, Path> dirs = new LinkedHashMap<>();
            for (String h : net.hosts()) {
                String cluster = clusterMode
                        ? LabHost.clusterYaml(etcd.endpoints(), h, net.address(h), leaseTtl, "1G", 2) : null;
                LabHost host = new LabHost(net, h, base, cluster);
                hosts.put(h, host);
                dirs.put(h, host.dir());
            }
            witness = QemuWitness.start(base, dirs);
            return new ClusterLab(base, net, etcd, hosts, witness);
        } catch (IOException | RuntimeException e) {
            new ClusterLab(base, net, etcd, hosts, witness).close();
            throw e;
        }
    }

    public Path base() {
        return base;
    }

    public NetLab net() {
        return net;
    }

    public EtcdCluster etcd() {
        return etcd;
    }

    public QemuWitness witness() {
        return witness;
    }

    public LabHost host(String name) {
        LabHost h = hosts.get(name);
        if (h == null) {
            throw new IllegalArgumentException("no host '" + name + "' in this lab; its hosts are " + hosts.keySet());
        }
        return h;
    }

    public List<LabHost> hosts() {
        return List.copyOf(hosts.values());
    }

    /** Cuts one host off from etcd and the other hosts (see {@link NetLab#partition}). */
    public void partition(String host) {
        net.partition(host);
    }

    public void heal(String host) {
        net.heal(host);
    }

    /** Every host's qsupd logs, for a failure message. */
    public String logs() {
        StringBuilder b = new StringBuilder();
        for (LabHost h : hosts.values()) {
            try {
                b.append(h.logs()).append('\n');
            } catch (IOException e) {
                b.append("--- ").append(h.name()).append(": ").append(e.getMessage()).append('\n');
            }
        }
        return b.toString();
    }

    /**
     * Stops the witness, kills every qsupd and every QEMU under the base folder, stops etcd, removes the network, keeps
     * the hosts' qsupd logs in {@code target/cluster-logs/}, and removes the base folder; the first failure is thrown once everything has been tried.
     */
    @Override
    public void close() {
        List<Throwable> failures = new ArrayList<>();
        run(failures, () -> {
            if (witness != null) {
                witness.close();
            }
        });
        for (LabHost h : hosts.values()) {
            run(failures, h::close);
        }
        run(failures, () -> QemuProcesses.killAll(base, Duration.ofSeconds(10)));
        run(failures, () -> {
            if (etcd != null) {
                etcd.close();
            }
        });
        run(failures, () -> {
            if (net != null) {
                net.close();
            }
        });
        run(failures, this::keepLogs);
        if (System.getProperty("qsup.keepLab") != null) {
            System.err.println("cluster lab kept in " + base);
        } else {
            run(failures, () -> Command.run("rm", "-rf", base.toString()).orThrow());
        }
        if (!failures.isEmpty()) {
            IllegalStateException e = new IllegalStateException("cluster lab cleanup: " + failures.getFirst(),
                    failures.getFirst());
            failures.stream().skip(1).forEach(e::addSuppressed);
            throw e;
        }
    }

    /** Copies every host's qsupd logs and every etcd member's log to {@code target/cluster-logs/BASE/}, so that they outlive the lab. */
    private void keepLogs() throws IOException {
        Path keep = Path.of(System.getProperty("qsup.projectDir", "."), "target", "cluster-logs",
                base.getFileName().toString());
        Path etcdLogs = base.resolve("etcd");
        if (Files.isDirectory(etcdLogs)) {
            try (var s = Files.list(etcdLogs)) {
                for (Path f : s.filter(p -> p.getFileName().toString().endsWith(".log")).toList()) {
                    Files.createDirectories(keep);
                    Files.copy(f, keep.resolve(f.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        for (LabHost h : hosts.values()) {
            Path logs = h.dir().resolve("log");
            if (!Files.isDirectory(logs)) {
                continue;
            }
            try (var s = Files.list(logs)) {
                for (Path f : s.filter(p -> p.getFileName().toString().startsWith("qsupd-")).toList()) {
                    Files.createDirectories(keep);
                    Files.copy(f, keep.resolve(h.name() + "-" + f.getFileName()),
                            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    private interface Step {
        void run() throws Exception;
    }

    private static void run(List<Throwable> failures, Step step) {
        try {
            step.run();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failures.add(e);
        } catch (Exception e) {
            failures.add(e);
        }
    }
}
