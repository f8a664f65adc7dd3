package io.qsup.vm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Set;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Looks at processes through {@code /proc} and sends them signals. A QEMU started with {@code -daemonize} is not our
 * child, so {@code waitpid} is not available: liveness comes from {@code /proc/PID/stat}, where state {@code Z} already
 * means dead (PID 1 may reap late; never wait for the entry to vanish).
 *
 * <p>Stateless and thread-safe.
 */
public final class ProcessInspector {
    private final Path proc;

    /** Signals qsupd sends. */
    public enum Signal {
        TERM, KILL, STOP, CONT
    }

    public ProcessInspector() {
        this(Path.of("/proc"));
    }

    /** For tests: a different /proc root. */
    public ProcessInspector(Path procRoot) {
        this.proc = procRoot;
    }

    /** The stat of a process, or empty if there is no such process. */
    public Optional<ProcStat> stat(long pid) {
        try {
            return Optional.of(ProcStat.parse(Files.readString(proc.resolve(Long.toString(pid)).resolve("stat"))));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            // ESRCH while reading: the process went away between open and read
            return Optional.empty();
        }
    }

    /** True if the process exists and has not ended (a zombie counts as ended). */
    public boolean isAlive(long pid) {
        return stat(pid).map(s -> !s.isDead()).orElse(false);
    }

    /** The argv of a process from {@code /proc/PID/cmdline} (NUL-separated); empty if gone or a kernel thread. */
    public List<String> cmdline(long pid) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(proc.resolve(Long.toString(pid)).resolve("cmdline"));
        } catch (IOException e) {
            return List.of();
        }
        return split(raw);
    }

    private static List<String> split(byte[] raw) {
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
        return args;
    }

    /**
     * True if {@code pid} is a live QEMU of VM {@code vmName}: its argv names the VM with {@code -name guest=NAME} (or
     * {@code -name NAME}) and mentions this VM's pidfile or QMP socket path. Both must match, so a reused pid that now
     * belongs to another program, or to another VM's QEMU, is never taken for this VM.
     */
    public boolean belongsTo(long pid, String vmName, Path pidFile, Path qmpSocket) {
        if (!isAlive(pid)) {
            return false;
        }
        return argvMatches(cmdline(pid), vmName, pidFile, qmpSocket);
    }

    /**
     * The live QEMUs of one VM found in {@code /proc}.
     *
     * @param serving  processes that hold the VM's listening QMP socket: running QEMUs of this VM
     * @param starting processes with the VM's argv that hold no such socket: a {@code -daemonize} parent waiting for its
     *                 child, or a QEMU still initialising; they become one of {@code serving} or end within moments
     */
    public record Instances(List<Long> serving, List<Long> starting) {
        public boolean isEmpty() {
            return serving.isEmpty() && starting.isEmpty();
        }
    }

    /**
     * Every live QEMU of VM {@code vmName} in {@code /proc}, found by its argv markers whatever its pidfile says (a
     * lost, emptied or garbled pidfile must never hide a running QEMU). A {@code -daemonize} launch forks twice, and
     * for a moment the waiting parent and the daemonized grandchild both carry the argv, unrelated by ppid; only the
     * grandchild binds the QMP socket, which tells them apart. Sorted by pid.
     */
    public Instances findInstances(String vmName, Path pidFile, Path qmpSocket) {
        return findInstances(scan(), vmName, pidFile, qmpSocket);
    }

    /**
     * The argv of every process in {@code /proc} but this one, read once: {@link #findInstances(Scan, String, Path,
     * Path)} with it looks for many VMs' QEMUs at the cost of one pass. qsupd's start-up adoption shares one, where
     * each VM without a live pidfile used to read every process's cmdline of its own (3–4 ms each on a loaded host).
     * It ages like any look at {@code /proc}: a process started after it is not in it.
     */
    public Scan scan() {
        List<Scan.Entry> out = new ArrayList<>();
        long self = ProcessHandle.current().pid();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(proc)) {
            for (Path e : entries) {
                long pid = numeric(e.getFileName().toString());
                if (pid <= 0 || pid == self) {
                    continue;
                }
                try {
                    out.add(new Scan.Entry(pid, Files.readAllBytes(e.resolve("cmdline"))));
                } catch (IOException gone) {
                    // ended between the listing and the read
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + proc, e);
        }
        return new Scan(List.copyOf(out));
    }

    /**
     * A {@link #scan()} made when first asked for, then the same one for every caller (thread-safe): for a batch of
     * lookups of which none may need {@code /proc}, as at start-up adoption when every pidfile names its live QEMU.
     */
    public Supplier<Scan> scanOnFirstUse() {
        return new Supplier<>() {
            private Scan made;

            @Override
            public synchronized Scan get() {
                if (made == null) {
                    made = scan();
                }
                return made;
            }
        };
    }

    /** The processes of one pass over {@code /proc}: each pid with its raw, NUL-separated cmdline. */
    public record Scan(List<Entry> entries) {
        record Entry(long pid, byte[] cmdline) {}
    }

    /**
     * {@link #findInstances(String, Path, Path)} among the processes of {@code scan}; whether each match is still
     * alive and whether it holds the QMP socket are read now.
     */
    public Instances findInstances(Scan scan, String vmName, Path pidFile, Path qmpSocket) {
        byte[] marker = qmpSocket.toString().getBytes(StandardCharsets.UTF_8);
        List<Long> serving = new ArrayList<>();
        List<Long> starting = new ArrayList<>();
        Set<Long> inodes = null;
        for (Scan.Entry e : scan.entries()) {
            byte[] raw = e.cmdline();
            if (indexOf(raw, marker) < 0 || !argvMatches(split(raw), vmName, pidFile, qmpSocket)
                    || !isAlive(e.pid())) {
                continue;
            }
            if (inodes == null) {
                inodes = listeningInodes(qmpSocket);
            }
            (holdsSocket(e.pid(), inodes) ? serving : starting).add(e.pid());
        }
        serving.sort(null);
        starting.sort(null);
        return new Instances(List.copyOf(serving), List.copyOf(starting));
    }

    /** Inodes of the listening unix sockets bound at {@code socket}, from {@code /proc/net/unix} (flag __SO_ACCEPTCON). */
    private Set<Long> listeningInodes(Path socket) {
        Set<Long> out = new HashSet<>();
        String path = socket.toString();
        try {
            for (String line : Files.readAllLines(proc.resolve("net/unix"))) {
                if (!line.endsWith(path)) {
                    continue; // most lines are other sockets: split only the candidates
                }
                String[] f = line.trim().split("\\s+");
                if (f.length >= 8 && f[7].equals(path) && f[3].equals("00010000")) {
                    out.add(Long.parseLong(f[6]));
                }
            }
        } catch (IOException | NumberFormatException e) {
            // no such table here: no process counts as serving, so none is ever taken for certain
        }
        return out;
    }

    private boolean holdsSocket(long pid, Set<Long> inodes) {
        if (inodes.isEmpty()) {
            return false;
        }
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve(Long.toString(pid)).resolve("fd"))) {
            for (Path fd : fds) {
                String target;
                try {
                    target = Files.readSymbolicLink(fd).toString();
                } catch (IOException closed) {
                    continue;
                }
                if (target.startsWith("socket:[") && inodes.contains(numeric(target.substring(8, target.length() - 1)))) {
                    return true;
                }
            }
        } catch (IOException gone) {
            return false;
        }
        return false;
    }

    private static long numeric(String s) {
        if (s.isEmpty() || s.length() > 18) {
            return -1;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return -1;
            }
        }
        return Long.parseLong(s);
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /** The pure part of {@link #belongsTo}: does this argv belong to that VM. */
    public static boolean argvMatches(List<String> argv, String vmName, Path pidFile, Path qmpSocket) {
        boolean nameMatches = false;
        boolean pathMatches = false;
        for (int i = 0; i < argv.size(); i++) {
            String a = argv.get(i);
            if ((a.equals("-name") || a.equals("--name")) && i + 1 < argv.size()) {
                nameMatches |= nameOption(argv.get(i + 1)).equals(vmName);
            }
            if (pidFile != null && a.equals(pidFile.toString())) {
                pathMatches = true;
            }
            if (qmpSocket != null && containsPathOption(a, qmpSocket.toString())) {
                pathMatches = true;
            }
        }
        return nameMatches && pathMatches;
    }

    /** {@code guest=web1,debug-threads=on} -> web1; a bare {@code web1} -> web1. QEMU escapes ',' as ',,'. */
    private static String nameOption(String value) {
        String v = value;
        if (v.startsWith("guest=")) {
            v = v.substring("guest=".length());
        } else if (v.contains("=")) {
            return ""; // some other first key; guest= was not given first
        }
        StringBuilder name = new StringBuilder();
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c == ',') {
                if (i + 1 < v.length() && v.charAt(i + 1) == ',') {
                    name.append(',');
                    i++;
                    continue;
                }
                break;
            }
            name.append(c);
        }
        return name.toString();
    }

    /** True if an option string holds {@code path} as a whole value: {@code unix:PATH,server=on} or {@code path=PATH,...}. */
    private static boolean containsPathOption(String arg, String path) {
        int at = arg.indexOf(path);
        while (at >= 0) {
            int end = at + path.length();
            boolean startOk = at == 0 || arg.charAt(at - 1) == ':' || arg.charAt(at - 1) == '=';
            boolean endOk = end == arg.length() || arg.charAt(end) == ',';
            if (startOk && endOk) {
                return true;
            }
            at = arg.indexOf(path, at + 1);
        }
        return false;
    }

    /**
     * Reads a QEMU pidfile.
     *
     * @return the pid, or empty if the file does not exist or is empty (QEMU creates it before writing)
     * @throws IOException if the file holds something other than a pid
     */
    public static OptionalLong readPidFile(Path pidFile) throws IOException {
        String text;
        try {
            text = Files.readString(pidFile, StandardCharsets.US_ASCII).trim();
        } catch (NoSuchFileException e) {
            return OptionalLong.empty();
        }
        if (text.isEmpty()) {
            return OptionalLong.empty();
        }
        try {
            long pid = Long.parseLong(text);
            if (pid <= 0) {
                throw new NumberFormatException();
            }
            return OptionalLong.of(pid);
        } catch (NumberFormatException e) {
            throw new IOException("pidfile " + pidFile + " does not hold a pid: '" + text + "'; remove it if no QEMU runs");
        }
    }

    /**
     * Sends a signal. TERM and KILL go through {@link ProcessHandle} (kill(2) on any pid we may signal); STOP and CONT,
     * which the JDK has no call for, through the {@code kill} program.
     *
     * @return false if the process was already gone
     */
    public boolean signal(long pid, Signal signal) throws IOException {
        if (!isAlive(pid)) {
            return false;
        }
        switch (signal) {
            case TERM, KILL -> {
                Optional<ProcessHandle> h = ProcessHandle.of(pid);
                if (h.isEmpty()) {
                    return false;
                }
                return signal == Signal.TERM ? h.get().destroy() : h.get().destroyForcibly();
            }
            case STOP, CONT -> {
                Process p = new ProcessBuilder("kill", "-" + signal.name(), Long.toString(pid))
                        .redirectErrorStream(true).start();
                try {
                    if (!p.waitFor(5, TimeUnit.SECONDS)) {
                        p.destroyForcibly();
                        throw new IOException("kill -" + signal + " " + pid + " did not finish in 5 s");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while sending " + signal + " to " + pid, e);
                }
                if (p.exitValue() != 0) {
                    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
                    throw new IOException("kill -" + signal + " " + pid + " failed: " + out);
                }
                return true;
            }
            default -> throw new AssertionError(signal);
        }
    }

    /** Waits until the process is dead (gone or zombie); polls /proc every {@code pollMillis}. */
    public boolean awaitDeath(long pid, java.time.Duration timeout, long pollMillis) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (isAlive(pid)) {
            if (System.nanoTime() >= deadline) {
                return false;
            }
            Thread.sleep(pollMillis);
        }
        return true;
    }
}
