package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.QemuProcesses;
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

    /**
     * A QEMU that hangs on its way out after the guest powered off is ended by qsupd and counted as the guest's
     * shutdown, so the restart policy applies and the VM never looks running forever. One that stays after SHUTDOWN on
     * purpose ({@code -action shutdown=pause}) and answers is left alone.
     */
    @Test
    void qemuThatHangsAfterItsGuestShutDownIsEndedAndTheShutdownCounts() throws Exception {
        String stay = "restart: always\nrestart-delay: 0s\nextra-args: [\"-action\", \"shutdown=pause\"]";
        fx.writeVm("kept", stay);
        fx.writeVm("wedged", stay);
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        long kept = sup.get("kept").orElseThrow().pid();
        long wedged = sup.get("wedged").orElseThrow().pid();
        for (String vm : java.util.List.of("kept", "wedged")) {
            try (io.qsup.testing.GuestConsole c = fx.readyConsole(vm, Duration.ofSeconds(90))) {
                c.command("poweroff", Duration.ofSeconds(30));
            }
            // shutdown=pause: QEMU reports SHUTDOWN, then STOP, and stays
            RestartPolicyTest.await(sup, vm, x -> x.state() == VmState.PAUSED, fx);
        }
        // wedged freezes right there: no answer, and its SIGTERM stays pending, as a QEMU stuck in its exit
        stoppedPid = wedged;
        inspector.signal(wedged, ProcessInspector.Signal.STOP);

        RestartPolicyTest.await(sup, "wedged", x -> x.state() == VmState.RUNNING && x.pid() != wedged, fx);
        stoppedPid = -1;
        VmSnapshot w = sup.get("wedged").orElseThrow();
        assertThat(w.lastExit().describe()).startsWith("guest-shutdown: ").contains("reported SHUTDOWN (guest-shutdown)")
                .contains("qsupd ended it");
        assertThat(inspector.isAlive(wedged)).as("the wedged QEMU is gone before its successor runs").isFalse();
        java.util.List<VmEvent.StateChange> changes = fx.events.stream()
                .filter(e -> e instanceof VmEvent.StateChange c && c.vm().equals("wedged"))
                .map(e -> (VmEvent.StateChange) e).toList();
        assertThat(changes).anyMatch(c -> c.from() == VmState.PAUSED && c.to() == VmState.BACKOFF
                && c.cause() == io.qsup.vm.Cause.GUEST_SHUTDOWN);
        assertThat(new io.qsup.testing.QemuProcesses(fx.base).scan().instances("wedged"))
                .as("one QEMU for wedged").hasSize(1);

        // kept answers query-status ("shutdown") all along: a deliberate stay, never ended
        VmSnapshot k = sup.get("kept").orElseThrow();
        assertThat(k.state()).isEqualTo(VmState.PAUSED);
        assertThat(k.pid()).isEqualTo(kept);
        assertThat(k.unresponsive()).isFalse();
        assertThat(inspector.isAlive(kept)).isTrue();
    }

    /**
     * A hung QEMU that SIGKILL cannot end (frozen in the kernel, as on a dead NFS server) leaves its VM failed, named
     * with the pid, and no second QEMU is ever started beside it by hang-action: restart or by the restart policy. Both
     * of qsupd's own kills take this road: hang-action: restart, and the end of a QEMU stuck after its guest's
     * SHUTDOWN. Once the kernel lets the process go, an operator start brings the VM back with one QEMU.
     */
    @Test
    void hungQemuThatSurvivesSigkillLeavesItsVmFailedAndNothingBesideIt() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(io.qsup.testing.Freezer.available(),
                "needs a writable cgroup v1 freezer at /sys/fs/cgroup/freezer to hold a process past SIGKILL");
        fx.writeVm("hung", "restart: always\nrestart-delay: 0s\nhang-action: restart");
        fx.writeVm("wedged", "restart: always\nrestart-delay: 0s\nextra-args: [\"-action\", \"shutdown=pause\"]");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        long hung = sup.get("hung").orElseThrow().pid();
        long wedged = sup.get("wedged").orElseThrow().pid();
        try (io.qsup.testing.GuestConsole c = fx.readyConsole("wedged", Duration.ofSeconds(90))) {
            c.command("poweroff", Duration.ofSeconds(30));
        }
        RestartPolicyTest.await(sup, "wedged", x -> x.state() == VmState.PAUSED, fx);

        int mark = fx.events.size();
        try (io.qsup.testing.Freezer freezer = io.qsup.testing.Freezer.create()) {
            freezer.freeze(hung);
            freezer.freeze(wedged);
            for (String vm : java.util.List.of("hung", "wedged")) {
                long pid = vm.equals("hung") ? hung : wedged;
                RestartPolicyTest.await(sup, vm, x -> x.state() == VmState.FAILED, fx);
                VmSnapshot f = sup.get(vm).orElseThrow();
                assertThat(f.pid()).as(vm + " names the QEMU that is still there").isEqualTo(pid);
                assertThat(inspector.isAlive(pid)).as(vm + "'s QEMU outlived SIGKILL").isTrue();
            }
            assertThat(failedDetail("hung")).startsWith("pid " + hung + " survived SIGKILL; hang: ");
            assertThat(failedDetail("wedged")).startsWith("pid " + wedged + " survived SIGKILL; ")
                    .contains("reported SHUTDOWN");
            // the restart policy had its chance; give a wrong launch time to show itself
            Thread.sleep(2000);
            QemuProcesses procs = new QemuProcesses(fx.base);
            for (String vm : java.util.List.of("hung", "wedged")) {
                assertThat(procs.scan().instances(vm)).as("only the frozen QEMU of " + vm).hasSize(1);
                assertThat(sup.get(vm).orElseThrow().state()).isEqualTo(VmState.FAILED);
                assertThat(fx.events.stream().skip(mark))
                        .noneMatch(e -> e instanceof VmEvent.StateChange c && c.vm().equals(vm)
                                && c.to() == VmState.STARTING);
            }
        }
        // thawed by the close: the pending SIGKILLs land
        for (long pid : new long[] {hung, wedged}) {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (inspector.isAlive(pid) && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertThat(inspector.isAlive(pid)).isFalse();
        }
        assertThat(sup.get("hung").orElseThrow().state()).as("no process exit revives a failed VM")
                .isEqualTo(VmState.FAILED);
        assertThat(sup.start("hung").get(60, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
        assertThat(new QemuProcesses(fx.base).scan().instances("hung")).hasSize(1);
    }

    private String failedDetail(String vm) {
        return fx.events.stream().filter(e -> e instanceof VmEvent.StateChange c && c.vm().equals(vm)
                && c.to() == VmState.FAILED).map(e -> ((VmEvent.StateChange) e).detail()).reduce((a, b) -> b)
                .orElseThrow();
    }
}
