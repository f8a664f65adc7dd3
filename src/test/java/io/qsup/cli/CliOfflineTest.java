package io.qsup.cli;

import static io.qsup.cli.CliRun.qsupRaw;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The verbs that need no daemon, in their JSON form, and the help every verb carries. */
class CliOfflineTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));

    @Test
    void validateJsonNamesFileLineColumnAndKey(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("good.yaml"), "memory: 128M\naccel: tcg\n");
        Files.writeString(dir.resolve("bad.yaml"), "memory: 128M\naccel: tcg\nmemroy: 1G\n");
        CliRun r = qsupRaw("validate", dir.toString(), "--json");
        assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.ERROR);
        JsonNode o = JSON.readTree(r.out());
        assertThat(o.path("ok").asBoolean()).isFalse();
        assertThat(o.path("vms").asInt()).isEqualTo(1);
        JsonNode e = o.path("errors").get(0);
        assertThat(e.path("file").asText()).endsWith("bad.yaml");
        assertThat(e.path("line").asInt()).isEqualTo(3);
        assertThat(e.path("column").asInt()).isEqualTo(1);
        assertThat(e.path("key").asText()).isEqualTo("memroy");
        assertThat(e.path("message").asText()).contains("memory");
    }

    @Test
    void argvJsonIsTheSameListAsThePlainForm() throws Exception {
        String config = PROJECT.resolve("config/qsupd.yaml").toString();
        CliRun plain = qsupRaw("argv", "demo", "--config", config);
        CliRun json = qsupRaw("argv", "demo", "--config", config, "--json");
        assertThat(json.code()).as(json.toString()).isZero();
        JsonNode a = JSON.readTree(json.out());
        assertThat(a.size()).isEqualTo(plain.out().split("\n").length);
        assertThat(a.get(0).asText()).isEqualTo("qemu-system-x86_64");
        assertThat(plain.out()).contains("guest=demo");
    }

    @Test
    void everyVerbHasHelpWithExamples() {
        CliRun top = qsupRaw("--help");
        assertThat(top.out()).contains("Examples:").contains("Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4");
        for (String verb : new String[] {"list", "status", "start", "stop", "restart", "kill", "pause", "resume",
            "reset", "reset-failed", "reload", "events", "qmp", "console", "logs", "argv", "validate"}) {
            CliRun r = qsupRaw(verb, "--help");
            assertThat(r.code()).as(verb).isZero();
            assertThat(r.out()).as(verb).contains("Usage: qsup " + verb).contains("qsup " + verb + " ");
        }
    }
}
