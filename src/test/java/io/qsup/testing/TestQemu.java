package io.qsup.testing;

import io.qsup.qmp.QmpEndpoint;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A real qemu-system-x86_64 child process for tests: TCG, no devices, paused ({@code -S}), QMP on a unix socket under
 * /tmp and optionally a second QMP monitor on TCP. {@link #close} kills it by pid and waits; never by name.
 */
public final class TestQemu implements AutoCloseable {
    public static final String BINARY = "qemu-system-x86_64";

    private final Process process;
    private final Path sockDir;
    private final Path qmpSocket;
    private final Path log;
    private final int tcpPort;

    private TestQemu(Process process, Path sockDir, Path qmpSocket, Path log, int tcpPort) {
        this.process = process;
        this.sockDir = sockDir;
        this.qmpSocket = qmpSocket;
        this.log = log;
        this.tcpPort = tcpPort;
    }

    /** Starts QEMU with QMP on a unix socket; its output goes to {@code workDir/qemu.log}. */
    public static TestQemu start(Path workDir, List<String> extraArgs) {
        return start(workDir, extraArgs, false);
    }

    /** Starts QEMU with QMP on a unix socket and a second QMP monitor on {@code tcp:127.0.0.1:PORT}. */
    public static TestQemu startWithTcp(Path workDir, List<String> extraArgs) {
        return start(workDir, extraArgs, true);
    }

    private static TestQemu start(Path workDir, List<String> extraArgs, boolean tcp) {
        Path sockDir = null;
        Process p = null;
        try {
            Files.createDirectories(workDir);
            // unix socket paths are limited to 108 bytes, so they live in a short folder under /tmp
            sockDir = Files.createTempDirectory(Path.of("/tmp"), "qsupq");
            Path sock = sockDir.resolve("qmp.sock");
            Path log = workDir.resolve("qemu.log");
            int port = tcp ? freePort() : -1;
            List<String> argv = new ArrayList<>(List.of(BINARY, "-machine", "q35", "-accel", "tcg", "-nodefaults",
                    "-display", "none", "-S", "-qmp", "unix:" + sock + ",server=on,wait=off"));
            if (tcp) {
                argv.addAll(List.of("-qmp", "tcp:127.0.0.1:" + port + ",server=on,wait=off"));
            }
            argv.addAll(extraArgs);
            try {
                p = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            } catch (IOException e) {
                throw new IllegalStateException(BINARY + " could not be started (" + e.getMessage()
                        + "); install it with: apt-get install qemu-system-x86", e);
            }
            TestQemu q = new TestQemu(p, sockDir, sock, log, port);
            q.awaitListening();
            return q;
        } catch (IOException | RuntimeException e) {
            if (p != null) {
                kill(p);
            }
            deleteTree(sockDir);
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException("cannot start test QEMU: " + e.getMessage(), e);
        }
    }

    private void awaitListening() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("QEMU exited with " + process.exitValue() + " before its QMP socket"
                        + " appeared; its output:\n" + readLog());
            }
            // The socket file appears at bind(), a moment before listen(): connecting in between is refused.
            if (UnixSockets.isListening(qmpSocket) && (tcpPort < 0 || tcpListening())) {
                return;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for QEMU", e);
            }
        }
        throw new IllegalStateException("QEMU's QMP socket " + qmpSocket + " did not appear within 20s; output:\n"
                + readLog());
    }

    private boolean tcpListening() {
        // /proc/net/tcp lists listening sockets (state 0A) without connecting, which would take the monitor's slot
        try {
            String hexPort = String.format(":%04X ", tcpPort);
            return Files.readAllLines(Path.of("/proc/net/tcp")).stream()
                    .anyMatch(l -> l.contains(hexPort) && l.split("\\s+").length > 4 && l.split("\\s+")[4].equals("0A"));
        } catch (IOException e) {
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), tcpPort)) {
                return true;
            } catch (IOException notYet) {
                return false;
            }
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** The version QEMU reports with {@code --version}, as {@code major.minor.micro}. */
    public static String binaryVersion() {
        try {
            Process p = new ProcessBuilder(BINARY, "--version").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(10, TimeUnit.SECONDS);
            Matcher m = Pattern.compile("version (\\d+)\\.(\\d+)\\.(\\d+)").matcher(out);
            if (!m.find()) {
                throw new IllegalStateException("cannot read the version from '" + BINARY + " --version': " + out);
            }
            return m.group(1) + "." + m.group(2) + "." + m.group(3);
        } catch (IOException e) {
            throw new IllegalStateException(BINARY + " not found (" + e.getMessage()
                    + "); install it with: apt-get install qemu-system-x86", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    public Path qmpSocket() {
        return qmpSocket;
    }

    public QmpEndpoint unixEndpoint() {
        return new QmpEndpoint.Unix(qmpSocket);
    }

    /** The TCP monitor's endpoint; only for {@link #startWithTcp}. */
    public QmpEndpoint tcpEndpoint() {
        if (tcpPort < 0) {
            throw new IllegalStateException("this QEMU was started without a TCP monitor; use startWithTcp");
        }
        return new QmpEndpoint.Tcp("127.0.0.1", tcpPort);
    }

    public long pid() {
        return process.pid();
    }

    public Process process() {
        return process;
    }

    /** QEMU's stdout and stderr so far. */
    public String readLog() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    @Override
    public void close() {
        kill(process);
        deleteTree(sockDir);
    }

    private static void kill(Process p) {
        ProcessHandle h = p.toHandle();
        if (h.isAlive()) {
            h.destroy(); // SIGTERM to this pid only
            try {
                if (!p.waitFor(5, TimeUnit.SECONDS)) {
                    h.destroyForcibly();
                    p.waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                h.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    private static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // /tmp is cleaned eventually
        }
    }
}
