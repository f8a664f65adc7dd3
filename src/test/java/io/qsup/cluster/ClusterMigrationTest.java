package io.qsup.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.testing.GuestConsole;
import io.qsup.testing.LabHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Planned moves on the lab of the cluster scenarios (three namespaced qsupd hosts, a real three-member etcd, test-guest
 * QEMUs under TCG watched by the witness): {@code qsup migrate} moves a running guest to another host with its uptime
 * going on, its claim moving, and never two QEMUs running it; a migration that fails (the target's port refused, the
 * target host crashing in the middle) leaves it running where it was, with the reason; bad requests are refused with
 * what to do; {@code qsup drain} empties a host of what can move and keeps new VMs off it.
 */
class ClusterMigrationTest {
    private static final Duration TTL = Duration.ofSeconds(4);
    /**
     * The reasons a move fails with when the target's qsupd is killed and started again: its successor adopted the
     * target QEMU and gave it up; or, when the successor took longer than the TTL to register (a loaded machine), the
     * source saw the host's key lapse first, which is a host that left the cluster.
     */
    private static final String[] TARGET_RESTARTED = {"qsupd of host h3 restarted during the migration",
            "host h3 left the cluster"};
    private static final Duration UP = Duration.ofSeconds(90);
    private static final ObjectMapper JSON = new ObjectMapper();
    private ClusterFixture fx;
    private double uptimeBefore;
    private CompletableFuture<ClusterFixture.Cli> pendingMove;

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
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void aRunningGuestMovesWithItsUptimeItsClaimMovesAndOnlyOneQemuEverRunsItAndAStopDuringAMoveWins()
            throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        LabHost h1 = fx.host("h1");
        LabHost h2 = fx.host("h2");
        LabHost h3 = fx.host("h3");
        fx.startHosts("h1"); // alone, so m1 is placed on h1
        fx.apply(h1, fx.writeDefinitions(Map.of("m1", ClusterFixture.vmYaml("m1", "failover: true"))));
        fx.awaitRunning(UP, "m1");
        fx.startHosts("h2", "h3");
        long sourcePid = fx.qemuPid("m1").orElseThrow();
        double before;
        try (GuestConsole c = console(h1, "m1")) {
            before = c.uptimeAtLeast(3.0);
        }
        Instant t0 = Instant.now();

        // asked on a third host, which neither runs nor receives the VM
        ClusterFixture.Cli r = fx.qsup(h3, "migrate", "m1", "--to", "h2");

        assertThat(r.code()).as(r.toString() + "\n" + fx.diagnostics()).isZero();
        assertThat(r.out()).startsWith("m1: migrated from h1 to h2 in ");
        assertThat(fx.await("m1 running on one host", Duration.ofSeconds(2), () -> fx.runningOn("m1")))
                .as("where the witness sees m1 run, a sample after the CLI returned").isEqualTo("h2");
        assertThat(fx.claimedBy("m1")).as("running/m1 in etcd").contains("h2");
        assertThat(fx.etcdJson("placement/m1").map(j -> j.path("host").asText())).contains("h2");
        assertThat(fx.etcdJson("migrations/m1").map(j -> j.path("state").asText())).contains("completed");
        fx.awaitQemusOn("the source QEMU pid " + sourcePid + " gone", Duration.ofSeconds(15), "m1", "h2");
        assertThat(alive(sourcePid)).as("the source QEMU pid %d lives", sourcePid).isFalse();
        try (GuestConsole c = console(h2, "m1")) {
            assertThat(c.uptime(Duration.ofSeconds(30))).as("the guest's uptime went on (a new boot starts near 0)")
                    .isGreaterThanOrEqualTo(before);
        }
        ClusterFixture.Cli list = fx.await("qsup list on h1 shows m1 running on h2", UP, () -> {
            ClusterFixture.Cli l = fx.qsup(h1, "list");
            return row(l.out(), "m1").filter(c -> c[1].equals("h2") && c[2].equals("running")).map(c -> l);
        });
        assertThat(list.code()).isZero();
        assertThat(fx.momentsSince("m1", t0)).as("the move, as the witness saw it")
                .anySatisfy(m -> assertThat(m.qemus()).hasSize(2));
        fx.witness().assertNeverTwoUnpaused();
        // the VM stays on h2: no host's claim logic takes it back or kills it
        Thread.sleep(TTL.toMillis());
        assertThat(fx.runningOn("m1")).contains("h2");
        assertThat(fx.claimedBy("m1")).contains("h2");

        // a stop asked during a slow move back calls the move off, and the stop wins: no QEMU of m1 anywhere after
        fx.await("m1's status running on h2", UP, () -> fx.etcdJson("status/m1")
                .filter(j -> j.path("state").asText().equals("running") && j.path("host").asText().equals("h2")));
        CompletableFuture<ClusterFixture.Cli> back = CompletableFuture.supplyAsync(
                () -> fx.qsup(h3, "migrate", "m1", "--to", "h1", "--bandwidth", "0.25"));
        fx.await("m1 migrating on h2", UP, () -> fx.queryVm(h2, "m1").path("state").asText().equals("migrating")
                ? Optional.of(true) : Optional.empty());
        ClusterFixture.Cli stop = fx.qsup(h1, "stop", "m1");
        assertThat(stop.code()).as(stop.toString()).isZero();
        ClusterFixture.Cli called = back.get(2, TimeUnit.MINUTES);
        assertThat(called.code()).as(called.toString()).isEqualTo(1);
        assertThat(called.err()).contains("migration of m1 from h2 to h1 failed: ").contains("a stop was requested");
        fx.awaitQemusOn("no QEMU of m1 left", UP, "m1");
        Thread.sleep(TTL.toMillis()); // a host that wrongly restarted or resumed it would have done so by now
        assertThat(fx.qemuHosts("m1")).as("m1 stays stopped").isEmpty();
        assertThat(fx.claimedBy("m1")).as("nobody claims m1").isEmpty();
        assertThat(fx.etcdJson("intent/m1").map(j -> j.path("intent").asText())).contains("stopped");
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aSourceWhoseQsupdRestartedWhileQemuFinishedTheTransferCompletesTheMove() throws Exception {
        LabHost h1 = moveWithTheSourceQsupdKilled("40");
        fx.await("h1's QEMU of m1 done sending (postmigrate)", Duration.ofSeconds(25), () -> fx.witness().now("m1")
                .filter(m -> m.qemus().stream().anyMatch(q -> "h1".equals(q.host())
                        && q.status().equals("postmigrate"))).map(m -> true));
        h1.start();
        assertTheMoveCompletes();
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aSourceWhoseQsupdRestartedWhileQemuStillSentWaitsForTheTransferAndCompletesTheMove() throws Exception {
        // at 8 MiB/s the guest's ~100 MB take about 12 s, so the restarted qsupd adopts a QEMU still sending
        LabHost h1 = moveWithTheSourceQsupdKilled("8");
        h1.start();
        h1.qsupd().awaitLog("its QEMU still sends the VM to host h2", Duration.ofSeconds(30));
        assertTheMoveCompletes();
        assertThat(h1.qsupd().log()).as("the restarted qsupd sent nothing again")
                .doesNotContain("migration step migrate");
    }

    /** m1 runs on h1; a move to h2 starts, and h1's qsupd is killed once its QEMU sends. Returns h1, qsupd down. */
    private LabHost moveWithTheSourceQsupdKilled(String bandwidth) throws Exception {
        fx = ClusterFixture.create(Duration.ofSeconds(30), "1G", 3); // a lease that outlives the source's restart
        LabHost h1 = fx.host("h1");
        LabHost h2 = fx.host("h2");
        fx.startHosts("h1");
        fx.apply(h1, fx.writeDefinitions(Map.of("m1", ClusterFixture.vmYaml("m1", ""))));
        fx.awaitRunning(UP, "m1");
        fx.startHosts("h2");
        try (GuestConsole c = console(h1, "m1")) {
            uptimeBefore = c.uptimeAtLeast(3.0);
        }
        fx.await("m1's status running on h1", UP, () -> fx.etcdJson("status/m1")
                .filter(j -> j.path("state").asText().equals("running")));
        pendingMove = CompletableFuture.supplyAsync(
                () -> fx.qsup(h2, "migrate", "m1", "--to", "h2", "--bandwidth", bandwidth));
        // QEMU has the migrate command once qsupd logs this; from then on it sends by itself
        h1.qsupd().awaitLog("VM m1: QEMU sends the VM to tcp:", UP);
        h1.killQsupd();
        return h1;
    }

    private void assertTheMoveCompletes() throws Exception {
        LabHost h2 = fx.host("h2");
        ClusterFixture.Cli r = pendingMove.get(3, TimeUnit.MINUTES);
        assertThat(r.code()).as(r.toString() + "\n" + fx.diagnostics()).isZero();
        assertThat(r.out()).startsWith("m1: migrated from h1 to h2");
        assertThat(fx.await("m1 running on one host", Duration.ofSeconds(15), () -> fx.runningOn("m1")))
                .isEqualTo("h2");
        assertThat(fx.claimedBy("m1")).contains("h2");
        try (GuestConsole c = console(h2, "m1")) {
            assertThat(c.uptime(Duration.ofSeconds(30))).as("the guest's uptime went on")
                    .isGreaterThanOrEqualTo(uptimeBefore);
        }
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void badRequestsAreRefusedWithWhatToDoAndAFailedMigrationLeavesTheVmRunningOnItsSource() throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        LabHost h1 = fx.host("h1");
        LabHost h2 = fx.host("h2");
        fx.startHosts("h1");
        Path disk = h1.shared().resolve("local.img");
        Files.write(disk, new byte[1 << 20]);
        fx.apply(h1, fx.writeDefinitions(Map.of(
                "m1", ClusterFixture.vmYaml("m1", ""),
                "pinned", ClusterFixture.vmYaml("pinned", "placement:\n  hosts: [h1, h3]"),
                "local", ClusterFixture.vmYaml("local", "disks:\n  - file: " + disk + "\n    format: raw"),
                "idle", ClusterFixture.vmYaml("idle", "autostart: false"))));
        fx.awaitRunning(UP, "m1", "pinned", "local");
        fx.startHosts("h2", "h3");
        fx.apply(h2, fx.writeDefinitions(Map.of("h2vm", ClusterFixture.vmYaml("h2vm",
                "placement:\n  hosts: [h2]").replace("memory: 128M", "memory: 900M"))));
        fx.awaitRunning(UP, "h2vm");

        assertRefused(fx.qsup(h2, "migrate", "nosuch", "--to", "h2"), 3, "no cluster VM named 'nosuch'");
        assertRefused(fx.qsup(h2, "migrate", "m1", "--to", "h9"), 1, "no live host named 'h9'", "qsup hosts");
        assertRefused(fx.qsup(h2, "migrate", "m1", "--to", "h1"), 1, "m1 already runs on host h1");
        assertRefused(fx.qsup(h2, "migrate", "idle", "--to", "h2"), 1, "idle is not running", "qsup start idle");
        assertRefused(fx.qsup(h2, "migrate", "local", "--to", "h2"), 1, "disks[0] (" + disk + ")",
                "neither shared nor read-only", "shared: true");
        assertRefused(fx.qsup(h2, "migrate", "pinned", "--to", "h2"), 1, "not in its placement.hosts [h1, h3]");
        assertRefused(fx.qsup(h2, "migrate", "m1", "--to", "h2"), 1, "host h2 lacks the capacity",
                "the VM needs 128 MiB");
        assertRefused(fx.qsup(h2, "migrate"), 2, "--to");
        assertThat(fx.etcdJson("migrations/m1")).as("no refused request left a key").isEmpty();

        // the target's migration port refuses every connection: QEMU's reason comes back, m1 runs on at h1
        long pid = fx.qemuPid("m1").orElseThrow();
        fx.lab().net().exec("h3", Duration.ofSeconds(10), "iptables", "-I", "INPUT", "-p", "tcp", "--syn", "-j",
                "REJECT", "--reject-with", "tcp-reset").orThrow();
        Instant t0 = Instant.now();
        ClusterFixture.Cli r = fx.qsup(h1, "migrate", "m1", "--to", "h3");
        assertThat(r.code()).as(r.toString()).isEqualTo(1);
        assertThat(r.err()).as(r.toString()).contains("migration of m1 from h1 to h3 failed: migration to tcp:"
                + h3().address() + ":").containsIgnoringCase("refused").contains("runs on at h1");
        JsonNode key = fx.etcdJson("migrations/m1").orElseThrow();
        assertThat(key.path("state").asText()).isEqualTo("failed");
        assertThat(key.path("reason").asText()).containsIgnoringCase("refused");
        fx.awaitQemusOn("the target's QEMU gone from h3", Duration.ofSeconds(15), "m1", "h1");
        assertThat(fx.qemuPid("m1")).as("the same QEMU of m1").contains(pid);
        assertThat(fx.runningOn("m1")).contains("h1");
        assertThat(fx.claimedBy("m1")).contains("h1");
        assertThat(fx.momentsSince("m1", t0)).as("a QEMU of m1 was started on h3 as the target")
                .anySatisfy(m -> assertThat(m.qemus()).anyMatch(s -> "h3".equals(s.host())));
        fx.lab().net().exec("h3", Duration.ofSeconds(10), "iptables", "-F", "INPUT").orThrow();
        fx.await("m1's status running again", UP, () -> fx.etcdJson("status/m1")
                .filter(j -> j.path("state").asText().equals("running")));

        // the target host crashes in the middle of a slow transfer: m1 runs on at h1, the reason is reported
        CompletableFuture<ClusterFixture.Cli> slow = CompletableFuture.supplyAsync(
                () -> fx.qsup(h1, "migrate", "m1", "--to", "h3", "--bandwidth", "0.25"));
        fx.await("m1 migrating on h1", UP, () -> fx.queryVm(h1, "m1").path("state").asText().equals("migrating")
                ? Optional.of(true) : Optional.empty());
        Thread.sleep(500);
        h3().crash();
        ClusterFixture.Cli crashed = slow.get(3, TimeUnit.MINUTES);
        assertThat(crashed.code()).as(crashed.toString()).isEqualTo(1);
        assertThat(crashed.err()).contains("migration of m1 from h1 to h3 failed: ").contains("runs on at h1");
        fx.awaitQemusOn("only h1's QEMU of m1 left", Duration.ofSeconds(15), "m1", "h1");
        assertThat(fx.qemuPid("m1")).as("the same QEMU of m1").contains(pid);
        assertThat(fx.runningOn("m1")).contains("h1");
        assertThat(fx.claimedBy("m1")).contains("h1");
        assertThat(fx.queryVm(h1, "m1").path("state").asText()).isEqualTo("running");

        // the target's qsupd dies in the middle and comes back (its QEMUs live on): it gives the adopted target up
        fx.startHosts("h3");
        fx.await("m1's status running", UP, () -> fx.etcdJson("status/m1")
                .filter(j -> j.path("state").asText().equals("running")));
        CompletableFuture<ClusterFixture.Cli> again = CompletableFuture.supplyAsync(
                () -> fx.qsup(h1, "migrate", "m1", "--to", "h3", "--bandwidth", "0.25"));
        fx.await("m1 migrating on h1", UP, () -> fx.queryVm(h1, "m1").path("state").asText().equals("migrating")
                ? Optional.of(true) : Optional.empty());
        h3().killQsupd();
        h3().start();
        ClusterFixture.Cli restarted = again.get(3, TimeUnit.MINUTES);
        System.out.println("target qsupd killed during the transfer: " + restarted);
        assertThat(restarted.code()).as(restarted.toString()).isEqualTo(1);
        assertThat(restarted.err()).contains("migration of m1 from h1 to h3 failed: ")
                .containsAnyOf(TARGET_RESTARTED);
        fx.awaitQemusOn("only h1's QEMU of m1 left", UP, "m1", "h1");
        assertThat(fx.qemuPid("m1")).as("the same QEMU of m1").contains(pid);
        fx.await("m1 running again on h1", UP, () -> fx.etcdJson("status/m1")
                .filter(j -> j.path("state").asText().equals("running") && j.path("host").asText().equals("h1")));
        assertThat(fx.claimedBy("m1")).contains("h1");

        // the target's qsupd dies just after it spawned the target QEMU. Where the kill lands decides the path, and
        // each one is right: before it published where it listens, its successor quits that QEMU (it never ran)
        // and starts a target of its own, and the move completes; after the hand-over, the successor runs the
        // adopted target, and the move completes; in between, the move fails and m1 runs on at h1
        CompletableFuture<ClusterFixture.Cli> early = CompletableFuture.supplyAsync(
                () -> fx.qsup(h1, "migrate", "m1", "--to", "h3"));
        h3().qsupd().awaitLog("VM m1: launch step wait-qmp", UP);
        h3().killQsupd();
        h3().start();
        ClusterFixture.Cli killedEarly = early.get(3, TimeUnit.MINUTES);
        String successor = h3().qsupd().log();
        System.out.println("target qsupd killed after the spawn: " + killedEarly);
        if (killedEarly.code() == 0) {
            assertThat(killedEarly.out()).startsWith("m1: migrated from h1 to h3");
            assertThat(successor).containsAnyOf("quitting the migration target an earlier qsupd of this host left",
                    "the adopted target QEMU runs the VM now");
            assertThat(fx.await("m1 running on one host", Duration.ofSeconds(15), () -> fx.runningOn("m1")))
                    .isEqualTo("h3");
            fx.awaitQemusOn("only h3's QEMU of m1 left", UP, "m1", "h3");
            assertThat(fx.claimedBy("m1")).contains("h3");
        } else {
            assertThat(killedEarly.code()).as(killedEarly.toString()).isEqualTo(1);
            assertThat(killedEarly.err()).contains("migration of m1 from h1 to h3 failed: ")
                    .containsAnyOf(TARGET_RESTARTED);
            fx.awaitQemusOn("only h1's QEMU of m1 left", UP, "m1", "h1");
            assertThat(fx.qemuPid("m1")).as("the same QEMU of m1").contains(pid);
            assertThat(fx.claimedBy("m1")).contains("h1");
        }
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void drainMovesWhatCanMoveSaysWhyTheRestCannotAndTheDrainedHostGetsNoNewVm() throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        LabHost h1 = fx.host("h1");
        LabHost h2 = fx.host("h2");
        fx.startHosts("h1");
        Path disk = h1.shared().resolve("d3.img");
        Files.write(disk, new byte[1 << 20]);
        fx.apply(h1, fx.writeDefinitions(Map.of(
                "d1", ClusterFixture.vmYaml("d1", "failover: true"),
                "d2", ClusterFixture.vmYaml("d2", ""),
                "d3", ClusterFixture.vmYaml("d3", "disks:\n  - file: " + disk + "\n    format: raw"))));
        fx.awaitRunning(UP, "d1", "d2", "d3");
        fx.startHosts("h2", "h3");
        long d3Pid = fx.qemuPid("d3").orElseThrow();

        ClusterFixture.Cli r = fx.qsup(h2, "drain", "h1");

        assertThat(r.code()).as("d3 could not move: %s", r).isEqualTo(1);
        assertThat(r.out()).containsPattern("(?m)^d1: moved to h[23] in ")
                .containsPattern("(?m)^d2: moved to h[23] in ")
                .contains("d3: not movable: disks[0] (" + disk + ") is neither shared nor read-only")
                .contains("host h1 is drained: nothing new is placed there; 1 VM(s) still run there");
        Map<String, String> on = fx.awaitRunning(UP, "d1", "d2", "d3");
        assertThat(on.get("d1")).isIn("h2", "h3");
        assertThat(on.get("d2")).isIn("h2", "h3");
        assertThat(on.get("d1")).as("spread by free memory").isNotEqualTo(on.get("d2"));
        assertThat(on.get("d3")).isEqualTo("h1");
        assertThat(fx.qemuPid("d3")).contains(d3Pid);
        JsonNode hosts = JSON.readTree(fx.qsup(h1, "hosts", "--json").out());
        for (JsonNode h : hosts) {
            assertThat(h.path("drained").asBoolean()).as(h.toString()).isEqualTo(h.path("name").asText().equals("h1"));
        }
        assertThat(fx.qsup(h1, "hosts").out()).containsPattern("(?m)^h1\\s+\\S+\\s+\\S+\\s+yes\\s");

        // a VM applied now goes anywhere but h1, even with room on h1 only
        fx.apply(h2, fx.writeDefinitions(Map.of("n1", ClusterFixture.vmYaml("n1", ""))));
        assertThat(fx.awaitRunning(UP, "n1").get("n1")).isIn("h2", "h3");
        assertRefused(fx.qsup(h2, "migrate", "n1", "--to", "h1"), 1, "host h1 is drained", "qsup drain --undo h1");

        ClusterFixture.Cli undo = fx.qsup(h2, "drain", "--undo", "h1");
        assertThat(undo.code()).as(undo.toString()).isZero();
        assertThat(undo.out()).contains("host h1 is no longer drained");
        assertThat(JSON.readTree(fx.qsup(h1, "hosts", "--json").out()))
                .allSatisfy(h -> assertThat(h.path("drained").asBoolean()).isFalse());
        assertRefused(fx.qsup(h2, "drain", "h9"), 1, "no live host named 'h9'");
        fx.witness().assertNeverTwoUnpaused();
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void antiAffinityRefusesAMoveANoWaitMoveCompletesAndADrainWithNowhereToGoLeavesItsVmRunning() throws Exception {
        fx = ClusterFixture.create(TTL, "1G", 3);
        LabHost h1 = fx.host("h1");
        LabHost h2 = fx.host("h2");
        fx.startHosts("h1"); // alone, so w1 and pin are placed on h1
        fx.apply(h1, fx.writeDefinitions(Map.of(
                "w1", ClusterFixture.vmYaml("w1", "placement:\n  anti-affinity: [web]"),
                "pin", ClusterFixture.vmYaml("pin", "placement:\n  hosts: [h1]"))));
        fx.awaitRunning(UP, "w1", "pin");
        fx.startHosts("h2", "h3");
        fx.apply(h2, fx.writeDefinitions(Map.of(
                "w2", ClusterFixture.vmYaml("w2", "placement:\n  anti-affinity: [web]"))));
        String w2Host = fx.awaitRunning(UP, "w2").get("w2");
        assertThat(w2Host).as("w2 keeps away from w1's h1").isIn("h2", "h3");
        String other = w2Host.equals("h2") ? "h3" : "h2";
        long w2Pid = fx.qemuPid("w2").orElseThrow();
        // QEMU runs guest code a moment before its host publishes the VM as running, which a move checks first
        for (String vm : List.of("w1", "pin", "w2")) {
            fx.await(vm + "'s status running", UP, () -> fx.etcdJson("status/" + vm)
                    .filter(j -> j.path("state").asText().equals("running")));
        }

        assertRefused(fx.qsup(h2, "migrate", "w2", "--to", "h1"), 1,
                "host h1 already runs a VM of its anti-affinity group [web]", "name another host");
        assertThat(fx.etcdJson("migrations/w2")).as("a refused request leaves no key").isEmpty();
        assertThat(fx.qemuPid("w2")).contains(w2Pid);

        // --no-wait returns once the request is stored; the move itself completes all the same
        ClusterFixture.Cli r = fx.qsup(h1, "migrate", "w2", "--to", other, "--no-wait");
        assertThat(r.code()).as(r.toString()).isZero();
        assertThat(r.out()).contains("w2: migration from " + w2Host + " to " + other + " requested");
        fx.await("w2's move completed", UP, () -> fx.etcdJson("migrations/w2")
                .filter(j -> j.path("state").asText().equals("completed")));
        fx.await("w2 claimed by " + other, UP, () -> fx.claimedBy("w2").filter(other::equals));
        fx.awaitQemusOn("only " + other + "'s QEMU of w2 left", Duration.ofSeconds(30), "w2", other);
        assertThat(alive(w2Pid)).as("the source QEMU of w2 ended").isFalse();

        // draining h1: w1 moves to the one host without a VM of its group; pin may run on h1 alone, so it stays
        long pinPid = fx.qemuPid("pin").orElseThrow();
        ClusterFixture.Cli drain = fx.qsup(h2, "drain", "h1");
        assertThat(drain.code()).as("pin could not move: %s", drain).isEqualTo(1);
        assertThat(drain.out()).as(drain.toString()).contains("w1: moved to " + w2Host)
                .contains("pin: not movable: no other host can take it")
                .contains("1 VM(s) still run there");
        assertThat(fx.awaitRunning(UP, "w1", "pin")).containsEntry("w1", w2Host).containsEntry("pin", "h1");
        assertThat(fx.qemuPid("pin")).as("pin's QEMU untouched").contains(pinPid);
        assertThat(fx.queryVm(h1, "pin").path("state").asText()).isEqualTo("running");
        fx.witness().assertNeverTwoUnpaused();
    }

    // ---- helpers ----

    /** Whether the process lives: its /proc entry exists and it is no zombie (PID 1 may reap it late). */
    private static boolean alive(long pid) throws java.io.IOException {
        Path stat = Path.of("/proc", Long.toString(pid), "stat");
        if (!Files.exists(stat)) {
            return false;
        }
        try {
            String s = Files.readString(stat);
            return !s.substring(s.lastIndexOf(')') + 2).startsWith("Z");
        } catch (java.nio.file.NoSuchFileException e) {
            return false;
        }
    }

    private LabHost h3() {
        return fx.host("h3");
    }

    private static void assertRefused(ClusterFixture.Cli r, int code, String... words) {
        assertThat(r.code()).as(r.toString()).isEqualTo(code);
        assertThat(r.err()).as(r.toString()).contains(words);
    }

    /** The guest console of {@code vm} on host {@code h}, once the guest's init answers on it. */
    private static GuestConsole console(LabHost h, String vm) {
        GuestConsole c = GuestConsole.connect(h.dir().resolve("run/vms").resolve(vm).resolve("console.sock"),
                Duration.ofSeconds(30));
        if (c.awaitAnswering(UP)) {
            return c;
        }
        c.close();
        throw new IllegalStateException("the guest " + vm + " on host " + h.name() + " did not answer on its console");
    }

    /** The columns of the {@code qsup list} row of {@code vm}, if it has one. */
    private static Optional<String[]> row(String table, String vm) {
        return table.lines().map(l -> l.trim().split("\\s+")).filter(c -> c.length >= 3 && c[0].equals(vm))
                .findFirst();
    }
}
