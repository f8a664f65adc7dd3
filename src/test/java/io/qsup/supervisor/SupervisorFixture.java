package io.qsup.supervisor;

import io.qsup.config.ConfigException;
import io.qsup.config.DaemonSettings;
import io.qsup.qemu.HostFacts;
import io.qsup.testing.GuestConsole;
import io.qsup.testing.QemuProcesses;
import io.qsup.testing.TestGuest;
import io.qsup.vm.ProcessInspector;
import io.qsup.vm.VmEvent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;

/**
 * A qsupd configuration in a short temp folder under /tmp (unix socket paths must stay under 108 bytes), VM
 * definitions that boot the project's test guest under TCG ({@link #writeVm}; tests that need no guest write their own
 * YAML), and cleanup that kills every QEMU of this fixture by pid, even when the test failed: those named by the
 * pidfiles, and also those found in {@code /proc} whose argv mentions the fixture's folder (a pidfile can be lost).
 */
public final class SupervisorFixture implements AutoCloseable {
    public final Path base;
    public final Path settingsFile;
    final Path vmsDir;
    private TestGuest guest;
    private final List<Supervisor> supervisors = new ArrayList<>();
    private final List<Long> extraPids = new CopyOnWriteArrayList<>();
    /** Every event of every supervisor this fixture made, in arrival order. */
    public final List<VmEvent> events = new CopyOnWriteArrayList<>();

    public SupervisorFixture(int maxParallelStarts) throws IOException {
        base = Files.createTempDirectory(Path.of("/tmp"), "qs");
        vmsDir = base.resolve("vms");
        Files.createDirectories(vmsDir);
        settingsFile = base.resolve("qsupd.yaml");
        Files.writeString(settingsFile, """
                vms-dir: vms
                control-socket: run/qsupd.sock
                run-dir: run
                state-dir: state
                log-dir: log
                accel: tcg
                max-parallel-starts: %d
                """.formatted(maxParallelStarts));
    }

    /** Writes {@code vms/NAME.yaml} booting the test guest; {@code extra} is more YAML lines. */
    public Path writeVm(String name, String extra) throws IOException {
        if (guest == null) {
            guest = TestGuest.get(); // only tests that boot the guest need it built
        }
        Path f = vmsDir.resolve(name + ".yaml");
        String append = extra.contains("append:") ? "" : "append: \"" + guest.append() + "\"";
        Files.writeString(f, """
                memory: 128M
                machine: q35
                kernel: %s
                initrd: %s
                %s
                %s
                """.formatted(guest.kernel(), guest.initrd(), append, extra));
        return f;
    }

    public DaemonSettings settings() throws ConfigException {
        return DaemonSettings.load(settingsFile);
    }

    public Supervisor supervisor(Supervisor.Options options) throws ConfigException {
        DaemonSettings s = settings();
        Supervisor sup = new Supervisor(s, HostFacts.probe(s.qemuBinary()), options);
        sup.addListener(events::add);
        supervisors.add(sup);
        return sup;
    }

    /** Fast probes so tests notice hangs in a second or two. */
    public static Supervisor.Options fastProbe() {
        return Supervisor.Options.defaults().withProbe(Duration.ofMillis(500), Duration.ofMillis(1000));
    }

    public Path pidFile(String vm) throws ConfigException {
        return settings().pathsFor(vm).pidFile();
    }

    public GuestConsole console(String vm) throws ConfigException {
        return GuestConsole.connect(settings().pathsFor(vm).consoleSocket(), Duration.ofSeconds(10));
    }

    /**
     * Connects to the guest console and waits until the guest's init answers. The ready line may have gone by before
     * we connected (QEMU drops console output while no client is connected), so this also pokes the guest with an
     * unknown command and takes its error line as proof of life.
     */
    public GuestConsole readyConsole(String vm, Duration timeout) throws ConfigException {
        GuestConsole c = console(vm);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (c.pollLine(l -> l.contains(TestGuest.READY_LINE) || l.contains("ERR unknown"), Duration.ofSeconds(1))
                    .isPresent()) {
                // drain the answers to pokes still in flight
                while (c.pollLine(l -> l.contains("ERR unknown"), Duration.ofMillis(300)).isPresent()) {
                    // keep draining
                }
                return c;
            }
            c.send("ping");
        }
        c.close();
        throw new IllegalStateException("guest of VM " + vm + " did not answer on its console within " + timeout);
    }

    /**
     * What a failed wait needs to show: the QEMU process as /proc sees it (state, kernel wait channel), the tail of the
     * VM's QEMU log, and the VM's last events, so a flake in CI tells its own story.
     */
    public String story(String vm, long pid) {
        StringBuilder b = new StringBuilder();
        if (pid > 0) {
            Path proc = Path.of("/proc", Long.toString(pid));
            b.append("\nQEMU pid ").append(pid).append(": ");
            try {
                b.append(Files.readString(proc.resolve("stat")).strip()).append("; wchan ")
                        .append(Files.readString(proc.resolve("wchan")).strip());
                try (Stream<Path> tasks = Files.list(proc.resolve("task"))) {
                    for (Path t : tasks.sorted().toList()) {
                        b.append("\n  thread ").append(Files.readString(t.resolve("comm")).strip()).append(' ')
                                .append(Files.readString(t.resolve("stat")).replaceFirst("^\\d+ \\(.*\\) ", "").split(" ")[0])
                                .append(" wchan ").append(Files.readString(t.resolve("wchan")).strip());
                    }
                }
            } catch (IOException e) {
                b.append("not in /proc (").append(e.getMessage()).append(')');
            }
        }
        try {
            List<String> lines = Files.readAllLines(settings().pathsFor(vm).qemuLog());
            b.append("\nQEMU log, last lines:\n  ")
                    .append(String.join("\n  ", lines.subList(Math.max(0, lines.size() - 25), lines.size())));
        } catch (IOException | ConfigException e) {
            b.append("\nno QEMU log: ").append(e.getMessage());
        }
        List<String> mine = events.stream().filter(e -> e.vm().equals(vm)).map(Object::toString).toList();
        b.append("\nlast events:\n  ").append(String.join("\n  ", mine.subList(Math.max(0, mine.size() - 15), mine.size())));
        return b.toString();
    }

    /** Remembers a pid to kill at cleanup (for QEMUs started outside the supervisor). */
    public void track(long pid) {
        extraPids.add(pid);
    }

    /**
     * Lets go of supervisors, then kills every QEMU whose pidfile is under this fixture, and every QEMU whose argv
     * mentions this fixture's folder (found in /proc, so also those whose pidfile was lost), by pid.
     */
    @Override
    public void close() throws IOException {
        for (Supervisor s : supervisors) {
            s.close();
        }
        ProcessInspector inspector = new ProcessInspector();
        List<Long> pids = new ArrayList<>(extraPids);
        Path vmsRun = base.resolve("run/vms");
        if (Files.isDirectory(vmsRun)) {
            try (Stream<Path> dirs = Files.list(vmsRun)) {
                for (Path d : dirs.toList()) {
                    OptionalLong p;
                    try {
                        p = ProcessInspector.readPidFile(d.resolve("qemu.pid"));
                    } catch (IOException e) {
                        continue;
                    }
                    if (p.isPresent() && inspector.cmdline(p.getAsLong()).contains(d.resolve("qemu.pid").toString())) {
                        pids.add(p.getAsLong());
                    }
                }
            }
        }
        for (long pid : pids) {
            try {
                inspector.signal(pid, ProcessInspector.Signal.KILL);
                inspector.awaitDeath(pid, Duration.ofSeconds(10), 20);
            } catch (IOException | InterruptedException e) {
                // best effort; the next pid still gets its signal
            }
        }
        try {
            QemuProcesses.killAll(base, Duration.ofSeconds(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try (Stream<Path> all = Files.walk(base)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
