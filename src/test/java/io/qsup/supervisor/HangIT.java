package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.ProcessInspector;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A SIGSTOPped QEMU is flagged unresponsive (or restarted with hang-action: restart); the others keep answering. */
class HangIT {
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

        RestartPolicyIT.await(sup, "stuck", VmSnapshot::unresponsive);
        RestartPolicyIT.await(sup, "hangs", s -> s.state() == VmState.RUNNING && s.pid() != hangs);

        // the hung VM is reported, never killed; the list answers at once
        VmSnapshot s = sup.get("stuck").orElseThrow();
        assertThat(s.state()).isEqualTo(VmState.RUNNING);
        assertThat(inspector.isAlive(stuck)).isTrue();
        // the healthy VM answers QMP while its neighbour hangs
        assertThat(sup.pause("fine").get(5, TimeUnit.SECONDS)).isEqualTo(VmState.PAUSED);
        assertThat(sup.resume("fine").get(5, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
        assertThat(sup.get("fine").orElseThrow().unresponsive()).isFalse();
        // hang-action: restart killed the hung one and started it again, cause hang
        assertThat(sup.get("hangs").orElseThrow().lastExitCause()).startsWith("hang");
        assertThat(inspector.isAlive(hangs)).isFalse();

        inspector.signal(stuck, ProcessInspector.Signal.CONT);
        stoppedPid = -1;
        RestartPolicyIT.await(sup, "stuck", x -> !x.unresponsive());
        assertThat(fx.events).anyMatch(e -> e instanceof VmEvent.ResponsivenessChange r && r.vm().equals("stuck")
                && r.unresponsive());
        assertThat(sup.get("stuck").orElseThrow().pid()).isEqualTo(stuck);
    }

}
