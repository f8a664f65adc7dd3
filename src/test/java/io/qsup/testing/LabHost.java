package io.qsup.testing;

import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;

/**
 * One qsup host of the lab: a folder {@code base/NAME} holding its settings ({@code qsupd.yaml}), {@code vms/},
 * {@code run/} (control socket, QEMU monitors), {@code state/} and {@code log/}, and a qsupd child started inside the
 * host's network namespace with that folder as its working directory (so QEMU binds the relative
 * {@link QemuWitness} monitor there). Every host of a lab sees the same {@code base/shared} folder, which stands in
 * for shared storage. The control socket is a unix socket on the filesystem, so the test reaches it from the root
 * namespace even while the host is {@link NetLab#partition partitioned}.
 *
 * <p>Not thread-safe: one test thread drives a host.
 */
public final class LabHost implements AutoCloseable {
    private static final Duration QSUPD_START = Duration.ofSeconds(60);

    private final NetLab lab;
    private final String name;
    private final Path dir;
    private final Path shared;
    private QsupdProcess qsupd;
    private int starts;

    /** Makes the host's folders and writes its settings; {@code cluster} is the {@code cluster:} block, or null. */
    public LabHost(NetLab lab, String name, Path base, String cluster) throws IOException {
        this.lab = lab;
        this.name = name;
        this.dir = base.resolve(name).toAbsolutePath();
        this.shared = base.resolve("shared").toAbsolutePath();
        Files.createDirectories(dir.resolve("vms"));
        Files.createDirectories(shared);
        writeSettings(cluster);
    }

    /**
     * The {@code cluster:} settings block the contract defines, for host {@code host} at {@code address}: etcd's client
     * URLs, a lease TTL, and the capacity offered to cluster VMs.
     */
    public static String clusterYaml(List<String> etcd, String host, String address, Duration leaseTtl,
            String memory, int cpus) {
        return """
                cluster:
                  etcd: [%s]
                  host: %s
                  address: %s
                  lease-ttl: %dms
                  capacity:
                    memory: %s
                    cpus: %d
                """.formatted(String.join(", ", etcd), host, address, leaseTtl.toMillis(), memory, cpus);
    }

    /** (Re)writes {@code qsupd.yaml}; takes effect at the next {@link #start}. */
    public void writeSettings(String cluster) throws IOException {
        String plain = """
                vms-dir: vms
                control-socket: run/qsupd.sock
                run-dir: run
                state-dir: state
                log-dir: log
                accel: tcg
                max-parallel-starts: 2
                """;
        Files.writeString(settingsFile(), cluster == null ? plain : plain + cluster);
    }

    /**
     * Writes {@code vms/VM.yaml} booting the test guest, with the witness's monitor in {@code extra-args}; {@code extra}
     * is more YAML lines.
     */
    public Path writeVm(String vm, String extra) throws IOException {
        Path f = dir.resolve("vms").resolve(vm + ".yaml");
        Files.writeString(f, vmYaml(vm, extra));
        return f;
    }

    /** A definition booting the test guest with 128M, with the witness's monitor; the same text for every host. */
    public static String vmYaml(String vm, String extra) {
        TestGuest guest = TestGuest.get();
        return """
                name: %s
                memory: 128M
                machine: q35
                kernel: %s
                initrd: %s
                append: "%s"
                %s
                %s
                """.formatted(vm, guest.kernel(), guest.initrd(), guest.append(), QemuWitness.monitorYaml(vm),
                extra);
    }

    /** Starts qsupd in the host's namespace and waits until it is ready; its log is {@code log/qsupd-N.log}. */
    public QsupdProcess start() throws IOException, InterruptedException {
        if (qsupd != null && qsupd.process().isAlive()) {
            throw new IllegalStateException("qsupd of " + name + " already runs (pid " + qsupd.pid() + ")");
        }
        Files.createDirectories(dir.resolve("log"));
        starts++;
        qsupd = QsupdProcess.start(lab.inHost(name, List.of()), dir, settingsFile(),
                dir.resolve("log").resolve("qsupd-" + starts + ".log"));
        qsupd.awaitLog("qsupd ready", QSUPD_START);
        return qsupd;
    }

    /** The running (or last) qsupd, or null before the first {@link #start}. */
    public QsupdProcess qsupd() {
        return qsupd;
    }

    /** SIGKILL of qsupd alone; its QEMUs run on, as after a daemon crash. */
    public void killQsupd() throws InterruptedException {
        if (qsupd != null) {
            qsupd.kill9();
        }
    }

    /** A host crash: SIGKILL of qsupd and of every QEMU this host launched (found in /proc by the host's folder). */
    public List<QemuProcesses.Qemu> crash() throws InterruptedException {
        killQsupd();
        return QemuProcesses.killAll(dir, Duration.ofSeconds(10));
    }

    /** A QMP session on the host's control socket. */
    public QmpClient control() throws QmpException {
        return QmpClient.connect(new QmpEndpoint.Unix(controlSocket()));
    }

    public String name() {
        return name;
    }

    public String address() {
        return lab.address(name);
    }

    public Path dir() {
        return dir;
    }

    /** The folder every host of the lab shares, standing in for shared storage. */
    public Path shared() {
        return shared;
    }

    public Path settingsFile() {
        return dir.resolve("qsupd.yaml");
    }

    public Path controlSocket() {
        return dir.resolve("run/qsupd.sock");
    }

    /** Every qsupd log of this host so far, oldest first, for failure messages. */
    public String logs() throws IOException {
        Path logs = dir.resolve("log");
        if (!Files.isDirectory(logs)) {
            return "--- " + name + ": no log folder " + logs;
        }
        try (var s = Files.list(logs)) {
            List<Path> files = s.filter(p -> p.getFileName().toString().startsWith("qsupd-")).sorted().toList();
            if (files.isEmpty()) {
                return "--- " + name + ": no qsupd log in " + logs;
            }
            return files.stream().map(p -> {
                try {
                    return "--- " + name + " " + p.getFileName() + "\n" + Files.readString(p);
                } catch (IOException e) {
                    return "--- " + p + ": " + e.getMessage();
                }
            }).collect(Collectors.joining("\n"));
        }
    }

    /** Kills qsupd and every QEMU of this host, by pid. */
    @Override
    public void close() throws InterruptedException {
        crash();
    }
}
