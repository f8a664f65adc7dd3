package io.qsup.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An independent witness of the QEMUs a test made: it reads {@code /proc} itself (not through qsupd's own code) and
 * counts, per VM, the live QEMU processes whose argv holds the test's unique base folder and that serve a monitor
 * socket under it. A daemonizing parent shares its grandchild's argv for a moment but serves nothing, so it is not
 * counted. {@link #startSampling()} samples every few milliseconds and
 * keeps the worst moment, so a second QEMU that lived only briefly is still seen.
 *
 * <p>Thread-safe: the sampler thread writes only the concurrent {@code worst} map.
 */
public final class QemuCensus implements AutoCloseable {
    private final String base;
    private final Map<String, List<Long>> worst = new ConcurrentHashMap<>();
    private volatile Thread sampler;

    public QemuCensus(Path base) {
        this.base = base.toString();
    }

    /**
     * VM name to the pids of its live QEMUs, now. A QEMU counts once it holds a listening unix socket under the base
     * folder (its monitor): a {@code -daemonize} parent, which waits for its grandchild and holds none, is not a VM.
     */
    public Map<String, List<Long>> now() {
        Set<String> listening = listeningSocketInodes();
        Map<String, List<Long>> out = new TreeMap<>();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path p : procs) {
                long pid = Long.parseLong(p.getFileName().toString());
                List<String> argv = argv(p);
                if (argv.isEmpty() || !argv.get(0).contains("qemu-system") || argv.stream().noneMatch(a -> a.contains(base))) {
                    continue;
                }
                String stat;
                try {
                    stat = Files.readString(p.resolve("stat"));
                } catch (IOException gone) {
                    continue;
                }
                String state = stat.substring(stat.lastIndexOf(')') + 2).split(" ")[0];
                if (state.equals("Z") || state.equals("X") || !holdsAny(p, listening)) {
                    continue; // ended and not yet reaped, or not (yet) serving
                }
                out.computeIfAbsent(vmName(argv), k -> new ArrayList<>()).add(pid);
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc", e);
        }
        return out;
    }

    /** Every QEMU process of this test, serving or not, by pid: for cleanup. */
    private List<Long> allPids() {
        List<Long> out = new ArrayList<>();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path p : procs) {
                List<String> argv = argv(p);
                if (!argv.isEmpty() && argv.get(0).contains("qemu-system") && argv.stream().anyMatch(a -> a.contains(base))) {
                    out.add(Long.parseLong(p.getFileName().toString()));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc", e);
        }
        return out;
    }

    private Set<String> listeningSocketInodes() {
        Set<String> out = new HashSet<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/net/unix"))) {
                String[] f = line.trim().split("\\s+");
                if (f.length >= 8 && f[3].equals("00010000") && f[7].contains(base)) {
                    out.add("socket:[" + f[6] + "]");
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/net/unix", e);
        }
        return out;
    }

    private static boolean holdsAny(Path proc, Set<String> sockets) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve("fd"))) {
            for (Path fd : fds) {
                try {
                    if (sockets.contains(Files.readSymbolicLink(fd).toString())) {
                        return true;
                    }
                } catch (IOException closed) {
                    // the descriptor went away while we looked
                }
            }
        } catch (IOException gone) {
            return false;
        }
        return false;
    }

    /** Starts sampling in the background. */
    public QemuCensus startSampling() {
        Thread t = Thread.ofPlatform().daemon().name("qemu-census").start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                now().forEach((vm, pids) -> {
                    if (pids.size() > 1) {
                        worst.merge(vm, pids, (a, b) -> b.size() > a.size() ? b : a);
                    }
                });
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        sampler = t;
        return this;
    }

    /** Every VM that was ever seen with more than one live QEMU, with the pids of its worst moment. */
    public Map<String, List<Long>> duplicates() {
        return new TreeMap<>(worst);
    }

    /** Kills every QEMU of this test still alive, by pid. */
    public void killAll() {
        allPids().forEach(pid -> ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly));
    }

    @Override
    public void close() {
        Thread t = sampler;
        if (t != null) {
            t.interrupt();
        }
    }

    private static List<String> argv(Path proc) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(proc.resolve("cmdline"));
        } catch (IOException gone) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < raw.length; i++) {
            if (raw[i] == 0) {
                out.add(new String(raw, start, i - start, StandardCharsets.UTF_8));
                start = i + 1;
            }
        }
        return out;
    }

    private static String vmName(List<String> argv) {
        int i = argv.indexOf("-name");
        if (i < 0 || i + 1 >= argv.size()) {
            return "?";
        }
        String v = argv.get(i + 1);
        v = v.startsWith("guest=") ? v.substring(6) : v;
        int comma = v.indexOf(',');
        return comma < 0 ? v : v.substring(0, comma);
    }
}
