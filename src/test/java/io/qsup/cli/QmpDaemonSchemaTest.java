package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.qsup.config.DaemonSettings;
import io.qsup.control.DaemonControl;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code qsup qmp NAME} with the schema served by qsupd's {@code vm-qmp-schema}, on a real supervised QEMU: checks,
 * typed values and {@code --describe} work through the daemon, qsupd keeps the schema in {@code state-dir}, and the
 * completion answers for the NAME form afterwards.
 */
class QmpDaemonSchemaTest {
    private SupervisorFixture fixture;
    private DaemonControl control;
    private DaemonSettings settings;

    @TempDir
    Path work;

    @BeforeEach
    void start() throws Exception {
        fixture = new SupervisorFixture(1);
        fixture.writeVm("web1", "restart: no");
        settings = fixture.settings();
        Supervisor sup = fixture.supervisor(Supervisor.Options.defaults());
        sup.loadInitial();
        control = DaemonControl.start(settings, sup);
        sup.startup();
        sup.controller("web1").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));
    }

    @AfterEach
    void stop() throws Exception {
        if (control != null) {
            control.close();
        }
        fixture.close();
    }

    private CliRun qsup(String... args) {
        List<String> all = new java.util.ArrayList<>(List.of("qmp", "--daemon-socket",
                settings.controlSocket().toString(), "--cache-dir", work.resolve("cache").toString()));
        all.addAll(List.of(args));
        return CliRun.qsupRaw(all.toArray(String[]::new));
    }

    private List<Path> daemonCache() throws Exception {
        Path dir = settings.stateDir().resolve("qmp-schema");
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith("qmp-schema-")).toList();
        }
    }

    @Test
    void checksTypesAndDescribesThroughQsupd() throws Exception {
        assertThat(daemonCache()).isEmpty();
        CliRun describe = qsup("web1", "--describe", "block_resize");
        assertThat(describe.code()).as(describe.toString()).isZero();
        assertThat(describe.out()).startsWith("block_resize (command)\n  arguments:\n    device: str, optional\n");
        assertThat(daemonCache()).hasSize(1);

        CliRun typed = qsup("web1", "-v", "--compact", "blockdev-add", "driver=null-co", "node-name=n0", "size=1G");
        assertThat(typed.code()).as(typed.toString()).isZero();
        assertThat(typed.err()).isEqualTo("--> {\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"null-co\","
                + "\"node-name\":\"n0\",\"size\":1073741824}}\n");
        assertThat(typed.out()).isEqualTo("{}\n");

        CliRun refused = qsup("web1", "block_resize", "node-name=n0", "sise=2G");
        assertThat(refused.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(refused.err()).startsWith("block_resize: size: missing\n"
                + "block_resize: sise: unknown argument; did you mean 'size'? accepted: device, node-name, size\n");

        CliRun unknownVm = qsup("web2", "--describe", "block_resize");
        assertThat(unknownVm.code()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(unknownVm.err()).contains("no VM named 'web2'");
    }

    @Test
    void qsupdFetchesTheSchemaOncePerQemuAndThenServesItFromStateDir() throws Exception {
        try (QmpClient daemon = QmpClient.connect(new QmpEndpoint.Unix(settings.controlSocket()))) {
            var args = JsonNodeFactory.instance.objectNode().put("name", "web1");
            JsonNode first = daemon.execute("vm-qmp-schema", args);
            assertThat(first.path("cached").asBoolean()).isFalse();
            assertThat(first.path("version").asText()).isEqualTo(io.qsup.testing.TestQemu.binaryVersion());
            assertThat(first.path("arch").asText()).isEqualTo("x86_64");
            assertThat(first.path("schema").size()).isGreaterThan(1000);
            List<Path> files = daemonCache();
            assertThat(files).hasSize(1);
            var written = Files.getLastModifiedTime(files.get(0));

            JsonNode second = daemon.execute("vm-qmp-schema", args);
            assertThat(second.path("cached").asBoolean()).isTrue();
            assertThat(second.path("schema")).isEqualTo(first.path("schema"));
            assertThat(Files.getLastModifiedTime(files.get(0))).isEqualTo(written);

            var noVm = JsonNodeFactory.instance.objectNode().put("name", "nope");
            try {
                daemon.execute("vm-qmp-schema", noVm);
                throw new AssertionError("vm-qmp-schema answered for a VM that does not exist");
            } catch (io.qsup.qmp.QmpErrorException e) {
                assertThat(e.errorClass()).isEqualTo("VmNotFound");
            }
        }
    }

    @Test
    void completionForTheNameFormAnswersFromTheCacheOnceTheVmWasUsed() {
        String line = "qsup qmp --daemon-socket " + settings.controlSocket() + " --cache-dir " + work.resolve("cache")
                + " web1 query-statu";
        assertThat(CliRun.qsupRaw("qmp", "--complete", line).out()).isEmpty();
        assertThat(qsup("web1", "query-status").code()).isZero();
        assertThat(CliRun.qsupRaw("qmp", "--complete", line).out()).isEqualTo("query-status\n");
        assertThat(CliRun.qsupRaw("qmp", "--complete", line.replace("query-statu", "block_resize node-")).out())
                .isEqualTo("node-name=\n");
    }
}
