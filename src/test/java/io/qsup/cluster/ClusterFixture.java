package io.qsup.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.cli.QsupMain;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpFraming;
import io.qsup.testing.ClusterLab;
import io.qsup.testing.LabHost;
import io.qsup.testing.NetLab;
import io.qsup.testing.QemuWitness;
import io.qsup.testing.TestGuest;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * The cluster scenarios' lab: three namespaced qsupd hosts in cluster mode on a real three-member etcd (a
 * {@link ClusterLab} with a capacity and lease TTL of the test's choosing), plus the steps the scenarios share:
 * applying definitions with the real {@code qsup apply}, reading where each VM's QEMU runs from the
 * {@link QemuWitness} (never from qsupd's own word), reading keys in etcd, and the times of qsupd log lines. The
 * scenario tests and {@code io.qsup.bench.ClusterBench} both use it.
 *
 * <p>Not thread-safe: one thread drives a fixture.
 */
public final class ClusterFixture implements AutoCloseable {
    /** The etcd prefix of the cluster's keys (the layout of the cluster contract). */
    public static final String PREFIX = "/qsup/v1/";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration POLL = Duration.ofMillis(50);
    private static final Duration SLOW_START = Duration.ofMinutes(4);

    private final ClusterLab lab;
    private final Duration ttl;
    private final AtomicInteger defDirs = new AtomicInteger();

    private ClusterFixture(ClusterLab lab, Duration ttl) {
        this.lab = lab;
        this.ttl = ttl;
    }

    /** Why the cluster scenarios cannot run here, or empty when they can. */
    public static Optional<String> cannotRun() {
        if (!NetLab.canRun()) {
            return Optional.of("network namespaces need root and ip(8); not run as this user");
        }
        if (!onPath("etcd")) {
            return Optional.of("etcd is not installed; scripts/setup installs etcd-server");
        }
        return Optional.empty();
    }

    /**
     * A lab of hosts h1..h3 in cluster mode with lease TTL {@code ttl}, each offering {@code memory} and {@code cpus}
     * to cluster VMs; no qsupd is started yet.
     */
    public static ClusterFixture create(Duration ttl, String memory, int cpus) throws IOException {
        ClusterLab lab = ClusterLab.start(3, true, ttl);
        try {
            for (LabHost h : lab.hosts()) {
                h.writeSettings(LabHost.clusterYaml(lab.etcd().endpoints(), h.name(), lab.net().address(h.name()), ttl,
                        memory, cpus));
            }
            return new ClusterFixture(lab, ttl);
        } catch (IOException | RuntimeException e) {
            lab.close();
            throw e;
        }
    }

    private static boolean onPath(String binary) {
        return Stream.of(System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":"))
                .anyMatch(d -> Files.isExecutable(Path.of(d, binary)));
    }

    public ClusterLab lab() {
        return lab;
    }

    public Duration ttl() {
        return ttl;
    }

    public LabHost host(String name) {
        return lab.host(name);
    }

    public QemuWitness witness() {
        return lab.witness();
    }

    /** Starts qsupd on each named host, and waits until each has registered in etcd. */
    public void startHosts(String... names) throws Exception {
        // in parallel: each start waits for its own qsupd, and a loaded machine gives three JVMs more of its time
        List<Thread> starts = new ArrayList<>();
        List<Throwable> failed = java.util.Collections.synchronizedList(new ArrayList<>());
        for (String n : names) {
            starts.add(Thread.ofPlatform().name("start " + n).start(() -> {
                try {
                    startSlowly(lab.host(n));
                } catch (Throwable e) {
                    failed.add(e);
                }
            }));
        }
        for (Thread t : starts) {
            t.join();
        }
        if (!failed.isEmpty()) {
            AssertionError e = new AssertionError("qsupd did not start: " + failed.getFirst().getMessage(),
                    failed.getFirst());
            failed.stream().skip(1).forEach(e::addSuppressed);
            throw e;
        }
        for (String n : names) {
            await("host " + n + " registered in etcd", Duration.ofSeconds(60),
                    () -> etcdJson("hosts/" + n).map(j -> true));
            // a restarted host's registration may be its predecessor's, still under the resumed lease: placement and
            // moves take it only once its own qsupd holds a key in the election
            await("host " + n + "'s qsupd a candidate", Duration.ofSeconds(60), () -> {
                try {
                    for (JsonNode h : control(lab.host(n), "query-hosts")) {
                        if (h.path("name").asText().equals(n) && h.path("qsupd").asText().equals("running")) {
                            return Optional.of(true);
                        }
                    }
                } catch (io.qsup.qmp.QmpException notYet) {
                    // its view of the cluster is not there yet
                }
                return Optional.empty();
            });
        }
    }

    /**
     * Starts a host's qsupd; on a machine so loaded that it misses the lab's own start-up bound, keeps waiting for the
     * same qsupd (never a second one) up to {@link #SLOW_START}, since what the scenarios measure comes later.
     */
    private static void startSlowly(LabHost h) throws Exception {
        try {
            h.start();
        } catch (AssertionError e) {
            if (h.qsupd() == null || !h.qsupd().process().isAlive()) {
                throw e;
            }
            System.err.println("qsupd of " + h.name() + " slow to start; waiting up to " + SLOW_START);
            h.qsupd().awaitLog("qsupd ready", SLOW_START);
        }
    }

    /**
     * A cluster VM definition of the test guest: accel tcg (qsupd's setting), 128 MiB, 1 vCPU, no disk, with the
     * witness's monitor; {@code extra} is more YAML lines.
     */
    public static String vmYaml(String name, String extra) {
        TestGuest guest = TestGuest.get();
        return """
                name: %s
                memory: 128M
                cpus: 1
                machine: q35
                kernel: %s
                initrd: %s
                append: "%s"
                restart: no
                %s
                %s
                """.formatted(name, guest.kernel(), guest.initrd(), guest.append(), QemuWitness.monitorYaml(name),
                extra);
    }

    /** Writes one {@code NAME.yaml} per entry into a new folder of the lab, for {@code qsup apply DIR}. */
    public Path writeDefinitions(Map<String, String> yamlByName) throws IOException {
        Path dir = lab.base().resolve("defs-" + defDirs.incrementAndGet());
        Files.createDirectories(dir);
        for (Map.Entry<String, String> e : yamlByName.entrySet()) {
            Files.writeString(dir.resolve(e.getKey() + ".yaml"), e.getValue());
        }
        return dir;
    }

    /** What one run of the {@code qsup} CLI printed and returned. */
    public record Cli(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- out\n" + out + "--- err\n" + err;
        }
    }

    /** Runs the real {@code qsup} CLI in process against host {@code via}'s control socket. */
    public Cli qsup(LabHost via, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--socket");
        all.add(via.controlSocket().toString());
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = QsupMain.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(all.toArray(String[]::new));
        return new Cli(code, out.toString(), err.toString());
    }

    /** {@code qsup apply DIR} through {@code via}; fails with the CLI's output unless it succeeds. */
    public Cli apply(LabHost via, Path dir) {
        Cli r = qsup(via, "apply", dir.toString());
        if (r.code() != 0) {
            throw new AssertionError("qsup apply " + dir + " via " + via.name() + " failed: " + r);
        }
        return r;
    }

    /** A control command on a host's socket. */
    public JsonNode control(LabHost h, String command) throws Exception {
        try (QmpClient c = h.control()) {
            return c.execute(command, QmpFraming.mapper().createObjectNode());
        }
    }

    /** {@code query-vm} of {@code vm} on host {@code h}: what {@code qsup status VM} shows there. */
    public JsonNode queryVm(LabHost h, String vm) throws Exception {
        try (QmpClient c = h.control()) {
            return c.execute("query-vm", QmpFraming.mapper().createObjectNode().put("name", vm));
        }
    }

    /** The VM object {@code query-vm} would give for {@code vm}, read from {@code query-vms} on host {@code h}. */
    public Optional<JsonNode> listed(LabHost h, String vm) throws Exception {
        for (JsonNode o : control(h, "query-vms")) {
            if (vm.equals(o.path("name").asText())) {
                return Optional.of(o);
            }
        }
        return Optional.empty();
    }

    /** The leader as {@code query-hosts} on host {@code via} says, if one is flagged. */
    public Optional<String> leader(LabHost via) throws Exception {
        for (JsonNode h : control(via, "query-hosts")) {
            if (h.path("leader").asBoolean()) {
                return Optional.of(h.path("name").asText());
            }
        }
        return Optional.empty();
    }

    /** The JSON value of {@code PREFIX + key} in etcd (a linearizable read through a member that is up). */
    public Optional<JsonNode> etcdJson(String key) throws IOException, InterruptedException {
        IOException last = null;
        for (int i = 0; i < 3; i++) {
            if (!lab.etcd().isRunning(i)) {
                continue;
            }
            try {
                Optional<String> v = lab.etcd().get(i, PREFIX + key);
                return v.isEmpty() ? Optional.empty() : Optional.of(JSON.readTree(v.get()));
            } catch (IOException e) {
                last = e;
            }
        }
        throw last != null ? last : new IOException("no etcd member is running");
    }

    /** The host that claims {@code vm} in etcd ({@code running/VM}), if any. */
    public Optional<String> claimedBy(String vm) throws IOException, InterruptedException {
        return etcdJson("running/" + vm).map(j -> j.path("host").asText());
    }

    /** The hosts on which the witness sees a QEMU of {@code vm} now (running, paused or not yet answering). */
    public List<String> qemuHosts(String vm) {
        return witness().now(vm).map(m -> m.qemus().stream().map(QemuWitness.Seen::host).toList()).orElse(List.of());
    }

    /**
     * Waits until the witness sees QEMUs of {@code vm} on exactly {@code hosts}, in that order (none at all when no
     * host is named); fails naming {@code what}, as {@link #await} does.
     */
    public void awaitQemusOn(String what, Duration timeout, String vm, String... hosts) throws Exception {
        List<String> want = List.of(hosts);
        await(what, timeout, () -> qemuHosts(vm).equals(want) ? Optional.of(true) : Optional.empty());
    }

    /** The one host on which the witness sees {@code vm}'s QEMU running now, if exactly one QEMU of it exists. */
    public Optional<String> runningOn(String vm) {
        Optional<QemuWitness.Moment> m = witness().now(vm);
        if (m.isEmpty() || m.get().qemus().size() != 1) {
            return Optional.empty();
        }
        QemuWitness.Seen s = m.get().qemus().getFirst();
        return "running".equals(s.status()) ? Optional.ofNullable(s.host()) : Optional.empty();
    }

    /** The pid of {@code vm}'s one QEMU, as the witness sees it now. */
    public Optional<Long> qemuPid(String vm) {
        return witness().now(vm).filter(m -> m.qemus().size() == 1).map(m -> m.qemus().getFirst().pid());
    }

    /** Polls {@code probe} until it gives a value; fails naming {@code what}, with the timeline and logs. */
    public <T> T await(String what, Duration timeout, Probe<T> probe) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Exception lastError = null;
        while (true) {
            try {
                Optional<T> v = probe.get();
                if (v.isPresent()) {
                    return v.get();
                }
            } catch (IOException e) {
                lastError = e; // etcd or a control socket briefly not answering: keep polling
            }
            if (System.nanoTime() > deadline) {
                AssertionError e = new AssertionError("not within " + timeout + ": " + what + "\n" + diagnostics());
                if (lastError != null) {
                    e.addSuppressed(lastError);
                }
                throw e;
            }
            Thread.sleep(POLL.toMillis());
        }
    }

    /** Waits until the witness sees each VM running on exactly one host; returns the hosts, by VM. */
    public Map<String, String> awaitRunning(Duration timeout, String... vms) throws Exception {
        Map<String, String> on = new java.util.TreeMap<>();
        for (String vm : vms) {
            on.put(vm, await(vm + " running on one host", timeout, () -> runningOn(vm)));
        }
        return on;
    }

    /** A step that may not have its answer yet. */
    public interface Probe<T> {
        Optional<T> get() throws Exception;
    }

    /** The timeline, every host's qsupd log and the etcd keys, for a failure message. */
    public String diagnostics() {
        StringBuilder b = new StringBuilder("--- witness timeline\n").append(witness().timelineText()).append('\n');
        b.append(lab.logs());
        return b.toString();
    }

    /**
     * The time of the first line of host {@code h}'s qsupd logs that holds {@code text} and was written at or after
     * {@code after} (log lines carry {@code HH:mm:ss.SSS} in the machine's zone), if any.
     */
    public Optional<Instant> logTime(LabHost h, String text, Instant after) throws IOException {
        Path logs = h.dir().resolve("log");
        if (!Files.isDirectory(logs)) {
            return Optional.empty();
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(logs)) {
            files = s.filter(p -> p.getFileName().toString().startsWith("qsupd-")).sorted().toList();
        }
        LocalDate today = LocalDate.now(ZoneId.systemDefault());
        // a log line's time has millisecond resolution: compare against the instant truncated the same way
        Instant from = after.truncatedTo(java.time.temporal.ChronoUnit.MILLIS);
        for (Path f : files) {
            for (String line : Files.readAllLines(f)) {
                if (!line.contains(text) || line.length() < 12) {
                    continue;
                }
                try {
                    Instant at = LocalTime.parse(line.substring(0, 12)).atDate(today)
                            .atZone(ZoneId.systemDefault()).toInstant();
                    if (!at.isBefore(from)) {
                        return Optional.of(at);
                    }
                } catch (DateTimeParseException e) {
                    // a continuation line (stack trace): no time of its own
                }
            }
        }
        return Optional.empty();
    }

    /**
     * The witness's moments of {@code vm} from {@code from} on, in order (each one a change of its QEMUs or their
     * states).
     */
    public List<QemuWitness.Moment> momentsSince(String vm, Instant from) {
        return witness().timeline().stream().filter(m -> m.vm().equals(vm) && !m.at().isBefore(from)).toList();
    }

    /** Moments from {@code from} on at which any VM had more than one unpaused QEMU. */
    public List<QemuWitness.Moment> doubleRunsSince(Instant from) {
        return witness().timeline().stream().filter(m -> !m.at().isBefore(from) && m.unpaused() > 1).toList();
    }

    static String ms(Duration d) {
        return d.toMillis() + " ms";
    }

    @Override
    public void close() {
        lab.close();
    }
}
