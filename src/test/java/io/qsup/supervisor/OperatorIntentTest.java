package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.QemuCensus;
import io.qsup.vm.StopResult;
import io.qsup.vm.StopRung;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
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
        assertThat(next.get("svc").orElseThrow().lastExit().kind()).as("the last exit, as the old qsupd saw it")
                .isEqualTo(io.qsup.vm.ExitCause.Kind.OPERATOR_STOP);

        // until the operator starts it
        assertThat(next.start("svc").get(30, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
        assertThat(next.get("svc").orElseThrow().intent()).isEqualTo(Intent.STARTED);
    }

    @Test
    void aStopDuringARestartWinsAndTheVmStaysStoppedAcrossADaemonRestart() throws Exception {
        // SeaBIOS ignores ACPI: the restart's stop sits on its powerdown rung for a while
        Files.writeString(fx.base.resolve("vms/r.yaml"),
                "memory: 32M\nrestart: always\nrestart-delay: 100ms\nstop-timeout: 4s\n");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        assertThat(sup.get("r").orElseThrow().state()).isEqualTo(VmState.RUNNING);
        try (QemuCensus census = new QemuCensus(fx.base).startSampling()) {
            CompletableFuture<VmState> restart = sup.restart("r", false); // qsup restart r --no-wait
            Thread.sleep(500);
            int mark = fx.events.size();
            StopResult stop = sup.stop("r", false, null).get(30, TimeUnit.SECONDS); // qsup stop r
            assertThat(stop.stopped()).isTrue();
            assertThat(restart.get(30, TimeUnit.SECONDS)).as("the restart's start was cancelled")
                    .isEqualTo(VmState.STOPPED);
            Thread.sleep(1500); // many restart-delays
            assertThat(fx.events.subList(mark, fx.events.size())).noneMatch(e -> e instanceof VmEvent.StateChange sc
                    && sc.vm().equals("r") && sc.to() == VmState.STARTING);
            VmSnapshot s = sup.get("r").orElseThrow();
            assertThat(s.state()).isEqualTo(VmState.STOPPED);
            assertThat(s.intent()).isEqualTo(Intent.STOPPED);
            assertThat(census.now()).doesNotContainKey("r");

            sup.close();
            Supervisor next = fx.supervisor(SupervisorFixture.fastProbe());
            next.loadInitial();
            next.startup();
            Thread.sleep(500);
            assertThat(next.get("r").orElseThrow().state()).isEqualTo(VmState.STOPPED);
            assertThat(census.now()).doesNotContainKey("r");
            assertThat(census.duplicates()).isEmpty();
        }
    }

    @Test
    void aVmThePolicyLeftDownStaysDownAcrossADaemonRestartInTheSameBoot() throws Exception {
        Files.writeString(fx.base.resolve("vms/once.yaml"), "memory: 32M\nrestart: no\n"); // autostart: true
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        long pid = sup.get("once").orElseThrow().pid();
        new io.qsup.vm.ProcessInspector().signal(pid, io.qsup.vm.ProcessInspector.Signal.KILL);
        sup.controller("once").orElseThrow().await(s -> s == VmState.STOPPED, java.time.Duration.ofSeconds(30));
        assertThat(sup.get("once").orElseThrow().lastExit().kind()).isEqualTo(io.qsup.vm.ExitCause.Kind.CRASHED);

        sup.close();
        Supervisor next = fx.supervisor(SupervisorFixture.fastProbe());
        next.loadInitial();
        next.startup();
        Thread.sleep(500);
        assertThat(next.get("once").orElseThrow().state()).as("restart: no, and this is no reboot")
                .isEqualTo(VmState.STOPPED);
        try (QemuCensus census = new QemuCensus(fx.base)) {
            assertThat(census.now()).doesNotContainKey("once");
        }
        // the operator's start brings it back, and clears what the policy decided
        assertThat(next.start("once").get(30, TimeUnit.SECONDS)).isEqualTo(VmState.RUNNING);
    }

    @Test
    void aStalePidfileOfAVmNeverStartedWithAutostartOffIsCleanedUpNotRestarted() throws Exception {
        Files.writeString(fx.base.resolve("vms/idle.yaml"),
                "memory: 32M\nautostart: false\nrestart: always\nrestart-delay: 100ms\n");
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        Path pidFile = fx.pidFile("idle");
        Files.createDirectories(pidFile.getParent());
        Files.writeString(pidFile, gone.pid() + "\n");

        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        Thread.sleep(1000); // many restart-delays
        VmSnapshot s = sup.get("idle").orElseThrow();
        assertThat(s.state()).isEqualTo(VmState.STOPPED);
        assertThat(s.lastExit()).as("no crash while qsupd was down is made up").isNull();
        assertThat(pidFile).doesNotExist();
        assertThat(fx.events).noneMatch(e -> e instanceof VmEvent.StateChange sc
                && (sc.to() == VmState.STARTING || sc.to() == VmState.BACKOFF));
    }

    @Test
    void unknownVmIsAClearError() throws Exception {
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> sup.stop("nope", false, null))
                .isInstanceOf(SupervisorException.class).hasMessageContaining("'nope'").hasMessageContaining("qsup list");
    }
}
