package io.qsup.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpFraming;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.PrometheusServer;
import io.qsup.testing.QsupdProcess;
import io.qsup.vm.ProcessInspector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A real Prometheus scrapes a real qsupd with real VMs every second: through Prometheus' query API it sees each VM's
 * state, the disk a VM read its boot sector from, and the crash counter rise after a {@code kill -9} of a QEMU; and
 * {@code promtool check metrics} finds nothing wrong with the exposition.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PrometheusEndpointTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private SupervisorFixture fx;
    private QsupdProcess qsupd;
    private PrometheusServer prometheus;
    private int metricsPort;

    @BeforeAll
    void start() throws Exception {
        fx = new SupervisorFixture(3);
        metricsPort = PrometheusServer.freePort();
        MetricsTestVms.listenOn(fx, "127.0.0.1:" + metricsPort);
        Path disk = MetricsTestVms.disk(fx, "web");
        MetricsTestVms.seabios(fx, "web", "restart: on-failure\ndisks:\n  - file: " + disk + "\n    format: raw");
        MetricsTestVms.seabios(fx, "db", "restart: on-failure");
        MetricsTestVms.seabios(fx, "idle", "autostart: false");
        qsupd = QsupdProcess.start(fx.settingsFile, fx.base.resolve("qsupd.log"));
        qsupd.awaitLog("qsupd ready", WAIT);
        assertThat(qsupd.log()).contains("metrics endpoint on http://127.0.0.1:" + metricsPort + "/metrics");
        try {
            prometheus = PrometheusServer.start(Files.createDirectories(fx.base.resolve("prom")),
                    "127.0.0.1:" + metricsPort);
        } catch (java.io.IOException e) {
            throw new AssertionError("cannot run Debian's prometheus (" + e.getMessage() + "); install it with"
                    + " scripts/setup", e);
        }
    }

    @AfterAll
    void stop() throws Exception {
        if (prometheus != null) {
            prometheus.close();
        }
        if (qsupd != null) {
            qsupd.close();
        }
        if (fx != null) {
            fx.close();
        }
    }

    @Test
    void prometheusSeesEveryVmsStateAndTheCrashOfAKilledQemu() throws Exception {
        prometheus.awaitQuery("qsup_vm_state{state=\"running\"} == 1", r -> vms(r).equals(Set.of("web", "db")), WAIT);
        prometheus.awaitQuery("qsup_vm_state{state=\"stopped\"} == 1", r -> vms(r).equals(Set.of("idle")), WAIT);
        prometheus.awaitQuery("qsup_vm_block_read_bytes_total{vm=\"web\",device=\"disk0\"} > 0", r -> r.size() == 1,
                WAIT);
        JsonNode before = prometheus.query("qsup_vm_exits_total{vm=\"web\",cause=\"crashed\"}");
        assertThat(before).hasSize(1);
        assertThat(before.get(0).path("value").get(1).asText()).isEqualTo("0");

        long pid = ProcessInspector.readPidFile(fx.pidFile("web")).orElseThrow();
        new ProcessInspector().signal(pid, ProcessInspector.Signal.KILL);

        prometheus.awaitQuery("increase(qsup_vm_exits_total{vm=\"web\",cause=\"crashed\"}[1m]) > 0",
                r -> vms(r).equals(Set.of("web")), WAIT);
        prometheus.awaitQuery("qsup_vm_exits_total{cause=\"crashed\"} > 0", r -> vms(r).equals(Set.of("web")), WAIT);
        // the policy brings it back, and the restart is counted
        prometheus.awaitQuery("qsup_vm_restarts_total{vm=\"web\"} == 1 and on(vm) qsup_vm_state{state=\"running\"} == 1",
                r -> vms(r).equals(Set.of("web")), WAIT);
    }

    @Test
    void promtoolFindsNoProblemInTheExposition() throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.body()).contains("qsup_vm_state{state=\"stopped\",vm=\"idle\"} 1")
                .contains("qsup_vm_info{").contains("qsup_build_info{").contains("jvm_memory_used_bytes");
        HttpResponse<String> health = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + metricsPort + "/-/healthy")).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(health.statusCode()).isEqualTo(200);
        Path exposition = fx.base.resolve("metrics.txt");
        Files.writeString(exposition, r.body());
        Process p = new ProcessBuilder("promtool", "check", "metrics").redirectInput(exposition.toFile())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(out).as("promtool check metrics").isEmpty();
        assertThat(p.exitValue()).isZero();
    }

    @Test
    void queryVmStatsGivesTheSnapshotsTheEndpointServes() throws Exception {
        Path socket = fx.settings().controlSocket();
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket))) {
            JsonNode all = c.execute("query-vm-stats");
            assertThat(all).hasSize(3);
            JsonNode idle = null;
            for (JsonNode vm : all) {
                if (vm.path("name").asText().equals("idle")) {
                    idle = vm;
                }
            }
            assertThat(idle).isNotNull();
            assertThat(idle.path("state").asText()).isEqualTo("stopped");
            assertThat(idle.path("pid").isNull()).isTrue();
            assertThat(idle.path("cpu-seconds").isNull()).isTrue();
            assertThat(idle.path("ip").isNull()).isTrue();
            JsonNode db = c.execute("query-vm-stats", QmpFraming.mapper().createObjectNode().put("name", "db"));
            assertThat(db).hasSize(1);
            assertThat(db.get(0).path("state").asText()).isEqualTo("running");
            assertThat(db.get(0).path("cpu-seconds").asDouble()).isPositive();
            assertThat(db.get(0).path("rss-bytes").asLong()).isGreaterThan(1L << 20);
            assertThat(db.get(0).path("machine").asText()).isEqualTo("q35");
            assertThat(db.get(0).path("accel").asText()).isEqualTo("tcg");
            assertThatThrownBy(() -> c.execute("query-vm-stats",
                    QmpFraming.mapper().createObjectNode().put("name", "nope")))
                    .isInstanceOfSatisfying(QmpErrorException.class, e -> assertThat(e.errorClass())
                            .isEqualTo("VmNotFound"));
        }
    }

    private static Set<String> vms(JsonNode result) {
        Set<String> names = new TreeSet<>();
        for (JsonNode s : result) {
            names.add(s.path("metric").path("vm").asText());
        }
        return names;
    }

    static List<String> lines(String text, String prefix) {
        return text.lines().filter(l -> l.startsWith(prefix)).toList();
    }
}
