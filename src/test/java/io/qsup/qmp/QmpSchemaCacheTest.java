package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.cli.ExitCodes;
import io.qsup.cli.QsupMain;
import io.qsup.testing.FakeQmpServer;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The CLI's schema cache, seen in the QMP traffic of a scripted server that serves a small schema: fetched once per
 * QEMU version, package and architecture, and fetched again for another.
 */
class QmpSchemaCacheTest {
    static final String SCHEMA = """
            [{"name":"query-status","meta-type":"command","arg-type":"0","ret-type":"1"},
             {"name":"block_resize","meta-type":"command","arg-type":"2","ret-type":"0"},
             {"name":"0","meta-type":"object","members":[]},
             {"name":"1","meta-type":"object","members":[{"name":"status","type":"str"}]},
             {"name":"2","meta-type":"object","members":[{"name":"node-name","type":"str","default":null},
                                                         {"name":"size","type":"int"}]},
             {"name":"str","meta-type":"builtin","json-type":"string"},
             {"name":"int","meta-type":"builtin","json-type":"int"}]""";

    @TempDir
    Path work;

    private final List<FakeQmpServer> fakes = new ArrayList<>();

    @AfterEach
    void stop() {
        fakes.forEach(FakeQmpServer::close);
    }

    record Run(int code, String out, String err) {}

    /** A server that greets as QEMU {@code version} of {@code pkg} and answers the schema queries like QEMU. */
    static FakeQmpServer fakeQemu(String version, String pkg, String arch) {
        String[] v = version.split("\\.");
        return FakeQmpServer.start(FakeQmpServer.script().step(c -> {
            ObjectNode g = QmpFraming.mapper().createObjectNode();
            ObjectNode ver = g.putObject("QMP").putObject("version");
            ver.putObject("qemu").put("major", Integer.parseInt(v[0])).put("minor", Integer.parseInt(v[1]))
                    .put("micro", Integer.parseInt(v[2]));
            ver.put("package", pkg);
            g.get("QMP").withArray("capabilities");
            c.send(g);
            ObjectNode m;
            while ((m = c.read()) != null) {
                ObjectNode reply = QmpFraming.mapper().createObjectNode();
                reply.set("return", switch (m.path("execute").asText()) {
                    case "query-target" -> QmpFraming.mapper().createObjectNode().put("arch", arch);
                    case "query-qmp-schema" -> json(SCHEMA);
                    case "query-status" -> json("{\"status\":\"running\",\"running\":true}");
                    default -> QmpFraming.mapper().createObjectNode();
                });
                if (m.has("id")) {
                    reply.set("id", m.get("id"));
                }
                c.send(reply);
            }
        }));
    }

    static JsonNode json(String s) {
        try {
            return QmpFraming.mapper().readTree(s);
        } catch (Exception e) {
            throw new IllegalArgumentException(e);
        }
    }

    private FakeQmpServer fake(String version, String pkg, String arch) {
        FakeQmpServer f = fakeQemu(version, pkg, arch);
        fakes.add(f);
        return f;
    }

    private Run qsup(FakeQmpServer server, String... args) {
        List<String> all = new ArrayList<>(List.of("qmp", "--cache-dir", work.resolve("cache").toString(),
                "--socket", server.socket().toString()));
        all.addAll(List.of(args));
        CommandLine cl = QsupMain.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(all.toArray(String[]::new));
        return new Run(code, out.toString(), err.toString());
    }

    private static long fetches(FakeQmpServer f) {
        return f.receivedCommands().stream().filter("query-qmp-schema"::equals).count();
    }

    @Test
    void aSecondRunOnTheSameQemuDoesNotFetchTheSchemaAgain() throws Exception {
        FakeQmpServer qemu = fake("7.2.0", "Debian 1:7.2+dfsg-7", "x86_64");
        Run first = qsup(qemu, "query-status");
        assertThat(first.code()).as(first.err()).isZero();
        assertThat(fetches(qemu)).isEqualTo(1);

        Run second = qsup(qemu, "--compact", "query-status");
        assertThat(second.code()).as(second.err()).isZero();
        assertThat(second.out()).isEqualTo("{\"status\":\"running\",\"running\":true}\n");
        Run checked = qsup(qemu, "block_resize", "size=abc");
        assertThat(checked.err()).startsWith("block_resize: size: expected int, got \"abc\"\n");
        assertThat(fetches(qemu)).as("the schema queries in " + qemu.receivedCommands()).isEqualTo(1);
        assertThat(qemu.connections()).isEqualTo(3);
        try (Stream<Path> files = Files.list(work.resolve("cache"))) {
            assertThat(files.filter(p -> p.getFileName().toString().startsWith("qmp-schema-7.2.0-"))).hasSize(1);
        }
    }

    @Test
    void anotherVersionPackageOrArchitectureFetchesItsOwn() {
        FakeQmpServer a = fake("7.2.0", "Debian 1:7.2+dfsg-7", "x86_64");
        assertThat(qsup(a, "query-status").code()).isZero();
        assertThat(qsup(a, "query-status").code()).isZero();
        assertThat(fetches(a)).isEqualTo(1);

        for (FakeQmpServer other : List.of(fake("7.2.1", "Debian 1:7.2+dfsg-7", "x86_64"),
                fake("7.2.0", "Debian 1:7.2+dfsg-8", "x86_64"), fake("7.2.0", "Debian 1:7.2+dfsg-7", "aarch64"))) {
            assertThat(qsup(other, "query-status").code()).isZero();
            assertThat(fetches(other)).as("schema queries of another QEMU").isEqualTo(1);
        }
        // and the first QEMU's schema is still the cached one
        assertThat(qsup(a, "query-status").code()).isZero();
        assertThat(fetches(a)).isEqualTo(1);
    }

    @Test
    void aDamagedCacheFileIsFetchedAgainAndReplaced() throws Exception {
        FakeQmpServer qemu = fake("7.2.0", "", "x86_64");
        assertThat(qsup(qemu, "query-status").code()).isZero();
        Path file;
        try (Stream<Path> files = Files.list(work.resolve("cache"))) {
            file = files.filter(p -> p.getFileName().toString().startsWith("qmp-schema-")).findFirst().orElseThrow();
        }
        Files.writeString(file, "{\"version\":");
        Run r = qsup(qemu, "query-status");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(fetches(qemu)).isEqualTo(2);
        assertThat(Files.readString(file)).contains("\"block_resize\"");
        assertThat(qsup(qemu, "query-status").code()).isZero();
        assertThat(fetches(qemu)).isEqualTo(2);
    }

    @Test
    void noCacheFolderAtAllStillWorks() throws Exception {
        FakeQmpServer qemu = fake("7.2.0", "", "x86_64");
        Path blocked = work.resolve("file-not-dir");
        Files.writeString(blocked, "");
        CommandLine cl = QsupMain.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute("qmp", "--cache-dir", blocked.resolve("cache").toString(), "--socket",
                qemu.socket().toString(), "block_resize", "size=1G");
        assertThat(code).as(err.toString()).isEqualTo(ExitCodes.OK);
        assertThat(qemu.received().get(qemu.received().size() - 1).get("arguments"))
                .isEqualTo(json("{\"size\":1073741824}"));
    }
}
