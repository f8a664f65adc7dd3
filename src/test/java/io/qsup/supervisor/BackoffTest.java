package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BackoffTest {

    @Test
    void growsGeometricallyFromDelayToMaxInSteps() {
        Backoff b = new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(32), 5);
        List<Long> ms = new ArrayList<>();
        for (int i = 0; i <= 7; i++) {
            ms.add(b.delayFor(i).toMillis());
        }
        // 32^(i/5) = 2^i: 1, 2, 4, 8, 16, 32, then stays at the cap
        assertThat(ms).containsExactly(1000L, 2000L, 4000L, 8000L, 16000L, 32000L, 32000L, 32000L);
    }

    @Test
    void systemdDefaultsShape() {
        Backoff b = new Backoff(Duration.ofSeconds(1), Duration.ofMinutes(1), 5);
        assertThat(b.delayFor(0)).isEqualTo(Duration.ofSeconds(1));
        assertThat(b.delayFor(5)).isEqualTo(Duration.ofMinutes(1));
        for (int i = 1; i < 8; i++) {
            assertThat(b.delayFor(i)).isGreaterThanOrEqualTo(b.delayFor(i - 1));
        }
    }

    @Test
    void noStepsMeansAConstantDelay() {
        Backoff b = new Backoff(Duration.ofMillis(500), Duration.ofMinutes(1), 0);
        assertThat(b.delayFor(0)).isEqualTo(Duration.ofMillis(500));
        assertThat(b.delayFor(9)).isEqualTo(Duration.ofMillis(500));
    }

    @Test
    void negativeValuesAreRejected() {
        assertThatThrownBy(() -> new Backoff(Duration.ofSeconds(-1), Duration.ZERO, 1))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void startLimitRefusesTheStartAfterTheBurstInsideTheInterval() {
        StartLimit limit = new StartLimit(3, Duration.ofSeconds(10));
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        List<Instant> starts = List.of();
        for (int i = 0; i < 3; i++) {
            starts = limit.admit(starts, t0.plusSeconds(i));
            assertThat(starts).as("start %d admitted", i + 1).isNotNull();
        }
        assertThat(limit.admit(starts, t0.plusSeconds(3))).as("4th start within 10 s").isNull();
        // once the first start leaves the window, one more fits
        assertThat(limit.admit(starts, t0.plusSeconds(10).plusMillis(1))).hasSize(3);
    }

    @Test
    void zeroBurstMeansNoLimit() {
        StartLimit limit = new StartLimit(0, Duration.ofSeconds(10));
        List<Instant> starts = List.of();
        for (int i = 0; i < 50; i++) {
            starts = limit.admit(starts, Instant.EPOCH.plusMillis(i));
        }
        assertThat(starts).hasSize(50);
    }
}
