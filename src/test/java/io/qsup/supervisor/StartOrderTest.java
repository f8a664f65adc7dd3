package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Ten VMs: depends-on order and max-parallel-starts, read from the published state changes. */
class StartOrderTest {
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
    void tenVmsStartAfterTheirDependenciesAndNeverMoreThanTwoAtOnce() throws Exception {
        // no guest: QEMU with an empty machine idles in the firmware, which keeps ten VMs cheap under TCG
        Map<String, List<String>> deps = new HashMap<>();
        deps.put("db", List.of());
        deps.put("cache", List.of());
        deps.put("app1", List.of("db", "cache"));
        deps.put("app2", List.of("db"));
        deps.put("app3", List.of("db"));
        deps.put("web1", List.of("app1", "app2"));
        deps.put("web2", List.of("app3"));
        deps.put("lb", List.of("web1", "web2"));
        deps.put("mon", List.of());
        deps.put("backup", List.of("db"));
        for (Map.Entry<String, List<String>> e : deps.entrySet()) {
            Files.writeString(fx.base.resolve("vms").resolve(e.getKey() + ".yaml"), """
                    memory: 32M
                    depends-on: %s
                    """.formatted(e.getValue()));
        }
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        assertThat(sup.loadInitial().errors()).isEmpty();
        sup.startup();
        assertThat(sup.list()).hasSize(10).extracting(VmSnapshot::state).containsOnly(VmState.RUNNING);

        List<VmEvent.StateChange> changes = fx.events.stream().filter(e -> e instanceof VmEvent.StateChange)
                .map(e -> (VmEvent.StateChange) e).toList();
        int starting = 0;
        int peak = 0;
        Map<String, Integer> runningAt = new HashMap<>();
        Map<String, Integer> startingAt = new HashMap<>();
        for (int i = 0; i < changes.size(); i++) {
            VmEvent.StateChange c = changes.get(i);
            if (c.to() == VmState.STARTING) {
                starting++;
                startingAt.put(c.vm(), i);
            }
            if (c.from() == VmState.STARTING) {
                starting--;
            }
            if (c.to() == VmState.RUNNING) {
                runningAt.put(c.vm(), i);
            }
            peak = Math.max(peak, starting);
        }
        assertThat(peak).as("VMs starting at once with max-parallel-starts 2").isLessThanOrEqualTo(2);
        assertThat(peak).as("starts did overlap").isEqualTo(2);
        for (Map.Entry<String, List<String>> e : deps.entrySet()) {
            for (String d : e.getValue()) {
                assertThat(runningAt.get(d)).as("%s running before %s starts", d, e.getKey())
                        .isLessThan(startingAt.get(e.getKey()));
            }
        }
    }
}
