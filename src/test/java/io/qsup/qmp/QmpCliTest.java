package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.cli.ExitCodes;
import io.qsup.cli.QsupMain;
import io.qsup.testing.FakeQmpServer;
import io.qsup.testing.TestQemu;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code qsup qmp} end to end, in process, against real QEMU and against the scripted fake server. */
class QmpCliTest {
    record Run(int code, String out, String err) {
        List<String> outLines() {
            return out.lines().toList();
        }
    }

    @TempDir
    Path work;

    private TestQemu qemu;
    private FakeQmpServer fake;

    @AfterEach
    void cleanUp() {
        if (qemu != null) {
            qemu.close();
        }
        if (fake != null) {
            fake.close();
        }
    }

    /** Runs qsup in-process, with the schema cache in the test's own folder rather than the user's. */
    private Run qsup(String... args) {
        List<String> all = new java.util.ArrayList<>(List.of(args));
        if (!all.isEmpty() && all.get(0).equals("qmp")) {
            all.addAll(1, List.of("--cache-dir", work.resolve("cache").toString()));
        }
        return run(all.toArray(String[]::new));
    }

    private static Run run(String... args) {
        CommandLine cl = QsupMain.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    private String sock() {
        if (qemu == null) {
            qemu = TestQemu.start(work, List.of());
        }
        return "unix:" + qemu.qmpSocket();
    }

    private Path batch(String text) throws Exception {
        Path f = work.resolve("cmds.txt");
        Files.writeString(f, text);
        return f;
    }

    private static JsonNode json(String s) throws Exception {
        return QmpFraming.mapper().readTree(s);
    }

    @Test
    void singleCommandPrintsTheReturnAsPrettyJson() throws Exception {
        Run r = qsup("qmp", "--socket", sock(), "query-status");
        assertThat(r.code()).as(r.err()).isEqualTo(ExitCodes.OK);
        assertThat(json(r.out())).isEqualTo(json("{\"status\":\"prelaunch\",\"singlestep\":false,\"running\":false}"));
        assertThat(r.out()).startsWith("{\n  \"").contains("\"status\": \"prelaunch\"");
        assertThat(r.err()).isEmpty();
    }

    @Test
    void compactPrintsOneLine() throws Exception {
        Run r = qsup("qmp", "--socket", sock(), "--compact", "query-status");
        assertThat(r.code()).isZero();
        assertThat(r.outLines()).hasSize(1);
        assertThat(json(r.out()).path("status").asText()).isEqualTo("prelaunch");
    }

    @Test
    void argumentsWithBlanksAndTheTcpForm() throws Exception {
        qemu = TestQemu.startWithTcp(work, List.of());
        Run r = qsup("qmp", "--socket", "tcp:127.0.0.1:" + ((QmpEndpoint.Tcp) qemu.tcpEndpoint()).port(),
                "human-monitor-command", "command-line=info version");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(json(r.out()).asText()).contains(TestQemu.binaryVersion());
        // a bare path means a unix socket
        Run bare = qsup("qmp", "--socket", qemu.qmpSocket().toString(), "--compact", "query-status");
        assertThat(bare.code()).as(bare.err()).isZero();
    }

    @Test
    void qmpErrorGoesToStderrAsClassAndDescWithExitCode1() {
        Run r = qsup("qmp", "--socket", sock(), "--no-check", "no-such-command");
        assertThat(r.code()).isEqualTo(ExitCodes.ERROR);
        assertThat(r.err()).isEqualTo("CommandNotFound: The command no-such-command has not been found\n");
        assertThat(r.out()).isEmpty();
    }

    @Test
    void unreachableSocketExits4AndNamesTheSocket() {
        Run r = qsup("qmp", "--socket", "/tmp/qsup-no-such-dir/qmp.sock", "query-status");
        assertThat(r.code()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(r.err()).contains("cannot connect to QMP socket unix:/tmp/qsup-no-such-dir/qmp.sock");
    }

    @Test
    void notAQmpSocketExits4() {
        fake = FakeQmpServer.start(FakeQmpServer.script().raw("220 smtp ready\r\n"));
        Run r = qsup("qmp", "--socket", fake.socket().toString(), "query-status");
        assertThat(r.code()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(r.err()).contains("bad QMP greeting from unix:" + fake.socket());
    }

    @Test
    void usageErrorsExit2() {
        Run nothing = qsup("qmp");
        assertThat(nothing.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(nothing.err()).contains("name a VM").contains("--socket");

        Run noCommand = qsup("qmp", "web1");
        assertThat(noCommand.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(noCommand.err()).contains("nothing to do");

        Run badSocket = qsup("qmp", "--socket", "tcp:localhost", "query-status");
        assertThat(badSocket.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(badSocket.err()).contains("needs a host and a port");

        Run badTimeout = qsup("qmp", "--socket", "/tmp/x.sock", "--timeout", "soon", "query-status");
        assertThat(badTimeout.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(badTimeout.err()).contains("'soon' is not a duration");
    }

    @Test
    void badCommandSyntaxExits2WithACaretAndSendsNothing() {
        fake = FakeQmpServer.start(FakeQmpServer.script().handshake());
        Run r = qsup("qmp", "--socket", fake.socket().toString(), "block_resize", "device=hd0", "size");
        assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains("expected key=value, got 'size' at column 25")
                .contains("  block_resize device=hd0 size\n  " + " ".repeat(24) + "^");
        assertThat(fake.connections()).isZero();
    }

    @Test
    void batchFileWithCommentsPrintsOneCompactResultPerCommand() throws Exception {
        Path f = batch("""
                # start the guest, check, pause
                query-status

                cont
                  # indented comment
                query-status
                stop
                """);
        Run r = qsup("qmp", "--socket", sock(), "--file", f.toString());
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.outLines();
        assertThat(lines).hasSize(4);
        assertThat(json(lines.get(0)).path("status").asText()).isEqualTo("prelaunch");
        assertThat(lines.get(1)).isEqualTo("{}");
        assertThat(json(lines.get(2)).path("status").asText()).isEqualTo("running");
        assertThat(lines.get(3)).isEqualTo("{}");
    }

    @Test
    void batchStopsAtTheFirstErrorUnlessKeepGoing() throws Exception {
        Path f = batch("query-status\nno-such-command\nquery-name\n");
        Run stop = qsup("qmp", "--socket", sock(), "--no-check", "--file", f.toString());
        assertThat(stop.code()).isEqualTo(ExitCodes.ERROR);
        assertThat(stop.outLines()).hasSize(2);
        assertThat(json(stop.outLines().get(1)).path("error").path("class").asText()).isEqualTo("CommandNotFound");
        assertThat(stop.err()).isEqualTo(f + ":2: CommandNotFound: The command no-such-command has not been found\n");

        Run go = qsup("qmp", "--socket", sock(), "--no-check", "--file", f.toString(), "--keep-going");
        assertThat(go.code()).isEqualTo(ExitCodes.ERROR);
        assertThat(go.outLines()).hasSize(3);
        assertThat(go.outLines().get(2)).isEqualTo("{}"); // query-name of a VM without a name
    }

    @Test
    void batchWithASyntaxErrorReportsFileLineAndColumnAndSendsNothing() throws Exception {
        fake = FakeQmpServer.start(FakeQmpServer.script().handshake());
        Path f = batch("query-status\n# fine\nblockdev-add driver=file options={\"a\": 1\n");
        Run r = qsup("qmp", "--socket", fake.socket().toString(), "--file", f.toString());
        assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.err()).contains(f + ":3:34: unclosed '{'").contains("nothing was sent");
        assertThat(fake.connections()).isZero();
    }

    @Test
    void missingBatchFileExits3() {
        Run r = qsup("qmp", "--socket", "/tmp/x.sock", "--file", work.resolve("nope.txt").toString());
        assertThat(r.code()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(r.err()).contains("batch file not found").contains("nope.txt");
    }

    @Test
    void repeatRunsTheBatchNTimes() throws Exception {
        fake = FakeQmpServer.start(FakeQmpServer.script().handshake());
        Path f = batch("query-status\nquery-name\n");
        Run r = qsup("qmp", "--socket", fake.socket().toString(), "--file", f.toString(), "--repeat", "3");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.outLines()).hasSize(6);
        // the fake offers no schema (its query-qmp-schema returns {}), so the commands go as qmp-shell types them
        assertThat(fake.receivedCommands()).containsExactly("qmp_capabilities", "query-target", "query-qmp-schema",
                "query-status", "query-name", "query-status", "query-name", "query-status", "query-name");
    }

    @Test
    void repeatAgainstRealQemu() {
        Run r = qsup("qmp", "--socket", sock(), "--compact", "--repeat", "4", "query-status");
        assertThat(r.code()).isZero();
        assertThat(r.outLines()).hasSize(4).allMatch(l -> l.contains("\"prelaunch\""));
    }

    @Test
    void eventsArePrintedAsQemuSendsThem() throws Exception {
        Path f = batch("cont\nstop\n");
        Run r = qsup("qmp", "--socket", sock(), "--file", f.toString(), "--events");
        assertThat(r.code()).as(r.err()).isZero();
        List<String> events = r.outLines().stream().filter(l -> l.contains("\"event\":")).toList();
        assertThat(events).hasSize(2);
        assertThat(json(events.get(0)).path("event").asText()).isEqualTo("RESUME");
        assertThat(json(events.get(1)).path("event").asText()).isEqualTo("STOP");
        assertThat(json(events.get(1)).path("timestamp").has("seconds")).isTrue();
        assertThat(r.outLines()).filteredOn(l -> l.equals("{}")).hasSize(2);
    }

    @Test
    void waitEventPrintsTheEvent() throws Exception {
        Run r = qsup("qmp", "--socket", sock(), "cont", "--wait-event", "RESUME", "--timeout", "10");
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.outLines();
        assertThat(json(lines.get(lines.size() - 1)).path("event").asText()).isEqualTo("RESUME");
    }

    @Test
    void quitWithWaitEventSeesTheShutdown() throws Exception {
        Run r = qsup("qmp", "--socket", sock(), "quit", "--wait-event", "SHUTDOWN", "--timeout", "10");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode ev = json(r.outLines().get(r.outLines().size() - 1));
        assertThat(ev.path("event").asText()).isEqualTo("SHUTDOWN");
        assertThat(ev.path("data").path("reason").asText()).isEqualTo("host-qmp-quit");
        assertThat(qemu.process().waitFor(20, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void waitEventTimesOutWithAClearMessage() {
        Run r = qsup("qmp", "--socket", sock(), "query-status", "--wait-event", "SHUTDOWN", "--timeout", "0.5");
        assertThat(r.code()).isEqualTo(ExitCodes.ERROR);
        assertThat(r.err()).contains("event SHUTDOWN did not come from " + sock() + " within 500ms");
    }

    @Test
    void silentServerTimesOutTheCommand() {
        fake = FakeQmpServer.start(FakeQmpServer.script().handshake().silence());
        Run r = qsup("qmp", "--socket", fake.socket().toString(), "query-status", "--timeout", "300ms");
        assertThat(r.code()).isEqualTo(ExitCodes.ERROR);
        assertThat(r.err()).contains("no reply to 'query-status'").contains("within 300ms");
    }

    @Test
    void stdinBatch() throws Exception {
        InputStream saved = System.in;
        try {
            System.setIn(new ByteArrayInputStream("query-status\n# comment\n{\"execute\": \"query-name\"}\n"
                    .getBytes(StandardCharsets.UTF_8)));
            Run r = qsup("qmp", "--socket", sock(), "--file", "-");
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.outLines()).hasSize(2);
            assertThat(json(r.outLines().get(0)).path("status").asText()).isEqualTo("prelaunch");
            assertThat(r.outLines().get(1)).isEqualTo("{}");
        } finally {
            System.setIn(saved);
        }
    }
}
