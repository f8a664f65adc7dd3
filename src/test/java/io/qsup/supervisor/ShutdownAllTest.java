package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.GuestConsole;
import io.qsup.vm.StopResult;
import io.qsup.vm.StopRung;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Host shutdown with five real test-guest VMs, one of which ignores the power button: at most
 * {@code shutdown-parallel} ladders run at once, all VMs are down within {@code shutdown-timeout}, and each result
 * names the rung that ended its VM.
 */
class ShutdownAllTest {
    private static final Duration BOOT = Duration.ofSeconds(120);
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
    void fiveVmsStopAtMostTwoAtOnceWithinTheBudgetAndEachReportsItsRung() throws Exception {
        List<String> names = List.of("a1", "a2", "a3", "a4", "deaf");
        for (String n : names) {
            // the deaf one has no guest agent either, so its ladder climbs to quit
            fx.writeVm(n, n.equals("deaf") ? "stop-timeout: 8s\nguest-agent: false" : "stop-timeout: 60s");
        }
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        for (String n : names) {
            try (GuestConsole c = fx.readyConsole(n, BOOT)) { // booted far enough that acpid listens
                if (n.equals("deaf")) {
                    c.command("ignore-acpi", Duration.ofSeconds(30));
                }
            }
        }
        assertThat(sup.list()).extracting(VmSnapshot::state).containsOnly(VmState.RUNNING);
        int before = fx.events.size();

        Duration budget = Duration.ofSeconds(100);
        long t0 = System.nanoTime();
        Map<String, StopResult> results = sup.shutdownAll(2, budget);
        Duration took = Duration.ofNanos(System.nanoTime() - t0);

        assertThat(took).as("all down within shutdown-timeout").isLessThan(budget);
        assertThat(results).containsOnlyKeys(names);
        assertThat(results.values()).allMatch(StopResult::stopped);
        assertThat(results.get("deaf").rung()).isEqualTo(StopRung.QUIT);
        for (String n : names.subList(0, 4)) {
            assertThat(results.get(n).rung()).as(n).isEqualTo(StopRung.POWERDOWN);
        }
        assertThat(sup.list()).extracting(VmSnapshot::state).containsOnly(VmState.STOPPED);

        int running = 0;
        int most = 0;
        for (VmEvent e : fx.events.subList(before, fx.events.size())) {
            if (e instanceof VmEvent.StateChange c && c.to() == VmState.STOPPING) {
                most = Math.max(most, ++running);
            } else if (e instanceof VmEvent.StateChange c && c.from() == VmState.STOPPING) {
                running--;
            }
        }
        assertThat(most).as("ladders at once").isEqualTo(2);
    }
}
