package io.qsup.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * README's metrics documentation is the code's and the shipped Prometheus files are sound: the series table is
 * {@link MetricFamilies#markdown()}, the scrape config and the alert rules in README are the files under
 * docs/prometheus word for word, {@code promtool check} accepts both, and {@code promtool test rules} sees each alert
 * fire when it should and stay quiet when it should not.
 */
class MetricsDocsTest {
    private static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));
    private static final Path ALERTS = PROJECT.resolve("docs/prometheus/qsup-alerts.yml");
    private static final Path CONFIG = PROJECT.resolve("docs/prometheus/prometheus.yml");

    @TempDir Path tmp;

    @Test
    void readmesSeriesTableIsTheFamiliesTable() throws Exception {
        String readme = Files.readString(PROJECT.resolve("README.md"));
        int at = readme.indexOf("<!-- metrics table:");
        assertThat(at).as("README has the metrics table").isPositive();
        int start = readme.indexOf('\n', at) + 1;
        int end = readme.indexOf("\n\n", start);
        assertThat(readme.substring(start, end + 1)).isEqualTo(MetricFamilies.markdown());
    }

    @Test
    void readmeHoldsTheScrapeConfigAndTheAlertRulesWordForWord() throws Exception {
        String readme = Files.readString(PROJECT.resolve("README.md"));
        for (Path f : List.of(CONFIG, ALERTS)) {
            String marker = "<!-- file: docs/prometheus/" + f.getFileName() + " -->\n```yaml\n";
            int at = readme.indexOf(marker);
            assertThat(at).as("README includes %s", f.getFileName()).isPositive();
            int start = at + marker.length();
            assertThat(readme.substring(start, readme.indexOf("```\n", start))).isEqualTo(Files.readString(f));
        }
    }

    @Test
    void promtoolAcceptsTheConfigAndTheRules() throws Exception {
        assertThat(promtool("check", "rules", ALERTS.toString())).contains("SUCCESS: 2 rules found");
        assertThat(promtool("check", "config", CONFIG.toString())).contains("SUCCESS");
    }

    @Test
    void theAlertsFireForAFailedVmAndForAVmRestartingMoreThanThreeTimesAnHour() throws Exception {
        Path test = tmp.resolve("alerts-test.yml");
        String vm = "instance=\"host1:9612\",job=\"qsupd\",vm=\"%s\"";
        Files.writeString(test, """
                rule_files:
                  - %s
                evaluation_interval: 1m
                tests:
                  - interval: 1m
                    input_series:
                      - series: 'qsup_vm_state{%s,state="failed"}'
                        values: '0 0 1 1 1 1 1 1 1 1 1'
                      - series: 'qsup_vm_state{%s,state="failed"}'
                        values: '0 0 0 0 0 0 0 0 0 0 0'
                      - series: 'qsup_vm_restarts_total{%s}'
                        values: '0 1 2 3 4 5 6 7 8 9 10'
                      - series: 'qsup_vm_restarts_total{%s}'
                        values: '0 0 0 1 1 1 1 1 1 1 1'
                    alert_rule_test:
                      - eval_time: 2m
                        alertname: QsupVmFailed
                        exp_alerts: []
                      - eval_time: 4m
                        alertname: QsupVmFailed
                        exp_alerts:
                          - exp_labels: {severity: critical, instance: "host1:9612", job: qsupd, vm: web, state: failed}
                            exp_annotations:
                              summary: "VM web on host1:9612 is failed"
                              description: "'qsup status web' says why; 'qsup start web' or 'qsup reset-failed web' ends the state."
                      - eval_time: 10m
                        alertname: QsupVmRestartingOften
                        exp_alerts:
                          - exp_labels: {severity: warning, instance: "host1:9612", job: qsupd, vm: web}
                            exp_annotations:
                              summary: "VM web on host1:9612 restarted more than 3 times in an hour"
                              description: "'qsup status web' shows the last exit cause; qsup_vm_exits_total counts them all."
                """.formatted(ALERTS.toAbsolutePath(), vm.formatted("web"), vm.formatted("db"), vm.formatted("web"),
                vm.formatted("db")));
        assertThat(promtool("test", "rules", test.toString())).contains("SUCCESS");
    }

    /** Runs promtool; fails with its output unless it exits 0. */
    private static String promtool(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("promtool"));
        cmd.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (java.io.IOException e) {
            throw new AssertionError("cannot run promtool (Debian's prometheus package; scripts/setup installs it)", e);
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("promtool %s:%n%s", String.join(" ", args), out).isZero();
        return out;
    }
}
