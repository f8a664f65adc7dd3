package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.cli.ExitCodes;
import io.qsup.cli.QsupMain;
import io.qsup.testing.TestQemu;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code qsup qmp} with QEMU's own schema, against a real QEMU: for each case, exactly what the user reads, or exactly
 * the JSON sent (with {@code -v}) and that QEMU took it. The cases run in order on one QEMU; later ones use the block
 * node the second case adds.
 */
class QmpSchemaCliTest {
    private static final String NOTHING_SENT =
            "Nothing was sent. --describe COMMAND shows what a command takes; --no-check sends it anyway.\n";

    @TempDir
    static Path work;

    private static TestQemu qemu;

    record Run(int code, String out, String err) {}

    @BeforeAll
    static void startQemu() {
        qemu = TestQemu.start(work.resolve("qemu"), List.of());
    }

    @AfterAll
    static void stopQemu() {
        if (qemu != null) {
            qemu.close();
        }
    }

    static Run qsup(String... args) {
        List<String> all = new ArrayList<>(List.of("qmp", "--cache-dir", work.resolve("cache").toString(),
                "--socket", qemu.qmpSocket().toString()));
        all.addAll(List.of(args));
        CommandLine cl = QsupMain.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(all.toArray(String[]::new));
        return new Run(code, out.toString(), err.toString());
    }

    /** A command the schema refuses: exit 2, these lines on stderr, nothing on stdout. */
    private static DynamicTest refused(String name, String line, String... problems) {
        return DynamicTest.dynamicTest(name + ": " + line, () -> {
            Run r = qsup(words(line));
            assertThat(r.err()).isEqualTo(String.join("\n", problems) + "\n" + NOTHING_SENT);
            assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
            assertThat(r.out()).isEmpty();
        });
    }

    /** A command sent as exactly this JSON (echoed by -v), with QEMU's answer checked by {@code then}. */
    private static DynamicTest sent(String name, String line, String json, int code, Consumer<Run> then) {
        return DynamicTest.dynamicTest(name + ": " + line, () -> {
            List<String> args = new ArrayList<>(List.of("-v", "--compact"));
            args.addAll(List.of(words(line)));
            Run r = qsup(args.toArray(String[]::new));
            assertThat(r.err().lines().findFirst().orElse("")).isEqualTo("--> " + json);
            assertThat(r.code()).as(r.err()).isEqualTo(code);
            then.accept(r);
        });
    }

    private static Consumer<Run> returnsEmpty() {
        return r -> assertThat(r.out()).isEqualTo("{}\n");
    }

    private static Consumer<Run> qemuSays(String error) {
        return r -> assertThat(r.err()).endsWith("\n" + error + "\n");
    }

    /** Splits like a shell would for these lines: on blanks, none of them quoted. */
    private static String[] words(String line) {
        return line.split(" ");
    }

    @TestFactory
    Stream<DynamicTest> casesAgainstQemu() {
        int commands = qsup("--list").out().lines().toList().size();
        return Stream.of(
                refused("unknown command, with the VM's own closest name", "query-stauts",
                        "query-stauts: unknown command; did you mean 'query-status'?"),
                refused("unknown command, nothing close", "frobnicate",
                        "frobnicate: unknown command; --list shows the " + commands + " commands this QEMU offers"),
                sent("size with a unit, bool as on", "blockdev-add driver=null-co node-name=n0 size=1G read-zeroes=on",
                        "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"null-co\",\"node-name\":\"n0\","
                                + "\"size\":1073741824,\"read-zeroes\":true}}", ExitCodes.OK, returnsEmpty()),
                sent("the node QEMU made has that size", "query-named-block-nodes flat=true",
                        "{\"execute\":\"query-named-block-nodes\",\"arguments\":{\"flat\":true}}", ExitCodes.OK,
                        r -> assertThat(r.out()).contains("\"node-name\":\"n0\"")
                                .contains("\"virtual-size\":1073741824")),
                sent("size as a plain integer", "blockdev-add driver=null-co node-name=n1 size=1073741824",
                        "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"null-co\",\"node-name\":\"n1\","
                                + "\"size\":1073741824}}", ExitCodes.OK, returnsEmpty()),
                sent("bool forms off and yes", "blockdev-add driver=null-co node-name=n2 read-zeroes=off read-only=yes",
                        "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"null-co\",\"node-name\":\"n2\","
                                + "\"read-zeroes\":false,\"read-only\":true}}", ExitCodes.OK, returnsEmpty()),
                sent("node-name=123 stays a string", "block_resize node-name=123 size=1M",
                        "{\"execute\":\"block_resize\",\"arguments\":{\"node-name\":\"123\",\"size\":1048576}}",
                        ExitCodes.ERROR, qemuSays("GenericError: Cannot find device='' nor node-name='123'")),
                sent("an alternate's string branch", "blockdev-add driver=raw node-name=r1 file=n0",
                        "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"raw\",\"node-name\":\"r1\","
                                + "\"file\":\"n0\"}}", ExitCodes.OK, returnsEmpty()),
                sent("dotted keys nest, typed inside", "blockdev-add driver=raw node-name=r2 file.driver=null-co"
                                + " file.size=64M file.read-zeroes=true",
                        "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"raw\",\"node-name\":\"r2\","
                                + "\"file\":{\"driver\":\"null-co\",\"size\":67108864,\"read-zeroes\":true}}}",
                        ExitCodes.OK, returnsEmpty()),
                refused("unknown argument names the accepted ones", "block_resize node-name=n0 sise=2G",
                        "block_resize: size: missing",
                        "block_resize: sise: unknown argument; did you mean 'size'? accepted: device, node-name, size"),
                refused("argument to a command that takes none", "query-status verbose=1",
                        "query-status: verbose: unknown argument; query-status takes no arguments"),
                refused("nested unknown member", "blockdev-add driver=raw node-name=r3 file.driver=null-co file.sise=1M",
                        "blockdev-add: file.sise: unknown member; did you mean 'size'? accepted: driver, node-name,"
                                + " discard, cache, read-only, auto-read-only, force-share, detect-zeroes, size,"
                                + " latency-ns, read-zeroes"),
                refused("missing required, nested", "blockdev-add driver=raw node-name=r3 file.driver=file",
                        "blockdev-add: file.filename: missing"),
                refused("missing required", "block_resize node-name=n0", "block_resize: size: missing"),
                refused("wrong type", "block_resize node-name=n0 size=abc",
                        "block_resize: size: expected int, got \"abc\""),
                refused("not a bool", "blockdev-add driver=null-co node-name=n3 read-zeroes=maybe",
                        "blockdev-add: read-zeroes: expected bool, got \"maybe\""),
                refused("value outside a small enum", "blockdev-add driver=null-co node-name=n3 detect-zeroes=maybe",
                        "blockdev-add: detect-zeroes: \"maybe\" is not one of: off, on, unmap"),
                refused("value outside a large enum", "blockdev-add driver=qcow3 node-name=n3",
                        "blockdev-add: driver: \"qcow3\" is not one of its 42 values (--describe lists them);"
                                + " did you mean 'qcow2'?"),
                refused("alternate with no branch for the value", "blockdev-add driver=raw node-name=r3 file=[1]",
                        "blockdev-add: file: expected object or str, got [1]"),
                refused("array expected", "yank instances=5", "yank: instances: expected array of object, got 5"),
                refused("inside an array's element", "yank instances=[{\"type\":\"chardev\"}]",
                        "yank: instances[0].id: missing"),
                refused("a raw JSON line is checked, not retyped",
                        "{\"execute\":\"block_resize\",\"arguments\":{\"node-name\":\"n0\",\"size\":\"1G\"}}",
                        "block_resize: size: expected int, got \"1G\""),
                refused("a misspelt key of a raw message", "{\"execute\":\"query-status\",\"argumnets\":{}}",
                        "query-status: unknown key \"argumnets\" in the message; QMP takes execute, exec-oob,"
                                + " arguments, id"),
                sent("--no-check sends anyway, and QEMU refuses", "--no-check block_resize node-name=n0 size=abc",
                        "{\"execute\":\"block_resize\",\"arguments\":{\"node-name\":\"n0\",\"size\":\"abc\"}}",
                        ExitCodes.ERROR, qemuSays("GenericError: Invalid parameter type for 'size', expected: integer")));
    }

    @Test
    void aBatchIsCheckedWholeBeforeAnythingIsSent() throws Exception {
        Path f = work.resolve("cmds.txt");
        Files.writeString(f, "blockdev-add driver=null-co node-name=b0\n# fine so far\nblock_resize node-name=b0 size=x\n"
                + "query-stauts\n");
        Run r = qsup("--file", f.toString());
        assertThat(r.err()).isEqualTo(f + ":3: block_resize: size: expected int, got \"x\"\n"
                + f + ":4: query-stauts: unknown command; did you mean 'query-status'?\n" + NOTHING_SENT);
        assertThat(r.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(qsup("--compact", "query-named-block-nodes").out()).doesNotContain("\"b0\"");
    }

    @Test
    void describePrintsArgumentsNestedMembersReturnsAndEvents() {
        Run resize = qsup("--describe", "block_resize");
        assertThat(resize.code()).isZero();
        assertThat(resize.out()).isEqualTo("""
                block_resize (command)
                  arguments:
                    device: str, optional
                    node-name: str, optional
                    size: int
                  returns: nothing ({})
                """);
        Run add = qsup("--describe", "blockdev-add");
        assertThat(add.out()).startsWith("blockdev-add (command)\n  arguments:\n    driver: enum; one of: blkdebug,")
                .contains("\n    node-name: str, optional\n")
                .contains("\n    when driver is file:\n      filename: str\n")
                .contains("\n      file: object or str\n        (the object described above)\n");
        Run status = qsup("--describe", "query-status");
        assertThat(status.out()).contains("  returns: object\n    running: bool\n")
                .contains("    status: enum; one of: debug, inmigrate,");
        Run shutdown = qsup("--describe", "SHUTDOWN");
        assertThat(shutdown.out()).startsWith("SHUTDOWN (event)\n  data:\n    guest: bool\n    reason: enum; one of:")
                .contains("host-qmp-quit");
        Run unknown = qsup("--describe", "blockdev-ad");
        assertThat(unknown.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(unknown.err()).isEqualTo("blockdev-ad: no such command or event; did you mean 'blockdev-add'?\n");
    }

    @Test
    void listPrintsEveryCommandOnce() {
        Run r = qsup("--list");
        assertThat(r.code()).isZero();
        assertThat(r.out().lines().toList()).contains("blockdev-add", "query-status", "qmp_capabilities", "quit")
                .doesNotHaveDuplicates().isSorted();
    }
}
