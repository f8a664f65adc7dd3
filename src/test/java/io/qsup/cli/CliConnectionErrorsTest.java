package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.control.ControlCommand;
import io.qsup.control.ControlServer;
import io.qsup.control.EventHub;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What {@code qsup} says when it reaches the control socket but may not use it: the file mode refuses the connect
 * (EACCES), or qsupd itself refuses the peer (AccessDenied). The client runs as another user: as root, through
 * {@code setpriv} as uid 65534; otherwise the socket's mode is cleared, which refuses the test's own user.
 */
class CliConnectionErrorsTest {
    private static final long NOBODY = 65534;
    private Path dir;
    private ControlServer server;

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-cli");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Map<String, ControlCommand> table = Map.of("query-vms",
                (args, session) -> com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.arrayNode());
        // 'users' exists on Debian-like hosts; uid 65534 with cleared groups is not in it
        server = new ControlServer(dir.resolve("run/qsupd.sock"), "users", table, new EventHub(),
                ControlServer.Limits.defaults());
        server.start();
        Files.setPosixFilePermissions(dir.resolve("run"), PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterEach
    void stop() throws IOException {
        server.close();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Test
    void aSocketWhoseModeRefusesTheUserSaysAccessWasDeniedAndHowToGetIt() throws Exception {
        Path socket = server.socketPath();
        CliRun r;
        if (isRoot()) {
            Assumptions.assumeTrue(onPath("setpriv"), "as root this test needs setpriv (util-linux) to run qsup as"
                    + " another user; root itself passes every file mode");
            // mode 0660 root:users, the client uid 65534 without groups: the kernel refuses connect() with EACCES
            r = qsupAsNobody(socket, "list");
        } else {
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("---------"));
            r = CliRun.qsup(socket, "list");
        }
        assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(r.err()).as(r.toString())
                .contains("permission denied")
                .contains(socket.toString())
                .contains("usermod -aG")
                .contains("log in again")
                .doesNotContain("Is the daemon running")
                .doesNotContain("systemctl start");
    }

    @Test
    void aPeerTheDaemonRefusesSeesTheDaemonsOwnMessage() throws Exception {
        Assumptions.assumeTrue(isRoot(), "qsupd serves its own user always, so only root can run a client that qsupd"
                + " refuses (as uid 65534 through setpriv)");
        Assumptions.assumeTrue(onPath("setpriv"), "needs setpriv (util-linux) to run qsup as another user");
        // Open the file mode so that the kernel lets the connect through and qsupd's own check decides.
        Files.setPosixFilePermissions(server.socketPath(), PosixFilePermissions.fromString("rw-rw-rw-"));
        CliRun r = qsupAsNobody(server.socketPath(), "list");
        assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(r.err()).as(r.toString())
                .contains("access denied for uid 65534")
                .contains("group 'users'")
                .doesNotContain("bad QMP greeting")
                .doesNotContain("Is the daemon running");
    }

    @Test
    void pastTheConnectionLimitQsupShowsTheDaemonsReason() throws Exception {
        Path socket = dir.resolve("run/capped.sock");
        try (ControlServer capped = new ControlServer(socket, "users", Map.of(), new EventHub(),
                ControlServer.Limits.defaults().withMaxConnections(1))) {
            capped.start();
            try (QmpClient first = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
                CliRun r = CliRun.qsup(socket, "list");
                assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.UNREACHABLE);
                assertThat(r.err()).as(r.toString())
                        .contains("refused the connection")
                        .contains("too many control connections")
                        .contains("control-max-connections")
                        .doesNotContain("bad QMP greeting");
                assertThat(first.isConnected()).isTrue();
            }
        }
    }

    /** Runs qsup as uid/gid 65534 with no supplementary groups, from a copy of the class path that user can read. */
    private CliRun qsupAsNobody(Path socket, String... args) throws Exception {
        Path cp = readableClassPath();
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY,
                "--clear-groups", Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Djava.io.tmpdir=" + dir.resolve("tmp"),
                "-cp", cp + File.separator + "*" + File.pathSeparator + cp.resolve("classes"),
                QsupMain.class.getName()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("--socket", socket.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectOutput(dir.resolve("qsup.out").toFile())
                .redirectError(dir.resolve("qsup.err").toFile());
        pb.environment().remove("QSUP_SOCKET");
        Process p = pb.start();
        try {
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("qsup finished").isTrue();
            return new CliRun(p.exitValue(), Files.readString(dir.resolve("qsup.out"), StandardCharsets.UTF_8),
                    Files.readString(dir.resolve("qsup.err"), StandardCharsets.UTF_8));
        } finally {
            p.destroyForcibly();
        }
    }

    /** The jars and classes of this class path copied where any user can read them (the build's may sit in /root). */
    private Path readableClassPath() throws IOException {
        Path cp = dir.resolve("cp");
        Files.createDirectories(cp.resolve("classes"));
        Files.createDirectories(dir.resolve("tmp"));
        Files.setPosixFilePermissions(dir.resolve("tmp"), PosixFilePermissions.fromString("rwxrwxrwx"));
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path e = Path.of(entry);
            if (Files.isDirectory(e)) {
                try (Stream<Path> tree = Files.walk(e)) {
                    for (Path f : tree.toList()) {
                        Path to = cp.resolve("classes").resolve(e.relativize(f).toString());
                        if (Files.isDirectory(f)) {
                            Files.createDirectories(to);
                        } else {
                            Files.copy(f, to, StandardCopyOption.REPLACE_EXISTING);
                        }
                    }
                }
            } else if (entry.endsWith(".jar")) {
                Files.copy(e, cp.resolve(e.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        try (Stream<Path> tree = Files.walk(cp)) {
            for (Path f : tree.toList()) {
                Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(Files.isDirectory(f) ? "rwxr-xr-x"
                        : "rw-r--r--"));
            }
        }
        return cp;
    }

    private static boolean isRoot() throws IOException {
        return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue() == 0;
    }

    private static boolean onPath(String program) {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(d, program))) {
                return true;
            }
        }
        return false;
    }
}
