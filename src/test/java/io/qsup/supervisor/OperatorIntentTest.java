package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.StopResult;
import io.qsup.vm.StopRung;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The operator's word beats the restart policy, and survives a new supervisor on the same state-dir. */
class OperatorIntentTest {
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
    void operatorKillIsNeverUndoneEvenByAlwaysAndAStartBringsItBack() throws Exception {
        Files.writeString(fx.base.resolve("vms/svc.yaml"), "memory: 32M\nrestart: always\nrestart-delay: 100ms\n");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        long pid = sup.get("svc").orElseThrow().pid();

        StopResult r = sup.kill("svc").get(30, TimeUnit.SECONDS);
        assertThat(r.rung()).isEqualTo(StopRung.SIGKILL);
        Thread.sleep(1000); // several restart-delays: nothing may bring it back
        VmSnapshot s = sup.get("svc").orElseThrow();
        assertThat(s.state()).isEqualTo(VmState.STOPPED);
        assertThat(s.intent()).isEqualTo(Intent.STOPPED);
        assertThat(s.restarts()).isZero();
        assertThat(new io.qsup.vm.ProcessInspector().isAlive(pid)).isFalse();
        assertThat(Files.readString(fx.base.resolve("state/supervisor/svc.json"))).contains("STOPPED");

        // a daemon restart keeps it stopped
        sup.close();
        Supervisor next = fx.supervisor(SupervisorFixture.fastProbe());
        next.loadInitial();
        next.startup();
        assertThat(next.get("svc").orElseThrow().state()).isEqualTo(VmState.STOPPED);

        // until the operator starts it
        assertThat(next.start("svc").get(30, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
        assertThat(next.get("svc").orElseThrow().intent()).isEqualTo(Intent.STARTED);
    }

    @Test
    void unknownVmIsAClearError() throws Exception {
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> sup.stop("nope", false, null))
                .isInstanceOf(SupervisorException.class).hasMessageContaining("'nope'").hasMessageContaining("qsup list");
    }
}
