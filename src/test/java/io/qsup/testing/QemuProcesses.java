package io.qsup.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * The live QEMU processes whose argv mentions one folder (a test's unique temp dir), read straight from {@code /proc}
 * rather than from pidfiles, and grouped into VM instances.
 *
 * <p>A QEMU started with {@code -daemonize} forks twice: the launcher parent P forks C1, C1 calls {@code setsid()},
 * forks the daemon C2 and exits (a zombie of P until P exits), and P exits once C2 says it is ready. For that moment
 * P and C2 both live with the same argv while C2's parent is already PID 1, so the ppid chain alone would not join
 * them; C2's session id is C1's pid, and C1's parent is P. {@link Snapshot#instances} joins both links, so a launch
 * in progress counts as one instance. A zombie (state Z or X) is dead and never counted, and neither is a QEMU that
 * ended while the scan went on: a snapshot holds the QEMUs alive when it was complete.
 *
 * <p>Thread-safe: the only state is a cache of argv by (pid, start time); use one instance per thread anyway if the
 * scans must not contend.
 */
public final class QemuProcesses {
    private static final Path PROC = Path.of("/proc");

    /** The fields of {@code /proc/PID/stat} this class needs. */
    public record Stat(long pid, String comm, char state, long ppid, long session, long startTicks) {
        public boolean dead() {
            return state == 'Z' || state == 'X' || state == 'x';
        }

        /** Parses {@code /proc/PID/stat}; the comm sits in parentheses and may hold spaces and parentheses. */
        static Stat parse(String text) {
            int open = text.indexOf('(');
            int close = text.lastIndexOf(')');
            String[] rest = text.substring(close + 2).trim().split(" +");
            // rest[0] field 3 state, rest[1] field 4 ppid, rest[3] field 6 session, rest[19] field 22 starttime
            return new Stat(Long.parseLong(text.substring(0, open).trim()), text.substring(open + 1, close),
                    rest[0].charAt(0), Long.parseLong(rest[1]), Long.parseLong(rest[3]), Long.parseLong(rest[19]));
        }
    }

    /** One live QEMU process of ours; {@code vm} is the {@code -name guest=NAME} of its argv ("?" if none). */
    public record Qemu(String vm, Stat stat, List<String> argv) {
        public long pid() {
            return stat.pid();
        }

        @Override
        public String toString() {
            return "pid " + stat.pid() + " (ppid " + stat.ppid() + ", sid " + stat.session() + ", state " + stat.state()
                    + ", start " + stat.startTicks() + "): " + abbreviate(String.join(" ", argv), 240);
        }
    }

    /**
     * One VM instance: the QEMU processes that descend from one root (the launcher parent while a launch is in
     * progress, else the daemonized QEMU alone).
     */
    public record Instance(String vm, Qemu root, List<Qemu> members) {
        /** The member furthest from the root: the daemonized QEMU whose pid lands in the pidfile. */
        public Qemu leaf() {
            return members.get(members.size() - 1);
        }

        public List<Long> pids() {
            return members.stream().map(Qemu::pid).toList();
        }

        @Override
        public String toString() {
            return "instance of " + vm + " rooted at pid " + root.pid() + ": "
                    + members.stream().map(Qemu::toString).collect(Collectors.joining("; "));
        }
    }

    /** One scan: every live QEMU of ours, and every process's stat as read during the scan (zombies included). */
    public record Snapshot(long nanoTime, List<Qemu> qemus, Map<Long, Stat> stats) {
        /** The instances of each VM, by VM name (sorted); VMs without a live QEMU are absent. */
        public Map<String, List<Instance>> instances() {
            Map<String, List<Qemu>> byVm = new TreeMap<>();
            for (Qemu q : qemus) {
                byVm.computeIfAbsent(q.vm(), k -> new ArrayList<>()).add(q);
            }
            Map<String, List<Instance>> out = new TreeMap<>();
            byVm.forEach((vm, list) -> out.put(vm, group(vm, list)));
            return out;
        }

        public List<Instance> instances(String vm) {
            return instances().getOrDefault(vm, List.of());
        }

        private List<Instance> group(String vm, List<Qemu> list) {
            Map<Long, Qemu> byPid = new HashMap<>();
            list.forEach(q -> byPid.put(q.pid(), q));
            Map<Long, List<Qemu>> byRoot = new LinkedHashMap<>();
            for (Qemu q : list) {
                byRoot.computeIfAbsent(root(q, byPid).pid(), k -> new ArrayList<>()).add(q);
            }
            List<Instance> out = new ArrayList<>();
            for (Map.Entry<Long, List<Qemu>> e : byRoot.entrySet()) {
                List<Qemu> members = new ArrayList<>(e.getValue());
                members.sort(Comparator.comparingInt(q -> depth(q, byPid)));
                out.add(new Instance(vm, byPid.get(e.getKey()), members));
            }
            out.sort(Comparator.comparingLong(i -> i.root().pid()));
            return out;
        }

        /** The QEMU of the same VM this one was forked from, through the ppid or the setsid link; else null. */
        private Qemu parentOf(Qemu q, Map<Long, Qemu> byPid) {
            Qemu p = byPid.get(q.stat().ppid());
            if (p != null && p != q) {
                return p;
            }
            long sid = q.stat().session();
            if (sid != q.pid()) {
                Stat leader = stats.get(sid); // C1, usually a zombie whose parent is the launcher parent P
                if (leader != null) {
                    Qemu viaLeader = byPid.get(leader.ppid());
                    if (viaLeader != null && viaLeader != q) {
                        return viaLeader;
                    }
                }
            }
            return null;
        }

        private Qemu root(Qemu q, Map<Long, Qemu> byPid) {
            Qemu cur = q;
            for (int i = 0; i < 8; i++) { // the chain is at most P -> C1 -> C2; the bound guards against pid reuse
                Qemu p = parentOf(cur, byPid);
                if (p == null) {
                    return cur;
                }
                cur = p;
            }
            return cur;
        }

        private int depth(Qemu q, Map<Long, Qemu> byPid) {
            int d = 0;
            for (Qemu cur = parentOf(q, byPid); cur != null && d < 8; cur = parentOf(cur, byPid)) {
                d++;
            }
            return d;
        }
    }

    private record Key(long pid, long startTicks) {}

    private final String marker;
    private final Map<Key, List<String>> argvCache = new ConcurrentHashMap<>();

    /** @param dir the folder every QEMU of interest mentions in its argv (its pidfile, sockets, logs live there) */
    public QemuProcesses(Path dir) {
        this.marker = dir.toAbsolutePath().toString() + "/";
    }

    /** Reads every process's stat, and the argv of the live QEMUs, from /proc. */
    public Snapshot scan() {
        Map<Long, Stat> stats = new HashMap<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(PROC)) {
            for (Path d : dirs) {
                String name = d.getFileName().toString();
                if (!name.isEmpty() && Character.isDigit(name.charAt(0))) {
                    readStat(d).ifPresent(s -> stats.put(s.pid(), s));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc: " + e.getMessage(), e);
        }
        List<Qemu> qemus = new ArrayList<>();
        for (Stat s : stats.values()) {
            if (s.dead() || !s.comm().startsWith("qemu-system")) {
                continue;
            }
            Key k = new Key(s.pid(), s.startTicks());
            List<String> argv = argvCache.get(k);
            if (argv == null) {
                argv = cmdline(s.pid());
                if (argv.isEmpty()) {
                    continue; // ended between stat and cmdline
                }
                argvCache.put(k, argv); // a QEMU's argv never changes after exec, and comm says it has exec'd
            }
            if (argv.stream().anyMatch(a -> a.contains(marker))) {
                qemus.add(new Qemu(guestName(argv), s, argv));
            }
        }
        if (argvCache.size() > 10_000) {
            argvCache.clear();
        }
        // The reads above are not one instant. A launcher parent P read alive may exit before the scan reaches C1,
        // which PID 1 then reaps at once, leaving the daemon C2 without its link to P: two instances of one launch.
        // C1 goes only after P has exited, so reading each QEMU again once the scan is over drops that P.
        qemus.removeIf(q -> !stillAlive(q));
        qemus.sort(Comparator.comparingLong(Qemu::pid));
        return new Snapshot(System.nanoTime(), List.copyOf(qemus), stats);
    }

    /** The current stat of one process, or empty if it is gone. */
    public static Optional<Stat> stat(long pid) {
        return readStat(PROC.resolve(Long.toString(pid)));
    }

    /** True if the process still exists, is not a zombie, and is the same process (same start time) as {@code q}. */
    public static boolean stillAlive(Qemu q) {
        return stat(q.pid()).map(s -> !s.dead() && s.startTicks() == q.stat().startTicks()).orElse(false);
    }

    /**
     * Sends SIGKILL to one QEMU of ours, after checking the pid still names the same process (same start time), so a
     * reused pid is never hit.
     *
     * @return true if the signal was sent
     */
    public static boolean kill(Qemu q) {
        if (!stillAlive(q)) {
            return false;
        }
        return ProcessHandle.of(q.pid()).map(ProcessHandle::destroyForcibly).orElse(false);
    }

    /**
     * Kills every live QEMU whose argv mentions {@code dir}, by pid, and waits (up to {@code timeout}) until none is
     * left alive; scans again each round, since a launch in progress may fork a new one.
     *
     * @return the QEMUs that were killed
     */
    public static List<Qemu> killAll(Path dir, Duration timeout) throws InterruptedException {
        QemuProcesses procs = new QemuProcesses(dir);
        List<Qemu> killed = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<Qemu> live = procs.scan().qemus();
            if (live.isEmpty() || System.nanoTime() > deadline) {
                return killed;
            }
            for (Qemu q : live) {
                if (kill(q)) {
                    killed.add(q);
                }
            }
            Thread.sleep(50);
        }
    }

    private static Optional<Stat> readStat(Path pidDir) {
        try {
            return Optional.of(Stat.parse(Files.readString(pidDir.resolve("stat"), StandardCharsets.UTF_8)));
        } catch (IOException | RuntimeException e) {
            return Optional.empty(); // gone between listing and reading
        }
    }

    private static List<String> cmdline(long pid) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(PROC.resolve(Long.toString(pid)).resolve("cmdline"));
        } catch (IOException e) {
            return List.of();
        }
        List<String> args = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < raw.length; i++) {
            if (raw[i] == 0) {
                args.add(new String(raw, start, i - start, StandardCharsets.UTF_8));
                start = i + 1;
            }
        }
        if (start < raw.length) {
            args.add(new String(raw, start, raw.length - start, StandardCharsets.UTF_8));
        }
        return List.copyOf(args);
    }

    /** {@code -name guest=web1,debug-threads=on} gives web1; QEMU escapes ',' in values as ',,'. */
    static String guestName(List<String> argv) {
        for (int i = 0; i + 1 < argv.size(); i++) {
            if (argv.get(i).equals("-name") || argv.get(i).equals("--name")) {
                String v = argv.get(i + 1);
                v = v.startsWith("guest=") ? v.substring("guest=".length()) : v;
                StringBuilder name = new StringBuilder();
                for (int j = 0; j < v.length(); j++) {
                    char c = v.charAt(j);
                    if (c == ',') {
                        if (j + 1 < v.length() && v.charAt(j + 1) == ',') {
                            name.append(',');
                            j++;
                            continue;
                        }
                        break;
                    }
                    name.append(c);
                }
                return name.toString();
            }
        }
        return "?";
    }

    private static String abbreviate(String s, int max) {
        return s.length() > max ? s.substring(0, max) + "..." : s;
    }
}
