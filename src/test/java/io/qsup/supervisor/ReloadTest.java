package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A reload that adds, removes and changes VMs while one file is broken. */
class ReloadTest {
    private SupervisorFixture fx;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(3);
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    private Path vm(String name, String yaml) throws Exception {
        // no guest: an empty machine is enough to see processes start, stay and go
        return Files.writeString(fx.base.resolve("vms").resolve(name + ".yaml"), "memory: 32M\n" + yaml);
    }

    @Test
    void reloadAppliesTheDifferenceAndKeepsTheOldDefinitionOfABrokenFile() throws Exception {
        vm("keep", "");
        vm("change", "");
        vm("apply", "apply-changes: restart\nstop-timeout: 3s\n");
        vm("gone", "stop-timeout: 3s\n");
        vm("broken", "");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        Map<String, Long> pids = new java.util.TreeMap<>();
        sup.list().forEach(s -> pids.put(s.name(), s.pid()));
        assertThat(pids.values()).allMatch(p -> p > 0);

        vm("keep", "stop-timeout: 30s\n");
        vm("change", "cpus: 2\n");
        vm("apply", "apply-changes: restart\nstop-timeout: 3s\ncpus: 2\n");
        Files.delete(fx.base.resolve("vms/gone.yaml"));
        vm("broken", "cpus: lots\n");
        vm("fresh", "");

        ReloadReport r = sup.reload();
        assertThat(r.added()).containsExactly("fresh");
        assertThat(r.removed()).containsExactly("gone");
        assertThat(r.changed()).containsOnlyKeys("keep", "change", "apply");
        assertThat(r.changed().get("change")).containsExactly("cpus");
        assertThat(r.changed().get("keep")).containsExactly("stop-timeout");
        assertThat(r.restarted()).containsExactly("apply");
        assertThat(r.kept()).containsExactly("broken");
        assertThat(r.errors()).isNotEmpty().allSatisfy(e -> {
            assertThat(e.file().getFileName().toString()).isEqualTo("broken.yaml");
            assertThat(e.format()).contains("broken.yaml:2").contains("cpus");
        });

        RestartPolicyTest.await(sup, "fresh", s -> s.state() == VmState.RUNNING);
        RestartPolicyTest.await(sup, "apply", s -> s.state() == VmState.RUNNING && s.pid() != pids.get("apply"));
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (sup.get("gone").isPresent() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertThat(sup.get("gone")).as("removed VM stopped and dropped").isEmpty();
        assertThat(new io.qsup.vm.ProcessInspector().isAlive(pids.get("gone"))).isFalse();

        VmSnapshot change = sup.get("change").orElseThrow();
        assertThat(change.pid()).as("a changed VM keeps running until restarted").isEqualTo(pids.get("change"));
        assertThat(change.restartPendingKeys()).containsExactly("cpus");
        assertThat(sup.get("keep").orElseThrow().restartPendingKeys()).as("stop-timeout needs no restart").isEmpty();
        assertThat(sup.get("keep").orElseThrow().pid()).isEqualTo(pids.get("keep"));
        assertThat(sup.get("broken").orElseThrow().pid()).isEqualTo(pids.get("broken"));
        assertThat(sup.get("broken").orElseThrow().state()).isEqualTo(VmState.RUNNING);
        assertThat(sup.get("apply").orElseThrow().restartPendingKeys()).isEmpty();

        // the operator restarts the changed VM: the new definition applies and the mark goes away
        sup.restart("change", true).get(60, java.util.concurrent.TimeUnit.SECONDS);
        VmSnapshot after = sup.get("change").orElseThrow();
        assertThat(after.state()).isEqualTo(VmState.RUNNING);
        assertThat(after.pid()).isNotEqualTo(pids.get("change"));
        assertThat(after.restartPendingKeys()).isEmpty();
        List<String> argv = new io.qsup.vm.ProcessInspector().cmdline(after.pid());
        assertThat(argv.get(argv.indexOf("-smp") + 1)).as("the new QEMU has the new cpus").isEqualTo("2");
    }
}
