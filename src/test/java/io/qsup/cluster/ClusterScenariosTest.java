package io.qsup.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.testing.LabHost;
import io.qsup.testing.QemuWitness;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What a cluster of three qsupd hosts must show, on a real three-member etcd, with each host in its own network
 * namespace and real test-guest QEMUs: placement within constraints and capacity, failover after a host crash,
 * self-fencing before failover across a partition (twenty times over, with no double run), quorum loss, and leader
 * loss. Where a VM runs is read from the {@link QemuWitness}, which asks every QEMU itself every 50 ms; qsupd's own
 * report is checked against it.
 */
class ClusterScenariosTest {
    private static final Duration TTL = Duration.ofSeconds(4);
    private static final Duration UP = Duration.ofSeconds(90);
    private ClusterFixture fx;

    @BeforeEach
    void setUp() {
        Optional<String> why = ClusterFixture.cannotRun();
        Assumptions.assumeTrue(why.isEmpty(), why.orElse(""));
    }

    @AfterEach
    void tearDown() {
        if (fx != null) {
            fx.close();
        }
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void sixVmsSpreadOverTheThreeHostsWithinCapacityAntiAffinityAndAllowedHostsHold() throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        fx.startHosts("h1", "h2", "h3");
        Map<String, String> defs = new LinkedHashMap<>();
        for (String w : List.of("web1", "web2", "web3")) {
            defs.put(w, ClusterFixture.vmYaml(w, "placement:\n  anti-affinity: [web]"));
        }
        defs.put("pin1", ClusterFixture.vmYaml("pin1", "placement:\n  hosts: [h2]"));
        defs.put("free1", ClusterFixture.vmYaml("free1", ""));
        defs.put("free2", ClusterFixture.vmYaml("free2", ""));
        ClusterFixture.Cli applied = fx.apply(fx.host("h1"), fx.writeDefinitions(defs));
        assertThat(applied.out()).contains("applied:   web1", "applied:   pin1", "applied:   free2");

        Map<String, String> on = fx.awaitRunning(UP, defs.keySet().toArray(String[]::new));

        assertThat(Set.of(on.get("web1"), on.get("web2"), on.get("web3"))).as("anti-affinity group web: %s", on)
                .hasSize(3);
        assertThat(on.get("pin1")).as("placement.hosts [h2]").isEqualTo("h2");
        Map<String, Integer> perHost = new TreeMap<>();
        on.values().forEach(h -> perHost.merge(h, 1, Integer::sum));
        assertThat(perHost).as("every host runs some, none more than its 3 cpus allow: %s", on).hasSize(3)
                .allSatisfy((h, n) -> assertThat(n).isLessThanOrEqualTo(3));
        for (String vm : on.keySet()) {
            assertThat(fx.claimedBy(vm)).as("the claim of %s in etcd", vm).contains(on.get(vm));
        }

        // qsup list on one host shows every cluster VM with the host the witness saw it run on
        ClusterFixture.Cli list = fx.await("qsup list shows all six running", UP, () -> {
            ClusterFixture.Cli r = fx.qsup(fx.host("h1"), "list");
            return on.keySet().stream().allMatch(vm -> row(r.out(), vm).map(c -> c[2].equals("running"))
                    .orElse(false)) ? Optional.of(r) : Optional.empty();
        });
        assertThat(list.out().lines().findFirst().orElse("")).as(list.toString()).matches("NAME\\s+HOST\\s+STATE.*");
        for (String vm : on.keySet()) {
            assertThat(row(list.out(), vm).orElseThrow()[1]).as("HOST of %s in\n%s", vm, list.out())
                    .isEqualTo(on.get(vm));
        }
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void aCrashedHostsFailoverVmsRunElsewhereWithinTheLeaseTtlPlusFiveSecondsAndItsOtherVmIsHostLost()
            throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        LabHost h1 = fx.host("h1");
        fx.startHosts("h1"); // alone at first, so the leader places every VM on h1
        fx.apply(h1, fx.writeDefinitions(Map.of(
                "f1", ClusterFixture.vmYaml("f1", "failover: true"),
                "f2", ClusterFixture.vmYaml("f2", "failover: true"),
                "n1", ClusterFixture.vmYaml("n1", "failover: false"))));
        assertThat(fx.awaitRunning(UP, "f1", "f2", "n1")).containsOnly(Map.entry("f1", "h1"), Map.entry("f2", "h1"),
                Map.entry("n1", "h1"));
        fx.startHosts("h2", "h3");

        Instant crashed = Instant.now();
        long t0 = System.nanoTime();
        h1.crash();
        Map<String, Duration> took = new TreeMap<>();
        for (String vm : List.of("f1", "f2")) {
            String to = fx.await(vm + " running on another host", UP,
                    () -> fx.runningOn(vm).filter(h -> !h.equals("h1")));
            took.put(vm + " on " + to, Duration.ofNanos(System.nanoTime() - t0));
        }
        System.out.println("host crash -> running elsewhere: " + took);
        assertThat(took).as("kill of h1 to running elsewhere, lease-ttl %s + 5 s", TTL)
                .allSatisfy((vm, d) -> assertThat(d).isLessThanOrEqualTo(TTL.plusSeconds(5)));

        // n1 (failover: false) is reported host-lost, and not moved
        JsonNode status = fx.await("status of n1 host-lost", UP,
                () -> fx.etcdJson("status/n1").filter(j -> j.path("state").asText().equals("host-lost")));
        assertThat(status.path("host").asText()).isEqualTo("h1");
        ClusterFixture.Cli list = fx.await("qsup list on h2 shows n1 host-lost", UP, () -> {
            ClusterFixture.Cli r = fx.qsup(fx.host("h2"), "list");
            return row(r.out(), "n1").filter(c -> c[2].equals("host-lost")).map(c -> r);
        });
        assertThat(row(list.out(), "n1").orElseThrow()[1]).as(list.out()).isEqualTo("h1");
        Thread.sleep(TTL.toMillis()); // a leader that wrongly moved it would have done so by now
        assertThat(fx.claimedBy("n1")).as("nobody claims n1").isEmpty();
        assertThat(fx.momentsSince("n1", crashed)).as("no QEMU of n1 outside h1 since the crash")
                .allSatisfy(m -> assertThat(m.qemus()).allMatch(s -> "h1".equals(s.host())));
        assertThat(fx.qemuHosts("n1")).isEmpty();
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 8, unit = TimeUnit.MINUTES)
    void aPartitionedHostFencesItsFailoverVmsBeforeAnyOtherHostStartsThemTwentyTimesOver() throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        fx.startHosts("h1", "h2", "h3");
        fx.apply(fx.host("h1"), fx.writeDefinitions(Map.of(
                "f1", ClusterFixture.vmYaml("f1", "failover: true"),
                "f2", ClusterFixture.vmYaml("f2", "failover: true"))));
        long start = System.nanoTime();
        int doubleRuns = 0;
        List<String> report = new ArrayList<>();
        for (int i = 1; i <= 20; i++) {
            Map<String, String> on = fx.awaitRunning(UP, "f1", "f2");
            String cut = on.get("f1");
            List<String> moving = on.entrySet().stream().filter(e -> e.getValue().equals(cut)).map(Map.Entry::getKey)
                    .toList();
            Instant t0 = Instant.now();
            long n0 = System.nanoTime();
            fx.lab().partition(cut);
            for (String vm : moving) {
                String to = fx.await("iteration " + i + ": " + vm + " running off the partitioned " + cut, UP,
                        () -> fx.runningOn(vm).filter(h -> !h.equals(cut)));
                long tookMs = (System.nanoTime() - n0) / 1_000_000;
                // the partitioned host's log says it fenced the VM before the other host's log says it claimed it
                Instant fenced = fx.logTime(fx.host(cut), "VM " + vm + ": fenced:", t0).orElseThrow(
                        () -> new AssertionError(cut + " never logged fencing " + vm + "\n" + fx.diagnostics()));
                Instant claimed = fx.logTime(fx.host(to), "VM " + vm + ": claim won by " + to, t0).orElseThrow(
                        () -> new AssertionError(to + " never logged its claim of " + vm + "\n" + fx.diagnostics()));
                assertThat(fenced).as("iteration %d: %s fenced %s before %s claimed it\n%s", i, cut, vm, to,
                        fx.diagnostics()).isBefore(claimed);
                // and the witness saw the fenced QEMU gone before the new one appeared
                List<QemuWitness.Moment> ms = fx.momentsSince(vm, t0);
                QemuWitness.Moment firstThere = ms.stream()
                        .filter(m -> m.qemus().stream().anyMatch(s -> to.equals(s.host()))).findFirst().orElseThrow();
                assertThat(firstThere.qemus()).as("iteration %d: %s when it first appeared on %s", i, vm, to)
                        .noneMatch(s -> cut.equals(s.host()));
                Instant lastOld = ms.stream().filter(m -> m.at().isBefore(firstThere.at()))
                        .filter(m -> m.qemus().stream().anyMatch(s -> cut.equals(s.host())))
                        .map(QemuWitness.Moment::at).reduce((a, b) -> b).orElse(t0);
                report.add(String.format("%2d %s %s->%s: fenced %s, claimed %s (+%d ms), QEMU gone by %s, new seen"
                        + " %s, partition to running %d ms", i, vm, cut, to, fenced, claimed,
                        Duration.between(fenced, claimed).toMillis(), lastOld, firstThere.at(), tookMs));
            }
            int doubles = fx.doubleRunsSince(t0).size();
            doubleRuns += doubles;
            fx.lab().heal(cut);
            fx.await("iteration " + i + ": " + cut + " back in the cluster", UP,
                    () -> fx.etcdJson("hosts/" + cut).map(j -> true));
        }
        long totalS = (System.nanoTime() - start) / 1_000_000_000;
        System.out.println("partition iterations (" + totalS + " s for 20):\n" + String.join("\n", report));
        assertThat(doubleRuns).as("moments with two unpaused QEMUs of one VM over 20 partitions").isZero();
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void withoutEtcdQuorumFailoverVmsAreFencedOthersRunOnAndAllRunAgainOnceItReturns() throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        fx.startHosts("h1", "h2", "h3");
        fx.apply(fx.host("h1"), fx.writeDefinitions(Map.of(
                "f1", ClusterFixture.vmYaml("f1", "failover: true"),
                "n1", ClusterFixture.vmYaml("n1", "failover: false"))));
        Map<String, String> on = fx.awaitRunning(UP, "f1", "n1");
        long n1Pid = fx.qemuPid("n1").orElseThrow();
        LabHost f1Host = fx.host(on.get("f1"));

        Instant t0 = Instant.now();
        long n0 = System.nanoTime();
        fx.lab().etcd().stop(1);
        fx.lab().etcd().stop(2);
        fx.awaitQemusOn("f1's QEMU gone without quorum", TTL.plusSeconds(5), "f1");
        long fencedMs = (System.nanoTime() - n0) / 1_000_000;
        System.out.println("quorum lost -> f1 fenced: " + fencedMs + " ms");
        // the fencing is logged once the search of /proc for more QEMUs is done, just after the known one died
        fx.await(f1Host.name() + " logs the fencing of f1", Duration.ofSeconds(5),
                () -> fx.logTime(f1Host, "VM f1: fenced:", t0));
        JsonNode f1 = fx.queryVm(f1Host, "f1");
        assertThat(f1.path("state").asText()).as("f1 on %s: %s", f1Host.name(), f1).isEqualTo("stopped");
        assertThat(f1.path("last-exit-cause").path("cause").asText()).as("f1 on %s: %s", f1Host.name(), f1)
                .isEqualTo("fenced");
        // what qsup list shows meanwhile on that host, checked at the end so the rest of the scenario still runs
        Optional<JsonNode> listedDuringOutage = fx.listed(f1Host, "f1");
        Thread.sleep(TTL.toMillis()); // well past every host's lease deadline
        assertThat(fx.runningOn("n1")).as("n1 runs on through the outage").contains(on.get("n1"));
        assertThat(fx.qemuPid("n1")).as("the same QEMU of n1").contains(n1Pid);

        fx.lab().etcd().start(1);
        fx.lab().etcd().start(2);
        fx.lab().etcd().awaitHealthy(Duration.ofSeconds(60));
        Map<String, String> again = fx.awaitRunning(UP, "f1", "n1");
        for (String vm : again.keySet()) {
            String host = again.get(vm);
            fx.await(vm + " claimed by " + host, UP, () -> fx.claimedBy(vm).filter(host::equals));
        }
        assertThat(again.get("n1")).isEqualTo(on.get("n1"));
        assertThat(fx.qemuPid("n1")).as("n1 never restarted").contains(n1Pid);
        assertThat(fx.momentsSince("n1", t0)).as("n1's QEMU never changed")
                .allSatisfy(m -> assertThat(m.qemus()).extracting(QemuWitness.Seen::pid).containsOnly(n1Pid));
        fx.witness().assertNeverTwoUnpaused();
        assertThat(listedDuringOutage.map(o -> o.path("state").asText()))
                .as("qsup list on %s during the outage, after f1 was fenced: %s", f1Host.name(), listedDuringOutage)
                .isNotEqualTo(Optional.of("running"));
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void whenTheLeadersQsupdDiesAnotherHostPlacesANewVmWithinTheLeaseTtl() throws Exception {
        // lease-ttl 8 s: the leadership lease asks half (4 s, which is also this lab etcd's shortest lease), so the
        // takeover fits in the lease-ttl with room; on the host lease alone it took up to lease-ttl + 0.5 s
        Duration ttl = Duration.ofSeconds(8);
        fx = ClusterFixture.create(ttl, "1G", 3);
        LabHost h1 = fx.host("h1");
        LabHost h2 = fx.host("h2");
        fx.startHosts("h1");
        fx.await("h1 the leader", UP, () -> fx.leader(h1).filter("h1"::equals));
        fx.startHosts("h2", "h3");
        assertThat(fx.leader(h2)).contains("h1");

        long t0 = System.nanoTime();
        h1.killQsupd();
        fx.apply(h2, fx.writeDefinitions(Map.of("late1", ClusterFixture.vmYaml("late1", "failover: true"))));
        JsonNode placed = fx.await("late1 placed", UP, () -> fx.etcdJson("placement/late1"));
        Duration placedAfter = Duration.ofNanos(System.nanoTime() - t0);
        String to = fx.await("late1 running", UP, () -> fx.runningOn("late1"));
        Duration runningAfter = Duration.ofNanos(System.nanoTime() - t0);
        String leader = fx.await("a new leader", UP, () -> fx.leader(h2).filter(l -> !l.equals("h1")));
        System.out.println("leader h1 killed -> late1 placed on " + placed.path("host").asText() + " by " + leader
                + " after " + placedAfter.toMillis() + " ms, running on " + to + " after " + runningAfter.toMillis()
                + " ms");
        assertThat(placed.path("host").asText()).isIn("h2", "h3").isEqualTo(to);
        // the dead leader's election key lives until its leadership lease expires (4 s after its last keep-alive,
        // then etcd's expiry loop, every 500 ms), and the new leader places on its next tick (250 ms)
        assertThat(placedAfter).as("takeover of placement").isLessThanOrEqualTo(ttl);
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void whenTheLeadersQsupdStopsAnotherHostLeadsAtOnce() throws Exception {
        fx = ClusterFixture.create(Duration.ofSeconds(8), "1G", 2);
        LabHost h1 = fx.host("h1");
        LabHost h2 = fx.host("h2");
        fx.startHosts("h1");
        fx.await("h1 the leader", UP, () -> fx.leader(h1).filter("h1"::equals));
        fx.startHosts("h2");
        assertThat(fx.leader(h2)).contains("h1");

        long t0 = System.nanoTime();
        assertThat(h1.qsupd().terminate(Duration.ofSeconds(30))).as("qsupd's exit on SIGTERM").isZero();
        fx.apply(h2, fx.writeDefinitions(Map.of("late1", ClusterFixture.vmYaml("late1", ""))));
        JsonNode placed = fx.await("late1 placed", UP, () -> fx.etcdJson("placement/late1"));
        Duration placedAfter = Duration.ofNanos(System.nanoTime() - t0);
        System.out.println("leader h1 stopped -> late1 placed after " + placedAfter.toMillis() + " ms");
        assertThat(placed.path("host").asText()).isEqualTo("h2");
        // a stopping qsupd revokes its leadership lease: no wait for an expiry (which takes 4 s at least here)
        assertThat(placedAfter).as("takeover after an orderly stop").isLessThan(Duration.ofSeconds(3));
        assertThat(fx.leader(h2)).contains("h2");
        // h1 stays registered (its lease outlives a qsupd restart), shown with its qsupd stopped
        ClusterFixture.Cli hosts = fx.qsup(h2, "hosts");
        assertThat(hosts.out()).as(hosts.toString()).containsPattern("(?m)^h1\\s+\\S+\\s+-\\s+-\\s+stopped\\s")
                .containsPattern("(?m)^h2\\s+\\S+\\s+yes\\s+-\\s+running\\s");
    }

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void oneKeepAliveAnsweredLateButWellWithinTheLeaseDoesNotFenceTheHost() throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        LabHost h1 = fx.host("h1");
        fx.startHosts("h1");
        fx.apply(h1, fx.writeDefinitions(Map.of("f1", ClusterFixture.vmYaml("f1", "failover: true"))));
        fx.awaitRunning(UP, "f1");
        long pid = fx.qemuPid("f1").orElseThrow();
        Thread.sleep(TTL.toMillis()); // a few keep-alives answered in time first

        // etcd answers nothing for 2 s (every member stopped with SIGSTOP), then answers again. Keep-alives go out
        // about every lease-ttl/4 (1 s), so the last one answered before the pause was sent at most ~1.05 s before it,
        // and the one sent during it is answered at its end: at most ~3.05 s after that, before the fencing point
        // (lease-ttl - fence-margin = 3.2 s). A host that waits for each keep-alive only lease-ttl/3 (1.33 s) and
        // then sleeps lease-ttl/4 before the next sends that next one after its fencing point: it fences whenever a
        // keep-alive goes out in the pause's first 0.67 s, about two runs in three.
        Instant t0 = Instant.now();
        List<Long> members = List.of(fx.lab().etcd().pid(0), fx.lab().etcd().pid(1), fx.lab().etcd().pid(2));
        try {
            for (long m : members) {
                io.qsup.testing.Command.run("kill", "-STOP", Long.toString(m)).orThrow();
            }
            Thread.sleep(2000);
        } finally {
            for (long m : members) {
                io.qsup.testing.Command.run("kill", "-CONT", Long.toString(m));
            }
        }
        Thread.sleep(TTL.toMillis() * 2);
        assertThat(fx.logTime(h1, "cluster: fencing:", t0)).as("h1 fenced over one late keep-alive:\n%s",
                fx.diagnostics()).isEmpty();
        assertThat(fx.qemuPid("f1")).as("the same QEMU of f1").contains(pid);
        fx.witness().assertNeverTwoUnpaused();
    }

    /** The columns of the {@code qsup list} row of {@code vm}, if it has one. */
    private static Optional<String[]> row(String table, String vm) {
        return table.lines().map(l -> l.trim().split("\\s+")).filter(c -> c.length >= 3 && c[0].equals(vm))
                .findFirst();
    }
}
