package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.testing.TestQemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The same bytes sent to a real QEMU's QMP monitor and to qsupd's control socket get the same replies, error class,
 * words and id alike. Only inputs both understand are compared: the envelope, JSON errors, {@code qmp_capabilities}
 * and {@code query-commands}.
 */
class QemuWireConformanceTest {
    private Path dir;
    private TestQemu qemu;
    private ControlServer server;

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-conf");
        qemu = TestQemu.start(dir.resolve("qemu"), List.of());
        EventHub hub = new EventHub();
        Map<String, ControlCommand> table = new HashMap<>();
        EventCommands.register(table, hub);
        server = new ControlServer(dir.resolve("qsupd.sock"), "users", table, hub, ControlServer.Limits.defaults());
        server.start();
    }

    @AfterEach
    void stop() throws IOException {
        if (server != null) {
            server.close();
        }
        if (qemu != null) {
            qemu.close();
        }
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Test
    void qsupdAnswersWhatQemuAnswers() throws IOException {
        try (RawControlClient q = new RawControlClient(qemu.qmpSocket());
                RawControlClient d = new RawControlClient(server.socketPath())) {
            assertThat(q.read().has("QMP")).isTrue();
            assertThat(d.read().has("QMP")).isTrue();

            // before negotiation
            same(q, d, "{\"execute\":\"query-commands\",\"id\":1}");
            same(q, d, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"bogus\":1}}");
            same(q, d, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":\"oob\"}}");
            same(q, d, "{\"execute\":\"qmp_capabilities\",\"bogus-member\":true,\"id\":\"x\"}");
            same(q, d, "{\"execute\":\"qmp_capabilities\"}");

            // after
            same(q, d, "{\"execute\": \"q");
            same(q, d, "{\"execute\":\"query-commands\",\"bogus-member\":1,\"id\":3}");
            same(q, d, "{\"execute\":\"query-commands\",\"arguments\":{\"bogus\":1},\"id\":2}");
            same(q, d, "{\"execute\":\"query-commands\",\"arguments\":[],\"id\":12}");
            same(q, d, "{\"execute\":5,\"id\":13}");
            same(q, d, "{\"id\":14}");
            same(q, d, "[1, 2]");
            same(q, d, "{\"exec-oob\":\"query-commands\",\"id\":15}");
            same(q, d, "{\"execute\":\"no-such-command\",\"arguments\":{\"x\":1},\"id\":19}");
            same(q, d, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":\"oob\"}}");
            same(q, d, "{\"execute\":\"qmp_capabilities\",\"id\":20}");

            // qsupd names the key; QEMU's words come first
            String dup = "{\"execute\":\"query-commands\",\"id\":4,\"id\":5}";
            JsonNode fromQemu = q.command(dup);
            JsonNode fromQsupd = d.command(dup);
            assertThat(fromQemu.path("error").path("desc").asText()).isEqualTo("JSON parse error, duplicate key");
            assertThat(fromQsupd.path("error").path("desc").asText())
                    .startsWith(fromQemu.path("error").path("desc").asText());
            assertThat(fromQsupd.has("id")).isEqualTo(fromQemu.has("id"));

            // and both still serve
            assertThat(q.command("{\"execute\":\"query-commands\",\"id\":\"end\"}").path("return").isArray()).isTrue();
            assertThat(d.command("{\"execute\":\"query-commands\",\"id\":\"end\"}").path("return").isArray()).isTrue();
        }
    }

    private static void same(RawControlClient qemu, RawControlClient qsupd, String line) throws IOException {
        JsonNode expected = qemu.command(line);
        JsonNode actual = qsupd.command(line);
        assertThat(actual).as("reply to %s", line).isEqualTo(expected);
    }
}
