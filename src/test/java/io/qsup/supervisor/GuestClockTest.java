package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.AgentState;
import io.qsup.vm.ExecResult;
import io.qsup.vm.VmController;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** After a long pause the guest's clock is set again through its agent (real QEMU, test guest, real qemu-ga). */
class GuestClockTest {
    private SupervisorFixture fx;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    /** Guest clock minus host clock, in seconds, measured with {@code date +%s} in the guest. */
    private static long guestSkew(VmController c) throws Exception {
        ExecResult r = c.exec("date", List.of("+%s"), Duration.ofSeconds(10));
        long guest = Long.parseLong(new String(r.stdout(), StandardCharsets.UTF_8).strip());
        return guest - Instant.now().getEpochSecond();
    }

    @Test
    void aResumeAfterALongPauseSetsTheGuestClock() throws Exception {
        fx.writeVm("clock", "stop-timeout: 10s");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup();
        VmController c = sup.controller("clock").orElseThrow();
        fx.readyConsole("clock", Duration.ofSeconds(90)).close();
        long until = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (c.agentState() != AgentState.CONNECTED && System.nanoTime() < until) {
            Thread.sleep(100);
        }
        assertThat(c.agentState()).isEqualTo(AgentState.CONNECTED);
        c.exec("date", List.of("-s", "@" + Instant.now().getEpochSecond()), Duration.ofSeconds(10));
        assertThat(Math.abs(guestSkew(c))).as("in step before the pause").isLessThanOrEqualTo(1);

        sup.pause("clock").get(10, TimeUnit.SECONDS);
        Thread.sleep(8000);
        sup.resume("clock").get(10, TimeUnit.SECONDS);

        long skew = Long.MAX_VALUE;
        long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (System.nanoTime() < end) {
            skew = guestSkew(c);
            if (Math.abs(skew) <= 1) {
                break;
            }
            Thread.sleep(300);
        }
        assertThat(Math.abs(skew)).as("guest clock minus host clock after an 8 s pause, in s").isLessThanOrEqualTo(1);
    }
}
