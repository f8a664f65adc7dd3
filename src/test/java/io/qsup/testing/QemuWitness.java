package io.qsup.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * An independent witness of "never two QEMUs running guest code for one VM": every 50 ms it finds every QEMU of the
 * run in {@code /proc} (by the run's base folder in their argv, through {@link QemuProcesses}, so a daemonizing launch
 * is one instance), groups them by {@code -name guest=NAME}, asks each whether it is running or paused, and keeps per
 * VM the largest number of unpaused QEMUs seen at one instant, with when, plus a timeline of every change.
 *
 * <p>How it asks: through a second QMP monitor of its own in each QEMU, which {@link #monitorArgs} adds to a
 * definition's {@code extra-args}. qsupd's own monitor serves one client at a time, so the witness must not touch it.
 * The path is relative ({@code witness-NAME.sock}): QEMU binds it against the directory it was started in, before
 * {@code -daemonize} changes to {@code /} (checked on QEMU 7.2), and qsupd starts QEMU in its own working directory;
 * so the one definition every host runs gives a socket per host, under that host's folder, and the witness resolves
 * the path against the host folder that the QEMU's argv names. Reading vCPU threads in {@code /proc} cannot tell a
 * paused QEMU from a running, idle one under TCG: both vCPU threads sleep in a futex wait, state S, with no CPU time
 * (measured on QEMU 7.2 with the test guest); only their wake-ups over seconds differ, never at one instant.
 *
 * <p>Since QEMU unlinks and rebinds a socket path another QEMU already holds, a path may lead to another QEMU than
 * the one that named it; the witness checks the peer's pid (SO_PEERCRED) against the instance's pids, and keeps each
 * connection open for the QEMU's life. A QEMU it cannot (yet) ask is {@code unknown}, and an unknown QEMU counts as
 * unpaused (a witness of safety must not under-count), unless its argv starts it paused ({@code -S}, {@code
 * -incoming}): its monitor is bound before the guest can run, so it cannot have been resumed unseen; or unless it
 * closed the witness's connection (it is exiting) after its last answer said paused, with no {@code RESUME} event
 * after that answer ({@code ended-paused}): QEMU sends every event to every monitor, in order, so it did not run again
 * (a migration source quitting in {@code postmigrate} is one).
 *
 * <p>Threading: one platform sampler thread (junixsocket's blocking calls must not run on virtual threads) owns the
 * connections; the results are published under {@code this}.
 */
public final class QemuWitness implements AutoCloseable {
    public static final long PERIOD_MS = 50;
    /**
     * How long one QEMU may take to answer. A migration target's monitor stalls for up to about half a second while it
     * loads the VM's state under TCG; an answer that does not come makes it {@code unknown}, counted unpaused, so the
     * bound is well above that stall. A slow answer delays the rest of that sample, never its truth.
     */
    private static final int ASK_TIMEOUT_MS = 2000;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What one QEMU was at one sample: {@code status} as query-status says it, or "unknown" / "unknown-paused". */
    public record Seen(long pid, String host, String status, boolean unpaused) {
        @Override
        public String toString() {
            return "pid " + pid + (host == null ? "" : "@" + host) + " " + status;
        }
    }

    /** One VM at one instant: its QEMUs, and how many of them were unpaused. */
    public record Moment(Instant at, String vm, List<Seen> qemus) {
        public int unpaused() {
            return (int) qemus.stream().filter(Seen::unpaused).count();
        }

        @Override
        public String toString() {
            return at + " " + vm + " unpaused=" + unpaused() + " " + qemus;
        }
    }

    private record Key(long pid, long startTicks) {}

    private final QemuProcesses procs;
    private final Map<Path, String> hostDirs; // host folder -> host name
    private final Map<Key, Monitor> monitors = new HashMap<>(); // sampler thread only
    private final java.util.Set<Key> everAsked = new java.util.HashSet<>(); // sampler thread only
    private final Map<String, Moment> worst = new TreeMap<>();
    private final Map<String, Moment> last = new TreeMap<>();
    private final List<Moment> timeline = new ArrayList<>();
    private long samples;
    private final Thread sampler;

    /**
     * @param base     the folder every QEMU of the run names in its argv
     * @param hostDirs host name to the working directory its qsupd (hence its QEMUs) runs in
     */
    public QemuWitness(Path base, Map<String, Path> hostDirs) {
        this.procs = new QemuProcesses(base);
        this.hostDirs = new HashMap<>();
        hostDirs.forEach((h, d) -> this.hostDirs.put(d.toAbsolutePath(), h));
        this.sampler = Thread.ofPlatform().daemon().name("qemu-witness").unstarted(this::run);
    }

    /** Starts a witness sampling in the background. */
    public static QemuWitness start(Path base, Map<String, Path> hostDirs) {
        QemuWitness w = new QemuWitness(base, hostDirs);
        w.sampler.start();
        return w;
    }

    /** The QEMU arguments of the witness's own monitor, for a definition's {@code extra-args}. */
    public static List<String> monitorArgs(String vm) {
        return List.of("-qmp", "unix:" + socketName(vm) + ",server=on,wait=off");
    }

    /** The same as YAML lines for a definition. */
    public static String monitorYaml(String vm) {
        return "extra-args: [" + monitorArgs(vm).stream().map(a -> "\"" + a + "\"").collect(Collectors.joining(", "))
                + "]";
    }

    static String socketName(String vm) {
        return "witness-" + vm + ".sock";
    }

    /** The most QEMUs of {@code vm} unpaused at one sample so far (0 if none was ever seen running). */
    public synchronized int maxUnpaused(String vm) {
        Moment m = worst.get(vm);
        return m == null ? 0 : m.unpaused();
    }

    /** The sample at which {@code vm} had the most unpaused QEMUs (the first such), if any QEMU of it was seen. */
    public synchronized Optional<Moment> worst(String vm) {
        return Optional.ofNullable(worst.get(vm));
    }

    /** The latest sample of {@code vm}; absent if it has no QEMU now. */
    public synchronized Optional<Moment> now(String vm) {
        return Optional.ofNullable(last.get(vm));
    }

    /** Every VM whose maximum was above 1, with its worst moment. */
    public synchronized Map<String, Moment> doubleRuns() {
        Map<String, Moment> out = new TreeMap<>();
        worst.forEach((vm, m) -> {
            if (m.unpaused() > 1) {
                out.put(vm, m);
            }
        });
        return out;
    }

    /** Every change of any VM's QEMUs or their states, in order. */
    public synchronized List<Moment> timeline() {
        return List.copyOf(timeline);
    }

    public synchronized String timelineText() {
        return timeline.stream().map(Moment::toString).collect(Collectors.joining("\n"));
    }

    public synchronized long samples() {
        return samples;
    }

    /** Fails, printing the timeline, if any VM ever had two unpaused QEMUs at one sample. */
    public void assertNeverTwoUnpaused() {
        Map<String, Moment> doubles = doubleRuns();
        if (!doubles.isEmpty()) {
            throw new AssertionError("two unpaused QEMUs for one VM: " + doubles.values() + "\ntimeline:\n"
                    + timelineText());
        }
    }

    /** Waits until one sample after now has been taken, so a test can read a state it just caused. */
    public void awaitNextSample() throws InterruptedException {
        long target = samples() + 2; // the sample in flight may have read /proc before the caller's change
        while (samples() < target) {
            if (!sampler.isAlive()) {
                throw new IllegalStateException("the witness's sampler thread has ended");
            }
            Thread.sleep(10);
        }
    }

    private void run() {
        try {
            while (!Thread.currentThread().isInterrupted()) {
                long started = System.nanoTime();
                sample();
                long sleep = PERIOD_MS - (System.nanoTime() - started) / 1_000_000;
                if (sleep > 0) {
                    Thread.sleep(sleep);
                }
            }
        } catch (InterruptedException e) {
            // closing
        } finally {
            monitors.values().forEach(Monitor::close);
            monitors.clear();
        }
    }

    private void sample() {
        Instant at = Instant.now();
        QemuProcesses.Snapshot snap = procs.scan();
        Map<String, List<QemuProcesses.Instance>> byVm = snap.instances();
        Map<String, Moment> moments = new TreeMap<>();
        java.util.Set<Key> live = new java.util.HashSet<>();
        byVm.forEach((vm, instances) -> {
            List<Seen> seen = new ArrayList<>();
            for (QemuProcesses.Instance inst : instances) {
                QemuProcesses.Qemu leaf = inst.leaf();
                Key k = new Key(leaf.pid(), leaf.stat().startTicks());
                live.add(k);
                seen.add(ask(k, vm, inst));
            }
            seen.sort(Comparator.comparingLong(Seen::pid));
            moments.put(vm, new Moment(at, vm, List.copyOf(seen)));
        });
        everAsked.retainAll(live);
        monitors.entrySet().removeIf(e -> {
            if (!live.contains(e.getKey())) {
                e.getValue().close();
                return true;
            }
            return false;
        });
        synchronized (this) {
            samples++;
            for (Moment m : moments.values()) {
                Moment before = last.get(m.vm());
                if (before == null || !before.qemus().equals(m.qemus())) {
                    timeline.add(m);
                }
                Moment w = worst.get(m.vm());
                if (w == null || m.unpaused() > w.unpaused()) {
                    worst.put(m.vm(), m);
                }
            }
            for (String vm : last.keySet()) {
                if (!moments.containsKey(vm)) {
                    timeline.add(new Moment(at, vm, List.of()));
                }
            }
            last.clear();
            last.putAll(moments);
        }
    }

    private Seen ask(Key k, String vm, QemuProcesses.Instance inst) {
        QemuProcesses.Qemu leaf = inst.leaf();
        String host = hostOf(leaf.argv());
        // once asked, a QEMU may have been resumed, so only one never asked can count on its paused start
        boolean startsPaused = !everAsked.contains(k) && (leaf.argv().contains("-S") || leaf.argv().contains("-incoming"));
        Monitor m = monitors.get(k);
        if (m == null) {
            Path sock = socketOf(leaf.argv(), host);
            if (sock != null) {
                m = Monitor.open(sock, inst.pids());
                if (m != null) {
                    monitors.put(k, m);
                }
            }
        }
        if (m != null && m.eof) {
            // its monitor closed: QEMU is exiting. Seen paused last, with no RESUME event after that on this
            // connection before the close (QEMU sends every event to every monitor, in order), it never ran again
            if (m.endedPaused()) {
                return new Seen(leaf.pid(), host, "ended-paused", false);
            }
            monitors.remove(k);
            m.close();
            m = null;
        }
        if (m != null) {
            Optional<JsonNode> status = m.queryStatus();
            if (status.isPresent()) {
                everAsked.add(k);
                boolean running = status.get().path("running").asBoolean(false);
                return new Seen(leaf.pid(), host, status.get().path("status").asText("?"), running);
            }
            if (m.endedPaused()) {
                return new Seen(leaf.pid(), host, "ended-paused", false); // kept, so later samples say so too
            }
            m.close();
            monitors.remove(k);
        }
        return new Seen(leaf.pid(), host, startsPaused ? "unknown-paused" : "unknown", !startsPaused);
    }

    private String hostOf(List<String> argv) {
        String best = null;
        int bestLen = -1;
        for (Map.Entry<Path, String> e : hostDirs.entrySet()) {
            String dir = e.getKey() + "/";
            if (dir.length() > bestLen && argv.stream().anyMatch(a -> a.contains(dir))) {
                best = e.getValue();
                bestLen = dir.length();
            }
        }
        return best;
    }

    /** The witness monitor's socket: from {@code -qmp unix:PATH,...}, a relative PATH resolved in the host's folder. */
    private Path socketOf(List<String> argv, String host) {
        for (int i = 0; i + 1 < argv.size(); i++) {
            String v = argv.get(i + 1);
            if (argv.get(i).equals("-qmp") && v.startsWith("unix:") && v.contains("witness-")) {
                Path p = Path.of(v.substring("unix:".length()).split(",", 2)[0]);
                if (p.isAbsolute()) {
                    return p;
                }
                if (host == null) {
                    return null;
                }
                for (Map.Entry<Path, String> e : hostDirs.entrySet()) {
                    if (e.getValue().equals(host)) {
                        return e.getKey().resolve(p);
                    }
                }
            }
        }
        return null;
    }

    /** Stops sampling and closes every witness monitor connection. */
    @Override
    public void close() throws InterruptedException {
        sampler.interrupt();
        sampler.join(5000);
    }

    /** One witness-only QMP session, line-framed (QEMU sends one JSON object per line). Sampler thread only. */
    private static final class Monitor {
        private final AFUNIXSocket socket;
        private final BufferedReader in;
        private final OutputStream out;
        private long nextId = 1;
        /** The last status answered on this connection: running or not; null before the first. */
        private Boolean lastRunning;
        /** A RESUME event came on this connection after the last status answered. */
        private boolean resumedSince;
        /** QEMU closed this connection (it is exiting). */
        private boolean eof;

        private Monitor(AFUNIXSocket socket) throws IOException {
            this.socket = socket;
            this.in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            this.out = socket.getOutputStream();
        }

        /** Connects and negotiates, or returns null (not bound yet, busy, or bound by another QEMU than ours). */
        static Monitor open(Path sock, List<Long> pids) {
            if (!Files.exists(sock)) {
                return null;
            }
            AFUNIXSocket s = null;
            try {
                s = AFUNIXSocket.newInstance();
                s.connect(AFUNIXSocketAddress.of(sock), ASK_TIMEOUT_MS);
                s.setSoTimeout(ASK_TIMEOUT_MS);
                long peer = s.getPeerCredentials().getPid();
                if (!pids.contains(peer)) {
                    s.close();
                    return null; // the path now belongs to another QEMU, which gets asked through its own entry
                }
                Monitor m = new Monitor(s);
                JsonNode greeting = JSON.readTree(m.in.readLine());
                if (!greeting.has("QMP")) {
                    m.close();
                    return null;
                }
                if (m.call("qmp_capabilities").isEmpty()) {
                    m.close();
                    return null;
                }
                return m;
            } catch (IOException | RuntimeException e) {
                if (s != null) {
                    try {
                        s.close();
                    } catch (IOException ignored) {
                        // nothing to keep
                    }
                }
                return null;
            }
        }

        Optional<JsonNode> queryStatus() {
            Optional<JsonNode> st = call("query-status");
            st.ifPresent(j -> {
                lastRunning = j.path("running").asBoolean(false);
                resumedSince = false;
            });
            return st;
        }

        /** QEMU closed the connection while paused, as the last status said, and sent no RESUME after it. */
        boolean endedPaused() {
            return eof && Boolean.FALSE.equals(lastRunning) && !resumedSince;
        }

        private Optional<JsonNode> call(String command) {
            long id = nextId++;
            try {
                out.write(("{\"execute\":\"" + command + "\",\"id\":" + id + "}\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
                while (true) {
                    String line = in.readLine();
                    if (line == null) {
                        eof = true;
                        return Optional.empty();
                    }
                    JsonNode msg = JSON.readTree(line);
                    if ("RESUME".equals(msg.path("event").asText())) {
                        resumedSince = true;
                    }
                    if (msg.path("id").asLong(-1) == id) {
                        return msg.has("return") ? Optional.of(msg.get("return")) : Optional.empty();
                    }
                    // an event, or a late reply to an earlier call: skip it
                }
            } catch (SocketTimeoutException e) {
                return Optional.empty();
            } catch (IOException e) {
                eof = true; // reset by QEMU: it closed the connection with our request unread, as it exits
                return Optional.empty();
            } catch (RuntimeException e) {
                return Optional.empty();
            }
        }

        void close() {
            try {
                socket.close();
            } catch (IOException e) {
                // already closed
            }
        }
    }
}
