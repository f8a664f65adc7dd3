package io.qsup.cli;

import static io.qsup.cli.CliRun.qsup;
import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.config.DaemonSettings;
import io.qsup.control.DaemonControl;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code qsup start --wait-ready} returns once the VM passed its ready-when check, fails when it misses its
 * ready-timeout, and says so for a VM without a check; real daemon in-process, real QEMU with the test guest.
 */
class StartWaitReadyTest {
    private SupervisorFixture fx;
    private DaemonControl control;
    private Supervisor sup;
    private Path socket;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
        fx.writeVm("late", "autostart: false\nrestart: no\nready-when:\n  serial: \"QSUP-GUEST READY\"");
        fx.writeVm("never", "autostart: false\nrestart: no\nready-when:\n  serial: \"a line the guest never prints\"\n"
                + "ready-timeout: 2s");
        fx.writeVm("plain", "autostart: false\nrestart: no");
        DaemonSettings settings = fx.settings();
        sup = fx.supervisor(Supervisor.Options.defaults());
        sup.loadInitial();
        control = DaemonControl.start(settings, sup);
        socket = settings.controlSocket();
        sup.startup();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (control != null) {
            control.close();
        }
        fx.close();
    }

    @Test
    void returnsOnceReadyAndFailsWhenTheCheckIsMissed() throws Exception {
        CliRun ready = qsup(socket, "start", "late", "--wait-ready");
        assertThat(ready.code()).as(ready.toString()).isZero();
        assertThat(ready.out()).contains("late: running (ready: serial: QSUP-GUEST READY)");
        assertThat(sup.get("late").orElseThrow().ready()).as("ready when the CLI returned").isTrue();

        CliRun missed = qsup(socket, "start", "never", "--wait-ready");
        assertThat(missed.code()).as(missed.toString()).isEqualTo(ExitCodes.ERROR);
        assertThat(missed.err()).contains("never runs but did not become ready within its ready-timeout");

        CliRun plain = qsup(socket, "start", "plain", "--wait-ready");
        assertThat(plain.code()).as(plain.toString()).isZero();
        assertThat(plain.out()).contains("plain: running (no ready-when: running counts as ready)");

        CliRun both = qsup(socket, "start", "plain", "--wait-ready", "--no-wait");
        assertThat(both.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(both.err()).contains("--wait-ready waits; drop --no-wait");
    }
}
