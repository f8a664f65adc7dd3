package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.config.RestartPolicy;
import io.qsup.vm.ExitCause;
import io.qsup.vm.ExitCause.Kind;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RestartDeciderTest {

    @ParameterizedTest(name = "{0} after {1}: restart={2}")
    @CsvSource({
        "NO, CRASHED, false",
        "NO, GUEST_PANIC, false",
        "ON_FAILURE, CRASHED, true",
        "ON_FAILURE, GUEST_PANIC, true",
        "ON_FAILURE, WATCHDOG, true",
        "ON_FAILURE, HANG, true",
        "ON_FAILURE, GUEST_SHUTDOWN, false",
        "ON_FAILURE, HOST_QMP_QUIT, false",
        "ALWAYS, GUEST_SHUTDOWN, true",
        "ALWAYS, CRASHED, true",
        "ALWAYS, HOST_SIGNAL, true",
    })
    void policyAgainstCause(RestartPolicy policy, Kind kind, boolean restart) {
        assertThat(RestartDecider.decide(policy, ExitCause.of(kind), false, true).restart()).isEqualTo(restart);
    }

    @Test
    void operatorStopWinsEvenOverAlways() {
        RestartDecider.Decision d = RestartDecider.decide(RestartPolicy.ALWAYS, ExitCause.of(Kind.CRASHED), true, true);
        assertThat(d.restart()).isFalse();
        assertThat(d.reason()).contains("operator");
        assertThat(RestartDecider.decide(RestartPolicy.ALWAYS, ExitCause.of(Kind.OPERATOR_STOP), false, true).restart())
                .isFalse();
    }

    @Test
    void aFencedVmIsNeverRestartedOnThisHostEvenWithAlways() {
        RestartDecider.Decision d = RestartDecider.decide(RestartPolicy.ALWAYS, ExitCause.of(Kind.FENCED), false, true);
        assertThat(d.restart()).isFalse();
        assertThat(d.reason()).contains("fenced");
    }

    @Test
    void launchFailureRetriedOnlyAfterAGoodStart() {
        ExitCause launch = ExitCause.of(Kind.LAUNCH_FAILED, "qemu: -drive: Could not open");
        assertThat(RestartDecider.decide(RestartPolicy.ON_FAILURE, launch, false, false).restart()).isFalse();
        assertThat(RestartDecider.decide(RestartPolicy.ALWAYS, launch, false, false).restart()).isFalse();
        assertThat(RestartDecider.decide(RestartPolicy.ON_FAILURE, launch, false, true).restart()).isTrue();
    }
}
