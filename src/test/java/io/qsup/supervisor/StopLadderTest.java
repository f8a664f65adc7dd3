package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.GuestConsole;
import io.qsup.vm.StopResult;
import io.qsup.vm.StopRung;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The stop ladder against the real test guest: ACPI when the guest listens, quit when it does not. */
class StopLadderTest {
    private static final Duration BOOT = Duration.ofSeconds(90);
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
    void guestThatListensPowersOffOnAcpiAndOneThatIgnoresItEndsByQuitWithinStopTimeout() throws Exception {
        // no guest agent: this is the ladder of ACPI alone (AgentShutdownTest has the agent's part)
        fx.writeVm("acpi", "stop-timeout: 60s\nguest-agent: false");
        fx.writeVm("deaf", "stop-timeout: 8s\nguest-agent: false");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        assertThat(sup.list()).extracting(VmSnapshot::state).containsOnly(VmState.RUNNING);

        fx.readyConsole("acpi", BOOT).close(); // booted far enough that acpid listens
        try (GuestConsole deaf = fx.readyConsole("deaf", BOOT)) {
            deaf.command("ignore-acpi", Duration.ofSeconds(30));
        }

        StopResult graceful = sup.stop("acpi", false, null).get(70, TimeUnit.SECONDS);
        assertThat(graceful.rung()).isEqualTo(StopRung.POWERDOWN);
        assertThat(graceful.stopped()).isTrue();

        StopResult escalated = sup.stop("deaf", false, null).get(20, TimeUnit.SECONDS);
        assertThat(escalated.rung()).isEqualTo(StopRung.QUIT);
        assertThat(escalated.took()).as("bounded by stop-timeout").isLessThanOrEqualTo(Duration.ofSeconds(9));

        assertThat(sup.get("acpi").orElseThrow().state()).isEqualTo(VmState.STOPPED);
        assertThat(sup.get("deaf").orElseThrow().state()).isEqualTo(VmState.STOPPED);
        assertThat(sup.get("deaf").orElseThrow().pid()).isEqualTo(-1);
        List<StopRung> deafRungs = fx.events.stream()
                .filter(e -> e.vm().equals("deaf") && e instanceof VmEvent.StopRungReached)
                .map(e -> ((VmEvent.StopRungReached) e).rung()).toList();
        assertThat(deafRungs).containsExactly(StopRung.POWERDOWN, StopRung.QUIT);
        // the operator's stop is persisted: a new supervisor on the same state does not start them
        Supervisor again = fx.supervisor(SupervisorFixture.fastProbe());
        again.loadInitial();
        again.startup();
        assertThat(again.list()).extracting(VmSnapshot::state).containsOnly(VmState.STOPPED);
    }

    @Test
    void stopWhileTheGuestIsStillBootingFinishesWithinStopTimeout() throws Exception {
        fx.writeVm("early", "stop-timeout: 6s\nautostart: false");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.start("early").get(60, TimeUnit.SECONDS);
        assertThat(sup.get("early").orElseThrow().state()).isEqualTo(VmState.RUNNING);
        // the kernel is still booting: ACPI is not handled yet
        StopResult r = sup.stop("early", false, null).get(20, TimeUnit.SECONDS);
        assertThat(r.stopped()).isTrue();
        assertThat(r.took()).isLessThanOrEqualTo(Duration.ofSeconds(7));
        assertThat(sup.get("early").orElseThrow().state()).isEqualTo(VmState.STOPPED);
    }

    @Test
    void forceStartsAtQuit() throws Exception {
        fx.writeVm("forced", "autostart: false");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.start("forced").get(60, TimeUnit.SECONDS);
        StopResult r = sup.stop("forced", true, Duration.ofSeconds(10)).get(20, TimeUnit.SECONDS);
        assertThat(r.rung()).isEqualTo(StopRung.QUIT);
        assertThat(fx.events).noneMatch(e -> e instanceof VmEvent.StopRungReached s && s.rung() == StopRung.POWERDOWN);
    }
}
