package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.Cause;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HookRunnerTest {

    @Test
    void hookSeesVmStatesAndCauseInItsEnvironment(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("out.txt");
        Path hook = script(dir, "hook.sh", "#!/bin/sh\necho \"$QSUP_VM $QSUP_OLD_STATE $QSUP_NEW_STATE $QSUP_CAUSE|$QSUP_DETAIL\" >> "
                + out + "\n");
        try (HookRunner runner = new HookRunner(hook, Duration.ofSeconds(10))) {
            runner.accept(new VmEvent.StateChange("web1", VmState.RUNNING, VmState.STOPPED, Cause.CRASHED, "pid 42 died",
                    Instant.now()));
            runner.accept(new VmEvent.StateChange("web1", VmState.STOPPED, VmState.BACKOFF, Cause.CRASHED, "restart: on-failure",
                    Instant.now()));
        }
        assertThat(Files.readAllLines(out))
                .containsExactly("web1 running stopped crashed|pid 42 died", "web1 stopped backoff crashed|restart: on-failure");
    }

    @Test
    void slowHookNeverBlocksTheCallerAndIsKilledAtItsTimeout(@TempDir Path dir) throws Exception {
        Path marker = dir.resolve("after-sleep");
        Path hook = script(dir, "slow.sh", "#!/bin/sh\nsleep 30\ntouch " + marker + "\n");
        HookRunner runner = new HookRunner(hook, Duration.ofMillis(500));
        long t0 = System.nanoTime();
        runner.accept(new VmEvent.StateChange("db", VmState.STOPPED, VmState.STARTING, Cause.OPERATOR_START, "",
                Instant.now()));
        long acceptMillis = (System.nanoTime() - t0) / 1_000_000;
        runner.close(); // waits for the run, which the watchdog ends
        assertThat(acceptMillis).as("accept returned before the hook finished").isLessThan(500);
        assertThat(marker).as("the hook was killed before it got past its sleep").doesNotExist();
    }

    private static Path script(Path dir, String name, String text) throws Exception {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"));
        return p;
    }
}
