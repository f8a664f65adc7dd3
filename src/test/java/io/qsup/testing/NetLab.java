package io.qsup.testing;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * A private network on one machine: a bridge in the root namespace plus one network namespace per host, each joined to
 * the bridge by a veth pair, on a /24 that no address or route of the machine touches. The bridge holds {@code .1}
 * (services the test runs in the root namespace, such as {@link EtcdCluster}, listen there); host {@code hN} holds
 * {@code .(10+N)} on its {@code eth0}. Every name carries a random run id, so runs never collide:
 * bridge {@code qbID}, veth {@code qID hN} (root side, at most 15 bytes as IFNAMSIZ demands), namespace
 * {@code qsup-ID-hN}.
 *
 * <p>{@link #partition} takes the root side of the host's veth down: the namespace keeps its address and route, its
 * packets are silently lost (as when a cable is pulled), so connections time out rather than fail at once. Unix sockets
 * bound to a path are not scoped by network namespace, so the test (and {@link QemuWitness}) still reach a
 * partitioned host's control socket and QEMU monitors through the filesystem. One caveat: {@code /proc/net/unix} is
 * per network namespace, so {@link UnixSockets#isListening} run from the root namespace does not see a socket bound
 * inside a host; connect instead.
 *
 * <p>{@link #close} removes exactly what this lab made (its veths, namespaces and bridge), after killing by pid the
 * processes still inside its namespaces; a shutdown hook does the same if the test JVM exits first. A lab left by a JVM
 * that died by SIGKILL is removed by the next lab created, found through its record in {@code /run/qsup-netlab}.
 *
 * <p>Thread-safe: partition state is a concurrent set; {@link #close} is idempotent.
 */
public final class NetLab implements AutoCloseable {
    private static final Path RECORDS = Path.of("/run/qsup-netlab");
    private static final Duration IP_TIMEOUT = Duration.ofSeconds(20);

    private final String id;
    private final String prefix; // "10.77.X."
    private final Map<String, Integer> hosts; // name -> index, in order
    private final Set<String> partitioned = ConcurrentHashMap.newKeySet();
    private final Thread hook;
    private volatile boolean closed;

    private NetLab(String id, String prefix, Map<String, Integer> hosts) {
        this.id = id;
        this.prefix = prefix;
        this.hosts = hosts;
        this.hook = new Thread(this::closeQuietly, "netlab-cleanup " + id);
    }

    /** Creates the bridge and hosts {@code h1..hN}; needs root. */
    public static synchronized NetLab create(int hostCount) throws IOException {
        if (hostCount < 1 || hostCount > 99) {
            throw new IllegalArgumentException("a lab has 1 to 99 hosts, not " + hostCount);
        }
        Files.createDirectories(RECORDS);
        sweepDeadLabs();
        Map<String, Integer> hosts = new LinkedHashMap<>();
        for (int i = 1; i <= hostCount; i++) {
            hosts.put("h" + i, i);
        }
        NetLab lab;
        // the lock spans choosing the subnet and taking it, so two labs made at once never pick the same one
        try (FileChannel ch = FileChannel.open(RECORDS.resolve(".lock"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE); FileLock lock = ch.lock()) {
            String id = newId();
            lab = new NetLab(id, freeSubnet(), hosts);
            lab.record();
            Runtime.getRuntime().addShutdownHook(lab.hook);
            try {
                lab.ip("link", "add", lab.bridge(), "type", "bridge");
                lab.ip("addr", "add", lab.bridgeAddress() + "/24", "dev", lab.bridge());
                lab.ip("link", "set", lab.bridge(), "up");
            } catch (RuntimeException e) {
                lab.close();
                throw e;
            }
        }
        try {
            for (String h : hosts.keySet()) {
                lab.addHost(h);
            }
        } catch (RuntimeException e) {
            lab.close();
            throw e;
        }
        return lab;
    }

    private void addHost(String host) {
        String ns = namespace(host);
        String inside = "q" + id + "p" + hosts.get(host);
        ip("netns", "add", ns);
        ip("link", "add", veth(host), "type", "veth", "peer", "name", inside);
        ip("link", "set", inside, "netns", ns);
        ip("-n", ns, "link", "set", inside, "name", "eth0");
        ip("-n", ns, "addr", "add", address(host) + "/24", "dev", "eth0");
        ip("-n", ns, "link", "set", "eth0", "up");
        ip("-n", ns, "link", "set", "lo", "up");
        ip("link", "set", veth(host), "master", bridge());
        ip("link", "set", veth(host), "up");
    }

    /** Whether this JVM may make a lab: network namespaces and links need root (CAP_NET_ADMIN and CAP_SYS_ADMIN). */
    public static boolean canRun() {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).intValue() == 0
                    && (Files.isExecutable(Path.of("/usr/sbin/ip")) || Files.isExecutable(Path.of("/sbin/ip")));
        } catch (IOException e) {
            return false;
        }
    }

    public String id() {
        return id;
    }

    public List<String> hosts() {
        return List.copyOf(hosts.keySet());
    }

    /** The bridge's address in the root namespace, where the test's own services listen. */
    public String bridgeAddress() {
        return prefix + "1";
    }

    public String subnet() {
        return prefix + "0/24";
    }

    public String address(String host) {
        return prefix + (10 + index(host));
    }

    public String namespace(String host) {
        index(host);
        return "qsup-" + id + "-" + host;
    }

    public String bridge() {
        return "qb" + id;
    }

    /** The root-namespace end of the host's veth pair. */
    public String veth(String host) {
        return "q" + id + "h" + index(host);
    }

    /** The argv that runs {@code argv} inside the host's namespace (for a long-lived child the caller starts). */
    public List<String> inHost(String host, List<String> argv) {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", namespace(host)));
        cmd.addAll(argv);
        return cmd;
    }

    /** Runs a short command inside the host's namespace to completion. */
    public Command.Result exec(String host, Duration timeout, String... argv) {
        return Command.run(timeout, inHost(host, List.of(argv)));
    }

    /** Cuts the host off from the bridge, and so from the services on it and from every other host. */
    public void partition(String host) {
        ip("link", "set", veth(host), "down");
        partitioned.add(host);
    }

    /**
     * Undoes {@link #partition}, and returns once the host's bridge port forwards again: a link set up takes a moment
     * to have its carrier on both ends, and a packet sent before that is lost. The neighbour entries the partition
     * left unresolved are flushed, here and in the other hosts, or a first connection would wait for ARP's next
     * retry, a second later.
     */
    public void heal(String host) {
        ip("link", "set", veth(host), "up");
        partitioned.remove(host);
        Command.run(IP_TIMEOUT, List.of("ip", "neigh", "flush", "to", address(host)));
        for (String other : hosts.keySet()) {
            if (!other.equals(host)) {
                Command.run(IP_TIMEOUT, List.of("ip", "-n", namespace(other), "neigh", "flush", "to", address(host)));
            }
        }
        Command.run(IP_TIMEOUT, List.of("ip", "-n", namespace(host), "neigh", "flush", "all"));
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (true) {
            String port = Command.run(IP_TIMEOUT, List.of("bridge", "-o", "link", "show", "dev", veth(host))).output();
            if (port.contains("LOWER_UP") && port.contains("state forwarding")) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the bridge port of " + host + " does not forward 5 s after it was"
                        + " set up: " + port.strip());
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    public boolean isPartitioned(String host) {
        return partitioned.contains(host);
    }

    /** Pids of the processes inside the host's namespace. */
    public List<Long> pidsIn(String host) {
        Command.Result r = Command.run(IP_TIMEOUT, List.of("ip", "netns", "pids", namespace(host)));
        if (!r.ok()) {
            return List.of();
        }
        return r.output().lines().map(String::strip).filter(s -> s.matches("\\d+")).map(Long::parseLong).toList();
    }

    private int index(String host) {
        Integer i = hosts.get(host);
        if (i == null) {
            throw new IllegalArgumentException("no host '" + host + "' in this lab; its hosts are " + hosts.keySet());
        }
        return i;
    }

    private void ip(String... args) {
        List<String> argv = new ArrayList<>(List.of("ip"));
        argv.addAll(List.of(args));
        Command.run(IP_TIMEOUT, argv).orThrow();
    }

    /**
     * Kills what still runs inside the namespaces, then removes the veths, namespaces and bridge, and checks that none
     * is left.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        List<String> nsNames = hosts.keySet().stream().map(this::namespace).toList();
        List<String> links = new ArrayList<>(hosts.keySet().stream().map(this::veth).toList());
        links.add(bridge());
        remove(nsNames, links);
        try {
            Files.deleteIfExists(RECORDS.resolve(id));
        } catch (IOException e) {
            // the record of a removed lab only costs the next sweep a look
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // already shutting down: this is the hook
        }
        List<String> left = leftovers(nsNames, links);
        if (!left.isEmpty()) {
            throw new IllegalStateException("lab " + id + " could not remove " + left);
        }
    }

    private void closeQuietly() {
        try {
            close();
        } catch (RuntimeException e) {
            System.err.println("netlab: " + e.getMessage());
        }
    }

    private static void remove(List<String> namespaces, List<String> links) {
        for (String ns : namespaces) {
            killInside(ns);
        }
        for (String link : links) {
            if (linkExists(link)) {
                Command.run(IP_TIMEOUT, List.of("ip", "link", "del", link));
            }
        }
        for (String ns : namespaces) {
            if (Files.exists(Path.of("/run/netns", ns))) {
                Command.run(IP_TIMEOUT, List.of("ip", "netns", "del", ns));
            }
        }
    }

    private static void killInside(String ns) {
        if (!Files.exists(Path.of("/run/netns", ns))) {
            return;
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (System.nanoTime() < deadline) {
            Command.Result r = Command.run(IP_TIMEOUT, List.of("ip", "netns", "pids", ns));
            List<ProcessHandle> live = r.output().lines().map(String::strip).filter(s -> s.matches("\\d+"))
                    .map(Long::parseLong).map(ProcessHandle::of).flatMap(java.util.Optional::stream)
                    .filter(ProcessHandle::isAlive).toList();
            if (live.isEmpty()) {
                return;
            }
            live.forEach(ProcessHandle::destroyForcibly);
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static List<String> leftovers(List<String> namespaces, List<String> links) {
        List<String> left = new ArrayList<>();
        namespaces.stream().filter(ns -> Files.exists(Path.of("/run/netns", ns))).forEach(ns -> left.add("netns " + ns));
        links.stream().filter(NetLab::linkExists).forEach(l -> left.add("link " + l));
        return left;
    }

    private static boolean linkExists(String name) {
        return Files.exists(Path.of("/sys/class/net", name));
    }

    /** Writes who owns this lab and what it is named, so a lab whose JVM was killed can be found and removed. */
    private void record() throws IOException {
        ProcessHandle me = ProcessHandle.current();
        String start = QemuProcesses.stat(me.pid()).map(s -> Long.toString(s.startTicks())).orElse("?");
        List<String> lines = new ArrayList<>();
        lines.add("owner " + me.pid() + " " + start);
        hosts.keySet().forEach(h -> lines.add("netns " + namespace(h)));
        hosts.keySet().forEach(h -> lines.add("link " + veth(h)));
        lines.add("link " + bridge());
        Files.write(RECORDS.resolve(id), lines);
    }

    /** Removes the labs of test JVMs that no longer live (killed before their close and hooks ran). */
    private static void sweepDeadLabs() throws IOException {
        List<Path> records;
        try (Stream<Path> s = Files.list(RECORDS)) {
            records = s.filter(p -> !p.getFileName().toString().startsWith(".")).toList();
        }
        for (Path r : records) {
            List<String> lines;
            try {
                lines = Files.readAllLines(r);
            } catch (IOException e) {
                continue;
            }
            if (lines.isEmpty() || ownerAlive(lines.getFirst())) {
                continue;
            }
            List<String> ns = lines.stream().filter(l -> l.startsWith("netns ")).map(l -> l.substring(6)).toList();
            List<String> links = lines.stream().filter(l -> l.startsWith("link ")).map(l -> l.substring(5)).toList();
            remove(ns, links);
            Files.deleteIfExists(r);
        }
    }

    private static boolean ownerAlive(String ownerLine) {
        String[] f = ownerLine.split(" ");
        if (f.length < 3 || !f[1].matches("\\d+")) {
            return false;
        }
        return QemuProcesses.stat(Long.parseLong(f[1]))
                .map(s -> !s.dead() && Long.toString(s.startTicks()).equals(f[2])).orElse(false);
    }

    private static String newId() {
        SecureRandom r = new SecureRandom();
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        while (true) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < 6; i++) {
                b.append(alphabet.charAt(r.nextInt(alphabet.length())));
            }
            String id = b.toString();
            if (!linkExists("qb" + id) && !Files.exists(RECORDS.resolve(id))) {
                return id; // "q" + 6 + "h" + 2 digits = 10 bytes, within IFNAMSIZ
            }
        }
    }

    /** The first 10.77.X.0/24 that no address and no route of the machine (any table) overlaps. */
    private static String freeSubnet() {
        List<long[]> used = new ArrayList<>();
        for (String line : Command.run(IP_TIMEOUT, List.of("ip", "-4", "-o", "addr", "show")).orThrow().output()
                .lines().toList()) {
            String[] f = line.trim().split("\\s+");
            for (int i = 0; i + 1 < f.length; i++) {
                if (f[i].equals("inet")) {
                    used.add(cidr(f[i + 1]));
                }
            }
        }
        for (String line : Command.run(IP_TIMEOUT, List.of("ip", "-4", "route", "show", "table", "all")).orThrow()
                .output().lines().toList()) {
            for (String tok : line.trim().split("\\s+")) {
                if (tok.matches("\\d+\\.\\d+\\.\\d+\\.\\d+(/\\d+)?")) {
                    used.add(cidr(tok)); // the destination: the first address-shaped token
                    break;
                }
            }
        }
        for (int x = 0; x < 256; x++) {
            long[] candidate = cidr("10.77." + x + ".0/24");
            if (used.stream().noneMatch(u -> overlaps(u, candidate))) {
                return "10.77." + x + ".";
            }
        }
        throw new IllegalStateException("every 10.77.X.0/24 is in use on this machine; remove stale test bridges"
                + " (ip -br addr | grep 10.77.)");
    }

    /** {network, mask} of a.b.c.d/len (len 32 if absent). */
    private static long[] cidr(String s) {
        String[] parts = s.split("/");
        String[] o = parts[0].split("\\.");
        long addr = 0;
        for (String b : o) {
            addr = (addr << 8) | Long.parseLong(b);
        }
        int len = parts.length > 1 ? Integer.parseInt(parts[1]) : 32;
        long mask = len == 0 ? 0 : (0xFFFFFFFFL << (32 - len)) & 0xFFFFFFFFL;
        return new long[] {addr & mask, mask};
    }

    private static boolean overlaps(long[] a, long[] b) {
        long common = a[1] & b[1]; // the shorter prefix
        return (a[0] & common) == (b[0] & common);
    }
}
