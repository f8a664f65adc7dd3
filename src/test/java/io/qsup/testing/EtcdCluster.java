package io.qsup.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * A real three-member etcd cluster (Debian's {@code etcd-server}, 3.4) of child processes of the test, every member on
 * its own client and peer port of one address (in the lab, {@link NetLab#bridgeAddress()}, which every host's
 * namespace reaches), its data dir in a temp folder on tmpfs ({@code /dev/shm}: fsync is free there, so elections and
 * writes stay fast) and its log in {@code logDir/etcd-mN.log}. Heartbeat 250 ms and election timeout 2.5 s, not
 * etcd's 100 ms and 1 s: on a 2-core machine busy with QEMUs a member starved for a second would call elections, and
 * every etcd leader election restarts the TTL of every lease (etcd-io/etcd#9395), which postpones the expiry of a
 * partitioned host's lease, and so its failover, for as long as the elections go on. {@link #stop} and {@link #start} take one member down
 * and bring it back with its data, for quorum-loss tests. {@link #close} kills every member by pid and removes the
 * data dirs; a shutdown hook does the same if the test JVM exits first. The data folder records its owner (pid and
 * start time), so members left by a JVM killed with SIGKILL are killed, found by that folder in their argv, and the
 * folder removed, when the next cluster starts.
 *
 * <p>{@link #put} and {@link #get} speak etcd's v3 JSON gateway ({@code /v3/kv/put}, {@code /v3/kv/range}) through one
 * member, so a test can check the cluster without a client library; reads are linearizable, so without quorum they
 * fail like writes.
 *
 * <p>Thread-safe: member processes are guarded by {@code this}; the HTTP calls hold no lock.
 */
public final class EtcdCluster implements AutoCloseable {
    public static final String BINARY = "etcd";
    public static final int MEMBERS = 3;
    private static final String DATA_PREFIX = "qsup-etcd";
    private static final String OWNER = "owner";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String address;
    private final Path dataRoot;
    private final Path logDir;
    private final int[] clientPorts;
    private final int[] peerPorts;
    private final String token;
    private final Process[] members = new Process[MEMBERS];
    private final boolean[] stopped = new boolean[MEMBERS];
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
    private final Thread hook = new Thread(this::close, "etcd-cleanup");
    private boolean closed;

    private EtcdCluster(String address, Path dataRoot, Path logDir, int[] clientPorts, int[] peerPorts) {
        this.address = address;
        this.dataRoot = dataRoot;
        this.logDir = logDir;
        this.clientPorts = clientPorts;
        this.peerPorts = peerPorts;
        this.token = "qsup-" + dataRoot.getFileName();
    }

    /** Starts the three members listening on {@code address} and waits until each reports itself healthy. */
    public static EtcdCluster start(String address, Path logDir, Duration timeout) throws IOException {
        if (!onPath(BINARY)) {
            throw new IllegalStateException("etcd not found on PATH; install it with: apt-get install etcd-server"
                    + " (scripts/setup does)");
        }
        Files.createDirectories(logDir);
        Path shm = Path.of("/dev/shm");
        Path parent = Files.isDirectory(shm) ? shm : Path.of("/tmp");
        sweepDeadClusters(parent);
        Path dataRoot = Files.createTempDirectory(parent, DATA_PREFIX);
        ProcessHandle me = ProcessHandle.current();
        Files.writeString(dataRoot.resolve(OWNER), me.pid() + " "
                + QemuProcesses.stat(me.pid()).map(QemuProcesses.Stat::startTicks).orElse(-1L) + "\n");
        int[] ports = freePorts(address, 2 * MEMBERS);
        EtcdCluster c = new EtcdCluster(address, dataRoot, logDir, new int[] {ports[0], ports[1], ports[2]},
                new int[] {ports[3], ports[4], ports[5]});
        Runtime.getRuntime().addShutdownHook(c.hook);
        try {
            for (int i = 0; i < MEMBERS; i++) {
                c.start(i);
            }
            c.awaitHealthy(timeout);
            return c;
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** The members' client URLs, as {@code cluster.etcd} takes them. */
    public List<String> endpoints() {
        return IntStream.range(0, MEMBERS).mapToObj(this::endpoint).toList();
    }

    public String endpoint(int i) {
        return "http://" + address + ":" + clientPorts[i];
    }

    /** (Re)starts member {@code i}; after {@link #stop} it rejoins with the data it had. */
    public synchronized void start(int i) throws IOException {
        if (closed) {
            throw new IllegalStateException("this etcd cluster is closed");
        }
        if (members[i] != null && members[i].isAlive()) {
            return;
        }
        String initialCluster = IntStream.range(0, MEMBERS)
                .mapToObj(m -> name(m) + "=" + peerUrl(m)).collect(Collectors.joining(","));
        List<String> argv = List.of(BINARY, "--name", name(i), "--data-dir", dataRoot.resolve(name(i)).toString(),
                "--listen-client-urls", endpoint(i), "--advertise-client-urls", endpoint(i),
                "--listen-peer-urls", peerUrl(i), "--initial-advertise-peer-urls", peerUrl(i),
                "--initial-cluster", initialCluster, "--initial-cluster-token", token,
                "--initial-cluster-state", "new", "--heartbeat-interval", "250", "--election-timeout", "2500",
                "--logger", "zap", "--log-outputs", "stderr");
        stopped[i] = false;
        members[i] = new ProcessBuilder(argv).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log(i).toFile())).start();
    }

    /** Kills member {@code i} (SIGKILL, as a crash would) and waits until it is gone. */
    public synchronized void stop(int i) throws InterruptedException {
        stopped[i] = true;
        Process p = members[i];
        if (p != null && p.isAlive()) {
            p.destroyForcibly();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                throw new IllegalStateException("etcd member " + name(i) + " (pid " + p.pid()
                        + ") survived SIGKILL for 10 s");
            }
        }
    }

    public synchronized boolean isRunning(int i) {
        return members[i] != null && members[i].isAlive();
    }

    private synchronized boolean isStopped(int i) {
        return stopped[i];
    }

    public synchronized long pid(int i) {
        return members[i] == null ? -1 : members[i].pid();
    }

    /** True if member {@code i} answers {@code /health} with {@code "health":"true"} (it sees a leader and quorum). */
    public boolean healthy(int i) {
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(endpoint(i) + "/health"))
                    .timeout(Duration.ofSeconds(2)).GET().build(), HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 && JSON.readTree(r.body()).path("health").asText().equals("true");
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * Waits until every member not {@link #stop stopped} is healthy; fails with the members' logs if one is not within
     * {@code timeout}, or has exited.
     */
    public void awaitHealthy(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<Integer> sick = new ArrayList<>();
            for (int i = 0; i < MEMBERS; i++) {
                if (!isStopped(i) && (!isRunning(i) || !healthy(i))) {
                    sick.add(i);
                }
            }
            if (sick.isEmpty()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                StringBuilder b = new StringBuilder("etcd members " + sick + " not healthy within " + timeout + ":");
                for (int i : sick) {
                    b.append("\n--- ").append(name(i)).append(isRunning(i) ? " (running)" : " (not running)")
                            .append(", log tail:\n").append(tail(i, 20));
                }
                throw new IllegalStateException(b.toString());
            }
            sleep(100);
        }
    }

    /** Writes {@code key = value} through member {@code via}; fails if the cluster does not commit it in 2 s. */
    public void put(int via, String key, String value) throws IOException, InterruptedException {
        String body = JSON.createObjectNode().put("key", b64(key)).put("value", b64(value)).toString();
        JsonNode r = post(via, "/v3/kv/put", body);
        if (!r.has("header")) {
            throw new IOException("etcd " + name(via) + " refused the put of " + key + ": " + r);
        }
    }

    /** Reads {@code key} through member {@code via} (a linearizable read). */
    public Optional<String> get(int via, String key) throws IOException, InterruptedException {
        JsonNode r = post(via, "/v3/kv/range", JSON.createObjectNode().put("key", b64(key)).toString());
        if (!r.has("header")) {
            throw new IOException("etcd " + name(via) + " refused the read of " + key + ": " + r);
        }
        JsonNode kvs = r.path("kvs");
        if (kvs.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new String(Base64.getDecoder().decode(kvs.get(0).path("value").asText()),
                StandardCharsets.UTF_8));
    }

    private JsonNode post(int via, String path, String body) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(endpoint(via) + path))
                .timeout(Duration.ofSeconds(2)).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        return JSON.readTree(r.body());
    }

    /** The folder holding every member's data dir; {@link #close} removes it. */
    public Path dataRoot() {
        return dataRoot;
    }

    public Path log(int i) {
        return logDir.resolve("etcd-" + name(i) + ".log");
    }

    /** The last {@code lines} lines of member {@code i}'s log. */
    public String tail(int i, int lines) {
        try {
            List<String> all = Files.readAllLines(log(i));
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** Kills every member by pid and removes the data dirs; the logs stay in {@code logDir}. */
    @Override
    public synchronized void close() {
        closed = true;
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // already shutting down: this is the hook
        }
        for (int i = 0; i < MEMBERS; i++) {
            try {
                stop(i);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try (Stream<Path> all = Files.walk(dataRoot)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // already gone
        }
    }

    /** Kills the members of clusters whose test JVM is gone (by their data folder in argv) and removes the folder. */
    private static void sweepDeadClusters(Path parent) throws IOException {
        List<Path> roots;
        try (Stream<Path> s = Files.list(parent)) {
            roots = s.filter(p -> p.getFileName().toString().startsWith(DATA_PREFIX)).toList();
        }
        for (Path root : roots) {
            String[] owner;
            try {
                owner = Files.readString(root.resolve(OWNER)).strip().split(" ");
            } catch (IOException e) {
                continue; // being created, or not ours
            }
            boolean alive = owner.length == 2 && owner[0].matches("\\d+")
                    && QemuProcesses.stat(Long.parseLong(owner[0]))
                            .map(st -> !st.dead() && Long.toString(st.startTicks()).equals(owner[1])).orElse(false);
            if (alive) {
                continue;
            }
            String marker = root + "/";
            List<ProcessHandle> orphans = ProcessHandle.allProcesses()
                    .filter(h -> h.info().commandLine().map(c -> c.contains(marker)).orElse(false))
                    .filter(h -> h.info().command().map(c -> c.endsWith("/" + BINARY)).orElse(false))
                    .toList();
            orphans.forEach(ProcessHandle::destroyForcibly);
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            // a killed orphan is PID 1's child, and may stay a zombie (dead) for a while: wait on its state, not on it
            while (orphans.stream().anyMatch(h -> alive(h.pid())) && System.nanoTime() < deadline) {
                sleep(20);
            }
            try (Stream<Path> all = Files.walk(root)) {
                all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** True unless the process is gone or a zombie. */
    static boolean alive(long pid) {
        return QemuProcesses.stat(pid).map(st -> !st.dead()).orElse(false);
    }

    private String peerUrl(int i) {
        return "http://" + address + ":" + peerPorts[i];
    }

    private static String name(int i) {
        return "m" + i;
    }

    private static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    private static int[] freePorts(String address, int n) throws IOException {
        InetAddress a = InetAddress.getByName(address);
        List<ServerSocket> held = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                held.add(new ServerSocket(0, 1, a)); // held together, so the n ports differ
            }
            return held.stream().mapToInt(ServerSocket::getLocalPort).toArray();
        } finally {
            for (ServerSocket s : held) {
                s.close();
            }
        }
    }

    private static boolean onPath(String binary) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        return Stream.of(path.split(":")).anyMatch(d -> Files.isExecutable(Path.of(d, binary)));
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
