package io.qsup.cli;

import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The training run behind the start-up caches made at package time ({@code -XX:AOTCacheOutput} on JDK 25,
 * {@code -XX:ArchiveClassesAtExit} before it): it does in one JVM what a role does at start, so the cache holds the
 * classes that role loads. {@code qsup} runs the usual verbs against a qsupd child with one VM that cannot launch;
 * {@code qsupd} runs the daemon in this JVM and asks it what a CLI would. Output is discarded; a step that fails (no
 * QEMU on the build host, say) only leaves its classes out of the cache.
 */
public final class AotTraining {
    private AotTraining() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1 || !List.of("qsup", "qsupd").contains(args[0])) {
            System.err.println("usage: AotTraining qsup|qsupd");
            System.exit(2);
        }
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-aot");
        PrintStream out = System.out;
        PrintStream err = System.err;
        try {
            Path config = dir.resolve("qsupd.yaml");
            Files.createDirectories(dir.resolve("vms"));
            Files.writeString(config, """
                    vms-dir: vms
                    control-socket: run/qsupd.sock
                    run-dir: run
                    state-dir: state
                    log-dir: log
                    accel: tcg
                    metrics-listen: off
                    """);
            Path socket = dir.resolve("run/qsupd.sock");
            // One VM, so that list and status print rows as they do for a user's VMs, and so that qsupd parses a
            // definition and builds the VM's controller at start as it does for a user's (without it, some 200 of
            // the classes a daemon loads at start came from the jar, to be parsed and verified at every start); its
            // QEMU binary does not exist, so start takes its error path and the build host never runs a VM.
            Files.writeString(config, "qemu-binary: /nonexistent/qemu-system-x86_64\n",
                    java.nio.file.StandardOpenOption.APPEND);
            Files.writeString(dir.resolve("vms/training.yaml"), """
                    memory: 64M
                    cpus: 1
                    autostart: false
                    restart: no
                    """);
            if (args[0].equals("qsup")) {
                trainCli(config, socket);
            } else {
                trainDaemon(config, socket);
            }
        } finally {
            System.setOut(out);
            System.setErr(err);
            deleteTree(dir);
        }
        System.exit(0); // the qsupd role leaves the daemon's threads behind
    }

    private static void trainCli(Path config, Path socket) throws Exception {
        QsupMain.quietLogging();
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process daemon = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-XX:+UseSerialGC", "-cp",
                System.getProperty("java.class.path"), "io.qsup.daemon.QsupdMain", "--config", config.toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            try {
                awaitSocket(socket, daemon);
            } catch (IOException e) {
                System.err.println("AotTraining: " + e.getMessage() + "; the qsup cache will lack the reply paths");
            }
            silence();
            String s = socket.toString();
            // the plain forms run on FastVerbs' path, and --help and stop --force on picocli's
            for (List<String> verb : List.of(List.of("--version"), List.of("--help"), List.of("list"),
                    List.of("list", "--json"), List.of("status", "training"), List.of("status", "--json", "training"),
                    List.of("start", "training"), List.of("start", "training", "absent"), List.of("start", "--all"),
                    List.of("kill", "training"), List.of("stop", "training"), List.of("stop", "--force", "training"),
                    List.of("list"),
                    List.of("status", "training"), List.of("status", "absent"))) {
                String[] argv = Stream.concat(Stream.of("--socket", s), verb.stream()).toArray(String[]::new);
                QsupMain.runProcess(argv);
            }
            QsupMain.runProcess("--socket", socket.resolveSibling("absent.sock").toString(), "list");
        } finally {
            daemon.destroy();
            daemon.waitFor(20, TimeUnit.SECONDS);
            daemon.destroyForcibly();
        }
    }

    private static void trainDaemon(Path config, Path socket) throws Exception {
        // a state file from an earlier run, as every VM has after its first start: qsupd reads it at start, and
        // without one here its record parsing (some 70 Jackson classes) was left out of the cache
        new io.qsup.supervisor.StateStore(config.resolveSibling("state")).save("training",
                io.qsup.supervisor.VmRecord.fresh().withIntent(io.qsup.supervisor.Intent.STOPPED));
        silence(); // the training VM's failed starts are logged as errors; they are meant
        // the unit's own form runs without picocli; --shutdown-all, --reload and the rest parse with it
        io.qsup.daemon.QsupdMain.run("--version");
        Thread daemon = Thread.ofPlatform().name("qsupd").daemon().start(
                () -> io.qsup.daemon.QsupdMain.run("--config", config.toString()));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(socket) && daemon.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        for (int i = 0; i < 5 && Files.exists(socket); i++) {
            try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
                c.execute("query-vms");
                c.execute("query-daemon");
                var training = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode()
                        .put("name", "training");
                c.execute("query-vm", training);
                for (String refused : List.of("vm-start", "vm-qmp")) {
                    try {
                        c.execute(refused, refused.equals("vm-qmp")
                                ? training.deepCopy().put("command", "query-status") : training);
                    } catch (io.qsup.qmp.QmpErrorException expected) {
                        // no QEMU to start, none running: the error paths are part of what a daemon does
                    }
                }
            }
        }
    }

    private static void awaitSocket(Path socket, Process daemon) throws InterruptedException, IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(socket)) {
            if (!daemon.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("the training qsupd did not open " + socket);
            }
            Thread.sleep(20);
        }
    }

    private static void silence() {
        PrintStream none = new PrintStream(OutputStream.nullOutputStream());
        System.setOut(none);
        System.setErr(none);
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
