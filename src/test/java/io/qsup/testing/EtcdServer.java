package io.qsup.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * One real etcd member (Debian's {@code etcd-server}) on loopback ports of its own, with its data in its own temp
 * folder; {@link #stop()} kills it by pid and {@link #start()} brings it back on the same data and ports, so a test can
 * take etcd away and return it. {@link #close()} kills it and removes the folder.
 */
public final class EtcdServer implements AutoCloseable {
    private static final Path ETCD = Path.of("/usr/bin/etcd");
    private final Path dir;
    private final int clientPort;
    private final int peerPort;
    private Process process;

    private EtcdServer(Path dir, int clientPort, int peerPort) {
        this.dir = dir;
        this.clientPort = clientPort;
        this.peerPort = peerPort;
    }

    /** Starts a fresh single-member etcd and waits until it accepts clients. */
    public static EtcdServer start(Duration timeout) throws IOException, InterruptedException {
        if (!Files.isExecutable(ETCD)) {
            throw new IllegalStateException(ETCD + " is missing: apt-get install -y etcd-server");
        }
        EtcdServer e = new EtcdServer(Files.createTempDirectory(Path.of("/tmp"), "qsup-etcd"), freePort(), freePort());
        e.start();
        e.awaitUp(timeout);
        return e;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** (Re)starts the member on its data folder and ports. */
    public synchronized void start() throws IOException {
        String client = "http://127.0.0.1:" + clientPort;
        String peer = "http://127.0.0.1:" + peerPort;
        process = new ProcessBuilder(List.of(ETCD.toString(), "--name", "m0", "--data-dir", dir.resolve("data").toString(),
                "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer, "--initial-cluster", "m0=" + peer,
                "--initial-cluster-state", "new", "--heartbeat-interval", "100", "--election-timeout", "500"))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("etcd.log")
                        .toFile())).start();
    }

    public void awaitUp(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket("127.0.0.1", clientPort)) {
                Thread.sleep(300); // the port opens a moment before the member serves
                return;
            } catch (IOException e) {
                Thread.sleep(100);
            }
        }
        throw new IllegalStateException("etcd did not listen on " + clientPort + " within " + timeout);
    }

    /** The client URL. */
    public String endpoint() {
        return "http://127.0.0.1:" + clientPort;
    }

    /** SIGKILL, by pid, and waits for the exit. */
    public synchronized void stop() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Override
    public void close() throws InterruptedException, IOException {
        stop();
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
