package io.qsup.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.config.DaemonSettings;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.PrometheusServer;
import io.qsup.vm.ProcessInspector;
import io.qsup.vm.VmState;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A scrape reads snapshots only: with one VM's QEMU frozen by SIGSTOP (its probes time out) and another climbing its
 * stop ladder (SeaBIOS ignores the power button, so the ladder waits at its first rung), 50 scrapes in a row each
 * complete and hold every VM in exactly one state.
 */
class ScrapeNeverWaitsTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private SupervisorFixture fx;
    private MetricsServer metrics;
    private long frozenPid = -1;

    @AfterEach
    void tearDown() throws Exception {
        if (frozenPid > 0) {
            new ProcessInspector().signal(frozenPid, ProcessInspector.Signal.CONT);
        }
        if (metrics != null) {
            metrics.close();
        }
        if (fx != null) {
            fx.close();
        }
    }

    @Test
    void fiftyScrapesCompleteWhileOneQemuIsFrozenAndAnotherIsStopping() throws Exception {
        fx = new SupervisorFixture(3);
        MetricsTestVms.seabios(fx, "frozen", "restart: no");
        MetricsTestVms.seabios(fx, "ladder", "restart: no\nstop-timeout: 120s");
        MetricsTestVms.seabios(fx, "calm", "restart: no");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        for (String vm : List.of("frozen", "ladder", "calm")) {
            sup.controller(vm).orElseThrow().await(s -> s == VmState.RUNNING, WAIT);
        }
        metrics = MetricsServer.start(new DaemonSettings.MetricsListen("127.0.0.1", PrometheusServer.freePort()),
                sup::vmStats, new DaemonFigures("test", () -> 0, () -> 0, sup::hookRuns, sup::hookFailures));

        frozenPid = ProcessInspector.readPidFile(fx.pidFile("frozen")).orElseThrow();
        new ProcessInspector().signal(frozenPid, ProcessInspector.Signal.STOP);
        sup.stop("ladder", false, null);
        sup.controller("ladder").orElseThrow().await(s -> s == VmState.STOPPING, WAIT);
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!scrape(http).contains("qsup_vm_flag{flag=\"unresponsive\",vm=\"frozen\"} 1")) {
            assertThat(System.nanoTime()).as("the frozen VM is flagged unresponsive").isLessThan(deadline);
            Thread.sleep(200); // until its probes have met the frozen QEMU
        }

        List<Long> millis = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            long t0 = System.nanoTime();
            String body = scrape(http);
            millis.add((System.nanoTime() - t0) / 1_000_000);
            assertThat(current(body)).as("scrape %d", i)
                    .isEqualTo(Map.of("frozen", "running", "ladder", "stopping", "calm", "running"));
        }
        assertThat(sup.controller("ladder").orElseThrow().state()).isEqualTo(VmState.STOPPING);
        System.out.println("50 scrapes, ms each: " + millis);
    }

    /** One scrape; the timeout only ends a test that would otherwise hang. */
    private String scrape(HttpClient http) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metrics.port()
                + "/metrics")).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        return r.body();
    }

    /** VM name to the state whose {@code qsup_vm_state} sample is 1; a VM in two states fails. */
    private static Map<String, String> current(String body) {
        Map<String, String> out = new java.util.TreeMap<>();
        java.util.regex.Matcher m = java.util.regex.Pattern
                .compile("(?m)^qsup_vm_state\\{state=\"([a-z]+)\",vm=\"([a-z]+)\"} 1(?:\\.0)?$").matcher(body);
        while (m.find()) {
            String was = out.put(m.group(2), m.group(1));
            assertThat(was).as("VM %s in one state only", m.group(2)).isNull();
        }
        return out;
    }
}
