package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.QemuCensus;
import io.qsup.vm.ProcessInspector;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Self-fencing on real QEMUs: what runs, and what a launch under way spawns, dies, and stays dead even with
 * {@code restart: always}; a start asked after the fence (a new claim, a migration target) is not the fence's to kill.
 */
class FenceTest {
    private SupervisorFixture fx;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    @Test
    void aFencedVmDiesAtOnceAndStaysDeadAndAStartAskedAfterTheFenceRunsOn() throws Exception {
        Files.writeString(fx.base.resolve("vms/f.yaml"), "memory: 32M\nrestart: always\nrestart-delay: 100ms\n");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        // startup() returns when the first start ended, which on a loaded machine may have failed: fence a running QEMU
        RestartPolicyTest.await(sup, "f", s -> s.state() == VmState.RUNNING && s.pid() > 0, fx);
        long pid = sup.get("f").orElseThrow().pid();
        ProcessInspector proc = new ProcessInspector();

        assertThat(sup.fence("f", "test: the lease could expire")).as("processes signalled").isEqualTo(1);
        assertThat(proc.awaitDeath(pid, java.time.Duration.ofSeconds(5), 20)).as("the fenced QEMU").isTrue();
        Thread.sleep(1500); // past the sweep, and many restart-delays: nothing brings it back
        assertThat(sup.get("f").orElseThrow().state()).isEqualTo(VmState.STOPPED);
        assertThat(sup.get("f").orElseThrow().intent()).isEqualTo(Intent.STOPPED);

        // fenced again, then started at once (the claim won anew): the sweep of the fence leaves the new QEMU alone
        sup.fence("f", "test: fenced while stopped");
        assertThat(sup.startClaimed("f", "test: claimed again").get(30, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
        long fresh = sup.get("f").orElseThrow().pid();
        Thread.sleep(1500); // the sweep runs for a second after the fence
        assertThat(proc.isAlive(fresh)).as("the QEMU a start after the fence launched").isTrue();
        assertThat(sup.get("f").orElseThrow().state()).isEqualTo(VmState.RUNNING);
        assertThat(sup.get("f").orElseThrow().pid()).isEqualTo(fresh);
    }

    @Test
    void aLaunchUnderWayAtTheFenceLeavesNoQemu() throws Exception {
        Files.writeString(fx.base.resolve("vms/g.yaml"), "memory: 32M\nautostart: false\n");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        try (QemuCensus census = new QemuCensus(fx.base).startSampling()) {
            CompletableFuture<VmState> start = sup.startClaimed("g", "test: claimed");
            sup.fence("g", "test: the lease could expire");
            start.get(30, TimeUnit.SECONDS);
            Thread.sleep(1500);
            assertThat(census.now().getOrDefault("g", java.util.List.of())).as("QEMUs of the fenced VM after the sweep")
                    .isEmpty();
            assertThat(census.duplicates()).as("two QEMUs of one VM at once").isEmpty();
            assertThat(sup.get("g").orElseThrow().state()).isEqualTo(VmState.STOPPED);
        }
    }
}
