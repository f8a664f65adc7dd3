package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.GuestConsole;
import io.qsup.vm.AgentState;
import io.qsup.vm.Cause;
import io.qsup.vm.VmController;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A hung guest OS under a live QEMU, with the test guest's {@code freeze} (qemu-ga stopped, console silent, kernel and
 * QEMU running): flagged guest-unresponsive while QMP answers; restarted with cause guest-hang when asked.
 */
class GuestHangTest {
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

    private Optional<VmEvent> awaitEvent(Predicate<VmEvent> p, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (true) {
            Optional<VmEvent> e = fx.events.stream().filter(p).findFirst();
            if (e.isPresent() || System.nanoTime() >= end) {
                return e;
            }
            Thread.sleep(100);
        }
    }

    private static void awaitAgent(VmController c, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (c.agentState() != AgentState.CONNECTED && System.nanoTime() < end) {
            Thread.sleep(100);
        }
        assertThat(c.agentState()).as("agent of %s", c.name()).isEqualTo(AgentState.CONNECTED);
    }

    private static Predicate<VmEvent> hung(String vm, boolean value) {
        return e -> e.vm().equals(vm) && e instanceof VmEvent.GuestHangChange g && g.guestUnresponsive() == value;
    }

    @Test
    void aFrozenGuestIsFlaggedWhileQmpAnswersAndRestartedWithCauseGuestHangWhenAsked() throws Exception {
        fx.writeVm("watched", "guest-hang-after: 3s\nrestart: on-failure");
        fx.writeVm("healed", "guest-hang-after: 3s\nguest-hang-action: restart\nrestart: on-failure\n"
                + "restart-delay: 100ms");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        VmController watched = sup.controller("watched").orElseThrow();
        VmController healed = sup.controller("healed").orElseThrow();
        for (String vm : new String[] {"watched", "healed"}) {
            fx.readyConsole(vm, BOOT).close();
        }
        awaitAgent(watched, Duration.ofSeconds(20));
        awaitAgent(healed, Duration.ofSeconds(20));
        long watchedPid = watched.pid();
        long healedPid = healed.pid();
        assertThat(fx.events).noneMatch(hung("watched", true)).noneMatch(hung("healed", true));

        for (String vm : new String[] {"watched", "healed"}) {
            try (GuestConsole c = fx.console(vm)) {
                c.command("freeze", Duration.ofSeconds(30));
            }
        }

        // report: flagged, QMP still answers, nothing else happens
        assertThat(awaitEvent(hung("watched", true), Duration.ofSeconds(20))).as("watched flagged").isPresent();
        VmSnapshot w = sup.get("watched").orElseThrow();
        assertThat(w.guestUnresponsive()).isTrue();
        assertThat(w.unresponsive()).as("QEMU itself answers").isFalse();
        assertThat(watched.qmp("query-status", null, Duration.ofSeconds(5)).path("status").asText())
                .isEqualTo("running");

        // restart: ended with cause guest-hang, then started again by the policy
        Optional<VmEvent> ended = awaitEvent(e -> e.vm().equals("healed") && e instanceof VmEvent.StateChange s
                && s.cause() == Cause.GUEST_HANG, Duration.ofSeconds(20));
        assertThat(ended).as("healed ended for guest-hang").isPresent();
        assertThat(fx.events.indexOf(ended.get())).as("flag before the restart")
                .isGreaterThan(fx.events.indexOf(awaitEvent(hung("healed", true), Duration.ZERO).orElseThrow()));
        assertThat(healed.await(s -> s == VmState.RUNNING && healed.pid() != healedPid, Duration.ofSeconds(60)))
                .isEqualTo(VmState.RUNNING);
        assertThat(healed.pid()).isNotEqualTo(healedPid);

        Thread.sleep(2000);
        assertThat(watched.state()).as("report only").isEqualTo(VmState.RUNNING);
        assertThat(watched.pid()).isEqualTo(watchedPid);
    }
}
