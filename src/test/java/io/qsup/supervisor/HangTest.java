package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.ProcessInspector;
import io.qsup.vm.StopResult;
import io.qsup.vm.StopRung;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A SIGSTOPped QEMU is flagged unresponsive (or restarted with hang-action: restart); the others keep answering. */
class HangTest {
    private final ProcessInspector inspector = new ProcessInspector();
    private SupervisorFixture fx;
    private long stoppedPid = -1;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(3);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (stoppedPid > 0) {
            inspector.signal(stoppedPid, ProcessInspector.Signal.CONT);
        }
        fx.close();
    }

    @Test
    void stoppedQemuIsFlaggedAndOnlyItself() throws Exception {
        for (String vm : new String[] {"stuck", "fine", "hangs"}) {
            Files.writeString(fx.base.resolve("vms").resolve(vm + ".yaml"),
                    "memory: 32M\n" + (vm.equals("hangs") ? "hang-action: restart\nrestart-delay: 100ms\n" : ""));
        }
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        long stuck = sup.get("stuck").orElseThrow().pid();
        long hangs = sup.get("hangs").orElseThrow().pid();
        stoppedPid = stuck;
        inspector.signal(stuck, ProcessInspector.Signal.STOP);
        inspector.signal(hangs, ProcessInspector.Signal.STOP);

        RestartPolicyTest.await(sup, "stuck", VmSnapshot::unresponsive);
        RestartPolicyTest.await(sup, "hangs", s -> s.state() == VmState.RUNNING && s.pid() != hangs);

        // the hung VM is reported, never killed; the list answers at once
        VmSnapshot s = sup.get("stuck").orElseThrow();
        assertThat(s.state()).isEqualTo(VmState.RUNNING);
        assertThat(inspector.isAlive(stuck)).isTrue();
        // the healthy VM answers QMP while its neighbour hangs
        assertThat(sup.pause("fine").get(5, TimeUnit.SECONDS)).isEqualTo(VmState.PAUSED);
        assertThat(sup.resume("fine").get(5, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
        // hang-action: restart killed the hung one and started it again, cause hang
        assertThat(sup.get("hangs").orElseThrow().lastExit().describe()).startsWith("hang");
        assertThat(inspector.isAlive(hangs)).isFalse();

        inspector.signal(stuck, ProcessInspector.Signal.CONT);
        stoppedPid = -1;
        RestartPolicyTest.await(sup, "stuck", x -> !x.unresponsive());
        assertThat(fx.events).anyMatch(e -> e instanceof VmEvent.ResponsivenessChange r && r.vm().equals("stuck")
                && r.unresponsive());
        assertThat(sup.get("stuck").orElseThrow().pid()).isEqualTo(stuck);
    }

    @Test
    void frozenQemuClimbsTheWholeLadderToSigkillWithinStopTimeout() throws Exception {
        Files.writeString(fx.base.resolve("vms").resolve("frozen.yaml"), "memory: 32M\n");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        long pid = sup.get("frozen").orElseThrow().pid();
        stoppedPid = pid;
        // SIGSTOP: no QMP answer, and SIGTERM stays pending; only SIGKILL ends it
        inspector.signal(pid, ProcessInspector.Signal.STOP);

        StopResult r = sup.stop("frozen", false, Duration.ofSeconds(4)).get(30, TimeUnit.SECONDS);
        assertThat(r.rung()).isEqualTo(StopRung.SIGKILL);
        assertThat(r.stopped()).isTrue();
        assertThat(r.took()).as("the whole ladder fits in stop-timeout").isLessThanOrEqualTo(Duration.ofMillis(4500));
        assertThat(inspector.isAlive(pid)).isFalse();
        stoppedPid = -1;
        assertThat(fx.events.stream().filter(e -> e instanceof VmEvent.StopRungReached)
                .map(e -> ((VmEvent.StopRungReached) e).rung()).toList())
                .containsExactly(StopRung.POWERDOWN, StopRung.QUIT, StopRung.SIGTERM, StopRung.SIGKILL);
        assertThat(sup.get("frozen").orElseThrow().state()).isEqualTo(VmState.STOPPED);
    }

}
