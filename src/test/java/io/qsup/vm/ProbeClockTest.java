package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.LongRange;

/** Probes that share an interval fall due together, whenever each VM's loop began, and never later than one interval. */
class ProbeClockTest {

    @Property
    void theNextProbeIsWithinOneIntervalAndSharedByEveryLoopInTheSameInterval(
            @ForAll @LongRange(min = 1, max = 60_000) long intervalMs,
            @ForAll @LongRange(min = 0, max = 10_000_000) long offsetMs,
            @ForAll @LongRange(min = 0, max = 60_000) long laterMs) {
        Duration interval = Duration.ofMillis(intervalMs);
        long base = System.nanoTime() + Duration.ofMillis(offsetMs).toNanos();
        long a = ProbeClock.next(base, interval);
        assertThat(a).isGreaterThan(base).isLessThanOrEqualTo(base + interval.toNanos());
        long other = base + Duration.ofMillis(laterMs).toNanos();
        long b = ProbeClock.next(other, interval);
        // a loop that wakes later either shares this instant or a whole number of intervals after it
        assertThat((b - a) % interval.toNanos()).isZero();
        if (other < a) {
            assertThat(b).isEqualTo(a);
        }
        assertThat(ProbeClock.untilNext(base, interval)).isEqualTo(Duration.ofNanos(a - base));
    }
}
