package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.TestQemu;
import io.qsup.testing.Tmux;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The interactive {@code qsup qmp} shell in a real pseudo-terminal (tmux) on a real QEMU: Tab completes a command and
 * an argument key, commands run, QEMU's events appear, and the history is there again after a restart.
 */
class QmpShellTerminalTest {
    private final Tmux tmux = new Tmux("shell-test");
    private TestQemu qemu;

    @TempDir
    Path work;

    @BeforeEach
    void start() {
        qemu = TestQemu.start(work.resolve("qemu"), List.of());
    }

    @AfterEach
    void stop() throws Exception {
        tmux("kill-server");
        qemu.close();
    }

    private void startShell() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        // the class path is long: typed into the terminal it can be cut, so the command goes in a script
        Path script = work.resolve("qmp-shell.sh");
        Files.writeString(script, "XDG_STATE_HOME='" + work.resolve("state") + "' XDG_CACHE_HOME='"
                + work.resolve("cache") + "' exec '" + java + "' --enable-native-access=ALL-UNNAMED -cp '" + cp
                + "' io.qsup.cli.QsupMain qmp --socket '" + qemu.qmpSocket() + "'\n");
        tmux("send-keys", "-t", "t", "clear; bash '" + script + "'; echo QSUP-EXIT=$?", "Enter");
        awaitPane(p -> p.contains("Type ? for help, Ctrl-D to leave.") && lastLine(p).equals("qmp>"), "the prompt");
    }

    @Test
    void completesRunsShowsEventsAndKeepsHistory() throws Exception {
        tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "50", "bash --norc --noprofile");
        startShell();

        tmux("send-keys", "-t", "t", "query-statu", "Tab");
        awaitPane(p -> lastLine(p).equals("qmp> query-status"), "the command name completed");
        tmux("send-keys", "-t", "t", "Enter");
        awaitPane(p -> p.contains("\"status\": \"prelaunch\"") && lastLine(p).equals("qmp>"), "query-status's result");

        tmux("send-keys", "-t", "t", "blockdev-add driver=null-co node-n", "Tab");
        awaitPane(p -> lastLine(p).equals("qmp> blockdev-add driver=null-co node-name="), "the argument key completed");
        tmux("send-keys", "-t", "t", "n0 size=1G", "Enter");
        awaitPane(p -> p.contains("node-name=n0 size=1G\n{}\nqmp>"), "blockdev-add's result");

        tmux("send-keys", "-t", "t", "cont", "Enter");
        String resumed = awaitPane(p -> p.contains("\"event\":\"RESUME\"") && lastLine(p).equals("qmp>"),
                "the RESUME event");
        assertThat(resumed).contains("qmp> cont\n");

        tmux("send-keys", "-t", "t", "block_resize node-name=n0 sise=2G", "Enter");
        awaitPane(p -> p.contains("block_resize: sise: unknown argument; did you mean 'size'?")
                && lastLine(p).equals("qmp>"), "the check's message");

        tmux("send-keys", "-t", "t", "C-d");
        awaitPane(p -> p.contains("QSUP-EXIT=0"), "the shell to end on Ctrl-D");
        assertThat(Files.readString(work.resolve("state/qsup/qmp-history"))).contains("cont");

        startShell();
        tmux("send-keys", "-t", "t", "Up");
        awaitPane(p -> lastLine(p).equals("qmp> block_resize node-name=n0 sise=2G"), "the last line from history");
        tmux("send-keys", "-t", "t", "Up");
        awaitPane(p -> lastLine(p).equals("qmp> cont"), "the line before it");
        tmux("send-keys", "-t", "t", "C-u", "C-d");
        awaitPane(p -> p.contains("QSUP-EXIT=0"), "the second shell to end");
    }

    private static String lastLine(String pane) {
        List<String> lines = pane.lines().map(String::stripTrailing).filter(l -> !l.isEmpty()).toList();
        return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    }

    private String awaitPane(Predicate<String> p, String what) throws Exception {
        return Tmux.await(() -> tmux("capture-pane", "-p", "-t", "t", "-S", "-200").lines().map(String::stripTrailing)
                .reduce("", (a, b) -> a + b + "\n"), p, what);
    }

    private String tmux(String... args) throws IOException, InterruptedException {
        return tmux.run(args);
    }
}
