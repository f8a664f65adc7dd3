package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.GuestConsole;
import io.qsup.vm.AgentState;
import io.qsup.vm.StopResult;
import io.qsup.vm.StopRung;
import io.qsup.vm.VmController;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The guest agent's guest-shutdown inside the powerdown rung, against the test guest with real qemu-ga. */
class AgentShutdownTest {
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

    private static void awaitAgent(VmController c, AgentState want, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (c.agentState() != want && System.nanoTime() < end) {
            Thread.sleep(100);
        }
        assertThat(c.agentState()).as("agent of %s", c.name()).isEqualTo(want);
    }

    @Test
    void aGuestThatIgnoresAcpiIsStoppedByItsAgentInsideThePowerdownRung() throws Exception {
        fx.writeVm("deaf", "stop-timeout: 20s");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        try (GuestConsole c = fx.readyConsole("deaf", BOOT)) {
            c.command("ignore-acpi", Duration.ofSeconds(30));
        }
        awaitAgent(sup.controller("deaf").orElseThrow(), AgentState.CONNECTED, Duration.ofSeconds(20));

        StopResult r = sup.stop("deaf", false, null).get(30, TimeUnit.SECONDS);
        assertThat(r.stopped()).isTrue();
        assertThat(r.rung()).isEqualTo(StopRung.AGENT);
        assertThat(r.detail()).contains("agent");
        List<StopRung> rungs = fx.events.stream()
                .filter(e -> e.vm().equals("deaf") && e instanceof VmEvent.StopRungReached)
                .map(e -> ((VmEvent.StopRungReached) e).rung()).toList();
        assertThat(rungs).as("never climbed to quit").containsExactly(StopRung.POWERDOWN, StopRung.AGENT);
        assertThat(sup.get("deaf").orElseThrow().state()).isEqualTo(VmState.STOPPED);
    }

    @Test
    void withTheAgentStoppedTooTheLadderClimbsToQuitWithinStopTimeout() throws Exception {
        fx.writeVm("mute", "stop-timeout: 8s");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        VmController ctl = sup.controller("mute").orElseThrow();
        fx.readyConsole("mute", BOOT).close();
        awaitAgent(ctl, AgentState.CONNECTED, Duration.ofSeconds(20));
        try (GuestConsole c = fx.console("mute")) {
            c.command("ignore-acpi", Duration.ofSeconds(30));
            c.command("agent-stop", Duration.ofSeconds(30));
        }
        // stop at once, while qsupd may still take the agent for connected: its call must not hold the ladder up
        Instant asked = Instant.now();
        StopResult r = sup.stop("mute", false, null).get(20, TimeUnit.SECONDS);
        assertThat(r.stopped()).isTrue();
        assertThat(r.rung()).isEqualTo(StopRung.QUIT);
        assertThat(r.took()).as("bounded by stop-timeout").isLessThanOrEqualTo(Duration.ofSeconds(9));
        // the powerdown rung keeps to its share: it ends 4.27 s in (8 s less the quit, sigterm and sigkill shares)
        Instant quitAt = fx.events.stream()
                .filter(e -> e.vm().equals("mute") && e instanceof VmEvent.StopRungReached s && s.rung() == StopRung.QUIT)
                .map(VmEvent::time).findFirst().orElseThrow();
        assertThat(Duration.between(asked, quitAt)).isLessThan(Duration.ofMillis(5_000));
    }
}
