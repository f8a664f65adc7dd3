package io.qsup.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpFraming;
import io.qsup.vm.ProcessInspector;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Hosts of the lab: a plain qsupd (no {@code cluster:} block) in each of two namespaces runs the same test-guest
 * definition; each QEMU runs inside its host's namespace with its witness monitor in its host's folder; the test reaches
 * control sockets and monitors through the filesystem, also across a partition; close leaves nothing behind.
 */
class ClusterLabTest {
    private static final Duration BOOT = Duration.ofSeconds(90);
    private ClusterLab lab;

    @BeforeEach
    void setUp() {
        Assumptions.assumeTrue(NetLab.canRun(), "network namespaces need root; not run as this user");
        Assumptions.assumeTrue(EtcdClusterTest.hasEtcd(), "etcd is not installed; scripts/setup installs it");
    }

    @AfterEach
    void tearDown() {
        if (lab != null) {
            lab.close();
        }
    }

    @Test
    void aQsupdInEachNamespaceRunsItsVmThereAndTheTestStillSeesItAcrossAPartition() throws Exception {
        lab = ClusterLab.start(2, false, Duration.ofSeconds(3));
        LabHost h1 = lab.host("h1");
        LabHost h2 = lab.host("h2");
        h1.writeVm("v1", "restart: no");
        h2.writeVm("v1", "restart: no"); // the same definition on both: the witness must keep them apart
        h1.start();
        h2.start();
        h1.qsupd().awaitLog("VM v1: starting -> running", BOOT);
        h2.qsupd().awaitLog("VM v1: starting -> running", BOOT);

        for (LabHost h : List.of(h1, h2)) {
            long qemu = ProcessInspector.readPidFile(h.dir().resolve("run/vms/v1/qemu.pid")).orElseThrow();
            List<Long> inside = lab.net().pidsIn(h.name());
            assertThat(inside).as("qsupd and its QEMU run inside %s", h.name()).contains(h.qsupd().pid(), qemu);
            assertThat(Files.readSymbolicLink(Path.of("/proc", Long.toString(qemu), "ns/net")))
                    .isNotEqualTo(Files.readSymbolicLink(Path.of("/proc/self/ns/net")));
            assertThat(h.dir().resolve("witness-v1.sock")).as("the witness monitor binds in the host's folder")
                    .exists();
            assertThat(state(h, "v1")).isEqualTo("running");
        }
        awaitWitness(m -> m.unpaused() == 2);
        assertThat(lab.witness().worst("v1").orElseThrow().qemus()).extracting(QemuWitness.Seen::host)
                .containsExactlyInAnyOrder("h1", "h2");

        lab.partition("h1");
        assertThat(lab.net().exec("h1", Duration.ofSeconds(5), "socat", "-u", "OPEN:/dev/null",
                "TCP:" + lab.net().bridgeAddress() + ":" + port(lab.etcd().endpoint(0)) + ",connect-timeout=1").ok())
                .as("h1 reaches etcd while partitioned").isFalse();
        assertThat(state(h1, "v1")).as("the control socket answers across the partition").isEqualTo("running");
        long before = lab.witness().samples();
        lab.witness().awaitNextSample();
        assertThat(lab.witness().now("v1").orElseThrow().qemus()).as("the witness still reads both, %d samples in",
                before).allMatch(s -> s.status().equals("running"));
        lab.heal("h1");

        String id = lab.net().id();
        Path base = lab.base();
        List<Long> etcdPids = List.of(lab.etcd().pid(0), lab.etcd().pid(1), lab.etcd().pid(2));
        long qsupd1 = h1.qsupd().pid();
        lab.close();
        lab = null;
        assertThat(new QemuProcesses(base).scan().qemus()).as("no QEMU of the lab").isEmpty();
        for (long pid : etcdPids) {
            assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).as("etcd %d", pid).isFalse();
        }
        assertThat(ProcessHandle.of(qsupd1).map(ProcessHandle::isAlive).orElse(false)).as("qsupd of h1").isFalse();
        assertThat(Command.run("ip", "netns", "list").orThrow().output()).doesNotContain(id);
        assertThat(Command.run("ip", "-o", "link", "show").orThrow().output()).doesNotContain(id);
        if (System.getProperty("qsup.keepLab") == null) {
            assertThat(base).doesNotExist();
        }
    }

    private static String state(LabHost h, String vm) throws Exception {
        try (QmpClient c = h.control()) {
            JsonNode r = c.execute("query-vm", QmpFraming.mapper().createObjectNode().put("name", vm));
            return r.path("state").asText();
        }
    }

    private void awaitWitness(Predicate<QemuWitness.Moment> p) throws InterruptedException {
        long deadline = System.nanoTime() + BOOT.toNanos();
        while (true) {
            lab.witness().awaitNextSample();
            var now = lab.witness().now("v1");
            if (now.isPresent() && p.test(now.get())) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the witness never saw it; timeline:\n" + lab.witness().timelineText());
            }
        }
    }

    private static int port(String url) {
        return Integer.parseInt(url.replaceAll(".*:", ""));
    }
}
