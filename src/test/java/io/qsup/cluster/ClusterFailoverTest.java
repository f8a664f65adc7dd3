package io.qsup.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.testing.QemuProcesses;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Host loss, etcd loss and leader loss on a real etcd with real qsupd hosts and test-guest QEMUs. Failover VMs use
 * direct kernel boot and no disk, so they are allowed to move.
 */
class ClusterFailoverTest {
    private static final int TTL = 4;

    @Test
    void aKilledHostsFailoverVmRunsElsewhereWithinTheTtlAndItsOtherVmIsHostLost() throws Exception {
        int ttl = 6;
        try (ClusterLab lab = new ClusterLab(ttl)) {
            lab.start("h1", "{memory: 1G, cpus: 4}");
            lab.writeDef("fo", "failover: true");
            lab.writeDef("pinned", "failover: false");
            assertThat(lab.qsup("h1", "apply", lab.defs.toString()).code()).isZero();
            lab.awaitList("h1", Duration.ofSeconds(120), l -> running(l, "fo") && running(l, "pinned"));
            lab.start("h2", "{memory: 1G, cpus: 4}");
            assertThat(lab.qemus("h1", "fo")).hasSize(1);

            long killedAt = System.nanoTime();
            lab.host("h1").kill9();
            QemuProcesses.killAll(lab.base.resolve("h1"), Duration.ofSeconds(10));
            try (java.util.stream.Stream<java.nio.file.Path> left = java.nio.file.Files.list(lab.tmp("h1"))) {
                assertThat(left.map(p -> p.getFileName().toString()))
                        .as("a qsupd killed with SIGKILL leaves nothing in its temp folder").isEmpty();
            }
            Map<String, JsonNode> vms = lab.awaitList("h2", Duration.ofSeconds(ttl + 30),
                    l -> running(l, "fo") && "h2".equals(l.get("fo").path("host").asText()));
            long tookMs = (System.nanoTime() - killedAt) / 1_000_000;
            System.out.println("failover took " + tookMs + " ms (lease-ttl " + ttl + " s)");
            assertThat(tookMs).as("failover time").isLessThan((ttl + 5) * 1000L);
            assertThat(lab.qemus("h2", "fo")).hasSize(1);
            vms = lab.awaitList("h2", Duration.ofSeconds(10), l -> "host-lost".equals(l.get("pinned").path("state")
                    .asText()));
            assertThat(vms.get("pinned").path("host").asText()).isEqualTo("h1");
            assertThat(vms.get("pinned").path("last-exit-cause").path("cause").asText()).isEqualTo("host-lost");
            assertThat(lab.qemus("h2", "pinned")).as("a failover: false VM is not moved").isEmpty();
        }
    }

    @Test
    void withEtcdGoneFailoverVmsAreFencedBeforeTheLeaseCouldExpireAndOthersKeepRunning() throws Exception {
        int ttl = 6;
        try (ClusterLab lab = new ClusterLab(ttl)) {
            lab.settings("h1", "{memory: 1G, cpus: 4}");
            Path settings = lab.base.resolve("h1/qsupd.yaml");
            Files.writeString(settings, Files.readString(settings) + "  fence-margin: 2s\n");
            lab.start("h1", "");
            lab.writeDef("fo", "failover: true");
            lab.writeDef("keep", "failover: false");
            assertThat(lab.qsup("h1", "apply", lab.defs.toString()).code()).isZero();
            lab.awaitList("h1", Duration.ofSeconds(60), l -> running(l, "fo") && running(l, "keep"));
            List<QemuProcesses.Qemu> fo = lab.qemus("h1", "fo");
            List<QemuProcesses.Qemu> keep = lab.qemus("h1", "keep");
            assertThat(fo).hasSize(1);
            assertThat(keep).hasSize(1);

            // No keep-alive can be answered after etcd is gone, so the server-side expiry, had etcd lived on, could
            // come no earlier than (last answered send) + ttl >= stoppedAt - (keep-alive interval ttl/4) + ttl.
            long stoppedAt = System.nanoTime();
            lab.etcd.stop();
            long fencedAt = 0;
            while (System.nanoTime() - stoppedAt < Duration.ofSeconds(ttl + 10).toNanos()) {
                if (!QemuProcesses.stillAlive(fo.get(0))) {
                    fencedAt = System.nanoTime();
                    break;
                }
                Thread.sleep(20);
            }
            assertThat(fencedAt).as("the failover VM was fenced").isPositive();
            long fenceMs = (fencedAt - stoppedAt) / 1_000_000;
            long earliestExpiryMs = ttl * 1000L - ttl * 1000L / 4;
            System.out.println("fenced " + fenceMs + " ms after etcd stopped; the lease could expire no earlier than "
                    + earliestExpiryMs + " ms after");
            assertThat(fenceMs).isLessThan(earliestExpiryMs);
            Matcher m = Pattern.compile("could expire in (-?\\d+) ms").matcher(lab.host("h1").log());
            assertThat(m.find()).as("qsupd logged its fencing").isTrue();
            assertThat(Long.parseLong(m.group(1))).as("time left on the lease at fencing").isPositive();

            Thread.sleep(Duration.ofSeconds(ttl + 2));
            assertThat(QemuProcesses.stillAlive(keep.get(0))).as("a failover: false VM runs through an etcd outage")
                    .isTrue();
            assertThat(lab.qemus("h1", "fo")).as("no restart of a fenced VM without etcd").isEmpty();
            Map<String, JsonNode> local = lab.list("h1");
            assertThat(local.get("keep").path("state").asText()).isEqualTo("running");


            lab.etcd.start();
            lab.awaitList("h1", Duration.ofSeconds(60), l -> running(l, "fo") && running(l, "keep")
                    && lab.qemus("h1", "fo").size() == 1);
            assertThat(lab.qemus("h1", "keep")).extracting(QemuProcesses.Qemu::pid).containsExactly(keep.get(0).pid());
        }
    }

    @Test
    void whenTheLeaderDiesAnotherHostTakesOverPlacementWithinTheTtl() throws Exception {
        try (ClusterLab lab = new ClusterLab(TTL)) {
            lab.start("h1", "{memory: 1G, cpus: 4}");
            lab.start("h2", "{memory: 1G, cpus: 4}");
            String leader = leader(lab, "h2");
            String other = leader.equals("h1") ? "h2" : "h1";
            long killedAt = System.nanoTime();
            lab.host(leader).kill9();
            long deadline = killedAt + Duration.ofSeconds(TTL + 10).toNanos();
            String now = null;
            while (System.nanoTime() < deadline) {
                now = leader(lab, other);
                if (other.equals(now)) {
                    break;
                }
                Thread.sleep(100);
            }
            long tookMs = (System.nanoTime() - killedAt) / 1_000_000;
            System.out.println("leader takeover took " + tookMs + " ms (lease-ttl " + TTL + " s)");
            assertThat(now).isEqualTo(other);
            assertThat(tookMs).isLessThan(TTL * 1000L + 1000);
            lab.writeDef("after", "");
            assertThat(lab.qsup(other, "apply", lab.defs.toString()).code()).isZero();
            Map<String, JsonNode> vms = lab.awaitList(other, Duration.ofSeconds(60), l -> running(l, "after"));
            assertThat(vms.get("after").path("host").asText()).isEqualTo(other);
        }
    }

    private static String leader(ClusterLab lab, String askHost) throws Exception {
        ClusterLab.Cli c = lab.qsup(askHost, "hosts", "--json");
        if (c.code() != 0) {
            return null;
        }
        for (JsonNode h : ClusterLab.JSON.readTree(c.out())) {
            if (h.path("leader").asBoolean()) {
                return h.path("name").asText();
            }
        }
        return null;
    }

    private static boolean running(Map<String, JsonNode> l, String vm) {
        return l.containsKey(vm) && l.get(vm).path("state").asText().equals("running");
    }
}
