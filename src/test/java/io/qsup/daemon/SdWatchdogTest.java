package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** When qsupd takes the watchdog as its own, as {@code sd_watchdog_enabled(3)} says. */
class SdWatchdogTest {
    private static final long US = 4242;

    @Test
    void aPositiveWatchdogUsecWithNoOrOurOwnWatchdogPidEnablesIt() {
        assertThat(SdWatchdog.interval("60000000", null, US)).contains(Duration.ofSeconds(60));
        assertThat(SdWatchdog.interval("60000000", "", US)).contains(Duration.ofSeconds(60));
        assertThat(SdWatchdog.interval("1500", "4242", US)).contains(Duration.ofNanos(1_500_000));
    }

    @Test
    void anotherProcesssWatchdogPidOrNoUsableWatchdogUsecDisablesIt() {
        assertThat(SdWatchdog.interval("60000000", "1", US)).isEmpty();
        assertThat(SdWatchdog.interval(null, null, US)).isEmpty();
        assertThat(SdWatchdog.interval("", null, US)).isEmpty();
        assertThat(SdWatchdog.interval("0", null, US)).isEmpty();
        assertThat(SdWatchdog.interval("-5", null, US)).isEmpty();
        assertThat(SdWatchdog.interval("60s", null, US)).isEmpty();
    }
}
