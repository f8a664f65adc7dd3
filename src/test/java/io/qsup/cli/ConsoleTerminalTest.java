package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.config.DaemonSettings;
import io.qsup.control.DaemonControl;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.Tmux;
import io.qsup.vm.VmState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code qsup console} in a real pseudo-terminal (tmux): typing reaches the guest, the guest's answer shows, Ctrl-]
 * detaches, and the terminal is back in its normal (cooked, echoing) mode afterwards.
 */
class ConsoleTerminalTest {
    private SupervisorFixture fixture;
    private DaemonControl control;
    private DaemonSettings settings;
    private final Tmux tmux = new Tmux("console-test");

    @BeforeEach
    void start() throws Exception {
        fixture = new SupervisorFixture(1);
        fixture.writeVm("web1", "restart: no");
        settings = fixture.settings();
        Supervisor sup = fixture.supervisor(Supervisor.Options.defaults());
        sup.loadInitial();
        control = DaemonControl.start(settings, sup);
        sup.startup();
        sup.controller("web1").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));
        fixture.readyConsole("web1", Duration.ofSeconds(90)).close();
    }

    @AfterEach
    void stop() throws Exception {
        tmux("kill-server");
        if (control != null) {
            control.close();
        }
        fixture.close();
    }

    @Test
    void typesIntoTheGuestDetachesWithCtrlBracketAndRestoresTheTerminal() throws Exception {
        tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "40", "bash --norc --noprofile");
        tmux("send-keys", "-t", "t", consoleCommand(), "Enter");
        awaitPane(p -> p.contains("Press Ctrl-] to detach"), "the attach banner");

        tmux("send-keys", "-t", "t", "hello-console", "Enter");
        awaitPane(p -> p.contains("QSUP-GUEST ERR unknown hello-console"), "the guest's answer");

        tmux("send-keys", "-t", "t", "C-]");
        String after = awaitPane(p -> p.contains("QSUP-EXIT=0"), "the CLI to exit after Ctrl-]");
        assertThat(after).contains("Detached from web1.");

        assertTerminalRestored();
    }

    @Test
    void aGuestThatPowersOffEndsTheSessionAndRestoresTheTerminal() throws Exception {
        tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "40", "bash --norc --noprofile");
        tmux("send-keys", "-t", "t", consoleCommand(), "Enter");
        awaitPane(p -> p.contains("Press Ctrl-] to detach"), "the attach banner");
        tmux("send-keys", "-t", "t", "hello-console", "Enter");
        awaitPane(p -> p.contains("QSUP-GUEST ERR unknown hello-console"), "the guest's answer");

        tmux("send-keys", "-t", "t", "poweroff", "Enter"); // the test guest's init powers the VM off
        String after = awaitPane(p -> p.matches("(?s).*QSUP-EXIT=\\d.*"), "the CLI to exit when QEMU closes the console");
        assertThat(after).contains("web1's console was closed by QEMU: the VM stopped").contains("QSUP-EXIT=0")
                .doesNotContain("Broken pipe");
        assertTerminalRestored();
    }

    @Test
    void logsOnATerminalShowTheGuestsTerminalControlsInsteadOfObeyingThem() throws Exception {
        try (var console = fixture.readyConsole("web1", Duration.ofSeconds(60))) {
            // the guest's init echoes an unknown command, escape sequence and all, into its serial log
            console.send("probe\u001b[6n");
            console.awaitLine(l -> l.contains("ERR unknown probe"), Duration.ofSeconds(30));
        }
        tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "40", "bash --norc --noprofile");
        tmux("send-keys", "-t", "t", "clear; " + qsupCommand("logs web1 --serial") + "; echo DONE-$((6*7))", "Enter");
        String pane = awaitPane(p -> p.contains("DONE-42"), "the log to be printed");
        // a terminal that got the raw ESC[6n would have answered with a cursor report typed into the shell
        assertThat(pane).contains("ERR unknown probe^[[6n").doesNotContainPattern("\\^\\[\\[\\d+;\\d+R");
    }

    /** The long command line goes in a script: typed into the terminal, it can be cut. */
    private String consoleCommand() throws IOException {
        return qsupCommand("console web1") + "; echo QSUP-EXIT=$?";
    }

    /** {@code qsup ARGS --socket S} as a command line for the pane, through a script. */
    private String qsupCommand(String args) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Path script = fixture.base.resolve("qsup-" + args.replaceAll("[^a-z0-9]+", "-") + ".sh");
        Files.writeString(script, "exec '" + java + "' --enable-native-access=ALL-UNNAMED -cp '" + cp
                + "' io.qsup.cli.QsupMain " + args + " --socket '" + settings.controlSocket() + "'\n");
        return "bash '" + script + "'";
    }

    private void assertTerminalRestored() throws Exception {
        // the marker is computed, so the echoed command line never matches it
        tmux("send-keys", "-t", "t", "clear; stty -a | tr ' ' '\\n' | grep -x -e '-\\?icanon' -e '-\\?echo' | tr '\\n' ' ';"
                + " echo MODES-$((6*7))", "Enter");
        String modes = awaitPane(p -> p.contains("MODES-42"), "stty's report");
        assertThat(modes).contains("icanon echo").doesNotContain("-icanon").doesNotContain("-echo ");
    }

    private String awaitPane(Predicate<String> p, String what) throws Exception {
        return Tmux.await(() -> tmux("capture-pane", "-p", "-t", "t", "-S", "-200"), p, what);
    }

    private String tmux(String... args) throws IOException, InterruptedException {
        return tmux.run(args);
    }

}
