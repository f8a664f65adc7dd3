package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ExitCauseTest {

    @ParameterizedTest
    @CsvSource({
        "guest-shutdown, guest-shutdown, false",
        "guest-reset, guest-reset, true",
        "guest-panic, guest-panic, true",
        "host-qmp-quit, host-qmp-quit, false",
        "host-signal, host-signal, false",
        "host-error, host-error, true",
    })
    void shutdownReasonsMapToCauses(String reason, String label, boolean failure) {
        ExitCause c = ExitCause.fromShutdownReason(reason);
        assertThat(c.kind().label()).isEqualTo(label);
        assertThat(c.isFailure()).isEqualTo(failure);
    }

    @Test
    void unknownReasonKeepsTheRawText() {
        ExitCause c = ExitCause.fromShutdownReason("snapshot-load");
        assertThat(c.kind()).isEqualTo(ExitCause.Kind.OTHER);
        assertThat(c.describe()).contains("snapshot-load");
    }

    @Test
    void launchFailureShowsQemuText() {
        ExitCause c = ExitCause.of(ExitCause.Kind.LAUNCH_FAILED, "qemu-system-x86_64: -drive file=/x: Could not open");
        assertThat(c.describe()).isEqualTo("launch-failed: qemu-system-x86_64: -drive file=/x: Could not open");
    }
}
