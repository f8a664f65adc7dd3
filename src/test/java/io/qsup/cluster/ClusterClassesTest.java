package io.qsup.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.cli.QsupMain;
import io.qsup.daemon.QsupdMain;
import io.qsup.testing.EtcdServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * A single-host qsupd and a plain {@code qsup list} load none of the cluster's client classes (etcd, gRPC, netty): the
 * CLI's start-up time and the daemon's footprint stay as they were. A cluster-mode qsupd does load them, which shows
 * the check can see them.
 */
class ClusterClassesTest {
    private static final List<String> CLUSTER_PACKAGES = List.of("io.etcd.", "io.grpc.", "io.netty.", "io.vertx.");

    @Test
    void singleHostDaemonAndCliLoadNoEtcdGrpcOrNettyClass() throws Exception {
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "qcl");
        Process daemon = null;
        try (EtcdServer etcd = EtcdServer.start(Duration.ofSeconds(30))) {
            Files.createDirectories(dir.resolve("vms"));
            String common = "vms-dir: vms\ncontrol-socket: run/qsupd.sock\nrun-dir: run\nstate-dir: state\nlog-dir: log\n"
                    + "accel: tcg\nmetrics-listen: off\n";
            Files.writeString(dir.resolve("single.yaml"), common);
            daemon = java(dir, "daemon-classes", QsupdMain.class, "--config", dir.resolve("single.yaml").toString());
            awaitText(dir.resolve("daemon-classes.out"), "qsupd ready", daemon);
            Process cli = java(dir, "cli-classes", QsupMain.class, "list", "--socket",
                    dir.resolve("run/qsupd.sock").toString());
            assertThat(cli.waitFor(120, TimeUnit.SECONDS)).isTrue();
            assertThat(cli.exitValue()).as(Files.readString(dir.resolve("cli-classes.out"))).isZero();
            daemon.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            assertThat(clusterClasses(dir.resolve("daemon-classes.log"))).as("single-host qsupd").isEmpty();
            assertThat(clusterClasses(dir.resolve("cli-classes.log"))).as("qsup list").isEmpty();

            Files.writeString(dir.resolve("cluster.yaml"), common.replace("run/", "run2/").replace("run-dir: run", "run-dir: run2").replace("state-dir: state", "state-dir: state2")
                    + "cluster:\n  etcd: [" + etcd.endpoint() + "]\n  host: h1\n  address: 127.0.0.1\n");
            daemon = java(dir, "cluster-classes", QsupdMain.class, "--config", dir.resolve("cluster.yaml").toString());
            awaitText(dir.resolve("cluster-classes.out"), "registered", daemon);
            daemon.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            assertThat(clusterClasses(dir.resolve("cluster-classes.log"))).as("cluster-mode qsupd").isNotEmpty();
        } finally {
            if (daemon != null) {
                daemon.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            try (Stream<Path> all = Files.walk(dir)) {
                all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static Process java(Path dir, String name, Class<?> main, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xlog:class+load=info:file=" + dir.resolve(name + ".log"), "-cp", System.getProperty("java.class.path"),
                main.getName()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + ".out").toFile()).start();
    }

    private static void awaitText(Path file, String text, Process p) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.exists(file) && Files.readString(file).contains(text)) {
                return;
            }
            if (!p.isAlive()) {
                throw new AssertionError("exited: " + Files.readString(file));
            }
            Thread.sleep(100);
        }
        throw new AssertionError("'" + text + "' not seen: " + Files.readString(file));
    }

    private static List<String> clusterClasses(Path log) throws Exception {
        return Files.readAllLines(log).stream()
                .filter(l -> CLUSTER_PACKAGES.stream().anyMatch(pk -> l.contains(" " + pk))).limit(5).toList();
    }
}
