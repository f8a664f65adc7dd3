package io.qsup.qmp.schema;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpEvent;
import io.qsup.qmp.QmpFraming;
import io.qsup.qmp.QmpShellSyntax;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The schema model over a real QEMU's {@code query-qmp-schema}, and over broken introspection data. */
class QmpSchemaModelTest {
    private static RealQemuSchema qemu;

    @TempDir
    Path work;

    @BeforeAll
    static void start() throws Exception {
        qemu = new RealQemuSchema();
        qemu.ensureRunning();
    }

    @AfterAll
    static void stop() {
        qemu.close();
    }

    private static JsonNode json(String s) throws Exception {
        return QmpFraming.mapper().readTree(s);
    }

    @Test
    void everyCommandQemuListsIsInTheModelAndResolves() throws Exception {
        QmpSchema schema = qemu.schema();
        Set<String> listed = new TreeSet<>();
        qemu.client().execute("query-commands").forEach(c -> listed.add(c.path("name").asText()));
        assertThat(listed).hasSizeGreaterThan(100);
        assertThat(schema.commands().keySet()).containsAll(listed);
        for (SchemaCommand c : schema.commands().values()) {
            assertThat(schema.arguments(c)).as(c.name()).isNotNull();
            assertThat(schema.display(c.retType())).as(c.name()).isNotBlank();
            assertThat(SchemaDescription.describe(schema, c.name())).as(c.name()).startsWith(c.name() + " (command");
        }
    }

    @Test
    void everyEventResolvesAndTheEventsQemuSendsAreInIt() throws Exception {
        QmpSchema schema = qemu.schema();
        assertThat(schema.events()).containsKeys("SHUTDOWN", "STOP", "RESUME", "BLOCK_JOB_COMPLETED", "DEVICE_DELETED");
        for (SchemaEvent e : schema.events().values()) {
            assertThat(schema.type(e.argType())).as(e.name()).isInstanceOf(SchemaType.ObjectType.class);
            assertThat(SchemaDescription.describe(schema, e.name())).as(e.name()).startsWith(e.name() + " (event");
        }
        List<String> seen = new ArrayList<>();
        try (AutoCloseable l = qemu.client().addEventListener((QmpEvent e) -> seen.add(e.name()))) {
            var stopped = qemu.client().expectEvent("STOP", null);
            qemu.client().cont();
            qemu.client().stop();
            stopped.await(Duration.ofSeconds(10));
        }
        assertThat(seen).contains("RESUME", "STOP");
        assertThat(schema.events().keySet()).containsAll(seen);
    }

    @Test
    void everyTypeIsReachableByItsMaskedName() throws Exception {
        QmpSchema schema = qemu.schema();
        int types = 0;
        for (JsonNode e : schema.raw()) {
            String meta = e.path("meta-type").asText();
            if (!meta.equals("command") && !meta.equals("event")) {
                assertThat(schema.display(e.path("name").asText())).isNotBlank();
                types++;
            }
        }
        assertThat(types).isGreaterThan(500);
        SchemaType add = schema.arguments(schema.command("blockdev-add"));
        assertThat(add).isInstanceOfSatisfying(SchemaType.ObjectType.class, o -> {
            assertThat(o.tag()).isEqualTo("driver");
            assertThat(o.variants()).containsKeys("file", "qcow2", "null-co");
            assertThat(o.member("node-name").optional()).isTrue();
            assertThat(o.member("driver").optional()).isFalse();
        });
    }

    @Test
    void aDanglingTypeReferenceIsRefusedByName() throws Exception {
        assertThatThrownBy(() -> QmpSchema.parse(json("""
                [{"name":"go","meta-type":"command","arg-type":"0","ret-type":"7"},
                 {"name":"0","meta-type":"object","members":[]}]""")))
                .isInstanceOf(SchemaException.class)
                .hasMessage("command 'go' return names type '7', which the schema does not define");
        assertThatThrownBy(() -> QmpSchema.parse(json("{}")))
                .hasMessage("query-qmp-schema returned object, not a list of SchemaInfo");
        assertThatThrownBy(() -> QmpSchema.parse(json("[{\"name\":\"x\"}]")))
                .hasMessageStartingWith("entry 0 has no 'meta-type' string");
    }

    @Test
    void typingFollowsTheSchemaNotTheLooksOfTheValue() throws Exception {
        ArgumentTyper typer = new ArgumentTyper(qemu.schema());
        ObjectNode m = typer.type(QmpShellSyntax.parse("blockdev-add driver=raw node-name=007 file.driver=null-co"
                + " file.size=1.5k file.read-zeroes=no discard=unmap read-only=1 auto-read-only=false"));
        assertThat(m).isEqualTo(json("""
                {"execute":"blockdev-add","arguments":{"driver":"raw","node-name":"007",
                 "file":{"driver":"null-co","size":1536,"read-zeroes":false},"discard":"unmap",
                 "read-only":1,"auto-read-only":false}}"""));
        // read-only=1 is no bool: it keeps qmp-shell's guess, for the checker to report
        assertThat(new ArgumentChecker(qemu.schema()).check(m)).map(Problem::toString)
                .containsExactly("blockdev-add: read-only: expected bool, got 1");
        // an unknown command keeps qmp-shell's rules
        assertThat(typer.type(QmpShellSyntax.parse("no-such a=1 b=x")))
                .isEqualTo(json("{\"execute\":\"no-such\",\"arguments\":{\"a\":1,\"b\":\"x\"}}"));
        // quoted values are never retyped
        assertThat(typer.type(QmpShellSyntax.parse("block_resize node-name=n size=\"1G\"")))
                .isEqualTo(json("{\"execute\":\"block_resize\",\"arguments\":{\"node-name\":\"n\",\"size\":\"1G\"}}"));
    }

    @Test
    void theCacheIsUsedOnlyForItsOwnKey() throws Exception {
        SchemaCache cache = new SchemaCache(work.resolve("cache"));
        SchemaKey key = new SchemaKey("7.2.22", "Debian 1:7.2+dfsg-7", "x86_64");
        assertThat(cache.load(key)).isEmpty();
        QmpSchema schema = qemu.schema();
        cache.store(key, schema);
        assertThat(cache.load(key)).hasValueSatisfying(s ->
                assertThat(s.commands().keySet()).isEqualTo(schema.commands().keySet()));
        assertThat(cache.load(new SchemaKey("7.2.23", "Debian 1:7.2+dfsg-7", "x86_64"))).isEmpty();
        assertThat(cache.load(new SchemaKey("7.2.22", "Debian 1:7.2+dfsg-8", "x86_64"))).isEmpty();
        assertThat(cache.load(new SchemaKey("7.2.22", "Debian 1:7.2+dfsg-7", "aarch64"))).isEmpty();

        // a file renamed (or copied) to another key's name is not believed
        SchemaKey other = new SchemaKey("8.0.0", "", "x86_64");
        Files.copy(cache.file(key), cache.file(other));
        assertThat(cache.load(other)).isEmpty();
        // nor is a damaged one
        Files.writeString(cache.file(key), "{\"version\":\"7.2.22\",\"package\":\"Debian 1:7.2+dfsg-7\",");
        assertThat(cache.load(key)).isEmpty();
    }
}
