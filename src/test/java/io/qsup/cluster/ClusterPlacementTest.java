package io.qsup.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Real etcd, real qsupd hosts, real test-guest QEMUs: apply, placement, start and stop across hosts. */
class ClusterPlacementTest {

    @Test
    void applyWithAnErrorNamesFileLineAndKeyAndStoresNothing() throws Exception {
        try (ClusterLab lab = new ClusterLab(8)) {
            lab.start("h1", "{memory: 1G, cpus: 4}");
            lab.writeDef("good", "autostart: false");
            Files.writeString(lab.defs.resolve("disk.img"), "");
            lab.writeDef("bad", "failover: true\ndisks:\n  - file: " + lab.defs.resolve("disk.img") + "\n    format: raw");
            ClusterLab.Cli c = lab.qsup("h1", "apply", lab.defs.toString());
            assertThat(c.code()).as(c.toString()).isEqualTo(1);
            assertThat(c.err()).contains(lab.defs.resolve("bad.yaml") + ":7:11: failover: disks[0]")
                    .contains("neither shared nor read-only").contains("shared: true");
            assertThat(lab.list("h1")).doesNotContainKeys("good", "bad");

            lab.writeDef("bad", "failover: true\nautostart: false\ndisks:\n  - file: " + lab.defs.resolve("disk.img")
                    + "\n    format: raw\n    shared: true");
            c = lab.qsup("h1", "apply", lab.defs.toString());
            assertThat(c.code()).as(c.toString()).isZero();
            assertThat(c.out()).contains("applied:   bad").contains("applied:   good");
            Map<String, JsonNode> vms = lab.awaitList("h1", Duration.ofSeconds(5),
                    l -> l.containsKey("good") && l.containsKey("bad"));
            assertThat(vms.get("good").path("state").asText()).isEqualTo("stopped");
            c = lab.qsup("h1", "apply", lab.defs.resolve("good.yaml").toString());
            assertThat(c.out()).contains("unchanged: good");
            c = lab.qsup("h1", "delete", "good");
            assertThat(c.code()).as(c.toString()).isZero();
            lab.awaitList("h1", Duration.ofSeconds(5), l -> !l.containsKey("good"));
            c = lab.qsup("h1", "delete", "good");
            assertThat(c.code()).as(c.toString()).isEqualTo(3);
        }
    }

    @Test
    void placementSpreadsWithinCapacityHonoursConstraintsAndStartStopReachTheHost() throws Exception {
        try (ClusterLab lab = new ClusterLab(8)) {
            for (String h : new String[] {"h1", "h2", "h3"}) {
                lab.start(h, "{memory: 300M, cpus: 4}");
            }
            lab.writeDef("a1", "placement: {anti-affinity: [web]}");
            lab.writeDef("a2", "placement: {anti-affinity: [web]}");
            lab.writeDef("p3", "placement: {hosts: [h3]}");
            lab.writeDef("x4", "");
            lab.writeDef("big", "memory: 512M");
            ClusterLab.Cli c = lab.qsup("h1", "apply", lab.defs.toString());
            assertThat(c.code()).as(c.toString()).isZero();
            Map<String, JsonNode> vms = lab.awaitList("h2", Duration.ofSeconds(60), l -> l.keySet()
                    .containsAll(List.of("a1", "a2", "p3", "x4", "big")) && l.keySet().stream()
                    .filter(n -> !n.equals("big")).allMatch(n -> l.get(n).path("state").asText().equals("running"))
                    && l.get("big").path("state").asText().equals("unplaced"));
            Map<String, Long> used = new HashMap<>();
            for (String n : new String[] {"a1", "a2", "p3", "x4"}) {
                used.merge(vms.get(n).path("host").asText(), 128L, Long::sum);
                assertThat(lab.qemus(vms.get(n).path("host").asText(), n)).as(n).hasSize(1);
            }
            assertThat(used.values()).allMatch(mib -> mib <= 300);
            assertThat(vms.get("a1").path("host").asText()).isNotEqualTo(vms.get("a2").path("host").asText());
            assertThat(vms.get("p3").path("host").asText()).isEqualTo("h3");
            // "big" fits on no host: every host lists it as unplaced, and no host runs it
            for (String h : new String[] {"h1", "h3"}) {
                JsonNode big = lab.awaitList(h, Duration.ofSeconds(10), l -> l.containsKey("big")).get("big");
                assertThat(big.path("state").asText()).as("big listed on %s", h).isEqualTo("unplaced");
                assertThat(big.path("host").isNull()).as("big's host on %s", h).isTrue();
            }
            for (String h : new String[] {"h1", "h2", "h3"}) {
                assertThat(lab.qemus(h, "big")).as("big on %s", h).isEmpty();
            }
            ClusterLab.Cli list = lab.qsup("h1", "list");
            assertThat(list.out()).startsWith("NAME").contains("HOST");

            // stop and start a VM from a host that does not run it
            String a1Host = vms.get("a1").path("host").asText();
            String other = a1Host.equals("h1") ? "h2" : "h1";
            c = lab.qsup(other, "stop", "a1");
            assertThat(c.code()).as(c.toString()).isZero();
            assertThat(lab.qemus(a1Host, "a1")).isEmpty();
            c = lab.qsup(other, "start", "a1");
            assertThat(c.code()).as(c.toString()).isZero();
            vms = lab.awaitList(other, Duration.ofSeconds(30), l -> l.get("a1").path("state").asText().equals("running"));
            assertThat(lab.qemus(vms.get("a1").path("host").asText(), "a1")).hasSize(1);

            ClusterLab.Cli hosts = lab.qsup("h2", "hosts", "--json");
            JsonNode hs = ClusterLab.JSON.readTree(hosts.out());
            assertThat(hs).hasSize(3);
            long leaders = 0;
            for (JsonNode h : hs) {
                leaders += h.path("leader").asBoolean() ? 1 : 0;
            }
            assertThat(leaders).isEqualTo(1);
        }
    }
}
