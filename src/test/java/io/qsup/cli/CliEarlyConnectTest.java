package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ArrayNode;
import io.qsup.qmp.QmpFraming;
import io.qsup.testing.FakeQmpServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A whole {@code qsup} process connects to qsupd while picocli builds the verb, and the verb then uses that one
 * connection: checked by counting the connections a stand-in qsupd (a scripted QMP server on a real socket) accepts.
 */
class CliEarlyConnectTest {

    @Test
    void aListOpensOneConnectionWhereverItsSocketOptionStands() throws Exception {
        ArrayNode vms = QmpFraming.mapper().createArrayNode();
        vms.addObject().put("name", "web1").put("state", "running").put("pid", 4242).put("restart-count", 0);
        for (boolean before : new boolean[] {true, false}) {
            try (FakeQmpServer qsupd = FakeQmpServer.start(FakeQmpServer.script().handshake().expect("query-vms")
                    .reply(vms))) {
                String s = qsupd.socket().toString();
                Run r = before ? qsup("--socket", s, "list") : qsup("list", "--socket=" + s);
                assertThat(r.code()).as(r.toString()).isZero();
                assertThat(r.out()).as(r.toString()).contains("web1").contains("running");
                assertThat(qsupd.connections()).as("connections for one list (--socket %s the verb)",
                        before ? "before" : "after").isEqualTo(1);
                assertThat(qsupd.receivedCommands()).containsExactly("qmp_capabilities", "query-vms");
            }
        }
    }

    @Test
    void aDaemonThatIsNotThereIsReportedOnceAsAlways() throws Exception {
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-early");
        try {
            Path missing = dir.resolve("qsupd.sock");
            Run r = qsup("kill", "web1", "--socket", missing.toString());
            assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.UNREACHABLE);
            assertThat(r.err().lines().filter(l -> l.contains("cannot reach qsupd at " + missing)).count())
                    .as(r.toString()).isEqualTo(1);
        } finally {
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void aUsageErrorClosesTheEarlyConnectionAndSendsNothing() throws Exception {
        try (FakeQmpServer qsupd = FakeQmpServer.start(FakeQmpServer.script().handshake())) {
            Run r = qsup("list", "--no-such-option", "--socket", qsupd.socket().toString());
            assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
            assertThat(r.err()).contains("--no-such-option");
            assertThat(qsupd.receivedCommands()).as("nothing beyond the negotiation").containsOnly("qmp_capabilities");
        }
    }

    @Test
    void onlyVerbsThatConnectFirstAndAPlainSocketChoiceConnectEarly() {
        Map<String, String> none = Map.of();
        assertThat(QsupMain.earlySocket("list", "--socket", "/a.sock")).isEqualTo(Path.of("/a.sock"));
        assertThat(QsupMain.earlySocket("--socket=/b.sock", "--json", "status", "web1")).isEqualTo(Path.of("/b.sock"));
        assertThat(QsupMain.earlySocket("kill", "web1")).isEqualTo(DaemonClient.resolveSocket(null, System.getenv()));
        assertThat(DaemonClient.resolveSocket(null, none)).isEqualTo(DaemonClient.DEFAULT_SOCKET);
        // qmp's --socket is a QEMU monitor; argv and validate connect nowhere; help, @files and two sockets: unsure
        assertThat(QsupMain.earlySocket("qmp", "--socket", "/qemu.sock", "query-status")).isNull();
        assertThat(QsupMain.earlySocket("argv", "web1")).isNull();
        assertThat(QsupMain.earlySocket("list", "--help")).isNull();
        assertThat(QsupMain.earlySocket("list", "@opts")).isNull();
        assertThat(QsupMain.earlySocket("--socket", "/a.sock", "list", "--socket", "/b.sock")).isNull();
        assertThat(QsupMain.earlySocket("list", "--socket=")).isNull();
        assertThat(QsupMain.earlySocket("start", "--", "--socket", "/x.sock")).isEqualTo(
                DaemonClient.resolveSocket(null, System.getenv()));
        assertThat(QsupMain.earlySocket()).isNull();
        // the others warm the JDK's sockets up instead, except those that never open one
        assertThat(QsupMain.warmsUp("qmp", "--socket", "/qemu.sock", "query-status")).isTrue();
        assertThat(QsupMain.warmsUp("events")).isTrue();
        assertThat(QsupMain.warmsUp("argv", "web1")).isFalse();
        assertThat(QsupMain.warmsUp("validate", "web1.yaml")).isFalse();
        assertThat(QsupMain.warmsUp("--version")).isFalse();
        assertThat(QsupMain.warmsUp("--help")).isFalse();
    }

    private record Run(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\nstdout:\n" + out + "\nstderr:\n" + err;
        }
    }

    /** {@code qsup ARGS} as its own JVM, through {@link QsupMain#main}, as bin/qsup runs it. */
    private static Run qsup(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                QsupMain.class.getName()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("qsup-early", ".out");
        Path err = Files.createTempFile("qsup-early", ".err");
        try {
            Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                throw new AssertionError("qsup " + String.join(" ", args) + " did not end within 60 s");
            }
            return new Run(p.exitValue(), Files.readString(out), Files.readString(err));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
