package io.qsup.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.cli.QsupMain;
import io.qsup.testing.EtcdServer;
import io.qsup.testing.QemuProcesses;
import io.qsup.testing.QsupdProcess;
import io.qsup.testing.TestGuest;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * A small cluster on one machine, in one network namespace: one real etcd member and qsupd hosts as child processes
 * on loopback, each with its own settings, run, state and log folders and control socket, all in one short temp
 * folder; cluster definitions boot the test guest under TCG. {@link #close()} kills every qsupd, every QEMU whose argv
 * names the folder, and etcd, all by pid, and removes the folder.
 */
final class ClusterLab implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    final Path base;
    final EtcdServer etcd;
    final Path defs;
    private final Map<String, QsupdProcess> hosts = new LinkedHashMap<>();
    private final int ttlSeconds;

    ClusterLab(int ttlSeconds) throws IOException, InterruptedException {
        this.ttlSeconds = ttlSeconds;
        base = Files.createTempDirectory(Path.of("/tmp"), "qc");
        defs = Files.createDirectories(base.resolve("defs"));
        etcd = EtcdServer.start(Duration.ofSeconds(20));
    }

    /** Writes host {@code name}'s settings; {@code extra} adds lines to its cluster: section. */
    Path settings(String name, String capacity) throws IOException {
        Path dir = Files.createDirectories(base.resolve(name));
        Files.createDirectories(dir.resolve("vms"));
        return Files.writeString(dir.resolve("qsupd.yaml"), """
                vms-dir: vms
                control-socket: run/qsupd.sock
                run-dir: run
                state-dir: state
                log-dir: log
                accel: tcg
                metrics-listen: off
                cluster:
                  etcd: [%s]
                  host: %s
                  address: 127.0.0.1
                  lease-ttl: %ds
                  capacity: %s
                """.formatted(etcd.endpoint(), name, ttlSeconds, capacity));
    }

    /** Starts host {@code name} (settings written first) and waits until it is ready and registered. */
    QsupdProcess start(String name, String capacity) throws IOException, InterruptedException {
        Path s = base.resolve(name).resolve("qsupd.yaml");
        if (!Files.exists(s)) {
            settings(name, capacity);
        }
        Path tmp = Files.createDirectories(tmp(name));
        QsupdProcess p = QsupdProcess.start(s, base.resolve(name).resolve("qsupd.log"), java.util.Map.of(),
                java.util.List.of("-Djava.io.tmpdir=" + tmp));
        hosts.put(name, p);
        p.awaitLog("qsupd ready", Duration.ofSeconds(120));
        p.awaitLog("cluster: host " + name + " registered", Duration.ofSeconds(60));
        return p;
    }

    /** The {@code java.io.tmpdir} of host {@code name}'s qsupd, so a test sees what the daemon leaves there. */
    Path tmp(String name) {
        return base.resolve(name).resolve("tmp");
    }

    QsupdProcess host(String name) {
        return hosts.get(name);
    }

    Path socket(String host) {
        return base.resolve(host).resolve("run/qsupd.sock");
    }

    /** A cluster definition file booting the test guest; {@code extra} is more YAML. */
    Path writeDef(String vm, String extra) throws IOException {
        TestGuest g = TestGuest.get();
        return Files.writeString(defs.resolve(vm + ".yaml"), """
                %s
                kernel: %s
                initrd: %s
                append: "%s"
                guest-agent: false
                stop-timeout: 5s
                %s
                """.formatted(extra.contains("memory:") ? "" : "memory: 128M", g.kernel(), g.initrd(), g.append(),
                extra));
    }

    /** {@code qsup ARGS --socket HOST's socket}, in-process. */
    Cli qsup(String host, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--socket");
        all.add(socket(host).toString());
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = QsupMain.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(all.toArray(String[]::new));
        return new Cli(code, out.toString(), err.toString());
    }

    record Cli(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- out\n" + out + "--- err\n" + err;
        }
    }

    /** {@code qsup list --json} on {@code host}, by VM name. */
    Map<String, JsonNode> list(String host) throws IOException {
        Cli c = qsup(host, "list", "--json");
        if (c.code() != 0) {
            throw new AssertionError("qsup list failed on " + host + ": " + c);
        }
        Map<String, JsonNode> out = new LinkedHashMap<>();
        for (JsonNode n : JSON.readTree(c.out())) {
            out.put(n.path("name").asText(), n);
        }
        return out;
    }

    /** Polls {@code host}'s listing until {@code ok} holds; returns the listing, fails with it on timeout. */
    Map<String, JsonNode> awaitList(String host, Duration timeout, Predicate<Map<String, JsonNode>> ok)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, JsonNode> last = Map.of();
        while (System.nanoTime() < deadline) {
            try {
                last = list(host);
                if (ok.test(last)) {
                    return last;
                }
            } catch (AssertionError e) {
                // the host may be starting or gone: poll again
            }
            Thread.sleep(200);
        }
        throw new AssertionError("not within " + timeout + " on " + host + ": " + last);
    }

    /** The running QEMUs of VM {@code vm} started by host {@code host} (argv names the host's folder). */
    List<QemuProcesses.Qemu> qemus(String host, String vm) {
        return new QemuProcesses(base.resolve(host)).scan().qemus().stream()
                .filter(q -> vm.equals(q.vm()))
                .toList();
    }

    @Override
    public void close() throws IOException, InterruptedException {
        for (QsupdProcess p : hosts.values()) {
            p.close();
        }
        QemuProcesses.killAll(base, Duration.ofSeconds(10));
        etcd.close();
        // the hosts' logs outlive the run, for a failed test's reader
        Path keep = Files.createDirectories(Path.of(System.getProperty("qsup.projectDir", "."), "target", "cluster-logs",
                base.getFileName().toString()));
        for (String h : hosts.keySet()) {
            Path log = base.resolve(h).resolve("qsupd.log");
            if (Files.exists(log)) {
                Files.copy(log, keep.resolve(h + ".log"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
        try (Stream<Path> all = Files.walk(base)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
